"""FLAC: walk the metadata blocks and the frames, rebuild with ``STREAMINFO`` and ``SEEKTABLE`` only.

Kept: ``STREAMINFO`` (rate, channels, bit depth, length, MD5 of the audio) and ``SEEKTABLE``
(frame offsets, which stay valid because they count from the first frame), both written back
from their fields and checked against the frames: the block and frame sizes and the sample
count are the ones the frames have, and only seek points that land on a real frame are kept.
Dropped: ``VORBIS_COMMENT`` (tags and the encoder's vendor string), ``PICTURE``,
``APPLICATION`` (``flac --keep-foreign-metadata`` stores the whole original WAV/AIFF header
there), ``CUESHEET``, ``PADDING`` and reserved blocks, plus ID3v2 in front, which some taggers
add against the spec. The frames are copied byte for byte.

The stream ends after its last frame: frames are found by their header (sync code, CRC-8 and
a frame number that follows the previous one), and the last one's end by its CRC-16. Whatever
follows (tags, a second FLAC file joined with ``cat``) is another region of the file.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from deid.errors import AudioError
from deid.metadata._common import (RELEASE_BYTES, Field, FieldReader, Rebuilt, Span, is_blank, malformed, preview,
                                   readable, release, spare_field)
from deid.metadata.id3 import id3v2_fields, id3v2_size
from deid.metadata.pictures import flac_picture_fields
from deid.metadata.vorbis_comment import comment_fields

KEEP = (0, 3)
_NAMES = {0: "STREAMINFO", 1: "PADDING", 2: "APPLICATION", 3: "SEEKTABLE", 4: "VORBIS_COMMENT",
          5: "CUESHEET", 6: "PICTURE"}
_BLOCK_SIZES = {1: 192, 2: 576, 3: 1152, 4: 2304, 5: 4608, **{n: 256 << (n - 8) for n in range(8, 16)}}
_DEPTHS = {1: 8, 2: 12, 4: 16, 5: 20, 6: 24, 7: 32}
_PLACEHOLDER = 0xFFFFFFFFFFFFFFFF
#: What may begin right after the last frame: tags, padding, or another file. The last frame's
#: CRC-16 is checked at each of these offsets, so its end is found without decoding it.
_NEXT = (b"fLaC", b"ID3", b"TAG", b"APETAGEX", b"LYRICSBEGIN", b"OggS", b"RIFF", b"FORM")


def _table(poly: int, width: int) -> tuple[int, ...]:
    top, mask = 1 << (width - 1), (1 << width) - 1
    table = []
    for byte in range(256):
        crc = byte << (width - 8)
        for _ in range(8):
            crc = ((crc << 1) ^ poly if crc & top else crc << 1) & mask
        table.append(crc)
    return tuple(table)


_CRC8, _CRC16 = _table(0x07, 8), _table(0x8005, 16)


def _crc8(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc = _CRC8[crc ^ byte]
    return crc


@dataclass(frozen=True)
class Header:
    """One frame header: its number (frame or sample), block size, length and stream parameters."""

    number: int
    block: int
    length: int
    params: tuple[int, int, int, int]  # blocking strategy, rate code, channel count, depth code


def frame_header(buf: bytes, pos: int) -> Header | None:
    """The frame header at `pos`, or None unless it is a valid one (checked with its CRC-8)."""
    head = bytes(buf[pos:pos + 16])
    if len(head) < 6 or head[0] != 0xFF or head[1] & 0xFE != 0xF8:
        return None
    block_code, rate_code = head[2] >> 4, head[2] & 15
    channels, depth, reserved = head[3] >> 4, (head[3] >> 1) & 7, head[3] & 1
    if block_code == 0 or rate_code == 15 or channels > 10 or depth == 3 or reserved:
        return None
    first = head[4]
    for extra, (low, high) in enumerate(((0x00, 0x80), (0xC0, 0xE0), (0xE0, 0xF0), (0xF0, 0xF8), (0xF8, 0xFC),
                                         (0xFC, 0xFE), (0xFE, 0xFF))):
        if low <= first < high:
            break
    else:
        return None
    number = first & (0x7F >> extra) if extra else first
    pos_in = 5
    for _ in range(extra):
        if pos_in >= len(head) or head[pos_in] & 0xC0 != 0x80:
            return None
        number = (number << 6) | (head[pos_in] & 0x3F)
        pos_in += 1
    if block_code in (6, 7):
        size = block_code - 5
        block = int.from_bytes(head[pos_in:pos_in + size], "big") + 1
        pos_in += size
    else:
        block = _BLOCK_SIZES[block_code]
    pos_in += {12: 1, 13: 2, 14: 2}.get(rate_code, 0)
    if pos_in >= len(head) or _crc8(head[:pos_in]) != head[pos_in]:
        return None
    # Stereo frames may each choose their own decorrelation (codes 8-10): only the count is kept.
    return Header(number, block, pos_in + 1, (head[1] & 1, rate_code, channels + 1 if channels < 8 else 2, depth))


@dataclass
class Frames:
    """The frames of one stream: where each starts, its block size, the end of the last one."""

    starts: list[int]
    blocks: list[int]
    end: int
    verified: bool  # the last frame's CRC-16 matched at `end`
    samples: int


def _bound(header: Header, channels: int, depth: int) -> int:
    """Most bytes a frame of this block size can take (twice the verbatim size, to be generous)."""
    return 2 * header.block * channels * (depth + 1) // 8 + 1024


def _frames(buf: bytes, first: int, stop: int, depth: int) -> Frames:
    """Walk the frames of the stream whose first frame is at `first`, up to `stop` at most.

    `depth` is STREAMINFO's bit depth, for frames that do not state their own.
    """
    header = frame_header(buf, first)
    if header is None or first >= stop:
        return Frames([], [], stop, first == stop, 0)
    fixed = header.params[0] == 0
    pattern = bytes([0xFF, 0xF8 | header.params[0]])
    channels = header.params[2]
    depth = _DEPTHS.get(header.params[3], depth)
    starts, blocks = [first], [header.block]
    nominal = header.block
    pos, current = first, header
    released = first
    while True:
        if pos - released > RELEASE_BYTES:
            release(buf, released, pos - released)
            released = pos
        want = current.number + 1 if fixed else current.number + current.block
        limit = min(stop, pos + _bound(current, channels, depth))
        found = None
        candidate = buf.find(pattern, pos + current.length, limit)
        while candidate >= 0:
            nxt = frame_header(buf, candidate)
            if nxt is not None and nxt.number == want and nxt.params == header.params:
                found = nxt
                break
            candidate = buf.find(pattern, candidate + 1, limit)
        if found is None:
            break
        starts.append(candidate)
        blocks.append(found.block)
        pos, current = candidate, found
    samples = (current.number * nominal if fixed else current.number) + current.block
    end, verified = _last_frame_end(buf, pos, min(stop, pos + _bound(current, channels, depth)), stop)
    return Frames(starts, blocks, end, verified, samples)


def _last_frame_end(buf: bytes, start: int, limit: int, stop: int) -> tuple[int, bool]:
    """Where the frame at `start` ends: the first plausible offset at which its CRC-16 matches.

    Without a match the frame is damaged (a cut file) or followed by bytes that say nothing of
    what they are; it is then taken to run to `stop`, unverified.
    """
    candidates = {stop} if stop <= limit else set()
    for magic in _NEXT:
        found = buf.find(magic, start + 4, limit)
        while found >= 0:
            candidates.add(found)
            found = buf.find(magic, found + 1, limit)
    tail = bytes(buf[start:limit]).rstrip(b"\0")
    if start + len(tail) < limit:
        candidates.add(start + len(tail))  # zero padding after the last frame
    crc, pos = 0, start
    table = _CRC16
    for end in sorted(c for c in candidates if c >= start + 6):
        for byte in bytes(buf[pos:end - 2]):
            crc = ((crc << 8) & 0xFFFF) ^ table[(crc >> 8) ^ byte]
        pos = end - 2
        if crc == int.from_bytes(buf[end - 2:end], "big"):
            return end, True
    return stop, False


@dataclass
class Layout:
    """A FLAC stream: leading tags, metadata blocks (type, payload start, length), frames."""

    magic: int
    blocks: list[tuple[int, int, int]]
    first_frame: int
    frames: Frames
    start: int = 0

    @property
    def end(self) -> int:
        """Where the stream ends: after its last frame."""
        return self.frames.end


def _layout(buf: bytes, start: int = 0, stop: int | None = None) -> Layout:
    stop = len(buf) if stop is None else stop
    pos = start
    while id3v2_size(buf, pos):
        pos += id3v2_size(buf, pos)
    magic = pos
    if buf[pos:pos + 4] != b"fLaC":
        raise malformed("not a FLAC file")
    pos += 4
    blocks: list[tuple[int, int, int]] = []
    while True:
        if pos + 4 > stop:
            raise malformed("FLAC metadata is truncated")
        head = buf[pos]
        length = int.from_bytes(buf[pos + 1:pos + 4], "big")
        if pos + 4 + length > stop:
            raise malformed(f"FLAC {_NAMES.get(head & 0x7F, 'block')} is truncated")
        blocks.append((head & 0x7F, pos + 4, length))
        pos += 4 + length
        if head & 0x80:
            break
    if not blocks or blocks[0][0] != 0 or blocks[0][2] < 34:
        raise malformed("FLAC file does not start with STREAMINFO")
    info = _streaminfo(bytes(buf[blocks[0][1]:blocks[0][1] + 34]))
    return Layout(magic, blocks, pos, _frames(buf, pos, stop, info["depth"]), start)


def parse(buf: bytes, start: int, stop: int) -> Layout:
    """The FLAC stream that starts at `start`: its blocks and frames; it ends after its last frame."""
    return _layout(buf, start, stop)


def _streaminfo(body: bytes) -> dict[str, int]:
    bits = int.from_bytes(body[10:18], "big")
    return {"min_block": int.from_bytes(body[0:2], "big"), "max_block": int.from_bytes(body[2:4], "big"),
            "min_frame": int.from_bytes(body[4:7], "big"), "max_frame": int.from_bytes(body[7:10], "big"),
            "rate": bits >> 44, "channels": ((bits >> 41) & 7) + 1, "depth": ((bits >> 36) & 31) + 1,
            "total": bits & (2**36 - 1)}


def _check_total(info: dict[str, int], frames: Frames) -> None:
    if info["total"] and frames.samples != info["total"]:
        raise malformed(f"its STREAMINFO declares {info['total']} samples but its frames hold {frames.samples} "
                        "(a cut file, or a header that lies)")


def check(buf: bytes, layout: Layout) -> None:
    """Refuse a FLAC stream that is cut or lies about its length: its last frame does not end
    where its CRC says, or STREAMINFO declares another number of samples than the frames hold."""
    if not layout.frames.verified:
        raise malformed("truncated or damaged: its last FLAC frame is incomplete or followed by bytes deid cannot "
                        "explain (a cut or altered file), so where its audio ends is unknown")
    _check_total(_streaminfo(bytes(buf[layout.blocks[0][1]:layout.blocks[0][1] + 34])), layout.frames)


def _canonical_streaminfo(body: bytes, layout: Layout) -> tuple[bytes, bytes]:
    """STREAMINFO rebuilt from its fields, checked against the frames; and the bytes it does not explain.

    Frame sizes that are neither unknown (0) nor the frames' own are replaced by the measured
    ones; a sample count that is neither unknown nor the frames' is refused: the file is cut,
    or its header lies about its length.
    """
    r = FieldReader(body, what="FLAC STREAMINFO")
    head, md5 = r.take(18), r.take(16)
    r.rest()
    info = _streaminfo(head)
    frames = layout.frames
    _check_total(info, frames)
    sizes = [b - a for a, b in zip(frames.starts, frames.starts[1:] + [frames.end])]
    measured = {"min_block": min(frames.blocks[:-1] or frames.blocks, default=0),
                "max_block": max(frames.blocks, default=0),
                "min_frame": min(sizes, default=0), "max_frame": max(sizes, default=0)}
    extra = b""
    for name in ("min_frame", "max_frame"):
        if info[name] not in (0, measured[name]):
            extra += info[name].to_bytes(3, "big")
            info[name] = measured[name]
    others = frames.blocks[:-1]
    if others and not (info["min_block"] <= min(others) and max(frames.blocks) <= info["max_block"]):
        extra += head[:4]
        info["min_block"], info["max_block"] = measured["min_block"], measured["max_block"]
    packed = ((info["rate"] << 44) | ((info["channels"] - 1) << 41) | ((info["depth"] - 1) << 36) | info["total"])
    out = (info["min_block"].to_bytes(2, "big") + info["max_block"].to_bytes(2, "big")
           + info["min_frame"].to_bytes(3, "big") + info["max_frame"].to_bytes(3, "big") + packed.to_bytes(8, "big"))
    return out + md5, r.spare(extra)


def _canonical_seektable(body: bytes, layout: Layout) -> tuple[bytes, bytes]:
    """The seek points that land on a real frame (placeholders kept), and what the others held."""
    frames = layout.frames
    first_samples: dict[int, tuple[int, int]] = {}
    sample = 0
    for start, block in zip(frames.starts, frames.blocks):
        first_samples[start - layout.first_frame] = (sample, block)
        sample += block
    kept, dropped = bytearray(), bytearray()
    for pos in range(0, len(body) - len(body) % 18, 18):
        number, offset, count = struct.unpack(">QQH", body[pos:pos + 18])
        if number == _PLACEHOLDER:
            kept += struct.pack(">QQH", _PLACEHOLDER, 0, 0)
            dropped += body[pos + 8:pos + 18]
        elif first_samples.get(offset) == (number, count):
            kept += body[pos:pos + 18]
        else:
            dropped += body[pos:pos + 18]
    dropped += body[len(body) - len(body) % 18:]
    return bytes(kept), bytes(dropped) if dropped.strip(b"\0") else b""


def _block_fields(buf: bytes, kind: int, start: int, length: int, layout: Layout) -> list[Field]:
    name = _NAMES.get(kind, f"reserved block {kind}")
    if kind in (1, 2, 5) and length > 4096:
        return [Field("FLAC", name, preview(buf, start, start + length), not (kind == 1 and is_blank(
            bytes(buf[start:start + length]))))]
    body = bytes(buf[start:start + length])
    if kind == 0:
        info = _streaminfo(body)
        fields = [Field("FLAC", name, f"{info['rate']} Hz, {info['channels']} ch, {info['depth']}-bit, "
                                      f"{info['total']} samples", False)]
        try:
            fields += spare_field("FLAC", name, _canonical_streaminfo(body, layout)[1])
        except AudioError as exc:  # a cut file or a false length: a fault, not a leak; strip refuses it
            fields.append(Field("FLAC", f"{name} (disagrees with the frames)", exc.reason, False))
        return fields
    if kind == 3:
        return [Field("FLAC", name, f"{length // 18} seek points", False)] + spare_field(
            "FLAC", name, _canonical_seektable(body, layout)[1])
    if kind == 1:
        return [Field("FLAC", name, f"{length} bytes" if is_blank(body) else readable(body), not is_blank(body))]
    if kind == 4:
        fields, _ = comment_fields("FLAC", body, where="VORBIS_COMMENT/")
        return fields or [Field("FLAC", name, "empty", True)]
    if kind == 6:
        return flac_picture_fields("FLAC", name, body)
    if kind == 2:
        return [Field("FLAC", f"{name} {body[:4].decode('latin-1')!r}", readable(body[4:]), True)]
    return [Field("FLAC", name, readable(body) or f"{length} bytes", True)]


def walk(buf: bytes, layout: Layout) -> list[Field]:
    """Every metadata block of a parsed FLAC stream, the tags in front, the frames."""
    fields: list[Field] = []
    pos = layout.start
    while pos < layout.magic:
        fields.extend(id3v2_fields(buf, pos, where="FLAC leading "))
        pos += id3v2_size(buf, pos)
    for kind, block_start, length in layout.blocks:
        fields.extend(_block_fields(buf, kind, block_start, length, layout))
    frames = layout.frames
    fields.append(Field("FLAC", "frames", f"{len(frames.starts)} frames, {frames.samples} samples, "
                                          f"{frames.end - layout.first_frame} bytes", False))
    if not frames.verified:
        last = frames.starts[-1] if frames.starts else layout.first_frame
        fields.append(Field("FLAC", "last frame", f"damaged, or followed by bytes deid cannot explain "
                                                  f"({frames.end - last} bytes from byte {last}): "
                                                  f"{preview(buf, last, frames.end)}", True))
    return fields


def rebuild(buf: bytes, layout: Layout) -> Rebuilt:
    """``fLaC`` + ``STREAMINFO`` + ``SEEKTABLE``, rebuilt; the frames copied byte for byte."""
    check(buf, layout)
    frames = layout.frames
    out = Rebuilt(pieces=[b"fLaC"])
    kept: list[tuple[int, bytes]] = []
    for kind, block_start, length in layout.blocks:
        body = bytes(buf[block_start:block_start + length])
        if kind == 0 and not kept:
            kept.append((0, _canonical_streaminfo(body, layout)[0]))
        elif kind == 3 and all(k != 3 for k, _ in kept):
            table = _canonical_seektable(body, layout)[0]
            if table:
                kept.append((3, table))
    for i, (kind, body) in enumerate(kept):
        last = 0x80 if i == len(kept) - 1 else 0
        out.pieces.append(struct.pack(">B", kind | last) + len(body).to_bytes(3, "big") + body)
        out.kept.append(_NAMES[kind])
    out.pieces.append(Span(layout.first_frame, frames.end))
    out.dropped = [_NAMES.get(k, f"reserved block {k}") for k, _, _ in layout.blocks if k not in KEEP]
    out.dropped += ["leading ID3v2"] if layout.magic > layout.start else []
    out.audio_bytes = frames.end - layout.first_frame
    return out

