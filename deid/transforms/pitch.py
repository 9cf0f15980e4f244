"""Pitch: move F0 by a number of semitones, keeping formants and duration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from deid.transforms import world
from deid.transforms.base import Domain, Limit, Param, Transform, register
from deid.transforms.psola import PsolaDomain, PsolaPlan, psola

METHODS = ("psola", "world")


def shift_pitch(y: np.ndarray, *, sr: int, semitones: float, method: str = "psola") -> np.ndarray:
    """Change the F0 of ``y`` by ``semitones``, keeping its spectral envelope and duration.

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
    factor = 2.0 ** (semitones / 12.0)
    if method == "world":
        features = world.analyze(y, sr=sr)
        features.f0 = features.f0 * factor
        return world.synthesize(features)
    return psola(y, sr=sr, factor=factor)


@register("pitch")
@dataclass(frozen=True, repr=False)
class Pitch(Transform):
    """Shift F0 by ``semitones`` (fixed, a range, or a range with random sign)."""

    semitones: Param = (-4.0, 4.0)
    method: Param = "psola"

    LIMITS = {"semitones": Limit(-12.0, 12.0, signed=True), "method": Limit(values=METHODS)}

    def domain(self, drawn: dict[str, Any]) -> type[Domain]:
        return world.WorldDomain if drawn["method"] == "world" else PsolaDomain

    def modify(self, state: world.WorldFeatures | PsolaPlan, *, semitones: float, method: str) -> None:
        factor = 2.0 ** (semitones / 12.0)
        if isinstance(state, PsolaPlan):
            state.factor *= factor
        else:
            state.f0 = state.f0 * factor
