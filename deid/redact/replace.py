"""Replacing spans of audio: the samples go, a tone, silence or noise takes their place.

Spans become the engine's :class:`~deid.engine.SpanEdit` (one per span), applied to the output
after every transform and the peak ceiling, in absolute time. The replacement is a function of
the absolute sample index alone (the tone's phase, the noise's draws, the fades), so a long file
edited block by block comes out the same as the whole file edited at once, and a span that
crosses a block edge is replaced whole. Inside a span nothing of the original is left except
within the 5-ms crossfades at its two ends (which lie inside the padding, away from the words).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from deid.engine import SpanEdit
from deid.redact.options import SIGNALS, RedactOptionsError

FADE_SECONDS = 0.005
TONE_HZ = 1000
# Noise is drawn in chunks of this many samples, each from its own seed, so any stretch of it
# can be drawn without drawing what comes before.
NOISE_CHUNK = 4096


@dataclass(frozen=True)
class Tone:
    """A 1 kHz sine at `level_db` peak, in phase with the file's sample index."""

    sr: int
    level_db: float = -20.0

    def __call__(self, lo: int, hi: int) -> np.ndarray:
        period = _tone_period(self.sr, self.level_db)
        offset = lo % period.size  # whole periods from there, cut to [lo, hi)
        return np.tile(period, -(-(offset + hi - lo) // period.size))[offset : offset + hi - lo]


@dataclass(frozen=True)
class Noise:
    """White noise with the tone's RMS, drawn from `seed` and the absolute sample index."""

    seed: int = 0
    level_db: float = -20.0

    def __call__(self, lo: int, hi: int) -> np.ndarray:
        first, last = lo // NOISE_CHUNK, (hi - 1) // NOISE_CHUNK
        chunks = [np.random.default_rng([self.seed, c]).standard_normal(NOISE_CHUNK) for c in range(first, last + 1)]
        noise = np.concatenate(chunks)[lo - first * NOISE_CHUNK : hi - first * NOISE_CHUNK]
        amplitude = 10.0 ** (self.level_db / 20.0)
        sigma = amplitude / math.sqrt(2.0)  # the tone's RMS
        return np.clip(noise * sigma, -2 * amplitude, 2 * amplitude).astype(np.float32)


@functools.lru_cache(maxsize=16)
def _tone_period(sr: int, level_db: float) -> np.ndarray:
    """One period of the tone in samples: sample n of a file is entry n mod len, exact however far in."""
    period = sr // math.gcd(TONE_HZ, sr)
    amplitude = 10.0 ** (level_db / 20.0)
    return (amplitude * np.sin(2.0 * np.pi * ((TONE_HZ * np.arange(period)) % sr) / sr)).astype(np.float32)


def span_edits(
    spans: Iterable,
    sr: int,
    *,
    frames: int | None = None,
    signal: str = "tone",
    level_db: float = -20.0,
    seed: int = 0,
) -> list[SpanEdit]:
    """The engine edits that replace `spans` (seconds: `Span` objects or ``(start, end)`` pairs).

    Overlapping spans join; every span is clipped to `frames` samples when given.

    Raises
    ------
    RedactOptionsError
        For an unknown `signal`.
    """
    if signal not in SIGNALS:
        raise RedactOptionsError(f"signal must be one of {', '.join(SIGNALS)}, not {signal!r}")
    replacement = {"tone": Tone(sr, level_db), "noise": Noise(seed, level_db), "silence": None}[signal]
    ranges: list[list[int]] = []
    pairs = sorted((s.start, s.end) if hasattr(s, "start") else (float(s[0]), float(s[1])) for s in spans)
    for start, end in pairs:
        a, b = max(0, math.floor(start * sr)), math.ceil(end * sr)
        if frames is not None:
            b = min(b, frames)
        if b <= a:
            continue
        if ranges and a <= ranges[-1][1]:
            ranges[-1][1] = max(ranges[-1][1], b)
        else:
            ranges.append([a, b])
    fade = round(FADE_SECONDS * sr)
    return [SpanEdit(a, b, replacement, fade=min(fade, (b - a) // 2)) for a, b in ranges]


def redact(
    y: np.ndarray,
    sr: int,
    spans: Sequence,
    signal: str = "tone",
    *,
    level_db: float = -20.0,
    seed: int = 0,
    start: int = 0,
) -> np.ndarray:
    """Replace `spans` of `y` with a tone, silence or noise; the duration is unchanged.

    Parameters
    ----------
    y : np.ndarray, shape (n,) or (channels, n)
        Float audio; every channel is redacted over the same spans.
    sr : int
        Sample rate in Hz.
    spans : sequence of Span or (start, end) pairs
        In seconds from the start of the file.
    signal : {"tone", "silence", "noise"}
        ``tone`` (default): 1 kHz at `level_db` peak, so a listener knows something was removed.
    level_db : float
        Level of the tone (peak) and of the noise (the same RMS), in dBFS.
    seed : int
        Seed of the noise.
    start : int
        Absolute index of ``y[..., 0]`` when `y` is one block of a longer file.

    Returns
    -------
    np.ndarray
        A new array, same shape and dtype.
    """
    out = np.array(y, copy=True)
    if not np.issubdtype(out.dtype, np.floating):
        raise RedactOptionsError(f"redact takes float audio in [-1, 1], not {out.dtype}")
    for edit in span_edits(spans, sr, signal=signal, level_db=level_db, seed=seed):
        edit.apply(out, start)
    return out
