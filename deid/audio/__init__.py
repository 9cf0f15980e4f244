"""Sound in and out: one input function, one output sink, and the formats between them.

=========== ==========================================================================
source.py   :func:`open_input`: every input check, the header without decoding, the content
            hash while reading, blocks at any span (libsndfile; PyAV for M4A)
sink.py     :func:`open_output`: every output check before any work; encode, clean, verify and
            hash in one pass, atomic rename
formats.py  ``--format`` names, which format an output gets, extensions
=========== ==========================================================================

Audio travels as float32 of shape ``(channels, n)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deid.audio.formats import AUDIO_EXTENSIONS, EXTENSIONS, FORMATS, OPUS_RATES, AudioInfo, extension, output_format
from deid.audio.sink import FileSink, open_output, write_audio
from deid.audio.source import Source, open_input

__all__ = ["AUDIO_EXTENSIONS", "EXTENSIONS", "FORMATS", "OPUS_RATES", "Audio", "AudioInfo", "FileSink", "Source",
           "extension", "open_input", "open_output", "output_format", "read_audio", "read_info", "write_audio"]


@dataclass
class Audio:
    """Decoded audio: float32 samples of shape ``(channels, n)`` and what the file was."""

    samples: np.ndarray
    info: AudioInfo

    @property
    def sr(self) -> int:
        return self.info.samplerate


def read_info(path: str | Path) -> AudioInfo:
    """Container, sample format, rate, channels and length of an audio file, from its header.

    The file passes every check :func:`open_input` makes (the one input check of every command),
    and no sample is decoded.

    Raises
    ------
    AudioError
        With a one-line reason naming the file (see :func:`open_input`).
    """
    with open_input(path, hash=False) as source:
        return source.info


def read_audio(path: str | Path) -> Audio:
    """Decode a file to float32 ``(channels, n)``, with every input check.

    Raises
    ------
    AudioError
        With a one-line reason: empty, not audio, unsupported, truncated or corrupt.
    """
    with open_input(path, hash=False) as source:
        samples = source.load()
        return Audio(samples, source.info)
