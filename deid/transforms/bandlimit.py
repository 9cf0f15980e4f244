"""Bandlimit: a telephone-like pass band."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from deid.errors import DeidError
from deid.transforms.base import Block, Limit, Param, Transform, register


def bandlimit(y: np.ndarray, *, sr: int, low_hz: float, high_hz: float, order: int = 8) -> np.ndarray:
    """Band-pass ``y`` to ``[low_hz, high_hz]`` with a zero-phase Butterworth filter.

    Zero phase (forward-backward) keeps every sample aligned with the input. A band edge at or
    above Nyquist is dropped, so the same preset serves 8 kHz and 48 kHz files.
    """
    from scipy import signal

    nyq = sr / 2
    if low_hz >= min(high_hz, nyq):
        raise DeidError(f"bandlimit: low edge {low_hz:g} Hz is not below the high edge at {min(high_hz, nyq):g} Hz")
    if high_hz < nyq * 0.98:
        sos = signal.butter(order // 2, [low_hz, high_hz], btype="bandpass", fs=sr, output="sos")
    else:
        sos = signal.butter(order // 2, low_hz, btype="highpass", fs=sr, output="sos")
    return signal.sosfiltfilt(sos, y).astype(np.float32)


@register("bandlimit")
@dataclass(frozen=True, repr=False)
class Bandlimit(Transform):
    """Keep only the band ``[low_hz, high_hz]``."""

    low_hz: Param = 300.0
    high_hz: Param = 3400.0

    LIMITS = {"low_hz": Limit(20.0, 4000.0), "high_hz": Limit(1000.0, 24000.0)}
    #: The forward-backward filter rings for a few periods of the low edge (20 Hz at the lowest).
    context = 0.5

    def process(self, block: Block, stats: Any, *, low_hz: float, high_hz: float) -> np.ndarray:
        return bandlimit(block.samples, sr=block.sr, low_hz=low_hz, high_hz=high_hz)
