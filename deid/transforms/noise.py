"""Noise: add white, pink or brown noise at a target signal-to-noise ratio."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deid.transforms.base import Limit, Param, Transform, register

COLORS = ("white", "pink", "brown")
#: Power spectral density slope of each colour: P(f) ~ 1 / f**exponent.
EXPONENT = {"white": 0.0, "pink": 1.0, "brown": 2.0}


def colored_noise(n: int, *, color: str, rng: np.random.Generator) -> np.ndarray:
    """Unit-power noise of ``n`` samples whose power spectrum falls as 1/f**k (k by colour)."""
    # scipy.fft, not scipy.signal: importing scipy.signal costs each worker process about 2 s of CPU.
    from scipy import fft

    if color == "white" or n < 2:
        white = rng.standard_normal(n, dtype=np.float32)
    else:
        # The DFT of white Gaussian noise is white complex Gaussian noise: draw the spectrum
        # directly (over an FFT-friendly length), shape it and transform once.
        size = fft.next_fast_len(n, real=True)
        bins = size // 2 + 1
        spectrum = rng.standard_normal(2 * bins, dtype=np.float32).view(np.complex64)
        f = np.arange(bins, dtype=np.float32)
        f[0] = f[1]
        # Amplitude falls as f**(-k/2): sqrt for pink (k = 1), f itself for brown (k = 2).
        spectrum /= np.sqrt(f) if color == "pink" else f
        white = fft.irfft(spectrum, n=size)[:n]
    if n == 0:
        return white
    # Zero mean and unit power, in float32 with float64 sums: float64 copies of the whole
    # signal cost more than generating it.
    white = np.ascontiguousarray(white, dtype=np.float32)
    white -= np.float32(white.mean(dtype=np.float64))
    power = float(np.dot(white, white)) / n
    white *= np.float32(1.0 / max(np.sqrt(power), 1e-12))
    return white


def add_noise(y: np.ndarray, *, snr_db: float, color: str = "white", seed: int = 0) -> np.ndarray:
    """Add noise so that 10·log10(P_signal / P_noise) equals ``snr_db`` exactly.

    Parameters
    ----------
    y : np.ndarray, shape (n,)
        float32 audio; its power is the mean square over the whole signal.
    snr_db : float
        Target signal-to-noise ratio in dB.
    color : {"white", "pink", "brown"}
        Noise spectrum.
    seed : int
        Seed of the noise samples (drawn from the file's key by :class:`Noise`).
    """
    noise = colored_noise(len(y), color=color, rng=np.random.default_rng(seed))
    power = float(np.dot(y, y)) / max(len(y), 1)
    return (y + noise * np.sqrt(power / 10.0 ** (snr_db / 10.0))).astype(np.float32)


@register("noise")
@dataclass(frozen=True, repr=False)
class Noise(Transform):
    """Additive noise at an SNR drawn from ``snr_db``."""

    snr_db: Param = (20.0, 30.0)
    color: Param = "pink"

    LIMITS = {"snr_db": Limit(-10.0, 80.0), "color": Limit(values=COLORS)}

    def draw(self, rng: np.random.Generator) -> dict:
        # The noise samples get a seed of their own, drawn from the file's generator, so that
        # apply() is deterministic given the drawn values.
        return super().draw(rng) | {"seed": int(rng.integers(2**63 - 1))}

    def apply(self, y: np.ndarray, sr: int, *, snr_db: float, color: str, seed: int) -> np.ndarray:
        return add_noise(y, snr_db=snr_db, color=color, seed=seed)
