"""AIFF/AIFF-C: walk the chunks, rebuild with ``FVER``/``COMM``/``SSND`` only.

Kept: ``COMM`` (channels, frames, sample size, rate, and for AIFF-C the codec, whose
free-text name is blanked), ``SSND`` (samples; its leading offset bytes are dropped) and
``FVER`` (a fixed spec constant AIFF-C requires). ``COMM`` and ``FVER`` are written back from
their fields, never copied. Dropped: ``NAME``, ``AUTH``, ``(c) ``,
``ANNO``, ``COMT``, ``MARK``, ``INST``, ``MIDI``, ``AESD``, ``APPL``, ``ID3 ``, ``CHAN``,
``PEAK`` (time of writing) and any unknown chunk.
"""

from __future__ import annotations

import struct

from deid.errors import AudioError
from deid.metadata._common import (Chunk, Field, FieldReader, IffLayout, Rebuilt, Span, check_audio_chunk,
                                   check_format, chunk_name, iff_layout, malformed, preview, readable, spare_field)
from deid.metadata.id3 import id3v2_fields, id3v2_size

KEEP = (b"FVER", b"COMM", b"SSND")
#: The one AIFF-C format version there is (the spec's timestamp of May 1990).
FVER = bytes.fromhex("a2805140")
#: AIFF-C compression types libsndfile reads; anything else is refused rather than copied.
_CODECS = {b"NONE", b"sowt", b"twos", b"raw ", b"in24", b"in32", b"42ni", b"23ni", b"fl32", b"FL32", b"fl64",
           b"FL64", b"alaw", b"ALAW", b"ulaw", b"ULAW", b"ima4", b"GSM ", b"DWVW"}


def _layout(buf: bytes, start: int = 0, stop: int | None = None) -> tuple[list[Chunk], int, int, bytes]:
    """Chunks, where parsing stopped, where the FORM chunk ends (see `iff_layout`), and its kind."""
    stop = len(buf) if stop is None else stop
    if stop - start < 12 or buf[start:start + 4] != b"FORM" or buf[start + 8:start + 12] not in (b"AIFF", b"AIFC"):
        raise malformed("not an AIFF file")
    return (*iff_layout(buf, start, stop, big_endian=True), bytes(buf[start + 8:start + 12]))


def parse(buf: bytes, start: int, stop: int) -> IffLayout:
    """The AIFF file that starts at `start`; its ``end`` is where its FORM chunk ends."""
    return IffLayout(*_layout(buf, start, stop))


def _extended(raw: bytes) -> float:
    """An 80-bit IEEE 754 extended float (the AIFF sample rate)."""
    exponent = struct.unpack(">H", raw[:2])[0] & 0x7FFF
    mantissa = struct.unpack(">Q", raw[2:10])[0]
    return 0.0 if exponent == 0 and mantissa == 0 else mantissa * 2.0 ** (exponent - 16383 - 63)


def _to_extended(value: int) -> bytes:
    """A whole number as an 80-bit extended float, normalised (the top mantissa bit set)."""
    if value <= 0:
        return bytes(10)
    shift = 64 - value.bit_length()
    return struct.pack(">HQ", 16383 + 63 - shift, value << shift)


def _canonical_comm(payload: bytes, kind: bytes) -> tuple[bytes, bytes]:
    """``COMM`` rebuilt from its fields (the rate as the whole number decoders use), and the bytes set aside.

    An AIFF-C codec name is free text; it becomes an empty Pascal string.
    """
    r = FieldReader(payload, what="AIFF COMM chunk")
    channels, frames, bits, raw_rate = r.int(2, signed=True), r.int(4), r.int(2, signed=True), r.take(10)
    rate = round(_extended(raw_rate))
    extra = raw_rate if _to_extended(rate) != raw_rate else b""
    body = struct.pack(">hIh", channels, frames, bits) + _to_extended(rate)
    if kind == b"AIFC":
        codec = r.take(4)
        if codec not in _CODECS:
            raise malformed(f"AIFF-C codec {codec.decode('latin-1')!r} is not one deid can vouch for")
        body += codec + b"\0\0"
        if r.left:
            r.take(min(r.left, 1 + r.data[r.pos]))  # the codec name: reported on its own, never kept
    r.rest()
    return body, r.spare(extra)


def _chunk_fields(buf: bytes, c: Chunk, kind: bytes) -> list[Field]:
    name = chunk_name(c.cid)
    if c.cid == b"SSND":
        return [Field("AIFF", name, f"{max(c.size - 8, 0)} bytes of samples", False)]
    if c.cid not in (b"COMM", b"FVER", b"ID3 ", b"PEAK"):
        return [Field("AIFF", name, preview(buf, c.start, c.start + c.size) or f"{c.size} bytes", True)]
    body = bytes(buf[c.start:c.start + c.size])
    if c.cid == b"COMM" and len(body) >= 18:
        channels, frames, bits = struct.unpack(">hIh", body[:8])
        codec = f", codec {body[18:22].decode('latin-1')}" if len(body) >= 22 else ""
        fields = [Field("AIFF", name, f"{channels} ch, {frames} frames, {bits}-bit, "
                                      f"{_extended(body[8:18]):g} Hz{codec}", False)]
        if len(body) > 23 and body[22]:
            fields.append(Field("AIFF", "COMM/compression name", readable(body[23:23 + body[22]]), True))
        try:
            fields += spare_field("AIFF", name, _canonical_comm(body, kind)[1])
        except AudioError as exc:
            fields.append(Field("AIFF", f"{name} (not rebuildable)", exc.reason, True))
        return fields
    if c.cid == b"FVER":
        return [Field("AIFF", name, f"version {body[:4].hex()}", False)] + spare_field(
            "AIFF", name, body if body != FVER else b"")
    if c.cid == b"ID3 " and id3v2_size(body, 0):
        return id3v2_fields(body, 0, where="AIFF ID3/")
    if c.cid == b"PEAK" and len(body) >= 8:
        stamp = struct.unpack(">I", body[4:8])[0]
        return [Field("AIFF", name, f"peak chunk written at unix time {stamp}", True)]
    return [Field("AIFF", name, readable(body) or f"{c.size} bytes", True)]


def walk(buf: bytes, layout: IffLayout) -> list[Field]:
    """Every chunk of a parsed AIFF file, and any bytes outside the chunk structure."""
    fields = [f for c in layout.chunks for f in _chunk_fields(buf, c, layout.kind)]
    if layout.parsed < layout.end:
        fields.append(Field("AIFF", "unparsed bytes", preview(buf, layout.parsed, layout.end), True))
    return fields


def check(buf: bytes, layout: IffLayout) -> None:
    """Refuse an AIFF file whose format fields no recording has, or whose audio is shorter than declared."""
    comm = next((c for c in layout.chunks if c.cid == b"COMM"), None)
    if comm is None or comm.size < 18:
        raise malformed("AIFF file has no complete COMM chunk")
    channels, _frames, bits = struct.unpack(">hIh", buf[comm.start:comm.start + 8])
    # AIFF-C codecs may leave the sample size to the codec.
    check_format(channels, _extended(bytes(buf[comm.start + 8:comm.start + 18])),
                 bits if layout.kind == b"AIFF" else None, what="AIFF COMM chunk")
    check_audio_chunk(layout, b"SSND")


def rebuild(buf: bytes, layout: IffLayout) -> Rebuilt:
    """``FORM`` + (``FVER``) + ``COMM`` + ``SSND``; the samples copied byte for byte."""
    chunks, kind = layout.chunks, layout.kind
    comm = [c for c in chunks if c.cid == b"COMM"]
    ssnd = [c for c in chunks if c.cid == b"SSND"]
    if len(comm) != 1 or len(ssnd) > 1:
        raise malformed(f"AIFF file needs one COMM and at most one SSND chunk, found {len(comm)} and {len(ssnd)}")
    out = Rebuilt()
    body: list[bytes | Span] = []
    if kind == b"AIFC":
        body.append(b"FVER" + struct.pack(">I", 4) + FVER)
        out.kept.append("FVER")
    common, _spare = _canonical_comm(bytes(buf[comm[0].start:comm[0].start + comm[0].size]), kind)
    body.append(b"COMM" + struct.pack(">I", len(common)) + common)
    out.kept.append("COMM")
    if ssnd:
        c = ssnd[0]
        offset = struct.unpack(">I", buf[c.start:c.start + 4])[0] if c.size >= 8 else 0
        start = min(c.start + 8 + offset, c.start + c.size)
        size = c.start + c.size - start
        body += [b"SSND" + struct.pack(">III", size + 8, 0, 0), Span(start, start + size)]
        body += [b"\0"] if size & 1 else []
        out.kept.append("SSND")
        out.audio_bytes = size
    out.dropped = [chunk_name(c.cid) for c in chunks if c.cid not in KEEP]
    total = 4 + sum(len(p) if isinstance(p, bytes) else p.stop - p.start for p in body)
    out.pieces = [b"FORM" + struct.pack(">I", total) + kind, *body]
    return out
