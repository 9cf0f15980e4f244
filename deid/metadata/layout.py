"""Where each part of a file lies: its first audio stream, then whatever follows it.

A file is read as a sequence of regions. The first is an audio stream whose container is
told by its magic bytes; each walker knows where its stream ends (``parse(...).end``): after the
RIFF or FORM chunk, after the last FLAC or MPEG frame, after the first link of an Ogg chain,
before a second MP4 ``ftyp``. After it may come tags (ID3v1, ID3v2, APEv2, Lyrics3), zero
padding, bytes nothing explains, or further audio streams: the second of two files joined
with ``cat``, or the next link of a chained Ogg. Every command looks at all of them:
``inspect`` and the verification after each write list every region, ``strip`` keeps the
first stream and refuses a file that holds more audio, and `trailing_data` tells any
command what follows the first stream.

Each walker module offers ``parse(buf, start, stop)``, which reads the stream that starts at
`start` once and returns its layout (with ``end``, where the stream ends), and ``walk(buf,
layout)`` and ``rebuild(buf, layout)``, which use that layout.
"""

from __future__ import annotations

import importlib
import struct
from dataclasses import dataclass, field
from types import ModuleType

from deid.errors import AudioError
from deid.metadata._common import Field, is_blank, malformed, preview
from deid.metadata.id3 import id3v2_fields, id3v2_size, trailing_tags

#: Walker module of each container, and the name users know it by.
NAMES = {"riff": "WAV", "aiff": "AIFF", "flac": "FLAC", "ogg": "Ogg", "mp3": "MP3", "mp4": "MP4"}
#: Byte strings that may begin a tag or a stream after the first stream.
_SIGNATURES = (b"ID3", b"TAG", b"APETAGEX", b"LYRICSBEGIN", b"fLaC", b"OggS", b"RIFF", b"FORM", b"ftyp")
#: Regions listed before the rest of a file is summed up as one (a file of a million tiny
#: concatenated streams is refused by strip all the same, and inspect stays fast).
MAX_REGIONS = 64


@dataclass(frozen=True)
class Region:
    """Bytes ``[start, stop)`` of a file and what they hold.

    ``kind`` is a walker module name (``"flac"``, ``"mp3"``...) for an audio stream, or
    ``"tags"``, ``"padding"`` (zero bytes) or ``"unexplained"``.
    """

    kind: str
    start: int
    stop: int
    parsed: object = field(default=None, compare=False, repr=False)  # the walker's layout of a stream

    @property
    def audio(self) -> bool:
        return self.kind in NAMES


def module(kind: str) -> ModuleType:
    """The walker module of a container."""
    return importlib.import_module(f"deid.metadata.{kind}")


def sniff(buf: bytes, pos: int = 0) -> str:
    """The walker module that handles the stream starting at `pos`, by its magic bytes (never by name).

    An MPEG stream has no magic: it is recognised by two consecutive valid frame headers (or
    one that ends the file), which random bytes almost never give.
    """
    from deid.metadata.mp3 import frame_length

    if buf[pos:pos + 4] == b"RIFF" and buf[pos + 8:pos + 12] == b"WAVE":
        return "riff"
    if buf[pos:pos + 4] == b"FORM" and buf[pos + 8:pos + 12] in (b"AIFF", b"AIFC"):
        return "aiff"
    if buf[pos:pos + 4] == b"OggS":
        return "ogg"
    if buf[pos + 4:pos + 8] == b"ftyp":
        return "mp4"
    while id3v2_size(buf, pos):
        pos += id3v2_size(buf, pos)
    if buf[pos:pos + 4] == b"fLaC":
        return "flac"
    length = frame_length(bytes(buf[pos:pos + 4]))
    if length and (pos + length >= len(buf) or frame_length(bytes(buf[pos + length:pos + length + 4]))):
        return "mp3"
    raise malformed("not a recognised audio file (deid reads WAV, AIFF, FLAC, Ogg Vorbis/Opus, MP3 and M4A)")


def _tag_size(buf: bytes, pos: int, stop: int) -> int:
    """Length of a tag that starts at `pos` and ends by `stop`, or 0."""
    size = id3v2_size(buf, pos)
    if size:
        return size if pos + size <= stop else 0
    if buf[pos:pos + 4] == b"TAG+" and buf[pos + 227:pos + 230] == b"TAG" and pos + 355 <= stop:
        return 355
    if buf[pos:pos + 3] == b"TAG" and pos + 128 <= stop:
        return 128
    if buf[pos:pos + 8] == b"APETAGEX" and pos + 32 <= stop:
        size = 32 + int.from_bytes(buf[pos + 12:pos + 16], "little")
        return size if pos + size <= stop else 0
    if buf[pos:pos + 11] == b"LYRICSBEGIN":
        end = buf.find(b"LYRICS200", pos, stop)
        return end + 9 - pos if end >= 0 else 0
    return 0


def _stream_at(buf: bytes, pos: int, stop: int) -> Region | None:
    """The audio stream that starts at `pos`, if one does (parsed far enough to find its end)."""
    try:
        kind = sniff(buf, pos)
        parsed = module(kind).parse(buf, pos, stop)
    except (AudioError, IndexError, ValueError, struct.error):
        return None
    return Region(kind, pos, parsed.end, parsed) if parsed.end > pos else None


class _Signatures:
    """The next offset at which a tag or a stream could begin, searched once per signature and hit."""

    def __init__(self, buf: bytes, stop: int) -> None:
        self.buf, self.stop = buf, stop
        self.next: dict[bytes, int] = {}

    def after(self, pos: int) -> int:
        for sig in _SIGNATURES:
            shift = 4 if sig == b"ftyp" else 0
            if self.next.get(sig, -1) < pos:
                hit = self.buf.find(sig, pos + shift, self.stop)
                self.next[sig] = self.stop if hit < 0 else hit - shift
        return min(self.next.values())


def regions(buf: bytes) -> list[Region]:
    """Every region of a file, in order; the first is its first audio stream.

    Raises
    ------
    AudioError
        If the file does not start with an audio stream deid knows, or that stream is corrupt.
    """
    kind = sniff(buf)
    first = module(kind).parse(buf, 0, len(buf))
    found = [Region(kind, 0, first.end, first)]
    pos = found[0].stop
    _fields, tail = trailing_tags(buf, pos, len(buf))
    while pos < tail:
        if len(found) >= MAX_REGIONS:
            found.append(Region("unexplained", pos, tail))
            break
        size = _tag_size(buf, pos, tail)
        stream = None if size else _stream_at(buf, pos, tail)
        if size:
            found.append(Region("tags", pos, pos + size))
        elif stream is not None:
            found.append(stream)
        else:
            signatures = _Signatures(buf, tail)
            nxt = signatures.after(pos + 1)
            while nxt < tail and not (_tag_size(buf, nxt, tail) or _stream_at(buf, nxt, tail)):
                nxt = signatures.after(nxt + 1)
            blank = is_blank(bytes(buf[pos:min(nxt, pos + (1 << 20))])) and (nxt - pos <= 1 << 20 or is_blank(
                bytes(buf[pos:nxt])))
            found.append(Region("padding" if blank else "unexplained", pos, nxt))
        pos = found[-1].stop
    if tail < len(buf):
        found.append(Region("tags", tail, len(buf)))
    return found


def _tag_fields(buf: bytes, region: Region) -> list[Field]:
    if id3v2_size(buf, region.start):
        return id3v2_fields(buf, region.start, where="trailing ")
    fields, _ = trailing_tags(buf, region.start, region.stop)
    return fields or [Field("file", "tags", preview(buf, region.start, region.stop), True)]


def region_fields(buf: bytes, found: list[Region]) -> list[Field]:
    """The fields of every region: the first stream's as they are, the others' labelled with their place."""
    fields = module(found[0].kind).walk(buf, found[0].parsed)
    streams = 1
    for region in found[1:]:
        where = f"after the first audio stream, at byte {region.start}"
        if region.kind == "tags":
            fields += _tag_fields(buf, region)
        elif region.kind == "padding":
            fields.append(Field("file", "padding", f"{region.stop - region.start} zero bytes, {where}", False))
        elif region.kind == "unexplained":
            fields.append(Field("file", "data after the audio stream",
                                f"{region.stop - region.start} bytes {where}: {preview(buf, region.start, region.stop)}",
                                True))
        else:
            streams += 1
            label = f"{NAMES[region.kind]} stream {streams}"
            fields.append(Field("file", f"audio stream {streams}",
                                f"another {NAMES[region.kind]} stream of {region.stop - region.start} bytes {where} "
                                "(files joined with cat, or a chained Ogg)", True))
            try:
                inner = module(region.kind).walk(buf, region.parsed)
            except AudioError as exc:
                inner = [Field("file", label, f"unreadable: {exc.reason}", True)]
            fields += [Field(f"{f.container} ({label})", f.field, f.value, f.personal) for f in inner]
    return fields
