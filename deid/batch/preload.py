"""Imported once by the local pool's fork server, before any worker is forked.

Imports the processing modules and runs the numba-compiled engines (PSOLA, WSOLA, the hum
notch) once on a short signal, so that their machine code is loaded from numba's cache in the
server. Every worker forked from it starts with that code in memory; otherwise each worker would
spend about half a second initialising LLVM and loading the cache on its first file.
"""

from __future__ import annotations

import numpy as np

import deid.api  # noqa: F401 - imported for the fork server
import deid.batch.work  # noqa: F401 - imported for the fork server
from deid.transforms import psola, world, wsola


def _warm() -> None:
    sr = 16000
    t = np.arange(sr // 2) / sr
    y = (0.1 * np.sin(2 * np.pi * 150.0 * t)).astype(np.float32)
    psola.psola(y, sr=sr, factor=1.2, ratio=1.1)
    wsola.wsola(y, len(y) + sr // 10, sr=sr)
    world.notch_hum(y, sr, 50.0)


try:
    _warm()
except Exception:  # noqa: BLE001 - warming only saves time; a worker compiles on its first file instead
    pass
