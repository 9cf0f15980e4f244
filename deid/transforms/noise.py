"""Noise: add white, pink or brown noise at a target signal-to-noise ratio."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deid.transforms.base import Limit, Param, Transform, register

COLORS = ("white", "pink", "brown")
#: Power spectral density slope of each colour: P(f) ~ 1 / f**exponent.
EXPONENT = {"white": 0.0, "pink": 1.0, "brown": 2.0}


#: Pink noise filter, 3 poles and 3 zeros: its response falls 3 dB per octave within 0.6 dB from
#: 20 Hz to 0.45 fs at 8-48 kHz (J. O. Smith, "Spectral Audio Signal Processing", example
#: "Synthesis of 1/f noise"). Filtering costs a third of shaping the spectrum by FFT.
PINK_B = np.array([0.049922035, -0.095993537, 0.050612699, -0.004408786], dtype=np.float32)
PINK_A = np.array([1.0, -2.494956002, 2.017265875, -0.522189400], dtype=np.float32)
#: Samples run through the pink filter and dropped first, so that the output starts in its steady
#: state (the slowest pole, 0.995, decays by e^-10 over 2000 samples).
PINK_PREROLL = 2000


def colored_noise(n: int, *, color: str, rng: np.random.Generator) -> np.ndarray:
    """Unit-power noise of ``n`` samples whose power spectrum falls as 1/f**k (k by colour)."""
    from scipy import fft, signal

    if n == 0:
        return np.zeros(0, dtype=np.float32)
    if color == "pink":
        white = signal.lfilter(PINK_B, PINK_A, rng.standard_normal(n + PINK_PREROLL, dtype=np.float32))[PINK_PREROLL:]
    else:
        white = rng.standard_normal(n, dtype=np.float32)
    if color == "brown":
        # Amplitude falls as 1/f: shape the spectrum over an FFT-friendly length (a prime n would
        # cost O(n^2)), then cut.
        size = fft.next_fast_len(n, real=True)
        spectrum = fft.rfft(white, n=size)
        f = np.arange(len(spectrum), dtype=np.float32)
        f[0] = f[1] if len(f) > 1 else 1.0
        spectrum /= f
        white = fft.irfft(spectrum, n=size)[:n]
    # Zero mean and unit power, in float32 with float64 sums: float64 copies of the whole
    # signal cost more than generating it.
    white = np.ascontiguousarray(white, dtype=np.float32)
    white -= np.float32(white.mean(dtype=np.float64))
    power = float(np.dot(white, white)) / max(n, 1)
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
