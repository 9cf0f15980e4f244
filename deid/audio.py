"""Reading and writing sound: soundfile (libsndfile) for every format it knows, PyAV for M4A.

Audio travels as float32 of shape ``(channels, n)``. Writes are atomic: a temporary file beside
the target is written, cleaned and verified by :func:`deid.metadata.finalize_written`, flushed to
disk and only then renamed into place, so a crash never leaves a half-written file under the
final name.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from deid.errors import AudioError, DeidError

#: ``--format`` names: soundfile format and the subtype they force (None: chosen from the input).
FORMATS: dict[str, tuple[str, str | None]] = {
    "wav": ("WAV", None),
    "flac": ("FLAC", None),
    "aiff": ("AIFF", None),
    "ogg": ("OGG", "VORBIS"),
    "opus": ("OGG", "OPUS"),
    "mp3": ("MP3", "MPEG_LAYER_III"),
}
EXTENSIONS = {"WAV": ".wav", "FLAC": ".flac", "AIFF": ".aiff", "OGG": ".ogg", "MP3": ".mp3"}
#: Extensions of the files deid reads, for picking audio out of a folder.
AUDIO_EXTENSIONS = frozenset({".wav", ".wave", ".flac", ".aif", ".aiff", ".aifc", ".ogg", ".oga", ".opus",
                              ".mp3", ".m4a", ".mp4", ".aac"})
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
_PCM_FOR_FLAC = {"PCM_S8", "PCM_16", "PCM_24"}


@dataclass(frozen=True)
class AudioInfo:
    """What a file holds: container, sample format, rate, channels and length."""

    format: str
    subtype: str
    samplerate: int
    channels: int
    frames: int
    #: What decoded it: libsndfile, or FFmpeg (PyAV) for M4A and tagged FLAC.
    decoder: str = "libsndfile"

    @property
    def seconds(self) -> float:
        return self.frames / self.samplerate


@dataclass
class Audio:
    """Decoded audio: float32 samples of shape ``(channels, n)`` and what the file was."""

    samples: np.ndarray
    info: AudioInfo

    @property
    def sr(self) -> int:
        return self.info.samplerate


def _magic(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(16)


def read_info(path: str | Path) -> AudioInfo:
    """Container, sample format, rate, channels and length of an audio file, without decoding it."""
    import soundfile as sf

    path = Path(path)
    _check_readable(path)
    if _magic(path)[4:8] == b"ftyp":
        audio = read_audio(path)
        return audio.info
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError):
        # Containers libsndfile refuses but FFmpeg reads (FLAC behind ID3v2 tags) are decoded.
        return read_audio(path).info
    return AudioInfo(info.format, info.subtype, info.samplerate, info.channels, info.frames)


def _check_readable(path: Path) -> None:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise AudioError("no such file", path) from None
    except OSError as exc:
        raise AudioError(f"cannot read: {exc.strerror}", path) from None
    if path.is_dir():
        raise AudioError("is a folder, not an audio file", path)
    if size == 0:
        raise AudioError("empty file (0 bytes)", path)


def read_audio(path: str | Path) -> Audio:
    """Decode a file to float32 ``(channels, n)``.

    Raises
    ------
    AudioError
        With a one-line reason: empty, not audio, unsupported, truncated or corrupt.
    """
    import soundfile as sf

    path = Path(path)
    _check_readable(path)
    if _magic(path)[4:8] == b"ftyp":
        from deid.metadata import read_m4a

        samples, sr = read_m4a(path)
        info = AudioInfo("MP4", "AAC", sr, samples.shape[0], samples.shape[1], decoder="ffmpeg")
    else:
        try:
            with sf.SoundFile(str(path)) as f:
                info = AudioInfo(f.format, f.subtype, f.samplerate, f.channels, f.frames)
                data = f.read(dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as exc:
            fallback = _read_via_strip(path)
            if fallback is None:
                raise AudioError(_decode_reason(path, exc), path) from None
            samples, info = fallback
        else:
            samples = np.ascontiguousarray(data.T)
            _check_complete(path, info, samples.shape[1])
    if samples.shape[1] == 0:
        raise AudioError("holds no audio samples", path)
    return Audio(samples, info)


def _read_via_strip(path: Path) -> tuple[np.ndarray, AudioInfo] | None:
    """Decode a file libsndfile refuses because of its tags, through a stripped temporary copy.

    Taggers put ID3v2 before FLAC's ``fLaC`` marker and append ID3v1/APE tags, which libsndfile
    (and FFmpeg) refuse; the lossless strip removes exactly those. Returns None when the file is
    not a container deid knows.
    """
    import soundfile as sf

    from deid.metadata import sniff, strip_file

    with open(path, "rb") as f:
        head = f.read(1 << 16)
    try:
        sniff(head)
    except DeidError:
        return None
    with tempfile.TemporaryDirectory(prefix=".deid-read-") as folder:
        clean = Path(folder) / path.name
        try:
            strip_file(path, clean)
            with sf.SoundFile(str(clean)) as f:
                info = AudioInfo(f.format, f.subtype, f.samplerate, f.channels, f.frames, decoder="stripped copy")
                data = f.read(dtype="float32", always_2d=True)
        except (DeidError, sf.LibsndfileError, RuntimeError):
            return None
    return np.ascontiguousarray(data.T), info


def _decode_reason(path: Path, exc: Exception) -> str:
    text = str(exc).split("\n")[0]
    lowered = text.lower()
    if "unknown format" in lowered or "format not recognised" in lowered or "not a regular file" in lowered:
        return "not a recognised audio file (unsupported format or corrupt header)"
    if "lost sync" in text or "truncated" in text.lower():
        return "corrupt or truncated audio data"
    return f"cannot decode: {text.removeprefix('Error : ').strip()}"


def _check_complete(path: Path, info: AudioInfo, decoded: int) -> None:
    """Refuse files that end before their header says they do (an interrupted copy or recording)."""
    if info.format in ("WAV", "WAVEX", "AIFF"):
        from deid.metadata import aiff, riff

        with open(path, "rb") as f:
            head = f.read()
        chunks = (riff._layout(head) if info.format != "AIFF" else aiff._layout(head))[0]
        audio_id = b"SSND" if info.format == "AIFF" else b"data"
        for chunk in chunks:
            # 0 and 0xFFFFFFFF are what streaming writers leave when they cannot seek back.
            if chunk.cid == audio_id and chunk.declared not in (0, 0xFFFFFFFF) and chunk.size < chunk.declared:
                raise AudioError(
                    f"truncated: the header declares {chunk.declared} bytes of audio, the file holds {chunk.size}", path
                )
    elif info.frames and decoded < 0.99 * info.frames:
        raise AudioError(f"truncated: the header declares {info.frames} frames, only {decoded} could be decoded", path)


def output_format(info: AudioInfo, name: str | None = None) -> tuple[str, str]:
    """The (format, subtype) to write: the input's own, or the ``--format`` ``name``.

    M4A input, which soundfile cannot write, becomes 16-bit FLAC unless another format is asked.
    """
    import soundfile as sf

    if name is None:
        if info.format == "MP4":
            return "FLAC", "PCM_16"
        return info.format, info.subtype
    key = name.lower()
    if key not in FORMATS:
        raise DeidError(f"unknown output format {name!r}; use one of {', '.join(FORMATS)}")
    fmt, subtype = FORMATS[key]
    if subtype is None:
        if sf.check_format(fmt, info.subtype) and (fmt != "FLAC" or info.subtype in _PCM_FOR_FLAC):
            subtype = info.subtype
        elif fmt == "FLAC":
            subtype = "PCM_24" if info.subtype in ("PCM_32", "FLOAT", "DOUBLE") else "PCM_16"
        else:
            subtype = "FLOAT" if info.subtype in ("FLOAT", "DOUBLE") else "PCM_16"
    return fmt, subtype


def extension(fmt: str, subtype: str) -> str:
    """File extension for a soundfile format (``.opus`` for Ogg Opus)."""
    return ".opus" if subtype == "OPUS" else EXTENSIONS.get(fmt, "." + fmt.lower())


def write_audio(path: str | Path, samples: np.ndarray, sr: int, *, format: str, subtype: str) -> Path:
    """Write float audio ``(channels, n)`` atomically, cleaned and verified.

    Raises
    ------
    AudioError
        When the format cannot hold this audio (e.g. Opus at 44.1 kHz) or the write fails.
    MetadataError
        When the written file would carry metadata beyond the technical allow-list.
    """
    import soundfile as sf

    path = Path(path)
    check_writable(path, sr, format=format, subtype=subtype)
    with atomic_output(path, format) as handle:
        try:
            sf.write(handle, np.ascontiguousarray(samples.T), sr, format=format, subtype=subtype)
        except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
            raise AudioError(f"cannot write {format}/{subtype} at {sr} Hz: {exc}", path) from None
    return path


def check_writable(path: Path, sr: int, *, format: str, subtype: str) -> None:
    """Refuse, before any work, a format that cannot hold this audio (e.g. Opus at 44.1 kHz)."""
    import soundfile as sf

    if subtype == "OPUS" and sr not in OPUS_RATES:
        raise AudioError(f"Opus cannot store {sr} Hz audio (only {', '.join(str(r) for r in OPUS_RATES)} Hz)", path)
    if not sf.check_format(format, subtype):
        raise AudioError(f"{format} cannot store {subtype} samples", path)


@contextmanager
def atomic_output(path: str | Path, format: str) -> Iterator[BinaryIO]:
    """A temporary file beside ``path`` to write ``format`` audio into; in place only when complete.

    After the block, the file is cleaned and verified (:func:`deid.metadata.finalize_written`),
    flushed to disk and renamed onto ``path``; on any error it is removed and ``path`` is untouched.
    """
    from deid.metadata import finalize_written

    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".deid-tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "r+b") as handle:
            yield handle
        finalize_written(tmp, format)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
