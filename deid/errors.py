"""Errors a user can cause: each carries the file (when there is one) and a one-line reason."""

from __future__ import annotations

from pathlib import Path


class DeidError(Exception):
    """Base of every error deid reports to a user.

    The CLI prints ``str(error)`` as one line, without a traceback (unless ``--debug``).

    Parameters
    ----------
    reason : str
        What went wrong, in words a user can act on. Never contains a secret key.
    path : str or Path, optional
        The file the error is about.
    """

    def __init__(self, reason: str, path: str | Path | None = None) -> None:
        self.reason = reason
        self.path = None if path is None else str(path)
        super().__init__(f"{self.path}: {reason}" if self.path else reason)


class AudioError(DeidError):
    """An input that cannot be read as audio, or an output that cannot be written."""


class PresetError(DeidError):
    """A preset file that is missing, malformed or out of range."""


class MetadataError(DeidError):
    """A file that still carries metadata beyond the technical allow-list."""
