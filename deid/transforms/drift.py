"""Drift: a voice that moves slowly within a file, as a function of absolute time.

A speaker-verification model averages a file (or a 1.6-s window) into one embedding. After
normalisation onto a pseudo-voice, what is left of the speaker is a stable residue: the short-time
envelope shape, formant positions and spectral tilt that a long-term correction cannot reach. Drift
moves those, slowly and differently everywhere in the file, so that no single voice remains to be
averaged:

- the spectral envelope is scaled along frequency by a ratio that wanders within ``±warp``;
- a smooth curve of ``bands`` raised-cosine bands on a log-frequency axis, each wandering within
  ``±shape_db``, is added to the envelope;
- optionally, each frame's spectral tilt is pulled towards ``tilt`` dB/octave (``tilt_norm``, 0..1),
  which removes the per-frame voice quality (breathy / pressed) that the long-term equaliser leaves.

Every moving value is a smooth random function of *absolute* time: anchors every ``period``
seconds, each drawn from its own generator seeded by ``(seed, anchor index)``, joined by raised
cosines. A long file processed in blocks therefore moves exactly as when processed whole, as long as
each block is given its absolute first sample ``start``. The harmonics (F0) and timing are kept: it
re-weights the short-time spectrum by the warped, cepstrally smoothed envelope, as
`deid.transforms.envelope.warp_envelope` does, and keeps each frame's power.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from deid.transforms.base import Block, Limit, Param, Transform, register
from deid.transforms.envelope import Frames, reweight

#: Band edges of the shape curve (Hz), on a log axis.
SHAPE_BAND_HZ = (150.0, 7000.0)
#: Per-frame tilt is measured on the envelope in this band, and its correction is bounded.
TILT_BAND_HZ = (200.0, 5000.0)
TILT_LIMIT_DB = 12.0


def trajectory(seed: int, times: np.ndarray, *, period: float, dims: int) -> np.ndarray:
    """Smooth random values in [-1, 1] at absolute `times` (seconds): shape (len(times), dims).

    The value at anchor k (time ``k * period``) comes from ``np.random.default_rng([seed, k])``
    alone, so any stretch of time is computed the same whatever else is computed with it.
    """
    k0 = int(np.floor(times.min() / period)) if times.size else 0
    k1 = int(np.floor(times.max() / period)) + 1 if times.size else 1
    anchors = np.stack([np.random.default_rng([seed, k]).uniform(-1.0, 1.0, dims) for k in range(k0, k1 + 1)])
    pos = times / period - k0
    i = np.clip(np.floor(pos).astype(int), 0, len(anchors) - 2)
    w = 0.5 - 0.5 * np.cos(np.pi * (pos - i))
    return anchors[i] * (1.0 - w[:, None]) + anchors[i + 1] * w[:, None]


def _shape_bands(freqs: np.ndarray, bands: int) -> np.ndarray:
    """Raised-cosine bands on log frequency, shape (bands, bins), summing to 1 inside the band."""
    lo, hi = np.log2(SHAPE_BAND_HZ[0]), np.log2(SHAPE_BAND_HZ[1])
    centres = np.linspace(lo, hi, bands)
    width = (hi - lo) / max(bands - 1, 1)
    x = np.log2(np.maximum(freqs, 1.0))
    d = np.clip(np.abs(x[None, :] - centres[:, None]) / width, 0.0, 1.0)
    return 0.5 + 0.5 * np.cos(np.pi * d)


def drift(
    y: np.ndarray,
    *,
    sr: int,
    seed: int,
    start: int = 0,
    warp: float = 0.06,
    shape_db: float = 3.0,
    bands: int = 8,
    tilt_norm: float = 0.0,
    tilt: float = -6.0,
    period: float = 1.0,
) -> np.ndarray:
    """Move the spectral envelope of `y` slowly over time, keeping F0, timing and each frame's power.

    Parameters
    ----------
    y : np.ndarray, shape (n,)
        float32 audio.
    sr : int
        Sample rate in Hz.
    seed : int
        Seed of every moving value (drawn from the file's key).
    start : int
        Absolute index of ``y[0]`` in the whole recording: the moving values are tied to it.
    warp : float
        Largest log formant ratio: the envelope is scaled by ``exp(±warp)`` at most.
    shape_db : float
        Largest boost or cut of each band of the shape curve, in dB.
    bands : int
        Bands of the shape curve between 150 and 7000 Hz.
    tilt_norm : float
        Share of each frame's spectral tilt deviation from `tilt` that is removed (0 keeps it).
    tilt : float
        Target per-frame tilt in dB per octave.
    period : float
        Seconds between independent anchors of the moving values.
    """
    def log_gain(frames: Frames) -> np.ndarray:
        env, freqs = frames.env, frames.freqs
        moves = trajectory(seed, np.maximum(frames.times, 0.0), period=period, dims=1 + bands)
        gain = np.zeros_like(env)
        if warp > 0:
            ratio = np.exp(warp * moves[:, 0])
            pos = np.clip(freqs[None, :] / ratio[:, None] / freqs[1], 0.0, len(freqs) - 1.0)
            idx = np.minimum(pos.astype(np.int64), len(freqs) - 2)
            w = pos - idx
            warped = np.take_along_axis(env, idx, axis=1) * (1.0 - w) + np.take_along_axis(env, idx + 1, axis=1) * w
            gain += warped - env
        if shape_db > 0:
            gain += (shape_db * np.log(10.0) / 20.0) * (moves[:, 1:] @ _shape_bands(freqs, bands))
        if tilt_norm > 0:
            band = (freqs >= TILT_BAND_HZ[0]) & (freqs <= min(TILT_BAND_HZ[1], 0.45 * sr))
            octaves = np.log2(np.maximum(freqs, 1.0) / 1000.0)
            o = octaves[band] - octaves[band].mean()
            slope = (env[:, band] - env[:, band].mean(axis=1, keepdims=True)) @ o / (o @ o)  # neper per octave
            target = tilt * np.log(10.0) / 20.0
            limit = TILT_LIMIT_DB * np.log(10.0) / 20.0
            gain += np.clip(tilt_norm * (target - slope)[:, None] * np.clip(octaves, -2.5, 2.5)[None, :], -limit, limit)
        # Keep each frame's power: the drift re-colours the voice, never the loudness contour.
        power = np.abs(frames.spec) ** 2
        kept = power.sum(axis=1, keepdims=True) / np.maximum((power * np.exp(2 * gain)).sum(axis=1, keepdims=True), 1e-20)
        return gain + 0.5 * np.log(np.maximum(kept, 1e-20))

    return reweight(y, sr=sr, log_gain=log_gain, start=start)


@register("drift")
@dataclass(frozen=True, repr=False)
class Drift(Transform):
    """A slowly moving envelope: formant ratio, spectral shape and (optionally) per-frame tilt over absolute time.

    Parameters as in `drift`; the seed is drawn from the file's key.
    """

    warp: Param = 0.06
    shape_db: Param = 3.0
    bands: Param = 8
    tilt_norm: Param = 0.0
    tilt: Param = (-9.0, -5.0)
    period: Param = 1.0

    LIMITS = {
        "warp": Limit(0.0, 0.3),
        "shape_db": Limit(0.0, 12.0),
        "bands": Limit(2, 24),
        "tilt_norm": Limit(0.0, 1.0),
        "tilt": Limit(-20.0, 6.0),
        "period": Limit(0.2, 10.0),
    }
    changes_voice = True
    #: Frames of 32 ms, padded by one frame on each side.
    context = 0.1

    def draw(self, rng: np.random.Generator) -> dict:
        return super().draw(rng) | {"seed": int(rng.integers(2**63 - 1))}

    def process(self, block: Block, stats: Any, **drawn: float) -> np.ndarray:
        # The moving values are tied to the absolute position of the block's first sample.
        return drift(block.samples, sr=block.sr, start=block.start, bands=int(drawn.pop("bands")), **drawn)
