"""Pitch: move F0 by a number of semitones, keeping formants and duration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from deid.transforms import world
from deid.transforms.base import Domain, Limit, Param, Transform, register
from deid.transforms.psola import PsolaDomain, PsolaPlan

METHODS = ("psola", "world")


def shift_pitch(y: np.ndarray, *, sr: int, semitones: float, method: str = "psola") -> np.ndarray:
    """Change the F0 of ``y`` by ``semitones``, keeping its spectral envelope and duration.

    The :class:`Pitch` step alone on ``y``.

    Parameters
    ----------
    y : np.ndarray, shape (n,)
        float32 audio.
    sr : int
        Sample rate in Hz.
    semitones : float
        F0 change; +12 doubles F0.
    method : {"psola", "world"}
        ``psola`` overlap-adds pitch-synchronous grains (fast, natural on clean speech);
        ``world`` resynthesises with the WORLD vocoder (robust on noisy input, slower).
    """
    return Pitch(semitones=semitones, method=method).apply(y, sr, semitones=semitones, method=method)


@register("pitch")
@dataclass(frozen=True, repr=False)
class Pitch(Transform):
    """Shift F0 by ``semitones`` (fixed, a range, or a range with random sign)."""

    semitones: Param = (-4.0, 4.0)
    method: Param = "psola"

    LIMITS = {"semitones": Limit(-12.0, 12.0, signed=True), "method": Limit(values=METHODS)}
    FIXED = ("method",)
    changes_voice = True

    def domain(self) -> type[Domain]:
        return world.WorldDomain if self.method.value == "world" else PsolaDomain

    def modify(self, state: world.WorldFeatures | PsolaPlan, stats: Any, *, semitones: float, method: str) -> None:
        factor = 2.0 ** (semitones / 12.0)
        if isinstance(state, PsolaPlan):
            state.factor *= factor
        else:
            state.f0 = state.f0 * factor
