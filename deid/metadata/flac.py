"""FLAC: walk the metadata blocks, rebuild with ``STREAMINFO`` and ``SEEKTABLE`` only.

Kept: ``STREAMINFO`` (rate, channels, bit depth, length, MD5 of the audio: all needed or
derived from the samples) and ``SEEKTABLE`` (frame offsets, which stay valid because they
count from the first frame). Dropped: ``VORBIS_COMMENT`` (tags and the encoder's vendor
string), ``PICTURE``, ``APPLICATION`` (``flac --keep-foreign-metadata`` stores the whole
original WAV/AIFF header there), ``CUESHEET``, ``PADDING`` and reserved blocks, plus ID3v2
in front and ID3v1/APEv2 behind, which some taggers add against the spec.
The frames are copied byte for byte.
"""

from __future__ import annotations

import struct

from deid.metadata._common import Field, Rebuilt, Span, is_blank, malformed, readable
from deid.metadata.id3 import id3v2_fields, id3v2_size, trailing_tags
from deid.metadata.pictures import flac_picture_fields
from deid.metadata.vorbis_comment import comment_fields

KEEP = (0, 3)
_NAMES = {0: "STREAMINFO", 1: "PADDING", 2: "APPLICATION", 3: "SEEKTABLE", 4: "VORBIS_COMMENT",
          5: "CUESHEET", 6: "PICTURE"}


def _layout(buf: bytes) -> tuple[int, list[tuple[int, int, int]], int]:
    """Start of ``fLaC``, the blocks as (type, payload start, length), and the first frame's offset."""
    pos = 0
    while id3v2_size(buf, pos):
        pos += id3v2_size(buf, pos)
    magic = pos
    if buf[pos:pos + 4] != b"fLaC":
        raise malformed("not a FLAC file")
    pos += 4
    blocks: list[tuple[int, int, int]] = []
    while True:
        if pos + 4 > len(buf):
            raise malformed("FLAC metadata is truncated")
        head = buf[pos]
        length = int.from_bytes(buf[pos + 1:pos + 4], "big")
        if pos + 4 + length > len(buf):
            raise malformed(f"FLAC {_NAMES.get(head & 0x7F, 'block')} is truncated")
        blocks.append((head & 0x7F, pos + 4, length))
        pos += 4 + length
        if head & 0x80:
            return magic, blocks, pos


def _block_fields(buf: bytes, kind: int, start: int, length: int) -> list[Field]:
    name = _NAMES.get(kind, f"reserved block {kind}")
    body = bytes(buf[start:start + length])
    if kind == 0 and length >= 18:
        bits = int.from_bytes(body[10:18], "big")
        rate, channels, depth, total = bits >> 44, ((bits >> 41) & 7) + 1, ((bits >> 36) & 31) + 1, bits & (2**36 - 1)
        return [Field("FLAC", name, f"{rate} Hz, {channels} ch, {depth}-bit, {total} samples", False)]
    if kind == 3:
        return [Field("FLAC", name, f"{length // 18} seek points", False)]
    if kind == 1:
        return [Field("FLAC", name, f"{length} bytes" if is_blank(body) else readable(body), not is_blank(body))]
    if kind == 4:
        fields, _ = comment_fields("FLAC", body, where="VORBIS_COMMENT/")
        return fields or [Field("FLAC", name, "empty", True)]
    if kind == 6:
        return flac_picture_fields("FLAC", name, body)
    if kind == 2:
        return [Field("FLAC", f"{name} {body[:4].decode('latin-1')!r}", readable(body[4:]), True)]
    if kind == 5:
        return [Field("FLAC", name, readable(body) or f"{length} bytes", True)]
    return [Field("FLAC", name, readable(body) or f"{length} bytes", True)]


def walk(buf: bytes) -> list[Field]:
    """Every metadata block of a FLAC file, and the tags around it."""
    magic, blocks, frames = _layout(buf)
    fields: list[Field] = []
    pos = 0
    while pos < magic:
        fields.extend(id3v2_fields(buf, pos, where="FLAC leading "))
        pos += id3v2_size(buf, pos)
    for kind, start, length in blocks:
        fields.extend(_block_fields(buf, kind, start, length))
    tail, end = trailing_tags(buf, frames, len(buf), where="FLAC trailing ")
    fields.append(Field("FLAC", "frames", f"{end - frames} bytes of audio frames", False))
    return fields + tail


def rebuild(buf: bytes) -> Rebuilt:
    """``fLaC`` + ``STREAMINFO`` + ``SEEKTABLE``; the frames copied byte for byte."""
    _magic, blocks, frames = _layout(buf)
    if not blocks or blocks[0][0] != 0:
        raise malformed("FLAC file does not start with STREAMINFO")
    _tail, end = trailing_tags(buf, frames, len(buf))
    kept = [b for b in blocks if b[0] in KEEP]
    out = Rebuilt(pieces=[b"fLaC"])
    for i, (kind, start, length) in enumerate(kept):
        last = 0x80 if i == len(kept) - 1 else 0
        out.pieces.append(struct.pack(">B", kind | last) + length.to_bytes(3, "big") + bytes(buf[start:start + length]))
        out.kept.append(_NAMES[kind])
    out.pieces.append(Span(frames, end))
    out.dropped = [_NAMES.get(k, f"reserved block {k}") for k, _, _ in blocks if k not in KEEP]
    out.dropped += ["leading ID3v2"] if _magic else []
    out.dropped += ["trailing tags"] if end < len(buf) else []
    out.audio_bytes = end - frames
    return out
