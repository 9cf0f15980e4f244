"""WORLD (pyworld): the one F0 and vocoder analysis of deid, and its synthesis.

Every F0 estimate goes through this module: the WORLD analysis (:func:`analyze`, F0 by
:func:`track_f0`), the faster tracker that places PSOLA marks (:func:`estimate_f0`), the
pseudo-voice statistics and the evaluation's pitch contours. Both trackers first notch mains
hum out of their input (:func:`notch_hum`); whether a signal has hum, and at which frequency, is
decided once for the whole signal from a spectrum that can be gathered block by block
(:class:`HumStats`), so a long file in blocks is treated as it is whole.

Steps that work on WORLD features (pseudovoice, pitch, formant and vtln with ``method =
"world"``) share one analysis and one synthesis when they follow each other in a pipeline.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import numpy as np
from numba import njit

from deid.transforms.base import Block

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
#: The hum is looked for in the power spectrum summed over frames of this length at fixed
#: positions of the signal (so that blocks add up to the whole), on a copy at HUM_RATE whose
#: frames are zero-padded HUM_PADDING times: a 0.03 Hz grid, refined by interpolation, since a
#: notch of Q 30 placed 0.1 Hz off the hum takes only 20 dB off it.
HUM_FRAME_SECONDS = 4.0
HUM_RATE = 1000
HUM_PADDING = 8
#: Under a second of signal the spectrum cannot resolve hum from the voice: no notch.
HUM_MIN_SECONDS = 1.0
#: Signals whose hum is to be decided on the signal itself.
AUTO = "auto"


@functools.cache
def _pyworld() -> ModuleType:
    """pyworld's compiled module. Its package ``__init__`` imports pkg_resources only to read its
    own version, which costs a short job a tenth of a second: load the extension beside it."""
    import importlib.machinery
    import importlib.util
    import sys

    if "pyworld" not in sys.modules:
        spec = importlib.util.find_spec("pyworld")
        for folder in (spec.submodule_search_locations or []) if spec else []:
            for suffix in importlib.machinery.EXTENSION_SUFFIXES:
                path = Path(folder) / f"pyworld{suffix}"
                if path.is_file():
                    loader = importlib.machinery.ExtensionFileLoader("pyworld.pyworld", str(path))
                    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
                    loader.exec_module(module)
                    return module
    with warnings.catch_warnings():
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
    #: The frames that stand for the block's own span (the rest analyse its context).
    own: slice = field(default_factory=lambda: slice(None))

    @property
    def freqs(self) -> np.ndarray:
        """Frequency in Hz of each envelope bin."""
        return np.linspace(0.0, self.sr / 2, self.sp.shape[1])


class HumStats:
    """The long-term power spectrum of a signal around the mains frequencies, gathered block by block.

    Frames of `HUM_FRAME_SECONDS` sit at fixed positions of the signal. A block adds the part of
    each frame it holds: the DFT is linear, so parts of one frame held by two blocks sum to the
    frame's DFT, and the total is the same whether the signal was added whole or in blocks.
    """

    def __init__(self) -> None:
        self.length = int(HUM_FRAME_SECONDS * HUM_RATE)
        freqs = np.fft.rfftfreq(self.length * HUM_PADDING, 1.0 / HUM_RATE)
        self._bins = np.flatnonzero((freqs > 30.0) & (freqs < 80.0))
        self.freqs = freqs[self._bins]
        self.power = np.zeros(len(self._bins))
        self.seconds = 0.0
        self._window = np.hanning(self.length)
        self._partial: dict[int, list] = {}
        self._decided: tuple[float | None] | None = None

    def add(self, x: np.ndarray, sr: int, start: int) -> HumStats:
        """Add the samples ``x`` at rate ``sr`` whose first is at absolute index ``start``; returns self."""
        import soxr

        self._decided = None
        self.seconds += len(x) / sr
        if not len(x):
            return self
        x = soxr.resample(np.asarray(x, dtype=np.float64), sr, HUM_RATE)
        start = int(round(start * HUM_RATE / sr))
        length = self.length
        stop = start + len(x)
        for k in range(start // length, (stop - 1) // length + 1 if len(x) else 0):
            lo, hi = max(start, k * length), min(stop, (k + 1) * length)
            frame = np.zeros(length * HUM_PADDING)
            frame[lo - k * length: hi - k * length] = x[lo - start: hi - start] * self._window[lo - k * length: hi - k * length]
            spectrum = np.fft.rfft(frame)[self._bins]
            if hi - lo == length:
                self.power += spectrum.real**2 + spectrum.imag**2
                continue
            part = self._partial.setdefault(k, [0.0, 0])
            part[0] = part[0] + spectrum
            part[1] += hi - lo
            if part[1] == length:
                self.power += np.abs(part[0]) ** 2
                del self._partial[k]
        return self

    @property
    def frequency(self) -> float | None:
        """The mains hum's frequency in Hz, or None when no 50/60 Hz peak stands out.

        A peak within 1 Hz of 50 or 60 Hz counts when it stands `HUM_PROMINENCE_DB` above the
        median of the 4-15 Hz on either side; its frequency is refined by a parabola through
        the log power of the grid points around it.
        """
        if self._decided is None:
            self._decided = (self._decide(),)
        return self._decided[0]

    def _decide(self) -> float | None:
        if self.seconds < HUM_MIN_SECONDS:
            return None
        power = self.power + sum((np.abs(p[0]) ** 2 for p in self._partial.values()), np.zeros(len(self._bins)))
        for mains in (50.0, 60.0):
            near = np.flatnonzero(np.abs(self.freqs - mains) < 1.0)
            peak = near[np.argmax(power[near])]
            beside = power[(np.abs(self.freqs - mains) > 4.0) & (np.abs(self.freqs - mains) < 15.0)]
            if power[peak] > 10.0 ** (HUM_PROMINENCE_DB / 10.0) * max(float(np.median(beside)), 1e-30):
                a, b, c = np.log(np.maximum(power[peak - 1: peak + 2], 1e-300))
                offset = 0.5 * (a - c) / (a - 2 * b + c) if a - 2 * b + c < 0 else 0.0
                return float(self.freqs[peak] + offset * (self.freqs[1] - self.freqs[0]))
        return None


def hum_of(x: np.ndarray, sr: int) -> float | None:
    """The mains hum frequency of the whole signal ``x`` (see `HumStats`), or None."""
    return HumStats().add(x, sr, 0).frequency


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


def notch_hum(x: np.ndarray, sr: int, hum: float | None) -> np.ndarray:
    """``x`` (float64) with the hum at ``hum`` Hz and its first harmonics notched; ``x`` itself when None.

    For F0 estimation only: the audio itself keeps its hum.
    """
    if hum is None:
        return x
    out = np.asarray(x, dtype=np.float64)
    for k in range(1, HUM_HARMONICS + 1):
        if k * hum < sr / 2:
            out = _notch(out, k * hum / (sr / 2))
    return out


def remove_hum(x: np.ndarray, sr: int) -> np.ndarray:
    """``x`` with the mains hum it has (decided on ``x`` itself, see `HumStats`) notched out."""
    return notch_hum(x, sr, hum_of(x, sr))


def _decided(hum: float | None | str, x: np.ndarray, sr: int) -> float | None:
    return hum_of(x, sr) if hum == AUTO else hum  # type: ignore[return-value]


def track_f0(y: np.ndarray, *, sr: int, frame_period: float = FRAME_PERIOD_MS,
             hum: float | None | str = AUTO) -> np.ndarray:
    """F0 in Hz per frame (0 where unvoiced): DIO refined by StoneMask at the signal's own rate.

    The F0 of the WORLD analysis, and of the evaluation's pitch contours. Mains hum is notched
    first: at ``hum`` Hz, none with None, or as decided on ``y`` with `AUTO`.
    """
    pyworld = _pyworld()
    x = np.ascontiguousarray(y, dtype=np.float64)
    clean = notch_hum(x, sr, _decided(hum, x, sr))
    f0, t = pyworld.dio(clean, sr, f0_floor=F0_FLOOR, f0_ceil=F0_CEIL, frame_period=frame_period)
    return pyworld.stonemask(clean, f0, t, sr)


def f0_copy(y: np.ndarray, sr: int) -> np.ndarray:
    """The 8 kHz float64 copy of ``y`` that `estimate_f0` tracks."""
    import soxr

    return np.ascontiguousarray(soxr.resample(y, sr, F0_RATE) if sr != F0_RATE else y, dtype=np.float64)


def estimate_f0(y: np.ndarray, *, sr: int, frame_period: float = 10.0, hum: float | None | str = AUTO,
                copy: np.ndarray | None = None) -> np.ndarray:
    """F0 in Hz per frame (0 where unvoiced) for PSOLA marks: DIO refined with StoneMask, on an 8 kHz copy.

    Mains hum is notched out of that copy first (``hum`` as for `track_f0`, decided on the copy
    with `AUTO`); ``copy`` is that copy (`f0_copy`) when the caller already has it.

    DIO rather than Harvest: on the corpus it is 50 times faster, and with StoneMask its median
    error against Harvest where both call a frame voiced is 0.05 semitone.
    """
    pyworld = _pyworld()
    x = f0_copy(y, sr) if copy is None else copy
    x = notch_hum(x, F0_RATE, _decided(hum, x, F0_RATE))
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
def _doubled(xp, centres, periods, half, last):  # pragma: no cover - compiled
    """Per frame: whether the normalised autocorrelation at half the period is at least 0.9 of that
    at the period, over the ``2 * half`` samples around its centre (reads past the end clipped)."""
    out = np.zeros(centres.shape[0], dtype=np.bool_)
    for i in range(centres.shape[0]):
        corr = np.zeros(2)
        for k in range(2):
            lag = periods[i] // 2 if k == 0 else periods[i]
            dot = 0.0
            a2 = 0.0
            b2 = 0.0
            for j in range(-half, half):
                a = xp[min(centres[i] + j, last)]
                b = xp[min(centres[i] + j + lag, last)]
                dot += a * b
                a2 += a * a
                b2 += b * b
            corr[k] = dot / np.sqrt(a2 * b2 + 1e-12)
        out[i] = corr[0] >= 0.9 * corr[1]
    return out


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
    centres = (np.arange(len(f0)) * frame_period * sr / 1000.0).astype(np.int64) + half
    for _ in range(2):
        voiced = np.flatnonzero((out > 0) & (out * 2 <= F0_CEIL))
        if len(voiced) == 0:
            break
        period = np.round(sr / out[voiced]).astype(np.int64)
        # Frames at the very end (and lags past it) read the zero padding, clipped to the array.
        doubled = _doubled(xp, centres[voiced], period, half, len(xp) - 1)
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


def analyze(y: np.ndarray, *, sr: int, frame_period: float = FRAME_PERIOD_MS, hum: float | None | str = AUTO,
            f0: np.ndarray | None = None, sp: np.ndarray | None = None, aperiodicity: bool = True) -> WorldFeatures:
    """Decompose one channel into WORLD features.

    Parameters
    ----------
    y : np.ndarray, shape (n,)
        The channel.
    sr : int
        Sample rate in Hz.
    frame_period : float
        Hop in milliseconds.
    hum
        As for `track_f0`.
    f0, sp : np.ndarray, optional
        F0 and envelope already measured on ``y`` (by an earlier pass), not measured again.
    aperiodicity : bool
        False leaves the aperiodicity out (``ap`` is None): what statistics need costs a third less.
    """
    pyworld = _pyworld()
    x = np.ascontiguousarray(y, dtype=np.float64)
    if f0 is None:
        f0 = track_f0(x, sr=sr, frame_period=frame_period, hum=hum)
    t = np.arange(len(f0)) * frame_period / 1000.0
    # One FFT size for envelope and aperiodicity: synthesis needs them the same width.
    fft_size = pyworld.get_cheaptrick_fft_size(sr, F0_FLOOR)
    if sp is None:
        sp = pyworld.cheaptrick(x, f0, t, sr, f0_floor=F0_FLOOR, fft_size=fft_size)
    ap = pyworld.d4c(x, f0, t, sr, fft_size=fft_size) if aperiodicity else None
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


def own_frames(block: Block, frame_period: float, frames: int) -> slice:
    """The frames (every ``frame_period`` ms from the block's first sample) that fall in its own span."""
    hop = frame_period * block.sr / 1000.0
    lo, hi = (int(np.ceil((edge - block.start) / hop)) for edge in block.own)
    return slice(min(lo, frames), min(hi, frames))


class WorldDomain:
    """WORLD steps of a chain: one analysis, every step edits the features, one synthesis.

    Its statistics are the mains-hum spectrum of its input; the F0 of each block is kept between
    the statistics pass and the processing pass (and the envelope too when the block is the
    whole signal).
    """

    context = 1.0
    measures = True

    @staticmethod
    def measure(block: Block, stats: HumStats | None) -> HumStats:
        return (stats or HumStats()).add(block.samples[block.owned], block.sr, block.own[0])

    @staticmethod
    def analyze(block: Block, stats: HumStats, *, synthesis: bool = True) -> WorldFeatures:
        keep = block.keep
        f0 = keep["f0"].copy() if "f0" in keep else None
        features = analyze(block.samples, sr=block.sr, hum=stats.frequency, f0=f0, sp=keep.get("sp"),
                           aperiodicity=synthesis)
        keep["f0"] = features.f0.copy()
        if block.whole:
            keep["sp"] = features.sp
        features.own = own_frames(block, features.frame_period, len(features.f0))
        return features

    @staticmethod
    def synthesize(features: WorldFeatures) -> np.ndarray:
        return synthesize(features)
