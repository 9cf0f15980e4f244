"""WORLD vocoder (pyworld): F0 estimation, analysis into (F0, envelope, aperiodicity), synthesis.

Steps that work on WORLD features (pitch, formant and vtln with ``method = "world"``) share one
analysis and one synthesis when they follow each other in a pipeline.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from types import ModuleType

import numpy as np
from numba import njit

#: Analysis hop. 5 ms is WORLD's default and keeps fast pitch movements; 10 ms halves the cost
#: but smears onsets audibly.
FRAME_PERIOD_MS = 5.0
F0_FLOOR = 50.0
F0_CEIL = 600.0
#: F0 for PSOLA marks is estimated on an 8 kHz copy: voice F0 and its first harmonics lie far
#: below 4 kHz, and it makes the estimate cost the same at every input rate.
F0_RATE = 8000
#: Autocorrelation window of the subharmonic check, in samples at F0_RATE (30 ms).
SUBHARMONIC_WINDOW = 240
#: Mains hum (50 or 60 Hz) this far above the spectrum beside it (in dB) is notched out before F0
#: estimation: DIO otherwise tracks the hum instead of the voice. In the corpus every clip whose
#: pitch shift missed by more than 0.25 semitone had hum 22-45 dB above its surroundings; the
#: median clip has 8.5 dB.
HUM_PROMINENCE_DB = 20.0
#: Hum harmonics notched (the fundamental and the next three), and the notches' quality factor.
HUM_HARMONICS = 4
HUM_Q = 30.0


@functools.cache
def _pyworld() -> ModuleType:
    with warnings.catch_warnings():
        # pyworld imports pkg_resources only to read its own version.
        warnings.simplefilter("ignore", UserWarning)
        import pyworld
    return pyworld


@dataclass
class WorldFeatures:
    """A WORLD analysis of one channel: F0 per frame (0 = unvoiced), envelope and aperiodicity."""

    f0: np.ndarray
    sp: np.ndarray
    ap: np.ndarray
    sr: int
    n: int
    frame_period: float = FRAME_PERIOD_MS

    @property
    def freqs(self) -> np.ndarray:
        """Frequency in Hz of each envelope bin."""
        return np.linspace(0.0, self.sr / 2, self.sp.shape[1])


def estimate_f0(y: np.ndarray, *, sr: int, frame_period: float = 10.0) -> np.ndarray:
    """F0 in Hz per frame (0 where unvoiced), by DIO refined with StoneMask, on an 8 kHz copy.

    Mains hum is notched out of that copy first (:func:`remove_hum`).

    DIO rather than Harvest: on the corpus it is 50 times faster, and with StoneMask its median
    error against Harvest where both call a frame voiced is 0.05 semitone.
    """
    import soxr

    pyworld = _pyworld()
    x = remove_hum(np.ascontiguousarray(soxr.resample(y, sr, F0_RATE) if sr != F0_RATE else y, dtype=np.float64), F0_RATE)
    # allowed_range 0.3 (default 0.1) lets DIO call a quarter more of the frames voiced that
    # Harvest calls voiced, at 0.03 semitone more median error. One band per octave instead of
    # two would save a quarter of the cost, but the pitch shift then missed by 0.4-0.9 semitone
    # on the clips with mains hum.
    f0, t = pyworld.dio(
        x, F0_RATE, f0_floor=F0_FLOOR, f0_ceil=F0_CEIL, frame_period=frame_period, speed=2, allowed_range=0.3
    )
    f0 = fix_subharmonics(x, F0_RATE, pyworld.stonemask(x, f0, t, F0_RATE), frame_period)
    return fill_gaps(f0, max_frames=int(60 / frame_period))


@njit(cache=True)
def _biquad(x, b0, b1, b2, a1, a2):  # pragma: no cover - compiled
    """One second-order section, direct form II transposed, as scipy.signal.lfilter computes it."""
    y = np.empty_like(x)
    z1 = 0.0
    z2 = 0.0
    for i in range(x.shape[0]):
        xi = x[i]
        yi = b0 * xi + z1
        z1 = b1 * xi - a1 * yi + z2
        z2 = b2 * xi - a2 * yi
        y[i] = yi
    return y


def _notch(x: np.ndarray, w0: float) -> np.ndarray:
    """``x`` through scipy.signal.iirnotch(w0, HUM_Q) (``w0`` as a fraction of Nyquist).

    The same coefficients and recursion as scipy's ``iirnotch`` + ``lfilter``, but without
    importing scipy.signal, which costs every worker process about 2 s of CPU.
    """
    w = np.pi * w0
    g = 1.0 / (1.0 + np.tan(w / HUM_Q / 2.0))
    c = -2.0 * np.cos(w)
    return _biquad(x, g, g * c, g, g * c, 2.0 * g - 1.0)


def remove_hum(x: np.ndarray, sr: int) -> np.ndarray:
    """``x`` with mains hum notched out, for F0 estimation only (the audio itself keeps it).

    The hum is found in the long-term spectrum as a peak within 1 Hz of 50 or 60 Hz standing
    ``HUM_PROMINENCE_DB`` above the median of the 4-15 Hz on either side; its exact frequency and
    its first harmonics are then notched (scipy's ``iirnotch`` design, see :func:`_notch`).
    Without such a peak ``x`` is returned as it is.
    """
    from scipy import fft

    n = len(x)
    if n < sr:  # under 1 s, the spectrum cannot resolve the hum from the voice
        return x
    size = fft.next_fast_len(n, real=True)
    power = np.abs(fft.rfft(x * np.hanning(n), n=size)) ** 2
    freqs = np.fft.rfftfreq(size, 1.0 / sr)
    for mains in (50.0, 60.0):
        near = np.flatnonzero(np.abs(freqs - mains) < 1.0)
        peak = near[np.argmax(power[near])]
        beside = power[(np.abs(freqs - mains) > 4.0) & (np.abs(freqs - mains) < 15.0)]
        if power[peak] > 10.0 ** (HUM_PROMINENCE_DB / 10.0) * max(float(np.median(beside)), 1e-30):
            out = np.asarray(x, dtype=np.float64)
            for k in range(1, HUM_HARMONICS + 1):
                if k * freqs[peak] < sr / 2:
                    out = _notch(out, k * freqs[peak] / (sr / 2))
            return out
    return x


def fix_subharmonics(x: np.ndarray, sr: int, f0: np.ndarray, frame_period: float) -> np.ndarray:
    """Double F0 where the signal is as periodic at half the estimated period.

    DIO's commonest gross error on read speech is a subharmonic: it reports half the F0 (for
    whole files of some voices), which would leave PSOLA shifting nothing. A frame whose
    normalised autocorrelation at half the period is at least 0.9 of that at the period repeats
    at the shorter period, so that is its period.
    """
    out = f0.copy()
    half = SUBHARMONIC_WINDOW // 2
    xp = np.pad(np.asarray(x, dtype=np.float64), (half, half))
    last = len(xp) - 1
    centres = (np.arange(len(f0)) * frame_period * sr / 1000.0).astype(np.int64) + half
    offsets = np.arange(-half, half)
    for _ in range(2):
        voiced = np.flatnonzero((out > 0) & (out * 2 <= F0_CEIL))
        if len(voiced) == 0:
            break
        period = np.round(sr / out[voiced]).astype(np.int64)
        # Frames at the very end (and lags past it) read the zero padding, clipped to the array.
        idx = np.minimum(centres[voiced, None] + offsets, last)
        frame = xp[idx]

        def corr(lag: np.ndarray) -> np.ndarray:
            other = xp[np.minimum(idx + lag[:, None], last)]
            return np.sum(frame * other, axis=1) / np.sqrt(np.sum(frame**2, axis=1) * np.sum(other**2, axis=1) + 1e-12)

        doubled = corr(period // 2) >= 0.9 * corr(period)
        if not doubled.any():
            break
        out[voiced[doubled]] *= 2.0
    return out


def fill_gaps(f0: np.ndarray, *, max_frames: int) -> np.ndarray:
    """Bridge unvoiced gaps of at most ``max_frames`` between voiced frames, log-linearly.

    DIO drops frames in the middle of vowels (creak, low energy); a pitch step would leave them
    at the old pitch, which sounds like a crack and leaves the speaker's own F0 behind.
    """
    voiced = np.flatnonzero(f0 > 0)
    if len(voiced) < 2:
        return f0
    out = f0.copy()
    gaps = np.flatnonzero(np.diff(voiced) > 1)
    for g in gaps:
        a, b = voiced[g], voiced[g + 1]
        if b - a - 1 <= max_frames:
            out[a + 1 : b] = np.exp(np.interp(np.arange(a + 1, b), [a, b], np.log([f0[a], f0[b]])))
    return out


def analyze(y: np.ndarray, *, sr: int, frame_period: float = FRAME_PERIOD_MS) -> WorldFeatures:
    """Decompose one channel into WORLD features."""
    pyworld = _pyworld()
    x = np.ascontiguousarray(y, dtype=np.float64)
    clean = remove_hum(x, sr)
    f0, t = pyworld.dio(clean, sr, f0_floor=F0_FLOOR, f0_ceil=F0_CEIL, frame_period=frame_period)
    f0 = pyworld.stonemask(clean, f0, t, sr)
    # One FFT size for envelope and aperiodicity: synthesis needs them the same width.
    fft_size = pyworld.get_cheaptrick_fft_size(sr, F0_FLOOR)
    sp = pyworld.cheaptrick(x, f0, t, sr, f0_floor=F0_FLOOR, fft_size=fft_size)
    ap = pyworld.d4c(x, f0, t, sr, fft_size=fft_size)
    return WorldFeatures(f0=f0, sp=sp, ap=ap, sr=sr, n=len(y), frame_period=frame_period)


def synthesize(features: WorldFeatures) -> np.ndarray:
    """Resynthesise float32 audio of the analysed length from WORLD features."""
    out = _pyworld().synthesize(
        np.ascontiguousarray(features.f0),
        np.ascontiguousarray(features.sp),
        np.ascontiguousarray(features.ap),
        features.sr,
        features.frame_period,
    )
    out = out[: features.n]
    if len(out) < features.n:
        out = np.pad(out, (0, features.n - len(out)))
    return out.astype(np.float32)


class WorldDomain:
    """WORLD steps of a chain: one analysis, every step edits the features, one synthesis."""

    @staticmethod
    def analyze(y: np.ndarray, sr: int) -> WorldFeatures:
        return analyze(y, sr=sr)

    @staticmethod
    def synthesize(features: WorldFeatures) -> np.ndarray:
        return synthesize(features)
