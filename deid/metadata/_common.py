"""Shared vocabulary of the container walkers: fields, output pieces, payload previews."""

from __future__ import annotations

import mmap
import re
import struct
from dataclasses import dataclass, field
from typing import Union

from deid.errors import AudioError


@dataclass(frozen=True)
class Field:
    """One structure found in a container.

    Parameters
    ----------
    container : str
        The structure family, e.g. ``"RIFF"``, ``"ID3v2.4"``, ``"FLAC"``, ``"MP4"``.
    field : str
        The structure's name inside it, e.g. ``"LIST/INFO/IART"`` or ``"moov.udta.©xyz"``.
    value : str
        A readable rendering of its content (shortened for long payloads).
    personal : bool
        False only for allow-listed technical structures (format, sample rate, audio payload).
    """

    container: str
    field: str
    value: str
    personal: bool


@dataclass(frozen=True)
class Span:
    """Bytes ``[start, stop)`` of the source, copied verbatim into the output."""

    start: int
    stop: int


Piece = Union[bytes, Span]


@dataclass
class Rebuilt:
    """A cleaned file described as pieces, plus what was kept and dropped (for the report)."""

    pieces: list[Piece] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    audio_bytes: int = 0


def malformed(reason: str) -> AudioError:
    """An `AudioError` without a path; the public entry points add the path."""
    return AudioError(reason)


#: Bytes a walker reads through before it lets go of them (see `release`).
RELEASE_BYTES = 8 << 20


def release(buf: bytes, start: int, length: int) -> None:
    """Drop pages of a mapped file from this process's memory (they stay in the page cache).

    Walking the frames of a long recording, or copying its audio, would otherwise map all of
    it into the resident set.
    """
    if isinstance(buf, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED") and length > 0:
        aligned = start - start % mmap.PAGESIZE
        buf.madvise(mmap.MADV_DONTNEED, aligned, min(length + start - aligned, len(buf) - aligned))


#: Bytes of an opaque span rendered for a reader; longer spans are shown by their start and size,
#: so that a gigabyte of appended data costs no more to describe than a kilobyte.
PREVIEW_BYTES = 1 << 16


def preview(buf: bytes, start: int, stop: int) -> str:
    """`readable` of ``buf[start:stop]``, reading at most `PREVIEW_BYTES` of it."""
    shown = readable(bytes(buf[start:min(stop, start + PREVIEW_BYTES)]))
    return shown if stop - start <= PREVIEW_BYTES else f"{stop - start} bytes, starting: {shown}"


class FieldReader:
    """Read the fields of a structure deid keeps, and set aside every byte no field explains.

    A kept structure is written back from its fields, never copied, so whatever hides in
    its reserved or trailing bytes cannot survive; `spare` holds those bytes so that
    ``inspect`` can show them.
    """

    def __init__(self, data: bytes, *, little: bool = False, what: str = "structure") -> None:
        self.data = bytes(data)
        self.pos = 0
        self.order = "little" if little else "big"
        self.what = what
        self._spare = bytearray()

    @property
    def left(self) -> int:
        return len(self.data) - self.pos

    def take(self, size: int) -> bytes:
        if self.pos + size > len(self.data):
            raise malformed(f"{self.what} is truncated")
        out = self.data[self.pos:self.pos + size]
        self.pos += size
        return out

    def int(self, size: int, *, signed: bool = False) -> int:
        return int.from_bytes(self.take(size), self.order, signed=signed)

    def reserved(self, size: int) -> None:
        """Bytes the format reserves (they must be zero): set aside."""
        self._spare += self.take(min(size, self.left))

    def rest(self) -> None:
        """Everything after the last field: set aside."""
        self._spare += self.data[self.pos:]
        self.pos = len(self.data)

    def spare(self, extra: bytes = b"") -> bytes:
        """The bytes set aside (plus `extra`) when any is not zero, else b""."""
        found = bytes(self._spare) + extra
        return found if found.strip(b"\0") else b""


def spare_field(container: str, name: str, spare: bytes) -> list[Field]:
    """A personal field for the bytes of a kept structure that none of its fields explains."""
    if not spare:
        return []
    return [Field(container, f"{name} (bytes its fields do not explain)", readable(spare) or spare.hex(), True)]


_ASCII_RUN = re.compile(rb"[\x20-\x7e]{4,}")
_UTF16LE_RUN = re.compile(rb"(?:[\x20-\x7e]\x00){4,}")
_UTF16BE_RUN = re.compile(rb"(?:\x00[\x20-\x7e]){4,}")


def shorten(text: str, limit: int = 160) -> str:
    """One line of at most `limit` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def readable(data: bytes, limit: int = 160) -> str:
    """Render an opaque payload so that any text hidden in it shows.

    Text may sit in a payload as UTF-8, or as UTF-16 in either byte order (Windows tools
    write LIST-INFO and ID3 that way), so all three are tried before falling back to runs
    of printable characters.
    """
    if not data:
        return ""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            return shorten(data.decode("utf-16").rstrip("\0"), limit)
        except UnicodeDecodeError:
            pass
    body = data.rstrip(b"\0")
    try:
        text = body.decode("utf-8")
        if text and all(c.isprintable() or c in "\r\n\t" for c in text):
            return shorten(text, limit)
    except UnicodeDecodeError:
        pass
    runs: list[str] = []
    for pattern, codec in ((_UTF16LE_RUN, "utf-16-le"), (_UTF16BE_RUN, "utf-16-be"), (_ASCII_RUN, "ascii")):
        for match in pattern.finditer(data):
            text = match.group().decode(codec)
            if not any(text in seen for seen in runs):
                runs.append(text)
    if runs:
        return shorten(" | ".join(runs), limit)
    return f"<{len(data)} bytes>"


def is_blank(data: bytes) -> bool:
    """True when a padding payload holds nothing but zero bytes."""
    return not data.strip(b"\0")


@dataclass(frozen=True, slots=True)
class Chunk:
    """One chunk of a RIFF or AIFF file: its id, and where its payload lies."""

    cid: bytes
    start: int  # first payload byte
    size: int  # payload length, clamped to the file for truncated recordings
    declared: int  # payload length as written in the header


def iff_chunks(buf: bytes, start: int, end: int, *, big_endian: bool) -> tuple[list[Chunk], int]:
    """The chunks between `start` and `end`, and the offset where parsing stopped.

    Chunks are padded to an even length. A last chunk that claims more bytes than the
    file holds is clamped: crashed recorders leave such files and their audio is still valid.
    """
    fmt = ">I" if big_endian else "<I"
    chunks: list[Chunk] = []
    pos = start
    while pos + 8 <= end:
        cid = bytes(buf[pos:pos + 4])
        (declared,) = struct.unpack(fmt, buf[pos + 4:pos + 8])
        size = min(declared, end - pos - 8)
        chunks.append(Chunk(cid, pos + 8, size, declared))
        pos += 8 + size + (size & 1)
    return chunks, min(pos, end)


def chunk_name(cid: bytes) -> str:
    """A chunk id as text, with unprintable bytes escaped."""
    return "".join(chr(b) if 0x20 <= b < 0x7F else f"\\x{b:02x}" for b in cid)


@dataclass(frozen=True)
class IffLayout:
    """A parsed RIFF or FORM chunk: its chunks, where parsing stopped, where it ends, its form type."""

    chunks: list[Chunk]
    parsed: int
    end: int
    kind: bytes


def iff_layout(buf: bytes, start: int, stop: int, *, big_endian: bool) -> tuple[list[Chunk], int, int]:
    """The chunks of the RIFF or FORM chunk at `start`, where parsing stopped, and where it ends.

    A RIFF/FORM size smaller than the chunks it holds (a writer that never updated it) is
    extended to the end of its last chunk, as far as the file holds it: decoders read those
    samples, so they belong to the stream and not to what follows it.
    """
    fmt = ">I" if big_endian else "<I"
    end = min(start + 8 + struct.unpack(fmt, buf[start + 4:start + 8])[0], stop)
    chunks, parsed = iff_chunks(buf, start + 12, end, big_endian=big_endian)
    if chunks and chunks[-1].size < chunks[-1].declared and parsed == end < stop:
        last = chunks[-1]
        chunks[-1] = Chunk(last.cid, last.start, min(last.declared, stop - last.start), last.declared)
        end = parsed = min(last.start + last.declared + (last.declared & 1), stop)
    return chunks, parsed, end


def check_audio_chunk(layout: IffLayout, audio_id: bytes) -> None:
    """Refuse a RIFF or AIFF file whose audio chunk holds less than its header declares: an
    interrupted copy or recording. 0 and 0xFFFFFFFF are what streaming writers leave when they
    cannot seek back, and say nothing of the length."""
    chunk = next((c for c in layout.chunks if c.cid == audio_id), None)
    if chunk is not None and chunk.declared not in (0, 0xFFFFFFFF) and chunk.size < chunk.declared:
        raise malformed(f"truncated: the header declares {chunk.declared} bytes of audio, the file holds {chunk.size}")


def check_format(channels: int, rate: float, bits: int | None, *, what: str) -> None:
    """Refuse format fields no recording has (a header that lies, or was never filled in).

    `bits` is None for codecs whose sample size is not a field of the header.
    """
    if channels <= 0:
        raise malformed(f"its {what} declares {channels} channels")
    if rate <= 0:
        raise malformed(f"its {what} declares a sample rate of {rate:g} Hz")
    if bits is not None and bits <= 0:
        raise malformed(f"its {what} declares {bits} bits per sample")
