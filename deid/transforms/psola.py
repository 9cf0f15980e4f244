"""Time-domain pitch-synchronous overlap-add (TD-PSOLA) pitch modification.

Grains two periods long are cut around pitch marks and laid down again at the new period: F0
changes, the spectral envelope of each grain (the formants) and the duration are kept. It costs one
pass over the samples, which makes it the fast pitch engine; WORLD is the other.
Formants are moved in the same pass, as Praat's "Change gender" does: resampling by a ratio
scales formants, F0 and tempo together, and PSOLA then sets F0 and restores the duration. The
per-sample loops are compiled with numba.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numba import njit

from deid.transforms import world
from deid.transforms.base import Block

#: Grain spacing in unvoiced stretches, in seconds: copied as they are, at their own positions.
UNVOICED_HOP = 0.005


@njit(cache=True)
def _frame(i, frames_per_sample, n_frames):  # pragma: no cover - compiled
    """The F0 frame a sample falls in."""
    return min(int(i * frames_per_sample + 0.5), n_frames - 1)


@njit(cache=True)
def _analysis_marks(y, f0, frames_per_sample, f0_scale, sr, unvoiced_hop):  # pragma: no cover - compiled
    """Pitch marks: one per period in voiced stretches, snapped to the waveform's peak.

    ``f0`` is per frame; the F0 at sample t is ``f0[_frame(t)] * f0_scale``.
    """
    n = y.shape[0]
    marks = np.empty(n // 8 + 16, dtype=np.int64)
    periods = np.empty(n // 8 + 16, dtype=np.int64)
    count = 0
    t = 0
    prev_voiced = False
    while t < n:
        f0_t = f0[_frame(t, frames_per_sample, f0.shape[0])] * f0_scale
        if f0_t > 0.0:
            period = int(sr / f0_t + 0.5)
            # Snap to the largest peak near where the mark should fall, so that grains are cut
            # around glottal pulses and overlap in phase.
            lo = t if not prev_voiced else t - period // 4
            hi = t + period if not prev_voiced else t + period // 4
            lo = max(lo, 0)
            hi = min(hi, n - 1)
            best = lo
            for i in range(lo, hi + 1):
                if y[i] > y[best]:
                    best = i
            if count > 0 and best <= marks[count - 1]:
                best = marks[count - 1] + 1
            if best >= n:
                break
            t = best
            prev_voiced = True
        else:
            period = unvoiced_hop
            prev_voiced = False
        if count == marks.shape[0]:
            break
        marks[count] = t
        periods[count] = period
        count += 1
        t += period
    return marks[:count], periods[:count]


#: Samples of one half of the Hann grain window, read by linear interpolation: a cosine per output
#: sample and grain was the largest cost of the overlap-add.
WINDOW_TABLE = 0.5 + 0.5 * np.cos(np.pi * np.linspace(0.0, 1.0, 4097))


@njit(cache=True)
def _overlap_add(y, marks, periods, f0, factor, frames_per_sample, ratio, n_out, table, timing, timing_hop):  # pragma: no cover - compiled
    """Grains around ``marks`` laid down at the new period (``factor`` per F0 frame, over ``ratio``).

    The grain laid at output sample ``ts`` is the one nearest ``ts * len(y) / n_out`` or, when
    ``timing`` is not empty, nearest its value interpolated at ``ts / timing_hop``.
    """
    n = y.shape[0]
    out = np.zeros(n_out, dtype=np.float32)
    wsum = np.zeros(n_out, dtype=np.float32)
    last = table.shape[0] - 1
    stretch = n / n_out
    k = 0
    ts = marks[0] / stretch if marks.shape[0] > 0 else 0.0
    while ts < n_out and marks.shape[0] > 0:
        t_int = int(ts)
        if timing.shape[0] > 1:
            pos = ts / timing_hop
            i = min(int(pos), timing.shape[0] - 2)
            ta = timing[i] + (pos - i) * (timing[i + 1] - timing[i])
        else:
            ta = ts * stretch
        while k + 1 < marks.shape[0] and abs(marks[k + 1] - ta) <= abs(marks[k] - ta):
            k += 1
        period = periods[k]
        frame = _frame(marks[k], frames_per_sample, f0.shape[0])
        beta = factor[frame] / ratio if f0[frame] > 0.0 else 1.0
        centre = marks[k]
        step = last / period
        for j in range(-period, period + 1):
            src = centre + j
            dst = t_int + j
            if src < 0 or src >= n or dst < 0 or dst >= n_out:
                continue
            u = abs(j) * step
            i = min(int(u), last - 1)
            w = table[i] + (u - i) * (table[i + 1] - table[i])
            out[dst] += y[src] * w
            wsum[dst] += w
        ts += period / beta
    for i in range(n_out):
        # Raised pitch overlaps more grains: divide that out. Lowered pitch leaves dips between
        # grains, which are the natural decay between pulses and must not be amplified.
        if wsum[i] > 1.0:
            out[i] /= wsum[i]
    return out


def psola(
    y: np.ndarray,
    *,
    sr: int,
    factor: float | np.ndarray = 1.0,
    ratio: float = 1.0,
    f0: np.ndarray | None = None,
    frame_period: float = 10.0,
    timing: np.ndarray | None = None,
) -> np.ndarray:
    """Scale the F0 of ``y`` by ``factor`` and its formants by ``ratio``, keeping its duration.

    Parameters
    ----------
    y : np.ndarray, shape (n,)
        float32 audio.
    sr : int
        Sample rate in Hz.
    factor : float or np.ndarray
        F0 ratio: one value, or one per frame of ``f0`` (for contours that move within a file).
        Unvoiced stretches are copied unchanged.
    ratio : float
        Formant ratio; 1 keeps the spectral envelope.
    f0 : np.ndarray, optional
        F0 of ``y`` per frame, 0 where unvoiced. Estimated with
        :func:`deid.transforms.world.estimate_f0` when not given.
    frame_period : float
        Hop of ``f0`` in milliseconds.
    timing : np.ndarray, optional
        A time map that keeps the duration but moves the rhythm: the position in ``y`` (in
        samples, increasing from 0 to ``len(y)``) of every ``frame_period`` of the output and of
        its end, which are linearly interpolated. Without it every sample keeps its time.
    """
    n = len(y)
    if f0 is None:
        f0 = world.estimate_f0(y, sr=sr, frame_period=frame_period)
    f0 = continuous(f0)
    factor = np.broadcast_to(np.asarray(factor, dtype=np.float64), f0.shape)
    x = np.ascontiguousarray(y, dtype=np.float32)
    if ratio != 1.0:
        import soxr

        # Played at sr, the resampled signal has every frequency (F0 and formants) times ratio.
        # soxr's medium quality (16-bit precision, ~96 dB) costs half of its default at 48 kHz.
        x = np.asarray(soxr.resample(x, sr, sr / ratio, quality="MQ"), dtype=np.float32)
    # The frames of f0 span y, which x compresses by ratio; F0 in x is ratio times that of y.
    frames_per_sample = ratio * 1000.0 / frame_period / sr
    f0 = np.ascontiguousarray(f0, dtype=np.float64)
    factor = np.ascontiguousarray(factor)
    marks, periods = _analysis_marks(x, f0, frames_per_sample, ratio, float(sr), max(1, int(UNVOICED_HOP * sr)))
    if timing is None:
        timing, timing_hop = np.zeros(0), 1.0
    else:
        # In samples of x, which is y compressed by ratio, per frame of the output.
        timing = np.ascontiguousarray(timing, dtype=np.float64) * (len(x) / n)
        timing_hop = frame_period * sr / 1000.0
    return _overlap_add(x, marks, periods, f0, factor, frames_per_sample, ratio, n, WINDOW_TABLE, timing, timing_hop)


def continuous(f0: np.ndarray) -> np.ndarray:
    """Carry F0 through unvoiced frames, log-linearly between voiced ones and flat at the ends.

    Every stretch is then treated as voiced. A missed voicing decision (DIO misses creaky and
    breathy voices) would otherwise leave the speaker's own pitch in the output; grains laid at a
    new period over a fricative only colour its noise slightly.
    """
    voiced = np.flatnonzero(f0 > 0)
    if len(voiced) == 0:
        return f0
    return np.exp(np.interp(np.arange(len(f0)), voiced, np.log(f0[voiced])))


@dataclass
class PsolaPlan:
    """What the PSOLA steps of a chain ask for, applied in one pass by :class:`PsolaDomain`.

    ``factor`` is one F0 ratio or one per 10-ms frame of :meth:`contour`; ``eq`` is a fixed
    spectral correction applied before the pass: frequencies in Hz and the log-amplitude gain
    at each (see :func:`equalise`). ``hum`` is the mains hum decided for the whole signal (see
    :func:`deid.transforms.world.estimate_f0`), ``block`` the block the plan is for.
    """

    y: np.ndarray
    sr: int
    factor: float | np.ndarray = 1.0
    ratio: float = 1.0
    eq: tuple[np.ndarray, np.ndarray] | None = None
    f0: np.ndarray | None = field(default=None, repr=False)
    hum: float | None | str = world.AUTO
    block: Block | None = field(default=None, repr=False)

    def contour(self) -> np.ndarray:
        """F0 of ``y`` every 10 ms (0 = unvoiced), estimated once and shared by every step and pass."""
        if self.f0 is None:
            keep = self.block.keep if self.block is not None else {}
            self.f0 = world.estimate_f0(self.y, sr=self.sr, frame_period=10.0, hum=self.hum, copy=keep.get("copy"))
            keep["f0"] = self.f0
        return self.f0


class PsolaDomain:
    """Pitch and formant steps with the PSOLA engine: one F0 estimate, one pass for the chain.

    Its statistics are the mains-hum spectrum of the 8 kHz copy that F0 is tracked on; the F0
    contour of a block is kept between a statistics pass and the processing pass.
    """

    context = 1.0
    measures = True

    @staticmethod
    def measure(block: Block, stats: world.HumStats | None) -> world.HumStats:
        copy = world.f0_copy(block.samples[block.owned], block.sr)
        if block.whole:
            block.keep["copy"] = copy
        start = int(round(block.own[0] * world.F0_RATE / block.sr))
        return (stats or world.HumStats()).add(copy, world.F0_RATE, start)

    @staticmethod
    def analyze(block: Block, stats: world.HumStats, *, synthesis: bool = True) -> PsolaPlan:
        return PsolaPlan(y=block.samples, sr=block.sr, f0=block.keep.get("f0"), hum=stats.frequency, block=block)

    @staticmethod
    def synthesize(plan: PsolaPlan) -> np.ndarray:
        y = plan.y if plan.eq is None else equalise(plan.y, sr=plan.sr, freqs=plan.eq[0], log_gain=plan.eq[1])
        if np.all(np.asarray(plan.factor) == 1.0) and plan.ratio == 1.0:
            return y
        # The F0 of the equalised signal is that of the input: the contour is estimated once.
        return psola(y, sr=plan.sr, factor=plan.factor, ratio=plan.ratio, f0=plan.contour())


#: Zeros around the signal before the FFT of :func:`equalise`, in seconds: longer than the
#: correction's impulse response, so that its tail does not wrap around.
EQ_PAD_SECONDS = 0.05


def equalise(y: np.ndarray, *, sr: int, freqs: np.ndarray, log_gain: np.ndarray) -> np.ndarray:
    """Filter ``y`` by a smooth zero-phase gain: ``exp(log_gain)`` at ``freqs`` (Hz), interpolated.

    One FFT of the whole (zero-padded) signal: a long-term correction costs about as much as
    drawing pink noise.
    """
    from scipy import fft

    n = len(y)
    pad = int(EQ_PAD_SECONDS * sr)
    size = fft.next_fast_len(n + 2 * pad, real=True)
    x = np.zeros(size, dtype=np.float32)
    x[pad:pad + n] = y
    spectrum = fft.rfft(x, overwrite_x=True)
    del x
    # In place, and the gain in float32: long blocks at 48 kHz make each copy several megabytes.
    gain = np.interp(np.fft.rfftfreq(size, 1.0 / sr), freqs, log_gain)
    spectrum *= np.exp(gain, out=gain).astype(np.float32)
    del gain
    return np.array(fft.irfft(spectrum, n=size, overwrite_x=True)[pad:pad + n], dtype=np.float32)
