"""AIFF/AIFF-C: walk the chunks, rebuild with ``FVER``/``COMM``/``SSND`` only.

Kept: ``COMM`` (channels, frames, sample size, rate, and for AIFF-C the codec, whose
free-text name is blanked), ``SSND`` (samples; its leading offset bytes are dropped) and
``FVER`` (a fixed spec constant AIFF-C requires). Dropped: ``NAME``, ``AUTH``, ``(c) ``,
``ANNO``, ``COMT``, ``MARK``, ``INST``, ``MIDI``, ``AESD``, ``APPL``, ``ID3 ``, ``CHAN``,
``PEAK`` (time of writing) and any unknown chunk.
"""

from __future__ import annotations

import struct

from deid.metadata._common import Chunk, Field, Rebuilt, Span, chunk_name, iff_chunks, malformed, readable
from deid.metadata.id3 import id3v2_fields, id3v2_size

KEEP = (b"FVER", b"COMM", b"SSND")


def _layout(buf: bytes) -> tuple[list[Chunk], int, int, bytes]:
    if len(buf) < 12 or buf[:4] != b"FORM" or buf[8:12] not in (b"AIFF", b"AIFC"):
        raise malformed("not an AIFF file")
    form_end = min(8 + struct.unpack(">I", buf[4:8])[0], len(buf))
    chunks, stop = iff_chunks(buf, 12, form_end, big_endian=True)
    return chunks, stop, form_end, bytes(buf[8:12])


def _extended(raw: bytes) -> float:
    """An 80-bit IEEE 754 extended float (the AIFF sample rate)."""
    exponent = struct.unpack(">H", raw[:2])[0] & 0x7FFF
    mantissa = struct.unpack(">Q", raw[2:10])[0]
    return 0.0 if exponent == 0 and mantissa == 0 else mantissa * 2.0 ** (exponent - 16383 - 63)


def _chunk_fields(buf: bytes, c: Chunk) -> list[Field]:
    name = chunk_name(c.cid)
    if c.cid == b"SSND":
        return [Field("AIFF", name, f"{max(c.size - 8, 0)} bytes of samples", False)]
    body = bytes(buf[c.start:c.start + c.size])
    if c.cid == b"COMM" and len(body) >= 18:
        channels, frames, bits = struct.unpack(">hIh", body[:8])
        codec = f", codec {body[18:22].decode('latin-1')}" if len(body) >= 22 else ""
        fields = [Field("AIFF", name, f"{channels} ch, {frames} frames, {bits}-bit, "
                                      f"{_extended(body[8:18]):g} Hz{codec}", False)]
        if len(body) > 23 and body[22]:
            fields.append(Field("AIFF", "COMM/compression name", readable(body[23:23 + body[22]]), True))
        return fields
    if c.cid == b"FVER":
        return [Field("AIFF", name, f"version {body[:4].hex()}", False)]
    if c.cid == b"ID3 " and id3v2_size(body, 0):
        return id3v2_fields(body, 0, where="AIFF ID3/")
    if c.cid == b"PEAK" and len(body) >= 8:
        stamp = struct.unpack(">I", body[4:8])[0]
        return [Field("AIFF", name, f"peak chunk written at unix time {stamp}", True)]
    return [Field("AIFF", name, readable(body) or f"{c.size} bytes", True)]


def walk(buf: bytes) -> list[Field]:
    """Every chunk of an AIFF file, and any bytes outside the chunk structure."""
    chunks, stop, form_end, _kind = _layout(buf)
    fields = [f for c in chunks for f in _chunk_fields(buf, c)]
    if stop < form_end:
        fields.append(Field("AIFF", "unparsed bytes", readable(bytes(buf[stop:form_end])), True))
    if form_end < len(buf):
        fields.append(Field("AIFF", "bytes after FORM", readable(bytes(buf[form_end:])), True))
    return fields


def rebuild(buf: bytes) -> Rebuilt:
    """``FORM`` + (``FVER``) + ``COMM`` + ``SSND``; the samples copied byte for byte."""
    chunks, _stop, _end, kind = _layout(buf)
    comm = [c for c in chunks if c.cid == b"COMM"]
    ssnd = [c for c in chunks if c.cid == b"SSND"]
    if len(comm) != 1 or len(ssnd) > 1:
        raise malformed(f"AIFF file needs one COMM and at most one SSND chunk, found {len(comm)} and {len(ssnd)}")
    out = Rebuilt()
    body: list[bytes | Span] = []
    if kind == b"AIFC":
        fver = [c for c in chunks if c.cid == b"FVER"]
        version = bytes(buf[fver[0].start:fver[0].start + 4]) if fver else bytes.fromhex("a2805140")
        body.append(b"FVER" + struct.pack(">I", 4) + version)
        out.kept.append("FVER")
    common = bytes(buf[comm[0].start:comm[0].start + comm[0].size])
    # AIFF-C ends COMM with a free-text codec name; it is blanked to an empty Pascal string.
    common = common[:22] + b"\0\0" if kind == b"AIFC" else common[:18]
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
