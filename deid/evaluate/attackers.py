"""Speaker-verification attackers on embeddings: trials, EER, identification, a trained back-end.

Every attacker compares an enrolment set with a test set of the same clips, never a clip
with any version of itself (an anonymized clip keeps the words and rhythm of its original,
which would make the pair trivially easy). A target trial pairs two different clips of one
speaker; a non-target trial pairs clips of two speakers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.metrics import roc_curve
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import Normalizer, StandardScaler


@dataclass
class AttackResult:
    """What one attacker achieved.

    Attributes
    ----------
    eer : float
        Equal error rate of verification, 0..1 (0.5 is chance).
    id_accuracy : float
        Closed-set identification accuracy, 0..1.
    id_chance : float
        Accuracy of guessing among the same candidates (1 / number of candidate speakers,
        averaged over test clips).
    target_scores, nontarget_scores : np.ndarray
        Every trial score, kept for the plots.
    """

    eer: float
    id_accuracy: float
    id_chance: float
    target_scores: np.ndarray = field(repr=False)
    nontarget_scores: np.ndarray = field(repr=False)

    def summary(self) -> dict[str, float | int]:
        """Plain numbers for JSON and tables."""
        return {
            "eer": self.eer,
            "id_accuracy": self.id_accuracy,
            "id_chance": self.id_chance,
            "target_trials": int(self.target_scores.size),
            "nontarget_trials": int(self.nontarget_scores.size),
        }


def equal_error_rate(target_scores: np.ndarray, nontarget_scores: np.ndarray) -> float:
    """The error rate at the threshold where misses and false alarms are equally frequent.

    Taken from sklearn's ROC at the operating point where the miss rate and false-alarm
    rate are closest, averaging the two there.
    """
    labels = np.r_[np.ones(target_scores.size), np.zeros(nontarget_scores.size)]
    fpr, tpr, _ = roc_curve(labels, np.r_[target_scores, nontarget_scores])
    fnr = 1.0 - tpr
    i = int(np.nanargmin(np.abs(fnr - fpr)))
    return float((fpr[i] + fnr[i]) / 2.0)


def verification_trials(
    enrol: np.ndarray, test: np.ndarray, speakers: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Cosine scores of every enrol clip against every other test clip, split target/non-target.

    Parameters
    ----------
    enrol, test : np.ndarray, shape (n_clips, dim)
        Unit-length embeddings, row i of both from clip i.
    speakers : np.ndarray, shape (n_clips,)
        Speaker label of each clip.
    """
    scores = enrol @ test.T
    same = speakers[:, None] == speakers[None, :]
    other_clip = ~np.eye(len(speakers), dtype=bool)
    return scores[same & other_clip], scores[~same]


def identification_accuracy(enrol: np.ndarray, test: np.ndarray, speakers: np.ndarray) -> tuple[float, float]:
    """Closed-set identification: each test clip is given to the closest speaker model.

    A speaker model is the mean of that speaker's enrolment embeddings, leaving out the
    test clip itself, so the true speaker never wins through the clip's own enrolment copy.

    Returns
    -------
    accuracy, chance : float
    """
    labels, index = np.unique(speakers, return_inverse=True)
    onehot = np.eye(labels.size)[index]  # (n_clips, n_speakers)
    sums = onehot.T @ enrol  # (n_speakers, dim)
    counts = onehot.sum(axis=0)
    correct = 0
    for j in range(len(speakers)):
        models = sums.copy()
        n = counts.copy()
        models[index[j]] -= enrol[j]
        n[index[j]] -= 1
        present = n > 0
        models = models[present] / n[present, None]
        models /= np.maximum(np.linalg.norm(models, axis=1, keepdims=True), 1e-12)
        guess = labels[present][int(np.argmax(models @ test[j]))]
        correct += guess == speakers[j]
    return correct / len(speakers), 1.0 / labels.size


def attack(enrol: np.ndarray, test: np.ndarray, speakers: np.ndarray) -> AttackResult:
    """Score an attacker that compares `enrol` with `test` embeddings by cosine."""
    target, nontarget = verification_trials(enrol, test, speakers)
    accuracy, chance = identification_accuracy(enrol, test, speakers)
    return AttackResult(equal_error_rate(target, nontarget), accuracy, chance, target, nontarget)


class WithinClassWhitening(BaseEstimator, TransformerMixin):
    """WCCN: whiten by the within-speaker covariance, shrunk towards a scaled identity.

    It keeps every dimension, only down-weighting the directions along which one speaker's
    anonymized clips vary; with few training speakers that is far more robust than LDA,
    which can keep no more dimensions than there are speakers.

    Parameters
    ----------
    shrinkage : float
        Weight of the identity in the covariance estimate, 0..1.
    """

    def __init__(self, shrinkage: float = 0.3) -> None:
        self.shrinkage = shrinkage

    def fit(self, x: np.ndarray, y: np.ndarray) -> WithinClassWhitening:
        """Estimate the within-speaker covariance of `x` grouped by speaker `y`."""
        lda = LinearDiscriminantAnalysis(solver="lsqr", shrinkage=self.shrinkage, store_covariance=True).fit(x, y)
        eigenvalues, eigenvectors = np.linalg.eigh(lda.covariance_)
        self.whitener_ = eigenvectors / np.sqrt(np.maximum(eigenvalues, 1e-10))
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Project into the whitened space."""
        return x @ self.whitener_


def backends(n_speakers: int, dim: int) -> dict[str, Pipeline]:
    """The back-ends a trained attacker chooses from: centre, project, length-normalise, then cosine.

    ``lda``: shrinkage LDA keeps the directions that separate speakers in anonymized speech
    and drops those the anonymization made noisy. A fixed shrinkage of 0.5 beat Ledoit-Wolf's
    estimate on the shared corpus (48 training speakers): EER 14 % against 19 % for a random
    per-file pitch shift (the lazy attacker: 39 %). ``wccn``: within-class whitening, which
    wins when there are too few training speakers for LDA (8 speakers: 6 % against 22 %
    for a fixed pitch shift, where the lazy attacker has 9 %).
    """
    return {
        "lda": make_pipeline(
            StandardScaler(with_std=False),
            LinearDiscriminantAnalysis(solver="eigen", shrinkage=0.5, n_components=min(n_speakers - 1, dim)),
            Normalizer(),
        ),
        "wccn": make_pipeline(StandardScaler(with_std=False), WithinClassWhitening(0.3), Normalizer()),
    }


def fit_backend(train: list[np.ndarray], speakers: np.ndarray, *, folds: int = 3) -> Pipeline:
    """Choose a back-end by cross-validation over the training speakers alone, then fit it on all of them.

    The attacker never sees the test speakers, so the choice is one a real attacker could
    make: the back-end with the lower EER on held-out training speakers, scoring the first
    run (the enrolment run) against the second (or the first again, without same-clip pairs).
    """
    n_speakers = np.unique(speakers).size
    x, y = np.concatenate(train), np.tile(speakers, len(train))
    enrol, test = train[0], train[min(1, len(train) - 1)]
    inner = min(folds, n_speakers // 2)
    if inner < 2:
        # Too few speakers to hold any out: take the back-end that copes with few speakers.
        return backends(n_speakers, x.shape[1])["wccn"].fit(x, y)
    errors: dict[str, list[float]] = {}
    for fit_idx, score_idx in GroupKFold(n_splits=inner).split(enrol, groups=speakers):
        n_fit = np.unique(speakers[fit_idx]).size
        for name, backend in backends(n_fit, enrol.shape[1]).items():
            backend.fit(np.concatenate([run[fit_idx] for run in train]), np.tile(speakers[fit_idx], len(train)))
            target, nontarget = verification_trials(
                backend.transform(enrol[score_idx]), backend.transform(test[score_idx]), speakers[score_idx]
            )
            errors.setdefault(name, []).append(equal_error_rate(target, nontarget))
    best = min(errors, key=lambda name: float(np.mean(errors[name])))
    return backends(n_speakers, x.shape[1])[best].fit(x, y)


def fold_attacks(
    speakers: np.ndarray,
    folds: int,
    score: Callable[[np.ndarray, np.ndarray], dict[str, tuple[np.ndarray, np.ndarray]]],
    *,
    seed: int | None = None,
) -> dict[str, AttackResult]:
    """Cross-validate attackers that learn from other speakers, pooling their trials over speaker folds.

    The speakers are split into `folds` disjoint groups. For each group, ``score(train_idx,
    test_idx)`` learns from the clips ``train_idx`` (all other speakers) and returns, for each
    attacker it names, the enrolment and test embeddings of the clips ``test_idx``. Scores are
    pooled over the groups, so every speaker is tested once, by attackers that never saw them.
    Identification is among the speakers of a fold. With a `seed`, the speakers are shuffled
    into folds by it (else the folds follow the speakers' order), so that repeated evaluations
    also measure how much the folds move the figures.
    """
    trials: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {}
    correct: dict[str, float] = {}
    chance: dict[str, float] = {}
    splitter = GroupKFold(n_splits=folds) if seed is None else GroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train_idx, test_idx in splitter.split(speakers, groups=speakers):
        for name, (e, t) in score(train_idx, test_idx).items():
            target, nontarget = verification_trials(e, t, speakers[test_idx])
            trials.setdefault(name, ([], []))
            trials[name][0].append(target)
            trials[name][1].append(nontarget)
            accuracy, guess = identification_accuracy(e, t, speakers[test_idx])
            correct[name] = correct.get(name, 0.0) + accuracy * test_idx.size
            chance[name] = chance.get(name, 0.0) + guess * test_idx.size
    n = speakers.size
    out = {}
    for name, (targets, nontargets) in trials.items():
        target, nontarget = np.concatenate(targets), np.concatenate(nontargets)
        out[name] = AttackResult(equal_error_rate(target, nontarget), correct[name] / n, chance[name] / n, target, nontarget)
    return out


def trained_attack(
    enrol: np.ndarray,
    test: np.ndarray,
    train: list[np.ndarray],
    speakers: np.ndarray,
    *,
    folds: int = 5,
    seed: int | None = None,
) -> AttackResult:
    """An attacker with a back-end fitted on anonymized speech of other speakers.

    For each of `folds` speaker folds (`fold_attacks`), a back-end is chosen and fitted
    (`fit_backend`) on every training run of the clips of all other speakers, then scores the
    fold's enrol/test trials.

    Parameters
    ----------
    enrol, test : np.ndarray, shape (n_clips, dim)
        Embeddings of the enrolment run and of the test run.
    train : list of np.ndarray, each shape (n_clips, dim)
        Embeddings of the clips anonymized by the attacker's own runs (other keys).
    speakers : np.ndarray, shape (n_clips,)
    folds : int
        Number of speaker folds (at least 2).
    seed : int, optional
        Shuffles the speakers into folds (see `fold_attacks`).
    """

    def score(train_idx: np.ndarray, test_idx: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        backend = fit_backend([run[train_idx] for run in train], speakers[train_idx])
        return {"trained": (backend.transform(enrol[test_idx]), backend.transform(test[test_idx]))}

    return fold_attacks(speakers, folds, score, seed=seed)["trained"]
