"""Run the evaluation: anonymize the clips with independent keys, attack, transcribe, rate quality, compare pitch."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from rich.console import Console
from rich.progress import track

from deid.errors import DeidError
from deid.evaluate import f0 as f0_tools
from deid.evaluate.asr import Transcriber, batches, load_transcriber, transcribe_batches, word_error_rate
from deid.evaluate.attackers import AttackResult, attack, trained_attack
from deid.evaluate.data import Clip, load_mono
from deid.evaluate.embeddings import Features, SpeakerEncoder, embed_features
from deid.evaluate.quality import QualityMeter, summarise as summarise_quality
from deid.evaluate.retrain import RetrainLog, RetrainSettings, retrained_attack

if TYPE_CHECKING:
    from deid.pipeline import Pipeline

Anonymizer = Callable[[np.ndarray, int, bytes], np.ndarray]
"""``(y, sr, key) -> anonymized y``: one run of an anonymization system with one key."""

ATTACKERS = ("original", "ignorant", "lazy", "trained", "retrained", "retrained+backend")
DEFAULT_KEY = b"deid-evaluate"


def run_key(base: bytes, role: str) -> bytes:
    """An independent 32-byte key for one anonymization run, derived from `base` and the run's role."""
    return hashlib.blake2b(role.encode(), key=base[:64], digest_size=32).digest()


def preset_anonymizer(preset: str | Path | Pipeline) -> Anonymizer:
    """Wrap a deid preset (name, TOML path or `Pipeline`) as an `Anonymizer` through the public API."""
    import deid

    pipeline = preset if not isinstance(preset, (str, Path)) else deid.load_preset(preset)

    def anonymize(y: np.ndarray, sr: int, key: bytes) -> np.ndarray:
        return deid.anonymize(y, sr, preset=pipeline, key=key)

    return anonymize


@dataclass
class EvaluationReport:
    """Everything one evaluation measured.

    Attributes
    ----------
    name : str
        What was evaluated (a preset name, usually).
    attacks : dict of str to AttackResult
        Keyed by ``original``, ``ignorant``, ``lazy``, ``trained`` and, when the encoder was
        retrained, ``retrained`` and ``retrained+backend``.
    wer : dict
        ``reference`` (``"given"`` or ``"asr-of-original"``), ``asr``, ``original``
        (WER of the original audio; 0 by construction without references),
        ``anonymized`` and ``ratio`` (anonymized over original; only with references).
    f0 : dict
        See `deid.evaluate.f0.summarise`.
    quality : dict
        DNSMOS, see `deid.evaluate.quality.summarise` (empty when not measured).
    speed : dict
        ``audio_seconds``, ``cpu_seconds`` and ``x_realtime`` (audio seconds anonymized
        per CPU second) over every anonymization run.
    settings : dict
        Clips, speakers, folds, runs: what is needed to reproduce the figures.
    """

    name: str
    attacks: dict[str, AttackResult]
    wer: dict[str, Any]
    f0: dict[str, float]
    speed: dict[str, float]
    quality: dict[str, dict[str, float]] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary, without the raw trial scores."""
        return {
            "name": self.name,
            "attackers": {k: v.summary() for k, v in self.attacks.items()},
            "wer": self.wer,
            "f0": self.f0,
            "quality": self.quality,
            "speed": self.speed,
            "settings": self.settings,
        }


class Evaluation:
    """The clips and models of an evaluation, with the originals' embeddings, scores and transcripts cached.

    Build it once, then `run` it for each anonymizer: the originals are embedded, tracked,
    rated and transcribed only once.

    Parameters
    ----------
    clips : sequence of Clip
    asr : Transcriber, str, Path or None
        A recogniser; a CTranslate2 Whisper model directory; ``"auto"`` for the best
        installed (`deid.evaluate.asr.load_transcriber`); ``None`` to skip the WER.
    folds : int
        Speaker folds of the trained and retrained attackers.
    runs : int
        Extra anonymization runs (other keys) that add training data for the trained and
        retrained attackers, beyond the lazy attacker's enrolment run.
    key : bytes
        Base key; every run's key is derived from it, so a report is reproducible.
    retrain_minutes : float
        Wall-clock budget of the retrained attacker over all folds (0: no retrained attacker).
    retrain : RetrainSettings, optional
        How the encoder is fine-tuned; its ``seconds`` is set from `retrain_minutes`.
    quality : bool
        Rate listening quality with DNSMOS.
    cache : str or Path, optional
        A file that keeps what was measured on the originals (encoder input, F0, DNSMOS,
        transcripts), reused when the clips, the ASR and the quality setting are the same;
        transcribing the originals is the slowest part of setting up.
    console : rich Console, optional
        Where to show progress; nothing is shown without one.
    """

    def __init__(
        self,
        clips: Sequence[Clip],
        *,
        asr: Transcriber | str | Path | None = "auto",
        folds: int = 5,
        runs: int = 1,
        key: bytes = DEFAULT_KEY,
        retrain_minutes: float = 0.0,
        retrain: RetrainSettings | None = None,
        quality: bool = True,
        cache: str | Path | None = None,
        console: Console | None = None,
    ) -> None:
        self.clips = list(clips)
        self.speakers = np.array([c.speaker for c in self.clips])
        n_speakers = np.unique(self.speakers).size
        if not 2 <= folds <= n_speakers // 2:
            raise DeidError(f"--folds must be between 2 and {n_speakers // 2} for {n_speakers} speakers")
        if runs < 0:
            raise DeidError("--runs cannot be negative")
        if retrain_minutes < 0:
            raise DeidError("--retrain-minutes cannot be negative")
        if retrain_minutes > 0 and n_speakers - n_speakers // folds < 6:
            raise DeidError("the retrained attacker needs at least 6 training speakers per fold: use fewer --folds")
        self.folds, self.runs, self.key = folds, runs, key
        self.retrain = replace(retrain or RetrainSettings(), seconds=60.0 * retrain_minutes / folds)
        self.retrain_minutes = retrain_minutes
        self.console = console
        self.audio = [load_mono(c.path) for c in self._progress(self.clips, "reading clips")]
        self.encoder = SpeakerEncoder()
        self.transcriber: Transcriber | None = (
            load_transcriber(None if asr == "auto" else asr) if isinstance(asr, (str, Path)) else asr
        )
        self.meter = QualityMeter() if quality else None
        self.asr_batches = batches([y.size / sr for y, sr in self.audio])
        originals = _load_cache(cache, self._cache_tag()) if cache is not None else None
        if originals is None:
            originals = self._measure_originals()
            if cache is not None:
                _save_cache(cache, self._cache_tag(), originals)
        self.original_features = originals["features"]
        self.original_embeddings = embed_features(self.encoder.model, self.original_features)
        self.original_f0 = originals["f0"]
        self.original_quality = originals["quality"]
        self.original_text = originals["text"]

    def _cache_tag(self) -> str:
        """What the cached originals were measured on: the clips' contents, the ASR, the quality meter."""
        digest = hashlib.blake2b(digest_size=16)
        for y, sr in self.audio:
            digest.update(str(sr).encode())
            digest.update(np.ascontiguousarray(y).tobytes())
        asr = self.transcriber.name if self.transcriber is not None else "no-asr"
        return f"{digest.hexdigest()}|{asr}|quality={self.meter is not None}"

    def _measure_originals(self) -> dict[str, Any]:
        return {
            "features": self._features(self.audio, "embedding originals"),
            "f0": [f0_tools.f0_contour(y, sr) for y, sr in self._progress(self.audio, "tracking F0")],
            "quality": None if self.meter is None else self.meter.score_all(self._progress(self.audio, "rating originals")),
            "text": None if self.transcriber is None else self._transcribe(self.transcriber, self.audio, "transcribing originals"),
        }

    @property
    def seconds(self) -> float:
        """Total audio duration in seconds."""
        return float(sum(y.size / sr for y, sr in self.audio))

    def run(self, anonymizer: Anonymizer, name: str = "anonymized", *, key: bytes | None = None) -> EvaluationReport:
        """Anonymize every clip in independent runs and measure privacy and utility.

        `key` replaces the evaluation's base key for this run: repeating a run with other keys
        (which also shuffles the speaker folds) measures the spread of every figure.
        The test run (key ``test``) is what a reviewer would receive. The lazy attacker
        enrols with the same system run with another key (``enrol``); the trained and
        retrained attackers enrol likewise and learn from the ``enrol`` run and `runs` more
        runs (``train-1``...), only ever on speakers outside the fold they score.
        """
        cpu = 0.0
        audio_seconds = 0.0
        base = self.key if key is None else key

        def anonymize_all(role: str) -> list[tuple[np.ndarray, int]]:
            nonlocal cpu, audio_seconds
            key = run_key(base, role)
            out = []
            for y, sr in self._progress(self.audio, f"{name}: anonymizing ({role})"):
                start = time.process_time()
                z = np.asarray(anonymizer(y.copy(), sr, key), dtype=np.float32)
                cpu += time.process_time() - start
                audio_seconds += y.size / sr
                out.append((z if z.ndim == 1 else z.mean(axis=0), sr))
            return out

        test_audio = anonymize_all("test")
        features = {"test": self._features(test_audio, f"{name}: embedding test run")}
        for role in ["enrol"] + [f"train-{r}" for r in range(1, self.runs + 1)]:
            features[role] = self._features(anonymize_all(role), f"{name}: embedding {role}")
        emb = {role: embed_features(self.encoder.model, f) for role, f in features.items()}
        train_roles = [role for role in features if role != "test"]
        original = self.original_embeddings
        fold_seed = int.from_bytes(run_key(base, "folds")[:4], "little")
        attacks = {
            "original": attack(original, original, self.speakers),
            "ignorant": attack(original, emb["test"], self.speakers),
            "lazy": attack(emb["enrol"], emb["test"], self.speakers),
            "trained": trained_attack(emb["enrol"], emb["test"], [emb[r] for r in train_roles], self.speakers, folds=self.folds, seed=fold_seed),
        }
        logs: list[RetrainLog] = []
        if self.retrain_minutes > 0:
            if self.console is not None:
                self.console.log(f"{name}: retraining the encoder ({self.retrain_minutes:g} min over {self.folds} folds)")
            retrained, logs = retrained_attack(
                self.encoder.model,
                features["enrol"],
                features["test"],
                [features[r] for r in train_roles],
                self.speakers,
                folds=self.folds,
                settings=self.retrain,
                rng=np.random.default_rng(int.from_bytes(run_key(base, "retrain")[:8], "little")),
                seed=fold_seed,
            )
            attacks |= retrained
        f0 = f0_tools.summarise(
            [
                f0_tools.F0Comparison.from_contours(f, f0_tools.f0_contour(z, sr))
                for f, (z, sr) in zip(self.original_f0, test_audio)
            ]
        )
        quality = {}
        if self.meter is not None and self.original_quality is not None:
            quality = summarise_quality(self.original_quality, self.meter.score_all(self._progress(test_audio, f"{name}: rating quality")))
        return EvaluationReport(
            name=name,
            attacks=attacks,
            wer=self._wer([z for z, _ in test_audio], name),
            f0=f0,
            speed={
                "audio_seconds": audio_seconds,
                "cpu_seconds": cpu,
                "x_realtime": audio_seconds / cpu if cpu > 0 else float("inf"),
            },
            quality=quality,
            settings={
                "clips": len(self.clips),
                "speakers": int(np.unique(self.speakers).size),
                "folds": self.folds,
                "training_runs": self.runs + 1,
                "retrain": {
                    "minutes": self.retrain_minutes,
                    "loss": self.retrain.loss,
                    "steps": [log.steps for log in logs],
                    "best_steps": [log.best_step for log in logs],
                    "seconds": [round(log.seconds, 1) for log in logs],
                    "validation_eer": [[(step, round(eer, 4)) for step, eer in log.validation] for log in logs],
                } if logs else None,
            },
        )

    def _wer(self, test_audio: list[np.ndarray], name: str) -> dict[str, Any]:
        if self.transcriber is None or self.original_text is None:
            return {}
        hyps = self._transcribe(self.transcriber, [(z, sr) for z, (_, sr) in zip(test_audio, self.audio)], f"{name}: transcribing")
        if all(c.reference is not None for c in self.clips):
            refs = [" ".join(self.clips[i].reference or "" for i in group) for group in self.asr_batches]
            original = word_error_rate(refs, self.original_text)
            anonymized = word_error_rate(refs, hyps)
            return {
                "reference": "given",
                "asr": self.transcriber.name,
                "original": original,
                "anonymized": anonymized,
                "ratio": anonymized / original if original > 0 else float("nan"),
            }
        return {
            "reference": "asr-of-original",
            "asr": self.transcriber.name,
            "original": 0.0,
            "anonymized": word_error_rate(self.original_text, hyps),
            "ratio": float("nan"),
        }

    def _transcribe(self, transcriber: Transcriber, audio: list[tuple[np.ndarray, int]], what: str) -> list[str]:
        return transcribe_batches(transcriber, audio, self._progress(self.asr_batches, what))

    def _features(self, audio: Sequence[tuple[np.ndarray, int]], what: str) -> list[Features]:
        return [self.encoder.features(y, sr) for y, sr in self._progress(audio, what)]

    def _progress(self, items: Sequence[Any], what: str) -> Sequence[Any]:
        if self.console is None:
            return items
        return track(items, description=what, console=self.console, transient=True)


def _load_cache(path: str | Path, tag: str) -> dict[str, Any] | None:
    """The originals' measurements kept in `path`, if they were made on the same clips and models."""
    import pickle

    try:
        with open(path, "rb") as f:
            data = pickle.load(f)
    except (OSError, pickle.UnpicklingError, EOFError):
        return None
    return data["originals"] if isinstance(data, dict) and data.get("tag") == tag else None


def _save_cache(path: str | Path, tag: str, originals: dict[str, Any]) -> None:
    import pickle

    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as f:
        pickle.dump({"tag": tag, "originals": originals}, f)
    partial.replace(path)
