"""Noise: add white, pink or brown noise at a target signal-to-noise ratio.

The noise at a sample depends only on the drawn seed and the sample's position in the signal:
it is drawn in tiles of `TILE` samples at fixed positions, each from a generator seeded with
(seed, tile index), and neighbouring tiles are crossfaded with equal power over `TILE_FADE`
samples (independent noises add in power). A long file processed in blocks therefore gets the
very samples it would get whole. The level is set from the power of the whole input.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from deid.transforms.base import Block, Limit, Param, Transform, register

COLORS = ("white", "pink", "brown")
#: Power spectral density slope of each colour: P(f) ~ 1 / f**exponent.
EXPONENT = {"white": 0.0, "pink": 1.0, "brown": 2.0}
#: Length of a noise tile and of the crossfade between neighbouring tiles, in samples.
TILE = 1 << 15
TILE_FADE = 1 << 9


def colored_noise(n: int, *, color: str, rng: np.random.Generator) -> np.ndarray:
    """Unit-power, zero-mean noise of ``n`` samples whose power spectrum falls as 1/f**k (k by colour)."""
    # scipy.fft, not scipy.signal: importing scipy.signal costs each worker process about 2 s of CPU.
    from scipy import fft

    if color == "white" or n < 2:
        noise = rng.standard_normal(n, dtype=np.float32)
    else:
        # The DFT of white Gaussian noise is white complex Gaussian noise: draw the spectrum
        # directly (over an FFT-friendly length), shape it and transform once.
        size = fft.next_fast_len(n, real=True)
        spectrum = rng.standard_normal(2 * (size // 2 + 1), dtype=np.float32).view(np.complex64)
        spectrum *= _shape(size, color)
        noise = fft.irfft(spectrum, n=size)[:n]
    if n == 0:
        return noise
    # Zero mean and unit power, in float32 with float64 sums: float64 copies of the whole
    # signal cost more than generating it.
    noise = np.ascontiguousarray(noise, dtype=np.float32)
    noise -= np.float32(noise.mean(dtype=np.float64))
    noise *= np.float32(1.0 / max(np.sqrt(float(np.dot(noise, noise)) / n), 1e-12))
    return noise


@functools.cache
def _shape(size: int, color: str) -> np.ndarray:
    """Amplitude per DFT bin: f**(-k/2), so sqrt for pink (k = 1) and f itself for brown (k = 2)."""
    f = np.arange(size // 2 + 1, dtype=np.float32)
    f[0] = f[1]
    return (1.0 / (np.sqrt(f) if color == "pink" else f)).astype(np.float32)


_RAMP = (np.arange(TILE_FADE, dtype=np.float64) + 0.5) / TILE_FADE
_FADE_IN = np.sin(0.5 * np.pi * _RAMP).astype(np.float32)
_FADE_OUT = np.cos(0.5 * np.pi * _RAMP).astype(np.float32)


def noise_at(start: int, n: int, *, color: str, seed: int) -> np.ndarray:
    """Unit-power noise for the ``n`` samples from absolute position ``start`` (see the module docstring)."""
    hop = TILE - TILE_FADE
    out = np.zeros(n, dtype=np.float32)
    stop = start + n
    for k in range(max(0, (start - TILE) // hop + 1), (stop - 1) // hop + 1 if n else 0):
        tile = colored_noise(TILE, color=color, rng=np.random.default_rng([seed, k]))
        if k > 0:
            tile[:TILE_FADE] *= _FADE_IN
        tile[-TILE_FADE:] *= _FADE_OUT
        lo, hi = max(start, k * hop), min(stop, k * hop + TILE)
        out[lo - start: hi - start] += tile[lo - k * hop: hi - k * hop]
    return out


@dataclass(frozen=True)
class Power:
    """Sum of squares and number of samples: the power of a signal, gathered block by block."""

    sumsq: float = 0.0
    count: int = 0

    @classmethod
    def of(cls, y: np.ndarray) -> Power:
        return cls(float(np.square(y, dtype=np.float64).sum()), len(y))

    def __add__(self, other: Power) -> Power:
        return Power(self.sumsq + other.sumsq, self.count + other.count)

    @property
    def mean(self) -> float:
        return self.sumsq / max(self.count, 1)


def add_noise(y: np.ndarray, *, snr_db: float, color: str = "white", seed: int = 0, start: int = 0,
              power: float | None = None) -> np.ndarray:
    """Add noise so that 10·log10(P_signal / P_noise) equals ``snr_db``.

    Parameters
    ----------
    y : np.ndarray, shape (n,)
        float32 audio.
    snr_db : float
        Target signal-to-noise ratio in dB.
    color : {"white", "pink", "brown"}
        Noise spectrum.
    seed : int
        Seed of the noise samples (drawn from the file's key by :class:`Noise`).
    start : int
        Absolute position of ``y[0]`` in the whole signal (the noise depends on position).
    power : float, optional
        Mean square of the whole signal ``y`` is part of; by default that of ``y``.
    """
    if power is None:
        power = Power.of(y).mean
    noise = noise_at(start, len(y), color=color, seed=seed)
    return (y + noise * np.float32(np.sqrt(power / 10.0 ** (snr_db / 10.0)))).astype(np.float32)


@register("noise")
@dataclass(frozen=True, repr=False)
class Noise(Transform):
    """Additive noise at an SNR drawn from ``snr_db``, relative to the power of the whole input."""

    snr_db: Param = (20.0, 30.0)
    color: Param = "pink"

    LIMITS = {"snr_db": Limit(-10.0, 80.0), "color": Limit(values=COLORS)}
    measures = True

    def draw(self, rng: np.random.Generator) -> dict:
        # The noise samples get a seed of their own, drawn from the file's generator, so that
        # the output is deterministic given the drawn values.
        return super().draw(rng) | {"seed": int(rng.integers(2**63 - 1))}

    def measure(self, block: Block, stats: Power | None, **drawn: Any) -> Power:
        part = Power.of(block.samples[block.owned])
        return part if stats is None else stats + part

    def process(self, block: Block, stats: Power, *, snr_db: float, color: str, seed: int) -> np.ndarray:
        return add_noise(block.samples, snr_db=snr_db, color=color, seed=seed, start=block.start, power=stats.mean)
