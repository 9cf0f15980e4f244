"""Pseudo-voice: normalise a speaker's pitch statistics and long-term envelope towards a target voice.

A random pitch or formant shift moves every speaker by the same amount, so who went in still
decides what comes out, and an attacker who learns the shift family undoes it. Normalisation
instead removes the speaker's own statistics before imposing the target's:

- F0: the speaker's median F0 and its spread (median absolute deviation, in semitones) are
  measured on the file and mapped to the target median and spread, keeping the intonation contour;
- envelope: the speaker's long-term average envelope (the mean log CheapTrick envelope over
  voiced frames, which carries the average formant positions and spectral tilt) is divided
  out and a smooth target curve put in its place; then the envelope is scaled along frequency
  by the target's formant ratio.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from deid.transforms import envelope, world
from deid.transforms.psola import PsolaDomain, PsolaPlan, continuous
from deid.transforms.base import Domain, Limit, Param, Transform, register

#: Below this the target long-term envelope is flat; above it falls by ``tilt`` dB per octave,
#: the shape of the long-term average spectrum of speech.
TILT_CORNER_HZ = 500.0
#: Smoothing of the measured long-term envelope across frequency, in octaves: finer detail is
#: left to the frames, coarser shape is what is replaced.
SMOOTH_OCTAVES = 1.0 / 6.0
#: A speaker's formant scale is estimated from their mean F0 as (F0 / REF_F0) ** FORMANT_PER_F0:
#: women's voices are about an octave above men's and their formants about 17 % higher.
REF_F0 = 150.0
FORMANT_PER_F0 = float(np.log2(1.17))


#: Resolution of the F0 histogram that the voice's median and spread are read from, in semitones.
F0_BIN = 0.05
_F0_EDGES = 12 * np.log2(world.F0_FLOOR) + F0_BIN * np.arange(
    int(12 * np.log2(world.F0_CEIL / world.F0_FLOOR) / F0_BIN) + 2
)


def _f0_histogram(f0: np.ndarray) -> np.ndarray:
    """Counts of the voiced frames of ``f0`` (Hz, 0 = unvoiced) in `F0_BIN`-semitone bins."""
    semitones = np.clip(12 * np.log2(f0[f0 > 0]), _F0_EDGES[0], _F0_EDGES[-1] - F0_BIN / 2)
    return np.histogram(semitones, _F0_EDGES)[0]


@dataclass
class VoiceStats:
    """What pseudovoice measures of the voice that goes in, kept as sums over frames so that parts add up.

    F0 is kept as a histogram of voiced frames in semitones, so that its median and median absolute
    deviation can be read: the tracker's odd octave error would dominate a mean and standard
    deviation. The envelope is kept as the sum of log envelopes over voiced (and over all) frames.

    `PseudoVoice.measure` gathers them block by block over the step's whole input (each block
    counts its own span only), and the engine hands the total to every block, so that a long file
    in blocks is normalised by the statistics of the whole file, as it is when processed whole.
    """

    f0_hist: np.ndarray | float = 0.0
    frames: int = 0
    log_sp_voiced: np.ndarray | float = 0.0
    log_sp_all: np.ndarray | float = 0.0
    power: np.ndarray | float = 0.0
    power_frames: int = 0

    @classmethod
    def of(cls, f0: np.ndarray, sp: np.ndarray) -> VoiceStats:
        """The statistics of one analysis: F0 per frame (0 = unvoiced) and envelope (frames, bins)."""
        voiced = f0 > 0
        log_sp = np.log(np.maximum(sp, 1e-16))
        return cls(
            f0_hist=_f0_histogram(f0),
            frames=len(f0),
            log_sp_voiced=log_sp[voiced].sum(axis=0),
            log_sp_all=log_sp.sum(axis=0),
        )

    @classmethod
    def of_samples(cls, y: np.ndarray, sr: int, f0: np.ndarray) -> VoiceStats:
        """The statistics the PSOLA engine uses: F0 per frame and the long-term power spectrum of ``y``."""
        power, frames = long_term_power(y, sr, f0)
        return cls(f0_hist=_f0_histogram(f0), frames=len(f0), power=power, power_frames=frames)

    def __add__(self, other: VoiceStats) -> VoiceStats:
        return VoiceStats(
            self.f0_hist + other.f0_hist,
            self.frames + other.frames,
            self.log_sp_voiced + other.log_sp_voiced,
            self.log_sp_all + other.log_sp_all,
            self.power + other.power,
            self.power_frames + other.power_frames,
        )

    @property
    def voiced(self) -> int:
        return int(np.sum(self.f0_hist))

    @property
    def median_semitones(self) -> float:
        """Median F0 of the voiced frames, in semitones re 1 Hz."""
        cumulative = np.cumsum(self.f0_hist)
        return float(_F0_EDGES[int(np.searchsorted(cumulative, 0.5 * cumulative[-1]))] + F0_BIN / 2)

    @property
    def spread_semitones(self) -> float:
        """Median absolute deviation of F0 in semitones, scaled to a standard deviation (x 1.4826)."""
        hist = np.asarray(self.f0_hist)
        centres = _F0_EDGES[:-1] + F0_BIN / 2
        deviation = np.abs(centres - self.median_semitones)
        order = np.argsort(deviation, kind="stable")
        cumulative = np.cumsum(hist[order])
        return 1.4826 * float(deviation[order][int(np.searchsorted(cumulative, 0.5 * cumulative[-1]))])

    @property
    def log_envelope(self) -> np.ndarray:
        """Mean log envelope over voiced frames (over all frames when none is voiced)."""
        if self.voiced:
            return np.asarray(self.log_sp_voiced) / self.voiced
        return np.asarray(self.log_sp_all) / max(self.frames, 1)


def normalise_voice(
    features: world.WorldFeatures,
    *,
    f0_mean: float,
    f0_spread: float,
    strength: float,
    tilt: float,
    ratio: float,
    scale_norm: float = 0.0,
    stats: VoiceStats | None = None,
) -> None:
    """Map the voice in WORLD `features` (edited in place) to a pseudo-voice.

    Parameters
    ----------
    features : WorldFeatures
        One channel's analysis.
    f0_mean : float
        Target median F0 in Hz.
    f0_spread : float
        Target spread of F0 in semitones (as `VoiceStats.spread_semitones` measures it).
    strength : float
        0 keeps the speaker's long-term envelope, 1 replaces it entirely by the target curve.
    tilt : float
        Target spectral slope above 500 Hz in dB per octave (negative falls).
    ratio : float
        Formant scaling applied after normalisation; >1 raises formants.
    scale_norm : float
        How much of the speaker's own formant scale, estimated from their mean F0, is divided
        out of `ratio` (0: none, 1: all of it).
    stats : VoiceStats, optional
        The input voice's statistics; by default measured on `features`.
    """
    if stats is None:
        stats = VoiceStats.of(features.f0, features.sp)
    voiced = features.f0 > 0
    if stats.voiced >= 2 and voiced.any():
        ratio = _own_scale_removed(ratio, stats, scale_norm)
        features.f0[voiced] = _mapped_f0(features.f0[voiced], stats, f0_mean, f0_spread)
    measured = _smooth_octaves(stats.log_envelope, features.freqs)
    curve = _target_curve(features.freqs, tilt)
    # Keep the overall level: only the shape of the long-term envelope is replaced.
    correction = strength * (curve - curve.mean() - (measured - measured.mean()))
    features.sp = np.exp(np.log(np.maximum(features.sp, 1e-16)) + correction)
    if ratio != 1.0:
        features.sp = envelope.warp_spectra(features.sp, features.freqs, envelope.linear(ratio))


def normalise_plan(
    plan: PsolaPlan,
    *,
    f0_mean: float,
    f0_spread: float,
    strength: float,
    tilt: float,
    ratio: float,
    scale_norm: float = 0.0,
    stats: VoiceStats | None = None,
) -> None:
    """Map the voice of a PSOLA `plan` (edited in place) to a pseudo-voice; parameters as `normalise_voice`.

    The same F0 mapping, applied as a ratio per frame of the PSOLA pass. The long-term envelope
    becomes a fixed equaliser: the speaker's long-term average spectrum (`long_term_power`,
    smoothed over 1/6 octave) is divided out and the target curve put in, within
    `EQ_BAND_HZ`. Unlike WORLD, the short-time envelope and the voice source are not re-made.
    """
    f0 = plan.contour()
    if stats is None:
        stats = VoiceStats.of_samples(plan.y, plan.sr, f0)
    if stats.voiced >= 2 and np.any(f0 > 0):
        ratio = _own_scale_removed(ratio, stats, scale_norm)
        contour = continuous(f0)
        plan.factor = plan.factor * _mapped_f0(contour, stats, f0_mean, f0_spread) / contour
    plan.ratio *= ratio
    if strength > 0 and stats.power_frames:
        plan.eq = _equaliser(stats, plan.sr, tilt, strength)


def _own_scale_removed(ratio: float, stats: VoiceStats, scale_norm: float) -> float:
    """``ratio`` divided by `scale_norm` times the formant scale the speaker's median F0 implies."""
    return ratio / (2.0 ** (stats.median_semitones / 12) / REF_F0) ** (FORMANT_PER_F0 * scale_norm)


def _mapped_f0(f0: np.ndarray, stats: VoiceStats, f0_mean: float, f0_spread: float) -> np.ndarray:
    """Voiced F0 values moved from the speaker's median and spread to the target's, in semitones."""
    spread = max(stats.spread_semitones, F0_BIN)
    semitones = 12 * np.log2(f0_mean) + (12 * np.log2(f0) - stats.median_semitones) * (f0_spread / spread)
    return 2.0 ** (semitones / 12)


#: Long-term spectrum of the PSOLA engine: frames of about 64 ms (a power of two in samples).
LTAS_SECONDS = 0.064
#: The band the PSOLA engine's equaliser corrects; outside it the gain is held at the edge value.
EQ_BAND_HZ = (60.0, 7600.0)
#: Largest boost or cut of the equaliser, in dB: a speaker's long-term spectrum is 6-8 dB RMS
#: from another's, so this only bounds bins the input hardly has (a band-limited recording).
EQ_LIMIT_DB = 20.0


def _ltas_size(sr: int) -> int:
    return 1 << int(round(np.log2(LTAS_SECONDS * sr)))


def long_term_power(y: np.ndarray, sr: int, f0: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """Sum of the Hann-windowed power spectra of consecutive `LTAS_SECONDS` frames, and their number.

    With ``f0`` (every 10 ms, 0 = unvoiced) only the frames mostly voiced count, as the WORLD
    engine's mean envelope counts voiced frames only: fricatives and pauses differ by recording.
    """
    from scipy import fft

    size = _ltas_size(sr)
    frames = len(y) // size
    if frames == 0:
        if not len(y):
            return np.zeros(size // 2 + 1), 0
        x = np.zeros((1, size), dtype=np.float32)
        x[0, : len(y)] = y
    else:
        x = np.asarray(y[: frames * size], dtype=np.float32).reshape(len(y) // size, size)
    if f0 is not None and frames:
        # The share of each frame's 10-ms F0 frames that are voiced.
        hop = sr / 100.0
        starts = (np.arange(frames) * size / hop).astype(int)
        ends = np.maximum(((np.arange(frames) + 1) * size / hop).astype(int), starts + 1)
        cumulative = np.concatenate([[0], np.cumsum(f0 > 0)])
        share = (cumulative[np.minimum(ends, len(f0))] - cumulative[np.minimum(starts, len(f0))]) / (ends - starts)
        if np.any(share > 0.5):
            x = x[share > 0.5]
    spectra = fft.rfft(x * np.hanning(size).astype(np.float32), axis=1)
    power = (spectra.real**2 + spectra.imag**2).sum(axis=0, dtype=np.float64)
    return power, len(x)


def _equaliser(stats: VoiceStats, sr: int, tilt: float, strength: float) -> tuple[np.ndarray, np.ndarray]:
    """Frequencies and log-amplitude gains that take the measured long-term spectrum to the target curve."""
    power = np.asarray(stats.power) / stats.power_frames
    freqs = np.linspace(0.0, sr / 2, power.size)
    measured = _smooth_octaves(0.5 * np.log(np.maximum(power, 1e-20)), freqs)
    band = (freqs >= EQ_BAND_HZ[0]) & (freqs <= min(EQ_BAND_HZ[1], 0.95 * sr / 2))
    curve = _target_curve(freqs, tilt)
    gain = strength * (curve - measured)
    limit = EQ_LIMIT_DB * np.log(10.0) / 20.0
    gain = np.clip(gain - np.median(gain[band]), -limit, limit)
    inside = np.flatnonzero(band)
    gain[: inside[0]] = gain[inside[0]]
    gain[inside[-1] + 1 :] = gain[inside[-1]]
    # Keep the overall power: only the shape of the long-term spectrum is replaced.
    gain -= 0.5 * np.log(np.sum(power * np.exp(2 * gain)) / max(np.sum(power), 1e-30))
    return freqs, gain


def _target_curve(freqs: np.ndarray, tilt: float) -> np.ndarray:
    octaves = np.log2(np.maximum(freqs, TILT_CORNER_HZ) / TILT_CORNER_HZ)
    return tilt * octaves * np.log(10.0) / 20.0


def _smooth_octaves(log_curve: np.ndarray, freqs: np.ndarray) -> np.ndarray:
    """Average `log_curve` over a band of `SMOOTH_OCTAVES` around each bin (wider at high frequency)."""
    cumulative = np.concatenate([[0.0], np.cumsum(log_curve)])
    half = 2.0 ** (SMOOTH_OCTAVES / 2.0)
    step = freqs[1] - freqs[0]
    lo = np.clip(np.floor(freqs / half / step).astype(int), 0, len(freqs) - 1)
    hi = np.clip(np.ceil(np.maximum(freqs * half, step) / step).astype(int) + 1, lo + 1, len(freqs))
    return (cumulative[hi] - cumulative[lo]) / (hi - lo)


#: The pseudo-voices the key chooses from: (median F0 in Hz, formant ratio). Low voices
#: get low formants and high voices high ones, so each is a plausible speaker; none sits near
#: the middle, so every input voice is moved well away from where it was. On 20 corpus
#: speakers this bimodal choice reached 42 % / 38 % / 26 % EER (ignorant / lazy / trained)
#: against 36 % / 35 % / 26 % for F0 and ratio drawn independently from the whole range. On the
#: whole corpus (60 speakers): 40 % / 42 % / 23 %; with ``scale_norm = 1`` 42 % / 43 % / 24 %.
BANK: tuple[tuple[float, float], ...] = (
    (95.0, 0.80),
    (105.0, 0.83),
    (115.0, 0.86),
    (120.0, 0.88),
    (190.0, 1.14),
    (205.0, 1.18),
    (220.0, 1.21),
    (240.0, 1.25),
)


METHODS = ("world", "psola")


@register("pseudovoice")
@dataclass(frozen=True, repr=False)
class PseudoVoice(Transform):
    """Normalise pitch and long-term envelope, then take on a pseudo-voice from `BANK` drawn by the key.

    ``voice`` indexes `BANK`; ``f0_spread``, ``tilt``, ``strength`` and ``scale_norm`` as in
    `normalise_voice` (``strong`` sets ``scale_norm = 1``: it raised every EER by 1-2 points at
    the same WER). ``method = "world"`` re-makes the voice with the WORLD vocoder (about 10x real
    time on one core); ``"psola"`` maps F0 with PSOLA, equalises the long-term spectrum and scales
    formants by resampling, in the PSOLA pass of the chain (over 100x real time).
    """

    voice: Param = tuple(range(len(BANK)))
    f0_spread: Param = (1.5, 2.5)
    strength: Param = 1.0
    tilt: Param = (-9.0, -5.0)
    scale_norm: Param = 0.0
    method: Param = "world"

    LIMITS = {
        "voice": Limit(values=tuple(range(len(BANK)))),
        "f0_spread": Limit(0.0, 8.0),
        "strength": Limit(0.0, 1.0),
        "tilt": Limit(-20.0, 6.0),
        "scale_norm": Limit(0.0, 2.0),
        "method": Limit(values=METHODS),
    }

    def __post_init__(self) -> None:
        # A bare tuple of indices means "any of these voices", not a numeric [min, max] range.
        if isinstance(self.voice, tuple):
            object.__setattr__(self, "voice", {"choice": list(self.voice)})
        super().__post_init__()

    FIXED = ("method",)
    changes_voice = True
    measures = True

    def domain(self) -> type[Domain]:
        return PsolaDomain if self.method.value == "psola" else world.WorldDomain

    def measure(self, state: world.WorldFeatures | PsolaPlan, stats: VoiceStats | None, **drawn: Any) -> VoiceStats:
        """Add the `VoiceStats` of one block's own span, as the step's engine analyses it."""
        if isinstance(state, PsolaPlan):
            f0 = state.contour()
            block = state.block
            frames = world.own_frames(block, 10.0, len(f0))
            part = VoiceStats.of_samples(state.y[block.owned], state.sr, f0[frames])
        else:
            part = VoiceStats.of(state.f0[state.own], state.sp[state.own])
        return part if stats is None else stats + part

    def modify(self, state: world.WorldFeatures | PsolaPlan, stats: VoiceStats, *, voice: int, f0_spread: float,
               strength: float, tilt: float, scale_norm: float, method: str) -> None:
        """Edit `state` in place with the measured `stats` of the whole input, as in `normalise_voice`."""
        f0_mean, ratio = BANK[voice]
        normalise = normalise_plan if isinstance(state, PsolaPlan) else normalise_voice
        normalise(state, f0_mean=f0_mean, f0_spread=f0_spread, strength=strength, tilt=tilt, ratio=ratio,
                  scale_norm=scale_norm, stats=stats)
