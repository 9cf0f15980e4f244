"""Measurements the tests assert on: F0, long-term envelope shift, SNR, loudness.

They use estimators independent of the ones deid uses internally where it matters: F0 by
WORLD's Harvest (deid's PSOLA path uses DIO), envelopes by LPC-free long-term spectra.
"""

from __future__ import annotations

import hashlib
import warnings

import numpy as np

_HARVESTED: dict[tuple[str, int], np.ndarray] = {}


def harvest_f0(y: np.ndarray, sr: int) -> np.ndarray:
    """F0 every 10 ms by Harvest. It costs 0.5 s of CPU per second of audio, so the F0 of a signal
    already measured (the same input clip under every parameter) is remembered."""
    key = (hashlib.sha256(np.ascontiguousarray(y).tobytes()).hexdigest(), sr)
    if key not in _HARVESTED:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            import pyworld
        _HARVESTED[key] = pyworld.harvest(y.astype(np.float64), sr, f0_floor=40.0, f0_ceil=800.0, frame_period=10.0)[0]
    return _HARVESTED[key].copy()


def f0_shift_semitones(before: np.ndarray, after: np.ndarray, sr: int) -> float:
    """Median F0 change in semitones over frames voiced in both signals."""
    a, b = harvest_f0(before, sr), harvest_f0(after, sr)
    n = min(len(a), len(b))
    both = (a[:n] > 0) & (b[:n] > 0)
    return float(np.median(12.0 * np.log2(b[:n][both] / a[:n][both])))


def long_term_envelope(y: np.ndarray, sr: int, n_fft: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Log long-term average spectrum smoothed along frequency (cepstral lifter), and its frequencies."""
    frames = np.lib.stride_tricks.sliding_window_view(y, n_fft)[:: n_fft // 4] * np.hanning(n_fft)
    power = np.mean(np.abs(np.fft.rfft(frames, axis=-1)) ** 2, axis=0)
    log_p = np.log(power + 1e-12)
    ceps = np.fft.irfft(log_p)
    cut = int(0.0015 * sr)
    ceps[cut:-cut] = 0.0
    return np.fft.rfft(ceps).real[: len(log_p)], np.fft.rfftfreq(n_fft, 1.0 / sr)


def envelope_ratio(before: np.ndarray, after: np.ndarray, sr: int, lo: float = 200.0, hi: float = 4000.0) -> float:
    """The frequency scaling that best maps the input's long-term envelope onto the output's.

    Grid search over ratios: the output envelope on [lo, hi] is correlated with the input's read
    at f / ratio; the ratio with the highest correlation wins.
    """
    env_a, freqs = long_term_envelope(before, sr)
    env_b, _ = long_term_envelope(after, sr)
    band = (freqs >= lo) & (freqs <= hi)
    best, best_r = -np.inf, 1.0
    for r in np.arange(0.70, 1.40, 0.0025):
        warped = np.interp(freqs[band] / r, freqs, env_a)
        c = np.corrcoef(warped, env_b[band])[0, 1]
        if c > best:
            best, best_r = c, r
    return float(best_r)


def snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    noise = noisy.astype(np.float64) - clean.astype(np.float64)
    return float(10.0 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean(noise**2)))
