"""Checks that the optional evaluation stack (``deid-audio[eval]``) is installed."""

from __future__ import annotations

import importlib.util

from deid.errors import DeidError

INSTALL_HINT = 'install the evaluation extra: pip install torch==2.13.0 "deid-audio[eval]"'


class EvalDependencyError(DeidError):
    """A package of the ``[eval]`` extra is missing."""


def require(*modules: str) -> None:
    """Raise `EvalDependencyError` naming the first of `modules` that cannot be imported."""
    for name in modules:
        if importlib.util.find_spec(name) is None:
            raise EvalDependencyError(f"'deid evaluate' needs the Python package {name!r}; {INSTALL_HINT}")
