"""RIFF/WAVE: walk the chunks, render what they say, rebuild with ``fmt ``/``fact``/``data`` only.

Kept: ``fmt `` (how to read the samples), ``fact`` (sample count, required for non-PCM
codecs) and ``data`` (the samples). Everything else is dropped: ``LIST`` (INFO tags and
``adtl`` marker labels), ``bext``, ``iXML``, ``_PMX`` (XMP), ``cart``, ``cue ``, ``id3 ``,
``PEAK`` (libsndfile stamps the time of writing into it), ``smpl``/``inst``/``acid``, padding
(``JUNK``/``PAD ``, which editors reuse as scratch space), and any chunk deid does not know.
"""

from __future__ import annotations

import struct

from deid.metadata._common import Chunk, Field, Rebuilt, Span, chunk_name, iff_chunks, is_blank, malformed, readable
from deid.metadata.id3 import id3v2_fields, id3v2_size

KEEP = (b"fmt ", b"fact", b"data")
_PADDING = (b"JUNK", b"junk", b"PAD ", b"pad ", b"FLLR", b"filr")
_FORMATS = {1: "PCM", 3: "IEEE float", 6: "A-law", 7: "µ-law", 0xFFFE: "extensible"}
_BEXT = (("Description", 0, 256), ("Originator", 256, 32), ("OriginatorReference", 288, 32),
         ("OriginationDate", 320, 10), ("OriginationTime", 330, 8))


def _layout(buf: bytes) -> tuple[list[Chunk], int, int]:
    if len(buf) < 12 or buf[:4] != b"RIFF" or buf[8:12] != b"WAVE":
        raise malformed("not a RIFF/WAVE file")
    riff_end = min(8 + struct.unpack("<I", buf[4:8])[0], len(buf))
    chunks, stop = iff_chunks(buf, 12, riff_end, big_endian=False)
    return chunks, stop, riff_end


def _fmt_text(payload: bytes) -> str:
    if len(payload) < 16:
        return f"<{len(payload)} bytes, too short>"
    tag, channels, rate, _bps, _align, bits = struct.unpack("<HHIIHH", payload[:16])
    return f"{_FORMATS.get(tag, hex(tag))}, {bits}-bit, {channels} ch, {rate} Hz"


def _list_fields(payload: bytes) -> list[Field]:
    kind = payload[:4].decode("latin-1")
    sub, _ = iff_chunks(payload, 4, len(payload), big_endian=False)
    fields: list[Field] = []
    for c in sub:
        body = payload[c.start:c.start + c.size]
        name = f"LIST/{kind}/{chunk_name(c.cid)}"
        if kind == "adtl" and c.cid in (b"labl", b"note") and len(body) >= 4:
            cue = struct.unpack("<I", body[:4])[0]
            fields.append(Field("RIFF", f"{name} (cue {cue})", readable(body[4:]), True))
        elif kind == "adtl" and c.cid == b"ltxt" and len(body) >= 20:
            fields.append(Field("RIFF", name, readable(body[20:]) or f"{len(body)} bytes", True))
        else:
            fields.append(Field("RIFF", name, readable(body), True))
    return fields or [Field("RIFF", f"LIST/{kind}", f"{len(payload)} bytes", True)]


def _chunk_fields(buf: bytes, c: Chunk) -> list[Field]:
    body = bytes(buf[c.start:c.start + c.size]) if c.cid != b"data" else b""
    name = chunk_name(c.cid)
    if c.cid == b"fmt ":
        return [Field("RIFF", name, _fmt_text(body), False)]
    if c.cid == b"fact":
        count = struct.unpack("<I", body[:4])[0] if len(body) >= 4 else 0
        return [Field("RIFF", name, f"{count} samples per channel", False)]
    if c.cid == b"data":
        truncated = ", truncated" if c.size < c.declared else ""
        return [Field("RIFF", name, f"{c.size} bytes of samples{truncated}", False)]
    if c.cid in _PADDING and is_blank(body):
        return [Field("RIFF", name, f"{c.size} zero bytes of padding", False)]
    if c.cid == b"LIST" and len(body) >= 4:
        return _list_fields(body)
    if c.cid in (b"id3 ", b"ID3 ") and id3v2_size(body, 0):
        return id3v2_fields(body, 0, where="RIFF id3/")
    if c.cid == b"bext" and len(body) >= 348:
        fields = [Field("RIFF", f"bext/{key}", readable(body[o:o + n]), True)
                  for key, o, n in _BEXT if body[o:o + n].strip(b"\0 ")]
        if body[348:412].strip(b"\0"):
            fields.append(Field("RIFF", "bext/UMID", body[348:412].hex(), True))
        if len(body) > 602 and body[602:].strip(b"\0"):
            fields.append(Field("RIFF", "bext/CodingHistory", readable(body[602:]), True))
        return fields or [Field("RIFF", "bext", f"{c.size} bytes", True)]
    if c.cid == b"cue " and len(body) >= 4:
        return [Field("RIFF", name, f"{struct.unpack('<I', body[:4])[0]} cue points", True)]
    if c.cid == b"PEAK" and len(body) >= 8:
        stamp = struct.unpack("<I", body[4:8])[0]
        return [Field("RIFF", name, f"peak chunk written at unix time {stamp}", True)]
    return [Field("RIFF", name, readable(body) or f"{c.size} bytes", True)]


def walk(buf: bytes) -> list[Field]:
    """Every chunk of a WAV file, and any bytes outside the chunk structure."""
    chunks, stop, riff_end = _layout(buf)
    fields = [f for c in chunks for f in _chunk_fields(buf, c)]
    if stop < riff_end:
        fields.append(Field("RIFF", "unparsed bytes", readable(bytes(buf[stop:riff_end])), True))
    if riff_end < len(buf):
        fields.append(Field("RIFF", "bytes after RIFF", readable(bytes(buf[riff_end:])), True))
    return fields


def rebuild(buf: bytes) -> Rebuilt:
    """``RIFF`` + ``fmt `` + ``fact`` (if present) + ``data``; the samples copied byte for byte."""
    chunks, _stop, _riff_end = _layout(buf)
    by_id: dict[bytes, list[Chunk]] = {}
    for c in chunks:
        by_id.setdefault(c.cid, []).append(c)
    for cid in (b"fmt ", b"data"):
        if len(by_id.get(cid, [])) != 1:
            raise malformed(f"WAV file needs exactly one {chunk_name(cid)!r} chunk, found {len(by_id.get(cid, []))}")
    out = Rebuilt()
    body: list[bytes | Span] = []
    for cid in (b"fmt ", b"fact"):
        for c in by_id.get(cid, [])[:1]:
            payload = bytes(buf[c.start:c.start + c.size])
            body += [cid + struct.pack("<I", len(payload)) + payload + b"\0" * (len(payload) & 1)]
            out.kept.append(chunk_name(cid))
    data = by_id[b"data"][0]
    body += [b"data" + struct.pack("<I", data.size), Span(data.start, data.start + data.size)]
    body += [b"\0"] if data.size & 1 else []
    out.kept.append("data")
    out.audio_bytes = data.size
    out.dropped = [chunk_name(c.cid) for c in chunks if c.cid not in KEEP or c is not by_id[c.cid][0]]
    total = 4 + sum(len(p) if isinstance(p, bytes) else p.stop - p.start for p in body)
    if total > 0xFFFFFFFF:
        raise malformed("WAV output would exceed 4 GiB; RIFF cannot hold it")
    out.pieces = [b"RIFF" + struct.pack("<I", total) + b"WAVE", *body]
    return out
