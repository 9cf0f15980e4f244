"""The MP4 boxes strip keeps, each written back from its parsed fields.

Every function takes a box's payload and returns ``(payload, spare)``: the payload rebuilt
from the fields the box defines, and the bytes of the original that none of them explains
(reserved fields, trailing bytes, descriptors and boxes deid does not keep), which ``inspect``
reports and ``strip`` never writes. Dates become zero and languages ``und``; tables are
bounded by the bytes that hold them before anything is allocated.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from deid.metadata._common import FieldReader, malformed

_UND = struct.pack(">H", ((ord("u") - 0x60) << 10) | ((ord("n") - 0x60) << 5) | (ord("d") - 0x60))
#: Brands that name a file format (ISO, Apple, 3GPP, DASH); any other four bytes are not kept.
BRANDS = {b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"iso7", b"iso8", b"iso9", b"mp41", b"mp42",
          b"mp71", b"M4A ", b"M4B ", b"M4P ", b"M4V ", b"avc1", b"dash", b"3gp4", b"3gp5", b"3gp6", b"3gp7",
          b"3gp8", b"3gp9", b"3g2a", b"3g2b", b"3g2c", b"qt  ", b"mmp4", b"MSNV", b"caqv", b"f4a ", b"F4A ",
          b"cmfc", b"cmfs", b"ndas"}
#: Sample groups an audio track may need: AAC's pre-roll and roll recovery.
ROLL_GROUPS = (b"roll", b"prol")
#: Audio sample entries strip can rebuild, with the box each needs to decode.
CODECS = {b"mp4a": b"esds", b"alac": b"alac"}


def box(kind: bytes, body: bytes) -> bytes:
    """An MP4 box (a 64-bit size when the body needs it)."""
    if len(body) + 8 <= 0xFFFFFFFF:
        return struct.pack(">I", 8 + len(body)) + kind + body
    return struct.pack(">I4sQ", 1, kind, 16 + len(body)) + body


def _full(r: FieldReader) -> tuple[int, int]:
    """Version and flags of a full box."""
    return r.int(1), r.int(3)


def _flags_spare(flags: int, allowed: int = 0) -> bytes:
    return (flags & ~allowed).to_bytes(3, "big") if flags & ~allowed else b""


def table(r: FieldReader, entry: int, what: str) -> tuple[int, bytes]:
    """An entry count and that many `entry`-byte entries, refused if the box cannot hold them."""
    count = r.int(4)
    if count * entry > r.left:
        raise malformed(f"MP4 {what} declares {count} entries; its {r.left} bytes hold {r.left // entry}")
    return count, r.take(count * entry)


def ftyp(payload: bytes) -> tuple[bytes, bytes]:
    r = FieldReader(payload, what="MP4 ftyp")
    major, minor = r.take(4), r.take(4)
    brands = [r.take(4) for _ in range(r.left // 4)]
    r.rest()
    unknown = b"".join(b for b in [major, *brands] if b not in BRANDS)
    kept = [b for b in dict.fromkeys(brands) if b in BRANDS]
    return (major if major in BRANDS else b"isom") + minor + b"".join(kept), r.spare(unknown)


def mvhd(payload: bytes) -> tuple[bytes, bytes]:
    r = FieldReader(payload, what="MP4 mvhd")
    version, flags = _full(r)
    width = 8 if version == 1 else 4
    r.take(2 * width)  # creation and modification dates: zeroed
    timescale, duration = r.int(4), r.take(width)
    rate, volume = r.take(4), r.take(2)
    r.reserved(10)
    matrix = r.take(36)
    r.reserved(24)
    next_track = r.take(4)
    r.rest()
    body = bytes([version]) + bytes(3) + bytes(2 * width) + struct.pack(">I", timescale) + duration + rate + volume
    return body + bytes(10) + matrix + bytes(24) + next_track, r.spare(_flags_spare(flags))


def tkhd(payload: bytes) -> tuple[bytes, bytes]:
    r = FieldReader(payload, what="MP4 tkhd")
    version, flags = _full(r)
    width = 8 if version == 1 else 4
    r.take(2 * width)
    track = r.take(4)
    r.reserved(4)
    duration = r.take(width)
    r.reserved(8)
    layer, group, volume = r.take(2), r.take(2), r.take(2)
    r.reserved(2)
    matrix, size = r.take(36), r.take(8)
    r.rest()
    body = bytes([version]) + (flags & 0xF).to_bytes(3, "big") + bytes(2 * width) + track + bytes(4) + duration
    return body + bytes(8) + layer + group + volume + bytes(2) + matrix + size, r.spare(_flags_spare(flags, 0xF))


def mdhd(payload: bytes) -> tuple[bytes, bytes]:
    r = FieldReader(payload, what="MP4 mdhd")
    version, flags = _full(r)
    width = 8 if version == 1 else 4
    r.take(2 * width)
    timescale, duration = r.take(4), r.take(width)
    r.take(2)  # the language: becomes 'und'
    r.reserved(2)
    r.rest()
    return bytes([version]) + bytes(3) + bytes(2 * width) + timescale + duration + _UND + bytes(2), r.spare(
        _flags_spare(flags))


def hdlr(payload: bytes) -> tuple[bytes, bytes]:
    """A sound handler with an empty name (the name is free text and is reported on its own)."""
    r = FieldReader(payload, what="MP4 hdlr")
    _version, flags = _full(r)
    r.reserved(4)
    handler = r.take(4)
    r.reserved(12)
    return bytes(8) + handler + bytes(12) + b"\0", r.spare(_flags_spare(flags))


def smhd(payload: bytes) -> tuple[bytes, bytes]:
    r = FieldReader(payload, what="MP4 smhd")
    _version, flags = _full(r)
    balance = r.take(2)
    r.reserved(2)
    r.rest()
    return bytes(4) + balance + bytes(2), r.spare(_flags_spare(flags))


def dref(payload: bytes) -> tuple[bytes, bytes]:
    """One self-contained data reference: the samples are in this file."""
    r = FieldReader(payload, what="MP4 dref")
    _version, flags = _full(r)
    count = r.int(4)
    spare = bytearray(_flags_spare(flags))
    for _ in range(min(count, r.left // 12)):
        size, kind, entry_flags = r.int(4), r.take(4), r.int(4)
        rest = r.take(max(size - 12, 0))
        if not entry_flags & 1 or rest:
            raise malformed("MP4 file refers to media outside itself (dref)")
        spare += kind if kind != b"url " else b""
    r.rest()
    return bytes(4) + struct.pack(">I", 1) + box(b"url ", struct.pack(">I", 1)), r.spare(bytes(spare))


def elst(payload: bytes) -> tuple[bytes, bytes]:
    r = FieldReader(payload, what="MP4 elst")
    version, flags = _full(r)
    count, entries = table(r, 20 if version == 1 else 12, "edit list")
    r.rest()
    return bytes([version]) + bytes(3) + struct.pack(">I", count) + entries, r.spare(_flags_spare(flags))


def _sample_table(entry: int, what: str, *, versions: tuple[int, ...] = (0,)) -> Callable[[bytes], tuple[bytes, bytes]]:
    def rebuild(payload: bytes) -> tuple[bytes, bytes]:
        r = FieldReader(payload, what=f"MP4 {what}")
        version, flags = _full(r)
        if version not in versions:
            raise malformed(f"MP4 {what} of version {version}")
        count, entries = table(r, entry, what)
        r.rest()
        return bytes([version]) + bytes(3) + struct.pack(">I", count) + entries, r.spare(_flags_spare(flags))

    return rebuild


stts = _sample_table(8, "stts")
ctts = _sample_table(8, "ctts", versions=(0, 1))
stss = _sample_table(4, "stss")
stsc = _sample_table(12, "stsc")
stco = _sample_table(4, "stco")
co64 = _sample_table(8, "co64")


def stsz(payload: bytes) -> tuple[bytes, bytes]:
    r = FieldReader(payload, what="MP4 stsz")
    _version, flags = _full(r)
    uniform = r.int(4)
    if uniform:
        count = r.int(4)
        entries = b""
    else:
        count, entries = table(r, 4, "stsz")
    r.rest()
    return bytes(4) + struct.pack(">II", uniform, count) + entries, r.spare(_flags_spare(flags))


def sgpd(payload: bytes) -> tuple[bytes, bytes] | None:
    """A roll or pre-roll sample group description (AAC needs them); None for any other group."""
    r = FieldReader(payload, what="MP4 sgpd")
    version, flags = _full(r)
    grouping = r.take(4)
    if grouping not in ROLL_GROUPS:
        return None
    default = r.int(4) if version >= 1 else 2
    count = r.int(4)
    entries = bytearray()
    for _ in range(min(count, r.left // 2)):
        length = r.int(4) if version == 1 and default == 0 else default
        if length != 2:
            raise malformed(f"MP4 {grouping.decode()} sample group entry of {length} bytes")
        entries += r.take(2)
    if len(entries) != 2 * count:
        raise malformed(f"MP4 sgpd declares {count} entries; its bytes hold {len(entries) // 2}")
    r.rest()
    head = bytes([version]) + bytes(3) + grouping + (struct.pack(">I", 2) if version >= 1 else b"")
    return head + struct.pack(">I", count) + bytes(entries), r.spare(_flags_spare(flags))


def sbgp(payload: bytes) -> tuple[bytes, bytes, bytes]:
    """A sample-to-group table, its grouping type, and the bytes set aside."""
    r = FieldReader(payload, what="MP4 sbgp")
    version, flags = _full(r)
    grouping = r.take(4)
    parameter = r.take(4) if version == 1 else b""
    count, entries = table(r, 8, "sbgp")
    r.rest()
    body = bytes([version]) + bytes(3) + grouping + parameter + struct.pack(">I", count) + entries
    return body, grouping, r.spare(_flags_spare(flags))


def sample_entry_header(payload: bytes) -> int:
    """Bytes of an audio sample entry before its child boxes (QuickTime versions 1 and 2 add fields)."""
    if len(payload) < 28:
        raise malformed("MP4 audio sample entry is truncated")
    version = int.from_bytes(payload[8:10], "big")
    return 28 + {1: 16, 2: 36}.get(version, 0)


def sample_entry(kind: bytes, payload: bytes, children: dict[bytes, bytes]) -> tuple[bytes, bytes]:
    """An ISO audio sample entry (version 0) with only the box its codec needs (and ``btrt``).

    `children` maps each child box type to its payload (``esds`` may come from a QuickTime
    ``wave`` box). The vendor, compression and packet fields become zero.
    """
    if kind not in CODECS:
        raise malformed(f"MP4 sound track in codec {kind.decode('latin-1')!r}; strip handles AAC (mp4a) and ALAC")
    r = FieldReader(payload, what=f"MP4 {kind.decode()} sample entry")
    r.reserved(6)
    reference = r.int(2)
    version = r.int(2)
    r.reserved(6)  # revision and vendor
    channels, depth = r.int(2), r.int(2)
    r.reserved(4)  # compression id and packet size
    rate = r.int(4)
    if version == 1:
        r.reserved(16)
    elif version == 2:
        r.reserved(4)
        rate = round(struct.unpack(">d", r.take(8))[0]) << 16
        channels = r.int(4)
        r.reserved(20)
        rate = rate if rate <= 0xFFFFFFFF else 0
    if reference != 1:
        raise malformed(f"MP4 sample entry points at data reference {reference}")
    body = bytes(6) + struct.pack(">H", 1) + bytes(8) + struct.pack(">HHHHI", min(channels, 0xFFFF), depth, 0, 0, rate)
    needed = CODECS[kind]
    if needed not in children:
        raise malformed(f"MP4 {kind.decode()} sample entry without its {needed.decode()} box")
    inner, spare = (esds if needed == b"esds" else alac)(children[needed])
    body += box(needed, inner)
    if b"btrt" in children:
        rates, more = btrt(children[b"btrt"])
        body += box(b"btrt", rates)
        spare += more
    return body, r.spare(spare)


def btrt(payload: bytes) -> tuple[bytes, bytes]:
    r = FieldReader(payload, what="MP4 btrt")
    fields = r.take(12)
    r.rest()
    return fields, r.spare()


def alac(payload: bytes) -> tuple[bytes, bytes]:
    """The ALAC decoder configuration: 24 bytes of numbers (frame length, depth, rate...)."""
    r = FieldReader(payload, what="MP4 alac")
    _version, flags = _full(r)
    config = r.take(24)
    r.rest()
    return bytes(4) + config, r.spare(_flags_spare(flags))


def _descriptor(r: FieldReader) -> tuple[int, bytes]:
    """One MPEG-4 descriptor: its tag and body (lengths use 7 bits a byte)."""
    tag = r.int(1)
    length = 0
    for _ in range(4):
        byte = r.int(1)
        length = (length << 7) | (byte & 0x7F)
        if not byte & 0x80:
            break
    return tag, r.take(length)


def _pack_descriptor(tag: int, body: bytes) -> bytes:
    length = len(body)
    return bytes([tag, 0x80 | (length >> 21) & 0x7F, 0x80 | (length >> 14) & 0x7F, 0x80 | (length >> 7) & 0x7F,
                  length & 0x7F]) + body


def esds(payload: bytes) -> tuple[bytes, bytes]:
    """The elementary stream descriptor: stream id, codec, buffer and bit rates, decoder config.

    Dropped: a URL, stream dependencies, OCR references, profile descriptors and anything
    else an ES descriptor may carry.
    """
    r = FieldReader(payload, what="MP4 esds")
    _version, flags = _full(r)
    spare = bytearray(_flags_spare(flags))
    tag, es = _descriptor(r)
    r.rest()
    if tag != 3:
        raise malformed("MP4 esds without an ES descriptor")
    e = FieldReader(es, what="MP4 ES descriptor")
    es_id, es_flags = e.take(2), e.int(1)
    if es_flags & 0x80:
        spare += e.take(2)
    if es_flags & 0x40:
        spare += e.take(e.int(1))
    if es_flags & 0x20:
        spare += e.take(2)
    config = decoder_info = None
    while e.left:
        sub, body = _descriptor(e)
        if sub == 4 and config is None:
            d = FieldReader(body, what="MP4 decoder config")
            config = d.take(13)
            while d.left:
                inner, data = _descriptor(d)
                if inner == 5 and decoder_info is None:
                    decoder_info = data
                else:
                    spare += data
        elif sub != 6:
            spare += body
    if config is None or decoder_info is None:
        raise malformed("MP4 esds without a decoder configuration")
    decoder = _pack_descriptor(4, config + _pack_descriptor(5, decoder_info))
    return bytes(4) + _pack_descriptor(3, es_id + bytes([es_flags & 0x1F]) + decoder + _pack_descriptor(6, b"\x02")), \
        r.spare(bytes(spare))
