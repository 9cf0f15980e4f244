"""deid: de-identify speech recordings before people listen to them.

Public API::

    import deid
    y_anon = deid.anonymize(y, sr, preset="standard", key=secret)   # or seed=1
    deid.anonymize_file("in.wav", "out.wav", preset="strong", key=secret)
    pipe = deid.load_preset("standard")       # a deid.Pipeline: list-like and callable
    y_anon = pipe(y, sr, seed=1)

Heavy modules load on first use, so ``import deid`` and ``deid --help`` stay fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from deid._version import __version__
from deid.errors import AudioError, DeidError, MetadataError, PresetError

if TYPE_CHECKING:
    from deid.api import FileResult, anonymize, anonymize_file
    from deid.engine import SpanEdit
    from deid.keys import Key
    from deid.pipeline import Pipeline, Result
    from deid.presets import list_presets, load_preset

_LAZY = {
    "anonymize": "deid.api",
    "anonymize_file": "deid.api",
    "FileResult": "deid.api",
    "Key": "deid.keys",
    "Pipeline": "deid.pipeline",
    "Result": "deid.pipeline",
    "SpanEdit": "deid.engine",
    "list_presets": "deid.presets",
    "load_preset": "deid.presets",
    "transcribe": "deid.redact",
    "find_pii": "deid.redact",
    "redact": "deid.redact",
}

__all__ = [
    "AudioError",
    "DeidError",
    "FileResult",
    "Key",
    "MetadataError",
    "Pipeline",
    "PresetError",
    "Result",
    "SpanEdit",
    "__version__",
    "anonymize",
    "anonymize_file",
    "find_pii",
    "list_presets",
    "load_preset",
    "redact",
    "transcribe",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'deid' has no attribute {name!r}")
