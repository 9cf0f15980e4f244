"""VTLN: bilinear (all-pass) frequency warping of the spectral envelope."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from deid.transforms import envelope, world
from deid.transforms.base import Domain, Limit, Param, Range, Transform, register

METHODS = ("stft", "world")


def warp_vtln(y: np.ndarray, *, sr: int, alpha: float, method: str = "stft") -> np.ndarray:
    """Warp the spectral envelope of ``y`` with the bilinear warp factor ``alpha``.

    Parameters
    ----------
    y : np.ndarray, shape (n,)
        float32 audio.
    sr : int
        Sample rate in Hz.
    alpha : float
        Warp factor c in (-0.4, 0.4): >0 moves formants up, <0 down. Defined on the 0-8 kHz band
        of a 16 kHz signal, so it has the same effect at every sample rate (see
        :func:`deid.transforms.envelope.bilinear`).
    method : {"stft", "world"}
        Engine, as for :func:`deid.transforms.formant.shift_formants`.
    """
    mapping = envelope.bilinear(alpha)
    if method == "world":
        features = world.analyze(y, sr=sr)
        features.sp = envelope.warp_spectra(features.sp, features.freqs, mapping)
        return world.synthesize(features)
    return envelope.warp_envelope(y, sr=sr, mapping=mapping)


@register("vtln")
@dataclass(frozen=True, repr=False)
class Vtln(Transform):
    """Bilinear frequency warping with factor ``alpha`` (also known as c)."""

    alpha: Param = Range(0.05, 0.15, sign=True)
    method: Param = "stft"

    LIMITS = {"alpha": Limit(-0.4, 0.4, signed=True), "method": Limit(values=METHODS)}

    def domain(self, drawn: dict[str, Any]) -> type[Domain] | None:
        return world.WorldDomain if drawn["method"] == "world" else None

    def apply(self, y: np.ndarray, sr: int, *, alpha: float, method: str) -> np.ndarray:
        return warp_vtln(y, sr=sr, alpha=alpha, method=method)

    def modify(self, state: world.WorldFeatures, *, alpha: float, method: str) -> None:
        state.sp = envelope.warp_spectra(state.sp, state.freqs, envelope.bilinear(alpha))
