"""Replacing spans of audio: the samples go, a tone, silence or noise takes their place.

The replacement is a function of the absolute sample index alone (the tone's phase, the noise's
draws, the fades), so a long file edited block by block, with each block's absolute start,
comes out the same as the whole file edited at once, and a span that crosses a block edge is
replaced whole. Inside a span nothing of the original is left except within the 5-ms
crossfades at its two ends (which lie inside the padding, away from the words).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from deid.redact.options import SIGNALS, RedactOptionsError

FADE_SECONDS = 0.005
TONE_HZ = 1000
# Noise is drawn in chunks of this many samples, each from its own seed, so any stretch of it
# can be drawn without drawing what comes before.
NOISE_CHUNK = 4096


@dataclass(frozen=True)
class SpanEdit:
    """Sample ranges of an output to replace, and what replaces them; applied in absolute time.

    Build one per file with `SpanEdit.from_spans`; call `apply(block, start)` on every output
    block, `start` being the absolute index of the block's first sample.

    Attributes
    ----------
    ranges : tuple of (int, int)
        Sorted, non-overlapping ``[start, end)`` sample ranges.
    sr : int
    signal : str
        ``"tone"``, ``"silence"`` or ``"noise"``.
    level_db : float
        Peak level of the tone in dBFS; the noise has the same RMS as the tone.
    seed : int
        Seed of the noise.
    """

    ranges: tuple[tuple[int, int], ...]
    sr: int
    signal: str = "tone"
    level_db: float = -20.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.signal not in SIGNALS:
            raise RedactOptionsError(f"signal must be one of {', '.join(SIGNALS)}, not {self.signal!r}")

    @classmethod
    def from_spans(
        cls, spans: Iterable, sr: int, *, signal: str = "tone", level_db: float = -20.0, seed: int = 0
    ) -> SpanEdit:
        """From spans in seconds (`Span` objects or ``(start, end)`` pairs); overlapping ones join."""
        ranges: list[list[int]] = []
        pairs = sorted((s.start, s.end) if hasattr(s, "start") else (float(s[0]), float(s[1])) for s in spans)
        for start, end in pairs:
            a, b = max(0, math.floor(start * sr)), math.ceil(end * sr)
            if b <= a:
                continue
            if ranges and a <= ranges[-1][1]:
                ranges[-1][1] = max(ranges[-1][1], b)
            else:
                ranges.append([a, b])
        return cls(tuple((a, b) for a, b in ranges), sr, signal, level_db, seed)

    def apply(self, block: np.ndarray, start: int = 0) -> np.ndarray:
        """The block with every range that falls in it replaced (a new array; `block` is not changed).

        Parameters
        ----------
        block : np.ndarray, shape (n,) or (channels, n)
        start : int
            Absolute index of the block's first sample.
        """
        out = np.array(block, copy=True)
        n = out.shape[-1]
        for a, b in self.ranges:
            lo, hi = max(a, start), min(b, start + n)
            if lo >= hi:
                continue
            idx = np.arange(lo, hi, dtype=np.int64)
            gain = self._gain(idx, a, b)
            replacement = self._signal(idx)
            seg = out[..., lo - start : hi - start]
            out[..., lo - start : hi - start] = (seg * (1.0 - gain) + replacement * gain).astype(out.dtype, copy=False)
        return out

    def _gain(self, idx: np.ndarray, a: int, b: int) -> np.ndarray:
        """Weight of the replacement: raised-cosine ramps of 5 ms at both ends, 1 in between."""
        fade = max(1, min(round(FADE_SECONDS * self.sr), (b - a) // 2))
        gain = np.ones(idx.size, np.float32)
        for edge in (idx < a + fade, idx >= b - fade):
            k = idx[edge]
            if k.size:
                ramp = np.minimum((k - a + 0.5) / fade, (b - k - 0.5) / fade)
                gain[edge] = np.sin(0.5 * np.pi * np.clip(ramp, 0.0, 1.0)) ** 2
        return gain

    def _signal(self, idx: np.ndarray) -> np.ndarray:
        amplitude = 10.0 ** (self.level_db / 20.0)
        if self.signal == "silence":
            return np.zeros(idx.size, np.float32)
        if self.signal == "tone":
            return _tone_period(self.sr, amplitude)[idx % _tone_period(self.sr, amplitude).size]
        first, last = idx[0] // NOISE_CHUNK, idx[-1] // NOISE_CHUNK
        chunks = [np.random.default_rng([self.seed, int(c)]).standard_normal(NOISE_CHUNK) for c in range(first, last + 1)]
        noise = np.concatenate(chunks)[idx - first * NOISE_CHUNK]
        sigma = amplitude / math.sqrt(2.0)  # the tone's RMS
        return np.clip(noise * sigma, -2 * amplitude, 2 * amplitude).astype(np.float32)


@functools.lru_cache(maxsize=16)
def _tone_period(sr: int, amplitude: float) -> np.ndarray:
    """One period of the tone in samples: sample n of a file is entry n mod len, exact however far in."""
    period = sr // math.gcd(TONE_HZ, sr)
    return (amplitude * np.sin(2.0 * np.pi * ((TONE_HZ * np.arange(period)) % sr) / sr)).astype(np.float32)


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
        Audio; every channel is redacted over the same spans.
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
    return SpanEdit.from_spans(spans, sr, signal=signal, level_db=level_db, seed=seed).apply(y, start)
