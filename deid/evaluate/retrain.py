"""The retrained attacker: Resemblyzer's encoder fine-tuned on speech anonymized by the system under test.

This is the VoicePrivacy Challenge's semi-informed attacker. It knows the anonymization system
(not the key), runs it with keys of its own over speakers it has recordings of, and fine-tunes
the speaker encoder itself on the result, so that it learns what the anonymization leaves of a
voice. Only the training speakers' anonymized speech is used; a part of them is held out to
choose the checkpoint, so the speakers scored are never seen.

Two losses, over random 1.6-s partials of the anonymized utterances (the encoder's own input):

- ``ge2e``: the generalized end-to-end loss the encoder was trained with (Wan et al., 2018),
  batches of `RetrainSettings.speakers` speakers with `RetrainSettings.partials` partials each;
- ``aam``: an additive-margin softmax (CosFace) head over the training speakers, its weights
  started at each speaker's mean embedding.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from deid.evaluate.attackers import AttackResult, equal_error_rate, fit_backend, fold_attacks, verification_trials
from deid.evaluate.embeddings import PARTIAL_FRAMES, Features, embed_features, single_thread

LOSSES = ("ge2e", "aam")


@dataclass(frozen=True)
class RetrainSettings:
    """How the encoder is fine-tuned.

    Attributes
    ----------
    steps : int
        Most training steps of one fine-tuning (one speaker fold).
    seconds : float
        Wall-clock cap of one fine-tuning, validation included: on a busy machine it may stop
        the fine-tuning before `steps` (the report gives the steps taken).
    loss : {"ge2e", "aam"}
    speakers, partials : int
        A GE2E batch: this many speakers, this many partials each (the ``aam`` loss draws the
        same number of partials, of any speakers).
    learning_rate : float
        Adam's step size for the encoder (the ``aam`` head learns ten times faster).
    holdout : float
        Share of the training speakers held out to choose the checkpoint (at least two).
    validate_every : int
        Steps between validations (the last step is always validated); the best validation EER
        (the public encoder's included, so fine-tuning can never make the attacker worse than
        not fine-tuning) is kept.
    patience : int
        Validations without improvement before stopping early.
    margin, scale : float
        The ``aam`` loss's cosine margin and logit scale.
    """

    steps: int = 100
    seconds: float = 600.0
    loss: str = "aam"
    speakers: int = 16
    partials: int = 4
    learning_rate: float = 3e-4
    holdout: float = 0.2
    validate_every: int = 20
    patience: int = 3
    margin: float = 0.2
    scale: float = 30.0


@dataclass
class RetrainLog:
    """What one fine-tuning did: steps taken, seconds, and the validation EER of each checkpoint."""

    steps: int
    seconds: float
    validation: list[tuple[int, float]]
    best_step: int


def ge2e_loss(embeddings: Any, w: Any, b: Any, speakers: int, partials: int) -> Any:
    """GE2E softmax loss of unit embeddings ordered speaker by speaker, (speakers * partials, dim).

    Each partial is scored against every speaker's centroid, its own speaker's centroid leaving
    the partial out, by ``w * cos + b``; the loss is the cross-entropy of the right speaker.
    """
    import torch
    import torch.nn.functional as F

    e = embeddings.view(speakers, partials, -1)
    sums = e.sum(dim=1, keepdim=True)
    centroids = F.normalize(sums / partials, dim=-1)  # (S, 1, D)
    own = F.normalize((sums - e) / (partials - 1), dim=-1)  # (S, P, D)
    cos = torch.einsum("spd,kd->spk", e, centroids[:, 0])
    eye = torch.eye(speakers, dtype=torch.bool)[:, None, :].expand_as(cos)
    cos = torch.where(eye, (e * own).sum(-1, keepdim=True).expand_as(cos), cos)
    logits = torch.clamp(w, min=1e-6) * cos + b
    labels = torch.arange(speakers).repeat_interleave(partials)
    return F.cross_entropy(logits.reshape(speakers * partials, speakers), labels)


def finetune(
    model: Any,
    runs: Sequence[Sequence[Features]],
    speakers: np.ndarray,
    *,
    settings: RetrainSettings,
    rng: np.random.Generator,
) -> tuple[Any, RetrainLog]:
    """Fine-tune a copy of `model` on the training clips' anonymized runs; return it and its log.

    Parameters
    ----------
    model : resemblyzer VoiceEncoder
        The public encoder; it is not modified.
    runs : sequence of sequences of Features
        ``runs[r][i]``: clip i anonymized in run r (another key per run). The first two runs of
        the held-out speakers give the validation trials.
    speakers : np.ndarray, shape (n_clips,)
        Speaker of each clip; only training speakers are given.
    """
    import torch

    single_thread()
    start = time.perf_counter()
    labels, index = np.unique(speakers, return_inverse=True)
    n_hold = min(max(2, int(round(settings.holdout * labels.size))), labels.size - 2)
    held = np.zeros(labels.size, dtype=bool)
    held[rng.choice(labels.size, n_hold, replace=False)] = True
    val_clips = np.flatnonzero(held[index])
    fit_clips = np.flatnonzero(~held[index])
    fit_index = np.unique(index[fit_clips], return_inverse=True)[1]
    n_fit = int(fit_index.max()) + 1
    enrol_run, test_run = runs[0], runs[min(1, len(runs) - 1)]

    def validate(net: Any) -> float:
        e = embed_features(net, [enrol_run[i] for i in val_clips])
        t = embed_features(net, [test_run[i] for i in val_clips])
        return equal_error_rate(*verification_trials(e, t, speakers[val_clips]))

    # Every (run, clip) utterance of the fitting speakers that has speech, grouped by speaker.
    pool: list[list[np.ndarray]] = [[] for _ in range(n_fit)]
    for run in runs:
        for j, i in enumerate(fit_clips):
            if run[i].starts.size:
                pool[fit_index[j]].append(run[i].mel)
    usable = np.array([len(p) > 0 for p in pool])

    net = copy.deepcopy(model)
    net.train()
    extra: list[Any] = []
    if settings.loss == "ge2e":
        w = torch.nn.Parameter(torch.tensor(10.0))
        b = torch.nn.Parameter(torch.tensor(-5.0))
        extra = [w, b]
    elif settings.loss == "aam":
        first = embed_features(net, [runs[0][i] for i in fit_clips])
        centres = np.zeros((n_fit, first.shape[1]), dtype=np.float32)
        np.add.at(centres, fit_index, first)
        head = torch.nn.Parameter(torch.from_numpy(centres / np.maximum(np.linalg.norm(centres, axis=1, keepdims=True), 1e-9)))
        extra = [head]
    else:
        raise ValueError(f"unknown loss {settings.loss!r}; use one of {', '.join(LOSSES)}")
    optimiser = torch.optim.Adam(
        [{"params": net.parameters(), "lr": settings.learning_rate},
         {"params": extra, "lr": settings.learning_rate * (10.0 if settings.loss == "aam" else 1.0)}]
    )

    best_eer = validate(net)
    best_state, best_step = copy.deepcopy(net.state_dict()), 0
    history = [(0, best_eer)]
    stale = step = 0
    batch = settings.speakers * settings.partials
    candidates = np.flatnonzero(usable)
    while step < settings.steps and time.perf_counter() - start < settings.seconds and candidates.size >= 2:
        if settings.loss == "ge2e":
            chosen = rng.choice(candidates, min(settings.speakers, candidates.size), replace=False)
            who = np.repeat(chosen, settings.partials)
        else:
            who = rng.choice(candidates, batch)
        x = torch.from_numpy(np.stack([_crop(pool[s][int(rng.integers(len(pool[s])))], rng) for s in who]))
        emb = net(x)
        if settings.loss == "ge2e":
            loss = ge2e_loss(emb, extra[0], extra[1], len(chosen), settings.partials)
        else:
            loss = _aam_loss(emb, extra[0], torch.from_numpy(who), settings.margin, settings.scale)
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 3.0)
        optimiser.step()
        step += 1
        if step % settings.validate_every == 0:
            eer = validate(net)
            history.append((step, eer))
            if eer < best_eer:
                best_eer, best_state, best_step, stale = eer, copy.deepcopy(net.state_dict()), step, 0
            else:
                stale += 1
                if stale >= settings.patience:
                    break
    if step % settings.validate_every and step > history[-1][0]:
        # The steps since the last validation count too (a budget that is not a multiple of it).
        eer = validate(net)
        history.append((step, eer))
        if eer < best_eer:
            best_state, best_step = copy.deepcopy(net.state_dict()), step
    net.load_state_dict(best_state)
    net.eval()
    return net, RetrainLog(step, time.perf_counter() - start, history, best_step)


def _crop(mel: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random `PARTIAL_FRAMES`-frame stretch of `mel` (zero-padded when shorter)."""
    if len(mel) <= PARTIAL_FRAMES:
        return np.pad(mel, ((0, PARTIAL_FRAMES - len(mel)), (0, 0)))
    s = int(rng.integers(len(mel) - PARTIAL_FRAMES + 1))
    return mel[s : s + PARTIAL_FRAMES]


def _aam_loss(embeddings: Any, head: Any, labels: Any, margin: float, scale: float) -> Any:
    import torch.nn.functional as F

    cos = embeddings @ F.normalize(head, dim=1).T
    cos = cos - margin * F.one_hot(labels, head.shape[0])
    return F.cross_entropy(scale * cos, labels)


def retrained_attack(
    model: Any,
    enrol: Sequence[Features],
    test: Sequence[Features],
    train: Sequence[Sequence[Features]],
    speakers: np.ndarray,
    *,
    folds: int,
    settings: RetrainSettings,
    rng: np.random.Generator,
    seed: int | None = None,
) -> tuple[dict[str, AttackResult], list[RetrainLog]]:
    """The retrained attacker, cross-validated over speaker folds, without and with the LDA back-end.

    For each fold, the encoder is fine-tuned (`finetune`) on the training runs of the other
    folds' speakers; it then embeds the fold's enrolment and test runs. ``retrained`` scores them
    by cosine; ``retrained+backend`` first passes them through a back-end chosen and fitted as
    the trained attacker's (`fit_backend`), on the retrained encoder's embeddings of the training
    runs.

    Parameters
    ----------
    model : resemblyzer VoiceEncoder
        The public encoder, not modified.
    enrol, test : sequence of Features
        Every clip's enrolment run and test run (keys the attacker does not have).
    train : sequence of sequences of Features
        The attacker's own runs over every clip (``train[r][i]``); only other folds' clips are used.
    speakers : np.ndarray, shape (n_clips,)
    folds : int
    settings : RetrainSettings
        `RetrainSettings.seconds` is the budget of each fold.
    rng : np.random.Generator
        Batches, crops and held-out speakers.
    seed : int, optional
        Shuffles the speakers into folds (see `fold_attacks`).

    Returns
    -------
    attacks : dict
        ``retrained`` and ``retrained+backend``.
    logs : list of RetrainLog
        One per fold.
    """
    logs: list[RetrainLog] = []

    def score(train_idx: np.ndarray, test_idx: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        runs = [[run[i] for i in train_idx] for run in train]
        net, log = finetune(model, runs, speakers[train_idx], settings=settings, rng=rng)
        logs.append(log)
        e = embed_features(net, [enrol[i] for i in test_idx])
        t = embed_features(net, [test[i] for i in test_idx])
        backend = fit_backend([embed_features(net, run) for run in runs], speakers[train_idx])
        return {"retrained": (e, t), "retrained+backend": (backend.transform(e), backend.transform(t))}

    return fold_attacks(speakers, folds, score, seed=seed), logs
