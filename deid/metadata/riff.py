"""RIFF/WAVE: walk the chunks, render what they say, rebuild with ``fmt ``/``fact``/``data`` only.

Kept: ``fmt `` (how to read the samples), ``fact`` (sample count, required for non-PCM
codecs) and ``data`` (the samples). ``fmt `` and ``fact`` are written back from their parsed
fields, so bytes hidden in an extension or after the sample count are not carried over.
Everything else is dropped: ``LIST`` (INFO tags and ``adtl`` marker labels), ``bext``,
``iXML``, ``_PMX`` (XMP), ``cart``, ``cue ``, ``id3 ``, ``PEAK`` (libsndfile stamps the time
of writing into it), ``smpl``/``inst``/``acid``, padding (``JUNK``/``PAD ``, which editors
reuse as scratch space), and any chunk deid does not know.
"""

from __future__ import annotations

import struct

from deid.errors import AudioError
from deid.metadata._common import (Chunk, Field, FieldReader, IffLayout, Rebuilt, Span, check_audio_chunk,
                                   check_format, chunk_name, iff_chunks, iff_layout, is_blank, malformed, preview,
                                   readable, spare_field)
from deid.metadata.id3 import id3v2_fields, id3v2_size

KEEP = (b"fmt ", b"fact", b"data")
_PADDING = (b"JUNK", b"junk", b"PAD ", b"pad ", b"FLLR", b"filr")
_FORMATS = {1: "PCM", 2: "MS ADPCM", 3: "IEEE float", 6: "A-law", 7: "µ-law", 0x11: "IMA ADPCM", 0x31: "GSM 6.10",
            0xFFFE: "extensible"}
#: Codecs whose samples are fixed-size frames: the sample count follows from the data size.
_PCM_LIKE = (1, 3, 6, 7)
#: The 14 bytes that end every KSDATAFORMAT_SUBTYPE GUID of a WAVE_FORMAT_EXTENSIBLE header.
_GUID_TAIL = bytes.fromhex("000000001000800000aa00389b71")
#: The seven predictor pairs every MS ADPCM file carries (the codec's fixed table).
_MS_ADPCM = ((256, 0), (512, -256), (0, 0), (192, 64), (240, 0), (460, -208), (392, -232))
_BEXT = (("Description", 0, 256), ("Originator", 256, 32), ("OriginatorReference", 288, 32),
         ("OriginationDate", 320, 10), ("OriginationTime", 330, 8))


def _layout(buf: bytes, start: int = 0, stop: int | None = None) -> tuple[list[Chunk], int, int]:
    """The chunks, where parsing stopped, and where the RIFF chunk ends (see `iff_layout`)."""
    stop = len(buf) if stop is None else stop
    if stop - start < 12 or buf[start:start + 4] != b"RIFF" or buf[start + 8:start + 12] != b"WAVE":
        raise malformed("not a RIFF/WAVE file")
    return iff_layout(buf, start, stop, big_endian=False)


def parse(buf: bytes, start: int, stop: int) -> IffLayout:
    """The WAV file that starts at `start`; its ``end`` is where its RIFF chunk ends."""
    return IffLayout(*_layout(buf, start, stop), b"WAVE")


def _canonical_fmt(payload: bytes) -> tuple[bytes, bytes, int]:
    """The ``fmt `` payload rebuilt from its fields, the bytes they do not explain, and the format tag."""
    r = FieldReader(payload, little=True, what="WAV fmt chunk")
    tag, channels, rate, byte_rate, align, bits = r.int(2), r.int(2), r.int(4), r.int(4), r.int(2), r.int(2)
    sub = tag
    extension = b""
    if tag == 0xFFFE:
        r.int(2)  # cbSize: 22, written below
        valid, mask, guid = r.int(2), r.int(4), r.take(16)
        sub = int.from_bytes(guid[:2], "little")
        if guid[2:] != _GUID_TAIL or sub not in _PCM_LIKE:
            raise malformed(f"WAV extensible format with sub-format {guid.hex()}, which deid does not know")
        extension = struct.pack("<HHI", 22, valid, mask) + guid
    elif tag in _PCM_LIKE:
        if r.left >= 2:
            r.reserved(2)  # cbSize: 0 for these codecs; anything after it is not theirs
    elif tag in (0x11, 0x31):  # IMA ADPCM, GSM 6.10: cbSize 2, samples per block
        r.int(2)
        extension = struct.pack("<HH", 2, r.int(2))
    elif tag == 2:
        r.int(2)
        per_block, count = r.int(2), r.int(2)
        pairs = tuple((r.int(2, signed=True), r.int(2, signed=True)) for _ in range(min(count, 7)))
        if count != 7 or pairs != _MS_ADPCM:
            raise malformed("MS ADPCM WAV with a non-standard coefficient table")
        extension = struct.pack("<HHH", 32, per_block, 7) + b"".join(struct.pack("<hh", *p) for p in pairs)
    else:
        raise malformed(f"WAV codec {tag:#06x}: deid cannot tell its format fields from hidden bytes")
    r.rest()
    spare = b""
    if sub in _PCM_LIKE:
        # Block align and byte rate follow from the other fields; other values say nothing a
        # decoder uses, so they are rebuilt and what they held is reported.
        expected = channels * ((bits + 7) // 8)
        if align != expected or byte_rate != rate * expected:
            spare = struct.pack("<IH", byte_rate, align)
        align, byte_rate = expected, rate * expected
    body = struct.pack("<HHIIHH", tag, channels, rate, byte_rate, align, bits)
    if tag in (6, 7):
        body += b"\0\0"  # WAVEFORMATEX: these codecs carry an empty extension
    return body + extension, r.spare(spare), sub


def _canonical_fact(payload: bytes, codec: int, data_size: int, align: int) -> tuple[bytes, bytes]:
    """``fact`` rebuilt: the sample count (computed for fixed-size samples), and the bytes set aside."""
    r = FieldReader(payload, little=True, what="WAV fact chunk")
    count = r.int(4)
    r.rest()
    extra = b""
    if codec in _PCM_LIKE and align:
        computed = data_size // align
        extra = struct.pack("<I", count) if count != computed else b""
        count = computed
    return struct.pack("<I", count), r.spare(extra)


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


def _chunk_fields(buf: bytes, c: Chunk, chunks: list[Chunk]) -> list[Field]:
    name = chunk_name(c.cid)
    if c.cid == b"data":
        truncated = ", truncated" if c.size < c.declared else ""
        return [Field("RIFF", name, f"{c.size} bytes of samples{truncated}", False)]
    if c.cid not in (b"fmt ", b"fact", b"LIST", b"id3 ", b"ID3 ", b"bext", b"cue ", b"PEAK") + _PADDING:
        return [Field("RIFF", name, preview(buf, c.start, c.start + c.size) or f"{c.size} bytes", True)]
    body = bytes(buf[c.start:c.start + c.size])
    if c.cid == b"fmt ":
        fields = [Field("RIFF", name, _fmt_text(body), False)]
        try:
            fields += spare_field("RIFF", name, _canonical_fmt(body)[1])
        except (AudioError, struct.error) as exc:
            fields.append(Field("RIFF", f"{name} (not rebuildable)", str(exc), True))
        return fields
    if c.cid == b"fact":
        count = struct.unpack("<I", body[:4])[0] if len(body) >= 4 else 0
        fields = [Field("RIFF", name, f"{count} samples per channel", False)]
        fmt_chunk, data = _first(chunks, b"fmt "), _first(chunks, b"data")
        try:
            fmt, _spare, codec = _canonical_fmt(bytes(buf[fmt_chunk.start:fmt_chunk.start + fmt_chunk.size]))
            align = struct.unpack("<H", fmt[12:14])[0]
            fields += spare_field("RIFF", name, _canonical_fact(body, codec, data.size if data else 0, align)[1])
        except (AttributeError, AudioError, struct.error):  # no fmt chunk, or one deid cannot rebuild
            fields += spare_field("RIFF", name, body[4:])
        return fields
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


def _first(chunks: list[Chunk], cid: bytes) -> Chunk | None:
    return next((c for c in chunks if c.cid == cid), None)


def walk(buf: bytes, layout: IffLayout) -> list[Field]:
    """Every chunk of a parsed WAV file, and any bytes outside the chunk structure."""
    fields = [f for c in layout.chunks for f in _chunk_fields(buf, c, layout.chunks)]
    if layout.parsed < layout.end:
        fields.append(Field("RIFF", "unparsed bytes", preview(buf, layout.parsed, layout.end), True))
    return fields


def check(buf: bytes, layout: IffLayout) -> None:
    """Refuse a WAV file whose format fields no recording has, or whose audio is shorter than declared."""
    fmt = _first(layout.chunks, b"fmt ")
    if fmt is None or fmt.size < 16:
        raise malformed("WAV file has no complete 'fmt ' chunk")
    tag, channels, rate, _byte_rate, _align, bits = struct.unpack("<HHIIHH", buf[fmt.start:fmt.start + 16])
    check_format(channels, rate, bits if tag in (*_PCM_LIKE, 0xFFFE) else None, what="WAV fmt chunk")
    check_audio_chunk(layout, b"data")


def rebuild(buf: bytes, layout: IffLayout) -> Rebuilt:
    """``RIFF`` + ``fmt `` + ``fact`` (if present) + ``data``; the samples copied byte for byte."""
    chunks = layout.chunks
    by_id: dict[bytes, list[Chunk]] = {}
    for c in chunks:
        by_id.setdefault(c.cid, []).append(c)
    for cid in (b"fmt ", b"data"):
        if len(by_id.get(cid, [])) != 1:
            raise malformed(f"WAV file needs exactly one {chunk_name(cid)!r} chunk, found {len(by_id.get(cid, []))}")
    out = Rebuilt()
    fmt_chunk, data = by_id[b"fmt "][0], by_id[b"data"][0]
    fmt, _spare, codec = _canonical_fmt(bytes(buf[fmt_chunk.start:fmt_chunk.start + fmt_chunk.size]))
    body: list[bytes | Span] = [b"fmt " + struct.pack("<I", len(fmt)) + fmt]
    out.kept.append("fmt ")
    for c in by_id.get(b"fact", [])[:1]:
        align = struct.unpack("<H", fmt[12:14])[0]
        fact, _spare = _canonical_fact(bytes(buf[c.start:c.start + c.size]), codec, data.size, align)
        body.append(b"fact" + struct.pack("<I", len(fact)) + fact)
        out.kept.append("fact")
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
