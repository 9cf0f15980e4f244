"""The public entry points: anonymize an array or one file (``deid.anonymize``, ``deid.anonymize_file``)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deid.audio import AudioInfo, output_format, read_audio, read_info, write_audio
from deid.errors import DeidError
from deid.keys import Key, resolve_key
from deid.pipeline import AppliedStep, Pipeline, Result
from deid.presets import DEFAULT, load_preset


#: Files longer than this many seconds are processed in blocks of about this length
#: (:mod:`deid.blocks`): with `standard` at 16 kHz a 30-s block keeps a worker near 270 MB;
#: memory grows by about 2.7 MB per second of block.
DEFAULT_BLOCK_SECONDS = 30.0


def anonymize(
    y: np.ndarray,
    sr: int,
    preset: str | Path | Pipeline = DEFAULT,
    *,
    key: Key | bytes | str | None = None,
    seed: int | None = None,
    scope: str | None = None,
    link: str = "file",
    report: bool = False,
) -> np.ndarray | tuple[np.ndarray, Result]:
    """Anonymize audio with a preset (name, path or :class:`Pipeline`).

    Parameters
    ----------
    y : np.ndarray, shape (n,) or (channels, n)
        Audio; floats in [-1, 1] or integers.
    sr : int
        Sample rate in Hz.
    preset : str, Path or Pipeline
        ``"standard"`` by default; see ``deid presets``.
    key, seed
        Secret key or non-secret seed (see :func:`deid.keys.resolve_key`).
    scope : str, optional
        What the drawn voice is tied to; by default the audio content. Equal scopes under one
        key give equal parameters (``"speaker:alice"`` links all of alice's clips).
    link : {"file", "speaker", "channel"}
        ``channel`` gives each channel its own voice.
    report : bool
        Also return the :class:`deid.pipeline.Result` with the drawn values of every step.

    Returns
    -------
    np.ndarray
        float32 audio of the input's shape (and the Result when ``report`` is true).
    """
    result = load_preset(preset).run(y, sr, key=key, seed=seed, scope=scope, link=link)
    return (result.audio, result) if report else result.audio


@dataclass
class FileResult:
    """What :func:`anonymize_file` did."""

    src: Path
    dst: Path
    input: AudioInfo
    format: str
    subtype: str
    applied: list[AppliedStep] = field(default_factory=list)
    gain: float = 1.0

    @property
    def scaled(self) -> bool:
        return self.gain < 1.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "src": str(self.src),
            "dst": str(self.dst),
            "seconds": self.input.seconds,
            "format": self.format,
            "subtype": self.subtype,
            "gain": self.gain,
            "applied": [a.as_dict() for a in self.applied],
        }


def file_scope(src: str | Path, *, link: str = "file", speaker: str | None = None) -> str:
    """The key scope of a file: its content hash, or its speaker with ``link="speaker"``."""
    if link == "speaker":
        if not speaker:
            raise DeidError("--link speaker needs a speaker for the file (a speaker map or its parent folder)", src)
        return f"speaker:{speaker}"
    digest = hashlib.sha256()
    with open(src, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return "file:" + digest.hexdigest()


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name the same file (including through links)."""
    if a.resolve() == b.resolve():
        return True
    try:
        return b.exists() and a.samefile(b)
    except OSError:
        return False


def anonymize_file(
    src: str | Path,
    dst: str | Path,
    preset: str | Path | Pipeline = DEFAULT,
    *,
    key: Key | bytes | str | None = None,
    seed: int | None = None,
    link: str = "file",
    speaker: str | None = None,
    format: str | None = None,
    block_seconds: float | None = DEFAULT_BLOCK_SECONDS,
) -> FileResult:
    """Anonymize one file into ``dst``, keeping rate, channels and sample format by default.

    Parameters
    ----------
    src, dst : str or Path
        Input and output. ``dst`` must not be ``src``; the input is never modified.
    preset, key, seed, link
        As for :func:`anonymize`.
    speaker : str, optional
        The speaker of the file, needed with ``link="speaker"``.
    format : str, optional
        Output format name (``wav``, ``flac``, ``aiff``, ``ogg``, ``opus``, ``mp3``); by default
        the input's (FLAC for M4A input).
    block_seconds : float, optional
        Files longer than this are processed in blocks of about this length, in bounded memory
        (:mod:`deid.blocks`); None processes every file whole.
    """
    src, dst = Path(src), Path(dst)
    if same_file(src, dst):
        raise DeidError("output is the input file; deid never overwrites an input", dst)
    pipeline = load_preset(preset)
    key = resolve_key(key, seed=seed)
    info = read_info(src)
    fmt, subtype = output_format(info, format)
    scope = file_scope(src, link=link, speaker=speaker)
    if block_seconds is not None and info.seconds > block_seconds and info.decoder == "libsndfile":
        from deid.blocks import anonymize_blocks

        if not dst.parent.is_dir():
            raise DeidError("output folder does not exist", dst.parent)
        applied, gain = anonymize_blocks(src, dst, pipeline, key=key, scope=scope, link=link, format=fmt,
                                         subtype=subtype, block_seconds=block_seconds)
        return FileResult(src, dst, info, fmt, subtype, applied, gain)
    audio = read_audio(src)
    try:
        result = pipeline.run(audio.samples, audio.sr, key=key, scope=scope, link=link)
    except DeidError as exc:
        raise DeidError(exc.reason, src) from None
    if not dst.parent.is_dir():
        raise DeidError("output folder does not exist", dst.parent)
    write_audio(dst, result.audio, audio.sr, format=fmt, subtype=subtype)
    return FileResult(src, dst, audio.info, fmt, subtype, result.applied, result.gain)
