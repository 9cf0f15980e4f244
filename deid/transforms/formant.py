"""Formant: scale the spectral envelope along frequency, keeping F0 and duration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from deid.transforms import envelope, world
from deid.transforms.base import Block, Domain, Limit, Param, Transform, register
from deid.transforms.psola import PsolaDomain, PsolaPlan

METHODS = ("psola", "stft", "world")


def shift_formants(y: np.ndarray, *, sr: int, ratio: float, method: str = "psola") -> np.ndarray:
    """Scale the spectral envelope along frequency by ``ratio``, keeping F0 and duration.

    The :class:`Formant` step alone on ``y``.

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
    return Formant(ratio=ratio, method=method).apply(y, sr, ratio=ratio, method=method)


@register("formant")
@dataclass(frozen=True, repr=False)
class Formant(Transform):
    """Scale formant frequencies by ``ratio``."""

    ratio: Param = (0.85, 1.15)
    method: Param = "psola"

    LIMITS = {"ratio": Limit(0.5, 2.0), "method": Limit(values=METHODS)}
    FIXED = ("method",)
    changes_voice = True
    #: With ``stft``: frames of 32 ms, padded by one frame on each side.
    context = 0.1

    def domain(self) -> type[Domain] | None:
        return {"psola": PsolaDomain, "world": world.WorldDomain}.get(self.method.value)

    def process(self, block: Block, stats: Any, *, ratio: float, method: str) -> np.ndarray:
        return envelope.warp_envelope(block.samples, sr=block.sr, mapping=envelope.linear(ratio))

    def modify(self, state: world.WorldFeatures | PsolaPlan, stats: Any, *, ratio: float, method: str) -> None:
        if isinstance(state, PsolaPlan):
            state.ratio *= ratio
        else:
            state.sp = envelope.warp_spectra(state.sp, state.freqs, envelope.linear(ratio))
