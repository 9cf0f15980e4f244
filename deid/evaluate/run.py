"""Run the evaluation: anonymize the clips with independent keys, attack, transcribe, compare pitch."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
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
from deid.evaluate.embeddings import SpeakerEncoder

if TYPE_CHECKING:
    from deid.pipeline import Pipeline

Anonymizer = Callable[[np.ndarray, int, bytes], np.ndarray]
"""``(y, sr, key) -> anonymized y``: one run of an anonymization system with one key."""

ATTACKERS = ("original", "ignorant", "lazy", "trained")
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
        Keyed by ``original``, ``ignorant``, ``lazy``, ``trained``.
    wer : dict
        ``reference`` (``"given"`` or ``"asr-of-original"``), ``asr``, ``original``
        (WER of the original audio; 0 by construction without references),
        ``anonymized`` and ``ratio`` (anonymized over original; only with references).
    f0 : dict
        See `deid.evaluate.f0.summarise`.
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
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary, without the raw trial scores."""
        return {
            "name": self.name,
            "attackers": {k: v.summary() for k, v in self.attacks.items()},
            "wer": self.wer,
            "f0": self.f0,
            "speed": self.speed,
            "settings": self.settings,
        }


class Evaluation:
    """The clips and models of an evaluation, with the originals' embeddings and transcripts cached.

    Build it once, then `run` it for each anonymizer: the originals are embedded, tracked
    and transcribed only once.

    Parameters
    ----------
    clips : sequence of Clip
    asr : Transcriber, str, Path or None
        A recogniser; a CTranslate2 Whisper model directory; ``"auto"`` for the best
        installed (`deid.evaluate.asr.load_transcriber`); ``None`` to skip the WER.
    folds : int
        Speaker folds of the trained attacker.
    runs : int
        Extra anonymization runs (other keys) that add training data for the trained
        attacker, beyond the lazy attacker's enrolment run.
    key : bytes
        Base key; every run's key is derived from it, so a report is reproducible.
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
        console: Console | None = None,
    ) -> None:
        self.clips = list(clips)
        self.speakers = np.array([c.speaker for c in self.clips])
        n_speakers = np.unique(self.speakers).size
        if not 2 <= folds <= n_speakers // 2:
            raise DeidError(f"--folds must be between 2 and {n_speakers // 2} for {n_speakers} speakers")
        if runs < 0:
            raise DeidError("--runs cannot be negative")
        self.folds, self.runs, self.key = folds, runs, key
        self.console = console
        self.audio = [load_mono(c.path) for c in self._progress(self.clips, "reading clips")]
        self.encoder = SpeakerEncoder()
        self.transcriber: Transcriber | None = (
            load_transcriber(None if asr == "auto" else asr) if isinstance(asr, (str, Path)) else asr
        )
        self.original_embeddings = self._embed(self.audio, "embedding originals")
        self.original_f0 = [f0_tools.f0_contour(y, sr) for y, sr in self._progress(self.audio, "tracking F0")]
        self.asr_batches = batches([y.size / sr for y, sr in self.audio])
        self.original_text: list[str] | None = None
        if self.transcriber is not None:
            self.original_text = self._transcribe(self.transcriber, self.audio, "transcribing originals")

    @property
    def seconds(self) -> float:
        """Total audio duration in seconds."""
        return float(sum(y.size / sr for y, sr in self.audio))

    def run(self, anonymizer: Anonymizer, name: str = "anonymized") -> EvaluationReport:
        """Anonymize every clip in independent runs and measure privacy and utility.

        The test run (key ``test``) is what a reviewer would receive. The lazy attacker
        enrols with the same system run with another key (``enrol``); the trained attacker
        enrols likewise and fits its back-end on the ``enrol`` run and on `runs` more runs
        (``train-1``...), only ever on speakers outside the fold it scores.
        """
        cpu = 0.0
        audio_seconds = 0.0

        def anonymize_all(role: str) -> list[np.ndarray]:
            nonlocal cpu, audio_seconds
            key = run_key(self.key, role)
            out = []
            for y, sr in self._progress(self.audio, f"{name}: anonymizing ({role})"):
                start = time.process_time()
                z = np.asarray(anonymizer(y.copy(), sr, key), dtype=np.float32)
                cpu += time.process_time() - start
                audio_seconds += y.size / sr
                if z.ndim != 1:
                    z = z.mean(axis=0)
                out.append(z)
            return out

        test_audio = anonymize_all("test")
        test = self._embed([(z, sr) for z, (_, sr) in zip(test_audio, self.audio)], f"{name}: embedding test run")
        enrol = self._embed(
            [(z, sr) for z, (_, sr) in zip(anonymize_all("enrol"), self.audio)], f"{name}: embedding enrol run"
        )
        train = [enrol]
        for r in range(1, self.runs + 1):
            role = f"train-{r}"
            train.append(
                self._embed(
                    [(z, sr) for z, (_, sr) in zip(anonymize_all(role), self.audio)], f"{name}: embedding {role}"
                )
            )
        original = self.original_embeddings
        attacks = {
            "original": attack(original, original, self.speakers),
            "ignorant": attack(original, test, self.speakers),
            "lazy": attack(enrol, test, self.speakers),
            "trained": trained_attack(enrol, test, train, self.speakers, folds=self.folds),
        }
        f0 = f0_tools.summarise(
            [
                f0_tools.F0Comparison.from_contours(f, f0_tools.f0_contour(z, sr))
                for f, z, (_, sr) in zip(self.original_f0, test_audio, self.audio)
            ]
        )
        return EvaluationReport(
            name=name,
            attacks=attacks,
            wer=self._wer(test_audio, name),
            f0=f0,
            speed={
                "audio_seconds": audio_seconds,
                "cpu_seconds": cpu,
                "x_realtime": audio_seconds / cpu if cpu > 0 else float("inf"),
            },
            settings={
                "clips": len(self.clips),
                "speakers": int(np.unique(self.speakers).size),
                "folds": self.folds,
                "training_runs": self.runs + 1,
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

    def _embed(self, audio: Sequence[tuple[np.ndarray, int]], what: str) -> np.ndarray:
        return np.stack([self.encoder.embed(y, sr) for y, sr in self._progress(audio, what)])

    def _progress(self, items: Sequence[Any], what: str) -> Sequence[Any]:
        if self.console is None:
            return items
        return track(items, description=what, console=self.console, transient=True)
