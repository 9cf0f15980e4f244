"""Formant: scale the spectral envelope along frequency, keeping F0 and duration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from deid.transforms import envelope, world
from deid.transforms.base import Domain, Limit, Param, Transform, register
from deid.transforms.psola import PsolaDomain, PsolaPlan, psola

METHODS = ("psola", "stft", "world")


def shift_formants(y: np.ndarray, *, sr: int, ratio: float, method: str = "psola") -> np.ndarray:
    """Scale the spectral envelope along frequency by ``ratio``, keeping F0 and duration.

    Parameters
    ----------
    y : np.ndarray, shape (n,)
        float32 audio.
    sr : int
        Sample rate in Hz.
    ratio : float
        >1 raises formants (a shorter vocal tract), <1 lowers them.
    method : {"psola", "stft", "world"}
        ``psola`` resamples by ``ratio`` and restores F0 and duration with PSOLA (fastest, and it
        shares its pass with a PSOLA pitch step); ``stft`` re-weights the short-time spectrum by
        the warped cepstral envelope; ``world`` warps WORLD's CheapTrick envelope.
    """
    if method == "psola":
        return psola(y, sr=sr, ratio=ratio)
    if method == "world":
        features = world.analyze(y, sr=sr)
        features.sp = envelope.warp_spectra(features.sp, features.freqs, envelope.linear(ratio))
        return world.synthesize(features)
    return envelope.warp_envelope(y, sr=sr, mapping=envelope.linear(ratio))


@register("formant")
@dataclass(frozen=True, repr=False)
class Formant(Transform):
    """Scale formant frequencies by ``ratio``."""

    ratio: Param = (0.85, 1.15)
    method: Param = "psola"

    LIMITS = {"ratio": Limit(0.5, 2.0), "method": Limit(values=METHODS)}

    def domain(self, drawn: dict[str, Any]) -> type[Domain] | None:
        return {"psola": PsolaDomain, "world": world.WorldDomain}.get(drawn["method"])

    def apply(self, y: np.ndarray, sr: int, *, ratio: float, method: str) -> np.ndarray:
        return shift_formants(y, sr=sr, ratio=ratio, method=method)

    def modify(self, state: world.WorldFeatures | PsolaPlan, *, ratio: float, method: str) -> None:
        if isinstance(state, PsolaPlan):
            state.ratio *= ratio
        else:
            state.sp = envelope.warp_spectra(state.sp, state.freqs, envelope.linear(ratio))
