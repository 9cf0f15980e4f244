"""Loudness: normalise integrated loudness (ITU-R BS.1770, EBU R128) to a target in LUFS.

One meter, libebur128 (pyebur128), which reads a signal as a stream: a long file measured block
after block gets the loudness of the whole file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from deid.transforms.base import Block, Limit, Param, Transform, register


class LoudnessMeter:
    """Integrated loudness of one channel fed in consecutive pieces."""

    def __init__(self, sr: int) -> None:
        import pyebur128

        self._state = pyebur128.R128State(1, sr, pyebur128.MeasurementMode.MODE_I)

    def add(self, y: np.ndarray) -> LoudnessMeter:
        """Feed the next samples; returns self."""
        if len(y):
            self._state.add_frames(np.ascontiguousarray(y, dtype=np.float32), len(y))
        return self

    @property
    def lufs(self) -> float:
        """Integrated loudness so far; -inf when nothing passed the gates (silence, or under 400 ms)."""
        import pyebur128

        return float(pyebur128.get_loudness_global(self._state))


def normalize_loudness(y: np.ndarray, *, sr: int, target_lufs: float, loudness: float | None = None) -> np.ndarray:
    """Scale ``y`` so that its integrated loudness is ``target_lufs``.

    ``loudness`` is that of the whole signal ``y`` is part of; by default it is measured on ``y``.
    A signal too quiet to measure (below the -70 LUFS absolute gate) or shorter than one 400-ms
    gating block is returned unchanged.
    """
    if loudness is None:
        loudness = LoudnessMeter(sr).add(y).lufs
    if not np.isfinite(loudness):
        return y
    return (y * np.float32(10.0 ** ((target_lufs - loudness) / 20.0))).astype(np.float32)


@register("loudness")
@dataclass(frozen=True, repr=False)
class Loudness(Transform):
    """Normalise to ``target_lufs``. Loudness says something about a speaker and their room."""

    target_lufs: Param = -23.0

    LIMITS = {"target_lufs": Limit(-60.0, -5.0)}
    measures = True

    def measure(self, block: Block, stats: LoudnessMeter | None, **drawn: Any) -> LoudnessMeter:
        # Blocks arrive in order, so one meter fed their own spans measures the whole input.
        return (stats or LoudnessMeter(block.sr)).add(block.samples[block.owned])

    def process(self, block: Block, stats: LoudnessMeter, *, target_lufs: float) -> np.ndarray:
        return normalize_loudness(block.samples, sr=block.sr, target_lufs=target_lufs, loudness=stats.lufs)
