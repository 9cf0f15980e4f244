"""Loudness: normalise integrated loudness (ITU-R BS.1770) to a target in LUFS."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deid.transforms.base import Limit, Param, Transform, register

#: BS.1770 gates 400 ms blocks; shorter clips are measured as one block.
BLOCK_SECONDS = 0.4


def normalize_loudness(y: np.ndarray, *, sr: int, target_lufs: float) -> np.ndarray:
    """Scale ``y`` so that its integrated loudness is ``target_lufs`` (pyloudnorm's meter).

    A clip too quiet to measure (below the -70 LUFS absolute gate) is returned unchanged.
    """
    import pyloudnorm

    block = min(BLOCK_SECONDS, len(y) / sr)
    loudness = pyloudnorm.Meter(sr, block_size=block).integrated_loudness(y.astype(np.float64))
    if not np.isfinite(loudness):
        return y
    return (y * 10.0 ** ((target_lufs - loudness) / 20.0)).astype(np.float32)


@register("loudness")
@dataclass(frozen=True, repr=False)
class Loudness(Transform):
    """Normalise to ``target_lufs``. Loudness says something about a speaker and their room."""

    target_lufs: Param = -23.0

    LIMITS = {"target_lufs": Limit(-60.0, -5.0)}

    def apply(self, y: np.ndarray, sr: int, *, target_lufs: float) -> np.ndarray:
        return normalize_loudness(y, sr=sr, target_lufs=target_lufs)
