"""VTLN: bilinear (all-pass) frequency warping of the spectral envelope."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from deid.transforms import envelope, world
from deid.transforms.base import Block, Domain, Limit, Param, Range, Transform, register

METHODS = ("stft", "world")


def warp_vtln(y: np.ndarray, *, sr: int, alpha: float, method: str = "stft") -> np.ndarray:
    """Warp the spectral envelope of ``y`` with the bilinear warp factor ``alpha``.

    The :class:`Vtln` step alone on ``y``.

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
    return Vtln(alpha=alpha, method=method).apply(y, sr, alpha=alpha, method=method)


@register("vtln")
@dataclass(frozen=True, repr=False)
class Vtln(Transform):
    """Bilinear frequency warping with factor ``alpha`` (also known as c)."""

    alpha: Param = Range(0.05, 0.15, sign=True)
    method: Param = "stft"

    LIMITS = {"alpha": Limit(-0.4, 0.4, signed=True), "method": Limit(values=METHODS)}
    FIXED = ("method",)
    changes_voice = True
    #: With ``stft``: frames of 32 ms, padded by one frame on each side.
    context = 0.1

    def domain(self) -> type[Domain] | None:
        return world.WorldDomain if self.method.value == "world" else None

    def process(self, block: Block, stats: Any, *, alpha: float, method: str) -> np.ndarray:
        return envelope.warp_envelope(block.samples, sr=block.sr, mapping=envelope.bilinear(alpha))

    def modify(self, state: world.WorldFeatures, stats: Any, *, alpha: float, method: str) -> None:
        state.sp = envelope.warp_spectra(state.sp, state.freqs, envelope.bilinear(alpha))
