"""Inspect, strip and verify container metadata.

Every file deid writes passes through `clean_encoded`, which rebuilds it from the
structures on the allow-list and then re-reads it with `verify_clean`. The walkers in this
package parse each container by hand (RIFF, AIFF, FLAC, Ogg, MPEG/ID3/APE, MP4) and share
no code with the libraries that write the files, so a tag a writer forgot cannot also be
missed by the check.

Kept per format (everything else is dropped):

============  ==========================================================================
WAV           ``fmt ``, ``fact``, ``data``
AIFF/AIFF-C   ``FVER``, ``COMM`` (codec name blanked), ``SSND`` (offset bytes dropped)
FLAC          ``STREAMINFO``, ``SEEKTABLE``, audio frames
Ogg           Vorbis/Opus identification and setup headers, an empty comment header,
              audio pages (serial number made deterministic)
MP3           MPEG frames; Xing/Info frame with the LAME version blanked
MP4/M4A       ``ftyp``; ``moov`` with dates zeroed and sound tracks only; their samples
============  ==========================================================================
"""

from __future__ import annotations

import hashlib
import importlib
import mmap
import os
import struct
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from deid.errors import AudioError, DeidError, MetadataError
from deid.metadata._common import Field, Piece, Rebuilt, Span

if TYPE_CHECKING:
    import numpy as np

__all__ = ["Field", "StripReport", "inspect_file", "strip_file", "verify_clean", "finalize_written",
           "clean_encoded", "read_m4a", "sniff", "rebuilt_pieces", "declared_audio"]

_NAMES = {"riff": "WAV", "aiff": "AIFF", "flac": "FLAC", "ogg": "OGG", "mp3": "MP3", "mp4": "MP4"}
_COPY_BLOCK = 1 << 20


@dataclass(frozen=True)
class StripReport:
    """What `strip_file` did.

    Parameters
    ----------
    src, dst : str
        Input and output paths.
    container : str
        ``"WAV"``, ``"AIFF"``, ``"FLAC"``, ``"OGG"``, ``"MP3"`` or ``"MP4"``.
    kept, dropped : tuple of str
        Structures written to the output, and structures left out.
    audio_bytes : int
        Bytes of audio payload copied unchanged.
    """

    src: str
    dst: str
    container: str
    kept: tuple[str, ...]
    dropped: tuple[str, ...]
    audio_bytes: int


@contextmanager
def _mapped(path: str | Path) -> Iterator[bytes]:
    """The file's bytes, mapped rather than read: recordings can be gigabytes long."""
    try:
        with open(path, "rb") as handle:
            if os.fstat(handle.fileno()).st_size == 0:
                raise AudioError("file is empty", path)
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                yield mapped  # type: ignore[misc]
    except OSError as exc:
        raise AudioError(f"cannot read: {exc.strerror or exc}", path) from None


def sniff(buf: bytes) -> str:
    """The walker module that handles `buf`, chosen by magic bytes (never by file name)."""
    from deid.metadata.id3 import id3v2_size
    from deid.metadata.mp3 import frame_length

    if buf[:4] == b"RIFF" and buf[8:12] == b"WAVE":
        return "riff"
    if buf[:4] == b"FORM" and buf[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    if buf[:4] == b"OggS":
        return "ogg"
    if buf[4:8] == b"ftyp":
        return "mp4"
    pos = 0
    while id3v2_size(buf, pos):
        pos += id3v2_size(buf, pos)
    if buf[pos:pos + 4] == b"fLaC":
        return "flac"
    if frame_length(bytes(buf[pos:pos + 4])):
        return "mp3"
    raise AudioError("unsupported container (WAV, AIFF, FLAC, Ogg Vorbis/Opus, MP3 and M4A are)")


def rebuilt_pieces(buf: bytes) -> list[Piece]:
    """`buf` as `strip_file` would rebuild it, as pieces: bytes, or `Span`s of `buf`.

    A decoder refusing a file for its tags (ID3v2 before FLAC's marker, blocks its parser does not
    accept) can read these pieces instead, in place, without a copy of the file anywhere.
    """
    kind = ""
    try:
        kind = sniff(buf)
        return [p if isinstance(p, Span) else bytes(p) for p in _module(kind).rebuild(buf).pieces]
    except (IndexError, ValueError, struct.error) as exc:
        raise AudioError(f"corrupt {_NAMES.get(kind, 'file')}: {exc}") from None


def declared_audio(buf: bytes) -> tuple[int, int] | None:
    """For WAV and AIFF: the bytes of audio the header declares, and those the file holds.

    None for other containers, and when the header leaves the length open (0 and 0xFFFFFFFF are
    what streaming writers leave when they cannot seek back). Only chunk headers are read.
    """
    kind = sniff(buf)
    if kind not in ("riff", "aiff"):
        return None
    chunks = _module(kind)._layout(buf)[0]
    audio_id = b"SSND" if kind == "aiff" else b"data"
    for chunk in chunks:
        if chunk.cid == audio_id and chunk.declared not in (0, 0xFFFFFFFF):
            return chunk.declared, chunk.size
    return None


def _module(name: str):  # noqa: ANN202 - one of the walker modules
    return importlib.import_module(f"deid.metadata.{name}")


def _walk(path: str | Path) -> tuple[str, list[Field]]:
    kind = ""
    with _mapped(path) as buf:
        try:
            kind = sniff(buf)
            return kind, _module(kind).walk(buf)
        except AudioError as exc:
            raise AudioError(exc.reason, path) from None
        except (IndexError, ValueError, struct.error) as exc:
            raise AudioError(f"corrupt {_NAMES.get(kind, 'file')}: {exc}", path) from None


def inspect_file(path: str | Path) -> list[Field]:
    """Everything a file's container carries besides audio, as fields.

    Parameters
    ----------
    path : str or Path
        A WAV, AIFF, FLAC, Ogg Vorbis/Opus, MP3 or MP4/M4A file.

    Returns
    -------
    list of Field
        In file order. ``personal`` is False only for allow-listed technical structures.
        Embedded pictures are listed with their size and then their EXIF and GPS tags.

    Raises
    ------
    AudioError
        If the file is unreadable, of an unsupported kind, or corrupt.
    """
    return _walk(path)[1]


def verify_clean(path: str | Path) -> None:
    """Re-read `path` with deid's own walker; fail unless only technical structures remain.

    Raises
    ------
    MetadataError
        Naming the first structures that are not on the allow-list.
    AudioError
        If the file cannot be parsed at all.
    """
    _kind, fields = _walk(path)
    personal = [f for f in fields if f.personal]
    if personal:
        named = ", ".join(f"{f.container} {f.field}" for f in personal[:3])
        more = f" and {len(personal) - 3} more" if len(personal) > 3 else ""
        raise MetadataError(f"metadata remains after cleaning: {named}{more}", path)


def _release(buf: bytes, start: int, length: int) -> None:
    """Drop copied pages of a mapped file from this process's memory (they stay in the page cache).

    Without it, copying the audio of a long recording maps all of it into the resident set.
    """
    if isinstance(buf, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
        aligned = start - start % mmap.PAGESIZE
        buf.madvise(mmap.MADV_DONTNEED, aligned, min(length + start - aligned, len(buf) - aligned))


def _write(rebuilt: Rebuilt, buf: bytes, target: Path, digest: Any = None) -> Path:
    """Write the pieces to a temporary file beside `target` and return its path (and feed `digest`)."""
    handle = tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp", delete=False)
    update = digest.update if digest is not None else (lambda data: None)
    try:
        with handle:
            for piece in rebuilt.pieces:
                if isinstance(piece, Span):
                    for pos in range(piece.start, piece.stop, _COPY_BLOCK):
                        chunk = buf[pos:min(pos + _COPY_BLOCK, piece.stop)]
                        handle.write(chunk)
                        update(chunk)
                        _release(buf, pos, _COPY_BLOCK)
                else:
                    handle.write(piece)
                    update(piece)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(handle.name, 0o666 & ~umask)
    except BaseException:
        os.unlink(handle.name)
        raise
    return Path(handle.name)


def _clean_into(src: Path, dst: Path) -> tuple[str, Rebuilt]:
    """Rebuild `src` into a verified temporary file, then move it onto `dst`."""
    kind = ""
    with _mapped(src) as buf:
        try:
            kind = sniff(buf)
            rebuilt = _module(kind).rebuild(buf)
        except AudioError as exc:
            raise AudioError(exc.reason, src) from None
        except (IndexError, ValueError, struct.error) as exc:
            raise AudioError(f"corrupt {_NAMES.get(kind, 'file')}: {exc}", src) from None
        try:
            tmp = _write(rebuilt, buf, dst)
        except OSError as exc:
            raise AudioError(f"cannot write: {exc.strerror or exc}", dst) from None
    try:
        verify_clean(tmp)
    except DeidError as exc:
        os.unlink(tmp)
        raise MetadataError(exc.reason, dst) from None
    os.replace(tmp, dst)
    return kind, rebuilt


def strip_file(src: str | Path, dst: str | Path) -> StripReport:
    """Remove all metadata from `src` into `dst`, keeping the audio payload bit-identical.

    The output is rebuilt from the allow-listed structures (see the module docstring),
    written to a temporary file beside `dst`, verified with `verify_clean`, and only then
    renamed onto `dst`. `src` is never modified.

    Parameters
    ----------
    src, dst : str or Path
        Input file and output file (must differ).

    Returns
    -------
    StripReport

    Raises
    ------
    DeidError
        If `dst` is `src`.
    AudioError
        If `src` is unsupported or corrupt, or `dst` cannot be written.
    MetadataError
        If the rebuilt file still fails verification.
    """
    src, dst = Path(src), Path(dst)
    if src.resolve() == dst.resolve() or (dst.exists() and os.path.samefile(src, dst)):
        raise DeidError("output is the input; strip never modifies its input", dst)
    kind, rebuilt = _clean_into(src, dst)
    return StripReport(str(src), str(dst), _NAMES[kind], tuple(rebuilt.kept), tuple(rebuilt.dropped),
                       rebuilt.audio_bytes)


def clean_encoded(buf: bytes, fmt: str, target: str | Path) -> tuple[Path, int, str]:
    """Clean bytes just encoded from samples into a verified temporary file beside `target`.

    libsndfile leaves traces of its own: a ``PEAK`` chunk with the time of writing in float
    WAV/AIFF, the libFLAC vendor string in FLAC, ``ENCODER=libsndfile`` and the libvorbis /
    libopus vendor in Ogg (with a random serial number), and the LAME version in MP3's Info
    frame and in the unused bytes of its bit reservoir (which may be zeroed here, since no
    input frames need preserving). Rebuilding through the walkers that `strip_file` uses removes
    all of them and makes the output a function of the samples alone; the rebuilt file is then
    walked again by `verify_clean`.

    Parameters
    ----------
    buf : bytes-like
        The encoded file (a mapped anonymous temporary file).
    fmt : str
        The soundfile format it was written as (``"WAV"``, ``"FLAC"``, ...); checked against
        the magic bytes.
    target : str or Path
        Where the output will live; the temporary file is made beside it.

    Returns
    -------
    tmp : Path
        The cleaned, verified file, for the caller to rename onto `target`.
    size : int
    sha256 : str
        Of the bytes written, hashed as they were written.

    Raises
    ------
    MetadataError
        If the format cannot be verified, or metadata survives the rebuild.
    """
    target = Path(target)
    expected = {"WAV": "riff", "WAVEX": "riff", "AIFF": "aiff", "FLAC": "flac", "OGG": "ogg", "MP3": "mp3",
                "MP4": "mp4", "M4A": "mp4"}.get(fmt.upper())
    if expected is None:
        raise MetadataError(f"deid cannot verify the metadata of {fmt} files; write WAV, AIFF, FLAC, OGG or MP3",
                            target)
    kind = sniff(buf)
    if kind != expected:
        raise MetadataError(f"written as {fmt} but the file is {_NAMES[kind]}", target)
    module = _module(kind)
    rebuilt = module.rebuild(buf, zero_reservoir=True) if kind == "mp3" else module.rebuild(buf)
    digest = hashlib.sha256()
    try:
        tmp = _write(rebuilt, buf, target, digest)
        size = tmp.stat().st_size
    except OSError as exc:
        raise AudioError(f"cannot write: {exc.strerror or exc}", target) from None
    try:
        verify_clean(tmp)
    except DeidError as exc:
        os.unlink(tmp)
        raise MetadataError(exc.reason, target) from None
    return tmp, size, digest.hexdigest()


def finalize_written(path: str | Path, fmt: str) -> None:
    """Clean a file just written from samples (by libsndfile), in place, and verify it; see `clean_encoded`.

    Raises
    ------
    MetadataError
        If the format cannot be verified, or metadata survives the rebuild.
    """
    path = Path(path)
    with _mapped(path) as buf:
        tmp, _size, _sha = clean_encoded(buf, fmt, path)
    os.replace(tmp, path)


def read_m4a(path: str | Path) -> tuple[np.ndarray, int]:
    """Decode an MP4/M4A (AAC, ALAC) file; see `deid.metadata.mp4.read_m4a`."""
    from deid.metadata.mp4 import read_m4a as _read

    return _read(path)
