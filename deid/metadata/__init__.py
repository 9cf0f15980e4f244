"""Inspect, strip and verify container metadata.

Every file deid writes passes through `clean_encoded`, which rebuilds it from the
structures on the allow-list and then re-reads all of it with `verify_clean`. The walkers in
this package parse each container by hand (RIFF, AIFF, FLAC, Ogg, MPEG/ID3/APE, MP4) and share
no code with the libraries that write the files, so a tag a writer forgot cannot also be
missed by the check. A file is read as regions (`deid.metadata.layout`): its first audio
stream, then whatever follows it (tags, padding, unexplained bytes, further streams), and
every region is listed and checked.

Kept per format (everything else is dropped), each rebuilt from its parsed fields:

============  ==========================================================================
WAV           ``fmt ``, ``fact``, ``data``
AIFF/AIFF-C   ``FVER``, ``COMM`` (codec name blanked), ``SSND`` (offset bytes dropped)
FLAC          ``STREAMINFO`` and ``SEEKTABLE`` (checked against the frames), audio frames
Ogg           Vorbis/Opus identification and setup headers, an empty comment header,
              audio pages (serial number made deterministic)
MP3           MPEG frames; Xing/Info frame with the LAME version blanked
MP4/M4A       ``ftyp``; ``moov`` with dates zeroed and sound tracks only; their samples
============  ==========================================================================
"""

from __future__ import annotations

import hashlib
import mmap
import os
import struct
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from deid.errors import AudioError, DeidError, MetadataError
from deid.metadata._common import Field, Piece, Rebuilt, Span, release
from deid.metadata.layout import NAMES, Region, module, region_fields, regions
from deid.metadata.layout import sniff as _sniff_at
from deid.paths import TempFile, as_path, check_writes, read_failure

if TYPE_CHECKING:
    import numpy as np

__all__ = ["Field", "StripReport", "Trailing", "check_regions", "clean_encoded", "finalize_written", "inspect_file",
           "read_m4a", "rebuilt_pieces", "sniff", "strip_file", "trailing_data", "verify_clean"]

_COPY_BLOCK = 1 << 20
#: What a walker raises on bytes it cannot make sense of; reported as one line, "corrupt ...".
_PARSE_ERRORS = (IndexError, ValueError, OverflowError, struct.error)


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
    seconds : float
        Length of the audio, from its header.
    """

    src: str
    dst: str
    container: str
    kept: tuple[str, ...]
    dropped: tuple[str, ...]
    audio_bytes: int
    seconds: float = 0.0


@dataclass(frozen=True)
class Trailing:
    """What a file holds after the end of its first audio stream.

    Parameters
    ----------
    offset : int
        Where the first audio stream ends.
    size : int
        Bytes after it (tags included).
    streams : tuple of (str, int)
        Further audio streams, as (container, byte offset): the second of two files joined
        with ``cat``, or the next link of a chained Ogg. Decoders play only the first stream.
    unexplained : int
        Bytes after it that are neither tags, zero padding nor audio.
    """

    offset: int
    size: int
    streams: tuple[tuple[str, int], ...]
    unexplained: int

    def reason(self) -> str:
        """One line for a user: what follows the first stream, and why deid refuses it."""
        if self.streams:
            kind, where = self.streams[0]
            count = f"{len(self.streams) + 1} audio streams" if len(self.streams) > 1 else "a second audio stream"
            how = "a chained Ogg" if kind == "Ogg" else "files joined with cat?"
            return (f"holds {count} ({kind}, from byte {where} on; {how}); decoders play only the first, "
                    "so deid refuses it rather than drop audio: split the file first")
        return f"holds {self.unexplained} bytes after the end of its audio stream (byte {self.offset}) that are not audio"


@contextmanager
def _mapped(path: str | Path) -> Iterator[bytes]:
    """The file's bytes, mapped rather than read: recordings can be gigabytes long."""
    try:
        with open(path, "rb") as handle:
            if os.fstat(handle.fileno()).st_size == 0:
                raise AudioError("empty file (0 bytes)", path)
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                yield mapped  # type: ignore[misc]
    except OSError as exc:
        raise AudioError(read_failure(exc), path) from None


def sniff(buf: bytes) -> str:
    """The walker module that handles `buf`, chosen by magic bytes (never by file name)."""
    return _sniff_at(buf)


@contextmanager
def _parsed(path: str | Path) -> Iterator[tuple[bytes, list[Region]]]:
    """The mapped file and its regions; parse failures become one-line AudioErrors naming the file."""
    with _mapped(path) as buf:
        kind = ""
        try:
            kind = _sniff_at(buf)
            found = regions(buf)
        except AudioError as exc:
            raise AudioError(exc.reason, path) from None
        except _PARSE_ERRORS as exc:
            raise AudioError(f"corrupt {NAMES.get(kind, 'file')}: {exc}", path) from None
        yield buf, found


def _walk(path: str | Path) -> list[Field]:
    with _parsed(path) as (buf, found):
        try:
            return region_fields(buf, found)
        except AudioError as exc:
            raise AudioError(exc.reason, path) from None
        except _PARSE_ERRORS as exc:
            raise AudioError(f"corrupt {NAMES.get(found[0].kind, 'file')}: {exc}", path) from None


def rebuilt_pieces(buf: bytes) -> list[Piece]:
    """The first stream of `buf` as `strip_file` would rebuild it, as pieces: bytes, or `Span`s of `buf`.

    A decoder refusing a file for its tags (ID3v2 before FLAC's marker, blocks its parser does not
    accept) can read these pieces instead, in place, without a copy of the file anywhere.
    """
    kind = ""
    try:
        kind = _sniff_at(buf)
        first = regions(buf)[0]
        return [p if isinstance(p, Span) else bytes(p) for p in module(first.kind).rebuild(buf, first.parsed).pieces]
    except _PARSE_ERRORS as exc:
        raise AudioError(f"corrupt {NAMES.get(kind, 'file')}: {exc}") from None


def check_regions(buf: bytes) -> list[Region]:
    """The regions of an input, refusing what no command may read: the part of the single input
    check (:func:`deid.audio.open_input`) that deid's own parser does.

    Refused: a container deid does not know, a first stream that is corrupt, cut or lies about
    its length (each walker's ``check``), and more audio after the first stream.

    Raises
    ------
    AudioError
        With the reason, and no path (the caller names the file).
    """
    kind = ""
    try:
        kind = _sniff_at(buf)
        found = regions(buf)
        _refuse_streams(found)
        check = getattr(module(found[0].kind), "check", None)
        if check is not None:
            check(buf, found[0].parsed)
    except _PARSE_ERRORS as exc:
        raise AudioError(f"corrupt {NAMES.get(kind, 'file')}: {exc}") from None
    return found


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
        Embedded pictures are listed with their size and then their EXIF and GPS tags. What
        follows the first audio stream (tags, unexplained bytes, the streams of files joined
        with ``cat``) is listed too, with its byte offset.

    Raises
    ------
    AudioError
        If the file is unreadable, of an unsupported kind, or corrupt.
    """
    return _walk(as_path(path, "the file"))


def trailing_data(path: str | Path) -> Trailing | None:
    """What follows the first audio stream of a file, or None when nothing but tags and padding does.

    Decoders (libsndfile, FFmpeg) play only the first stream of a FLAC, MP3 or Ogg file, so a
    command that reads such a file would drop the rest of its audio without a word.

    Raises
    ------
    AudioError
        If the file is unreadable, of an unsupported kind, or corrupt.
    """
    with _parsed(as_path(path, "the file")) as (buf, found):
        streams = tuple((NAMES[r.kind], r.start) for r in found[1:] if r.audio)
        unexplained = sum(r.stop - r.start for r in found[1:] if r.kind == "unexplained")
        if not streams and not unexplained:
            return None
        return Trailing(found[0].stop, len(buf) - found[0].stop, streams, unexplained)


def verify_clean(path: str | Path) -> None:
    """Re-read `path` with deid's own walkers, all of it; fail unless only technical structures remain.

    Raises
    ------
    MetadataError
        Naming the first structures that are not on the allow-list.
    AudioError
        If the file cannot be parsed at all.
    """
    personal = [f for f in _walk(path) if f.personal]
    if personal:
        named = ", ".join(f"{f.container} {f.field}" for f in personal[:3])
        more = f" and {len(personal) - 3} more" if len(personal) > 3 else ""
        raise MetadataError(f"metadata remains after cleaning: {named}{more}", path)


def _write(rebuilt: Rebuilt, buf: bytes, target: Path, digest: Any = None) -> TempFile:
    """Write the pieces to a temporary file beside `target` and return it (and feed `digest`)."""
    tmp = TempFile(target)
    update = digest.update if digest is not None else (lambda data: None)
    try:
        handle = tmp.handle
        for piece in rebuilt.pieces:
            if isinstance(piece, Span):
                for pos in range(piece.start, piece.stop, _COPY_BLOCK):
                    chunk = buf[pos:min(pos + _COPY_BLOCK, piece.stop)]
                    handle.write(chunk)
                    update(chunk)
                    release(buf, pos, _COPY_BLOCK)
            else:
                handle.write(piece)
                update(piece)
        handle.flush()
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp.path, 0o666 & ~umask)
    except BaseException:
        tmp.discard()
        raise
    return tmp


def _refuse_streams(found: list[Region]) -> None:
    """Refuse a file that holds more audio after its first stream (files joined with ``cat``, a
    chained Ogg): decoders play only the first, so the rest would be dropped without a word."""
    streams = [r for r in found[1:] if r.audio]
    if streams:
        raise AudioError(Trailing(found[0].stop, 0, tuple((NAMES[r.kind], r.start) for r in streams), 0).reason())


def _after_first(found: list[Region]) -> list[str]:
    """What strip leaves out after the first stream; refuses a file with more audio there."""
    _refuse_streams(found)
    labels = {"tags": "trailing tags", "padding": "padding after the audio",
              "unexplained": "bytes after the audio stream"}
    return list(dict.fromkeys(labels[r.kind] for r in found[1:]))


def _clean_into(buf: bytes, found: list[Region], src: Path, dst: Path) -> Rebuilt:
    """Rebuild the first stream of `src` (mapped as `buf`, its regions `found`) into a verified
    temporary file, then move it onto `dst`."""
    first = found[0]
    try:
        dropped_after = _after_first(found)
        rebuilt = module(first.kind).rebuild(buf, first.parsed)
    except AudioError as exc:
        raise AudioError(exc.reason, src) from None
    except _PARSE_ERRORS as exc:
        raise AudioError(f"corrupt {NAMES[first.kind]}: {exc}", src) from None
    rebuilt.dropped += dropped_after
    try:
        tmp = _write(rebuilt, buf, dst)
    except OSError as exc:
        raise AudioError(f"cannot write: {exc.strerror or exc}", dst) from None
    _publish(_verified(tmp), dst)
    return rebuilt


def _verified(tmp: TempFile) -> TempFile:
    """`tmp` once `verify_clean` has walked it; removed, and a MetadataError, if it is not clean."""
    try:
        verify_clean(tmp.path)
    except DeidError as exc:
        tmp.discard()
        raise MetadataError(exc.reason, tmp.target) from None
    return tmp


def _publish(tmp: TempFile, dst: Path) -> None:
    try:
        tmp.publish()
    except OSError as exc:
        raise AudioError(f"cannot write: {exc.strerror or exc}", dst) from None


def strip_file(src: str | Path, dst: str | Path) -> StripReport:
    """Remove all metadata from `src` into `dst`, keeping the audio payload bit-identical.

    `src` passes the same input check as every command (:func:`deid.audio.open_input`), without
    a sample decoded; `dst` the same write rule (:func:`deid.paths.check_writes`). The output is
    rebuilt from the allow-listed structures (see the module docstring), written to a temporary
    file beside `dst`, verified with `verify_clean`, and only then renamed onto `dst`. `src` is
    never modified. Tags and bytes after the audio stream are dropped.

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
        If `dst` is `src` (also through a link), a folder, or an existing read-only file.
    AudioError
        If `src` fails the input check (unsupported, corrupt, cut, a second audio stream, a rate
        below :data:`deid.defaults.MIN_SAMPLE_RATE`...), or `dst` cannot be written.
    MetadataError
        If the rebuilt file still fails verification.
    """
    from deid.audio import open_input

    src, dst = as_path(src, "the input"), as_path(dst, "the output")
    check_writes({"the output": dst}, reads={"the input": src})
    with open_input(src, hash=False) as source, source.mapped() as buf:
        rebuilt = _clean_into(buf, source.regions, src, dst)
    return StripReport(str(src), str(dst), NAMES[source.regions[0].kind].upper(), tuple(rebuilt.kept),
                       tuple(rebuilt.dropped), rebuilt.audio_bytes, source.info.seconds)


def clean_encoded(buf: bytes, fmt: str, target: str | Path) -> tuple[TempFile, int, str]:
    """Clean bytes just encoded from samples into a verified temporary file beside `target`.

    libsndfile leaves traces of its own: a ``PEAK`` chunk with the time of writing in float
    WAV/AIFF, the libFLAC vendor string in FLAC, ``ENCODER=libsndfile`` and the libvorbis /
    libopus vendor in Ogg (with a random serial number), and the LAME version in MP3's Info
    frame and in the unused bytes of its bit reservoir (which may be zeroed here, since no
    input frames need preserving). Rebuilding through the walkers that `strip_file` uses removes
    all of them and makes the output a function of the samples alone; the rebuilt file is then
    walked again, all of it, by `verify_clean`.

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
    tmp : deid.paths.TempFile
        The cleaned, verified file, for the caller to publish onto `target` (or discard).
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
    try:
        kind = _sniff_at(buf)
    except AudioError as exc:
        raise MetadataError(exc.reason, target) from None
    if kind != expected:
        raise MetadataError(f"written as {fmt} but the file is {NAMES[kind]}", target)
    try:
        found = regions(buf)
        first = found[0]
        _after_first(found)
        walker = module(first.kind)
        if first.kind == "mp3":
            rebuilt = walker.rebuild(buf, first.parsed, zero_reservoir=True)
        else:
            rebuilt = walker.rebuild(buf, first.parsed)
    except AudioError as exc:
        raise MetadataError(exc.reason, target) from None
    except _PARSE_ERRORS as exc:
        raise MetadataError(f"corrupt {NAMES[kind]} as written: {exc}", target) from None
    digest = hashlib.sha256()
    try:
        tmp = _write(rebuilt, buf, target, digest)
        size = tmp.path.stat().st_size
    except OSError as exc:
        raise AudioError(f"cannot write: {exc.strerror or exc}", target) from None
    return _verified(tmp), size, digest.hexdigest()


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
    _publish(tmp, path)


def read_m4a(path: str | Path) -> tuple[np.ndarray, int]:
    """Decode an MP4/M4A (AAC, ALAC) file; see `deid.metadata.mp4.read_m4a`."""
    from deid.metadata.mp4 import read_m4a as _read

    return _read(path)
