"""MPEG audio (MP3): walk the frames, drop every tag, neutralise the LAME encoder version.

Kept: the MPEG audio frames, byte for byte, and the Xing/Info frame (a silent frame that
carries the frame count, seek table and the LAME gapless delay/padding that decoders use
to trim the stream to its true length), rebuilt from its fields: bytes its fields do not
explain (its side information, what follows the LAME tag) become zero. Its LAME version
string (e.g. ``LAME3.100``) names the encoder build, so it is replaced by ``LAME`` followed
by spaces; the ``LAME`` prefix stays because decoders only read the delay/padding when they
see it. The tag checksum is recomputed. Dropped: leading ID3v2 and any bytes between frames.

The stream ends at a tag after its frames, at a second Xing/Info frame, or after the number
of frames its Info frame declares: what follows (trailing tags, a second file joined with
``cat``) is another region of the file (see `deid.metadata.layout`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from deid.metadata._common import (RELEASE_BYTES, Field, FieldReader, Rebuilt, Span, malformed, preview, readable,
                                   release, spare_field)
from deid.metadata.id3 import id3v2_fields, id3v2_size, trailing_tags

NEUTRAL_LAME = b"LAME     "
_BITRATES = {  # (version is MPEG-1, layer) -> kbit/s by index
    (True, 1): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_BITRATES[(False, 3)] = _BITRATES[(False, 2)]
_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def frame_length(head: bytes) -> int:
    """Length in bytes of the MPEG audio frame whose 4-byte header is `head`, or 0 if invalid."""
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return 0
    version, layer_bits = (head[1] >> 3) & 3, (head[1] >> 1) & 3
    rate_index, bitrate_index, padding = (head[2] >> 2) & 3, head[2] >> 4, (head[2] >> 1) & 1
    if version == 1 or layer_bits == 0 or rate_index == 3 or bitrate_index in (0, 15):
        return 0  # reserved values, or free format (no length in the header)
    layer = 4 - layer_bits
    mpeg1 = version == 3
    bitrate = _BITRATES[(mpeg1, layer)][bitrate_index] * 1000
    rate = _RATES[version][rate_index]
    if layer == 1:
        return (12 * bitrate // rate + padding) * 4
    return (144 if mpeg1 or layer == 2 else 72) * bitrate // rate + padding


def _sync(buf: bytes, pos: int, end: int) -> int:
    """Next offset at or after `pos` where two consecutive valid frames start, or `end`."""
    while pos < end:
        pos = buf.find(b"\xff", pos, end)
        if pos < 0:
            return end
        length = frame_length(bytes(buf[pos:pos + 4]))
        if length and (pos + length >= end or frame_length(bytes(buf[pos + length:pos + length + 4]))):
            return pos
        pos += 1
    return end


def _xing_offset(frame: bytes) -> int:
    """Where a Xing/Info header would sit in this frame (after the header, CRC and side info)."""
    mpeg1, mono = (frame[1] >> 3) & 3 == 3, (frame[3] >> 6) == 3
    side = (17 if mono else 32) if mpeg1 else (9 if mono else 17)
    return 4 + (0 if frame[1] & 1 else 2) + side


def is_info_frame(frame: bytes) -> bool:
    """Whether this frame is a Xing/Info frame (a silent frame describing the stream)."""
    xing = _xing_offset(frame)
    return frame[xing:xing + 4] in (b"Xing", b"Info")


def _lame_offset(frame: bytes) -> int | None:
    """Offset of the LAME extension inside a Xing/Info frame, or None."""
    if not is_info_frame(frame):
        return None
    xing = _xing_offset(frame)
    (flags,) = struct.unpack(">I", frame[xing + 4:xing + 8])
    pos = xing + 8 + 4 * bool(flags & 1) + 4 * bool(flags & 2) + 100 * bool(flags & 4) + 4 * bool(flags & 8)
    return pos if pos + 36 <= len(frame) else None


def _declared_frames(frame: bytes) -> int | None:
    """The number of audio frames the Info frame says follow it, if it says."""
    xing = _xing_offset(frame)
    (flags,) = struct.unpack(">I", frame[xing + 4:xing + 8])
    return struct.unpack(">I", frame[xing + 8:xing + 12])[0] if flags & 1 else None


def gapless_samples(frame: bytes) -> int | None:
    """The samples an MP3 holds without the encoder's delay and padding, as its first frame's LAME
    Info header declares them (what gapless decoders play), or None without one."""
    if not 0 < frame_length(frame[:4]) <= len(frame) or (frame[1] >> 1) & 3 != 1:
        return None  # not a whole layer III frame: only LAME's layer III frames carry the header
    lame = _lame_offset(frame)  # LAME's layout, whoever wrote it ("LAME", "Lavc" for FFmpeg)
    frames = _declared_frames(frame) if lame is not None else None
    if not frames:
        return None
    delay = (frame[lame + 21] << 4) | (frame[lame + 22] >> 4)
    padding = ((frame[lame + 22] & 0x0F) << 8) | frame[lame + 23]
    per_frame = 1152 if (frame[1] >> 3) & 3 == 3 else 576  # layer III: MPEG-1, else MPEG-2/2.5
    return max(frames * per_frame - delay - padding, 0)


def _crc16(data: bytes) -> int:
    """CRC-16/ARC, which the LAME tag uses for its own checksum."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def canonical_info_frame(frame: bytes) -> tuple[bytes, bytes]:
    """The Xing/Info frame rebuilt from its fields, and the bytes none of them explains.

    Kept: the frame header (and CRC), the Xing fields (frame and byte counts, a seek table that
    only rises, the quality) and a LAME tag whose own checksum proves it one, with its version
    replaced by `NEUTRAL_LAME` and the checksum recomputed. The side information of this
    silent frame, and everything after the tag, become zero.
    """
    head, xing = 4 + (0 if frame[1] & 1 else 2), _xing_offset(frame)
    side = frame[head:xing]
    out = bytearray(frame[:head]) + bytes(len(side))
    r = FieldReader(frame[xing:], what="MP3 Info frame")
    tag, flags = r.take(4), r.int(4)
    extra = side + (struct.pack(">I", flags & ~0xF) if flags & ~0xF else b"")
    flags &= 0xF
    counts = [r.take(4) if flags & bit else b"" for bit in (1, 2)]
    toc = r.take(100) if flags & 4 else b""
    if toc and any(b < a for a, b in zip(toc, toc[1:])):
        extra += toc  # a seek table only rises; this one holds something else
        toc, flags = b"", flags & ~4
    quality = r.take(4) if flags & 8 else b""
    out += tag + struct.pack(">I", flags) + b"".join(counts) + toc + quality
    if r.left >= 36:
        candidate = r.take(36)
        if _crc16(frame[:xing + r.pos - 2]) == int.from_bytes(candidate[34:36], "big"):
            out += NEUTRAL_LAME + candidate[9:34]
            out += struct.pack(">H", _crc16(bytes(out)))
        else:
            extra += candidate
    r.rest()
    return bytes(out + bytes(len(frame) - len(out))), r.spare(extra)


def _main_data_use(frame: bytes) -> tuple[int, int, int] | None:
    """(side-info end, main_data_begin, main data length in bytes) of a Layer III frame."""
    if (frame[1] >> 1) & 3 != 1:
        return None
    mpeg1, channels = (frame[1] >> 3) & 3 == 3, 1 if (frame[3] >> 6) == 3 else 2
    start = 4 + (0 if frame[1] & 1 else 2)
    side = (17 if channels == 1 else 32) if mpeg1 else (9 if channels == 1 else 17)
    bits = int.from_bytes(frame[start:start + side], "big")
    width = side * 8
    if mpeg1:
        begin = bits >> (width - 9)
        pos = 9 + (5 if channels == 1 else 3) + 4 * channels
        granules, per = 2, 59
    else:
        begin = bits >> (width - 8)
        pos = 8 + (1 if channels == 1 else 2)
        granules, per = 1, 63
    used = 0
    for _ in range(granules * channels):
        used += (bits >> (width - pos - 12)) & 0xFFF
        pos += per
    return start + side, begin, (used + 7) // 8


def zero_filler(frames: list[bytearray]) -> None:
    """Zero the bytes of the Layer III bit reservoir that no granule uses.

    LAME fills them with its version string ("LAME3.100UUUU..."); decoders never read
    them, so zeroing changes no decoded sample. A frame's main data may start in earlier
    frames (``main_data_begin``), so usage is tracked over the concatenated main data.
    """
    import numpy as np

    firsts: list[int] = []
    used: list[tuple[int, int]] = []
    stream = 0
    for frame in frames:
        info = _main_data_use(bytes(frame[:40]))
        if info is None:
            return
        first, begin, length = info
        used.append((max(stream - begin, 0), min(stream - begin + length, stream + len(frame) - first)))
        firsts.append(first)
        stream += len(frame) - first
    keep = np.zeros(stream + 1, dtype=np.int32)
    for a, b in used:
        if b > a:
            keep[a] += 1
            keep[b] -= 1
    unused = np.cumsum(keep[:-1]) == 0
    pos = 0
    for frame, first in zip(frames, firsts):
        size = len(frame) - first
        area = np.frombuffer(frame, dtype=np.uint8, offset=first, count=size).copy()
        area[unused[pos:pos + size]] = 0
        frame[first:] = area.tobytes()
        pos += size


def _tag_at(buf: bytes, pos: int) -> bool:
    """Whether a tag starts at `pos` (after the frames of a stream, it ends the stream)."""
    return bool(id3v2_size(buf, pos)) or buf[pos:pos + 3] == b"TAG" or buf[pos:pos + 8] == b"APETAGEX" \
        or buf[pos:pos + 11] == b"LYRICSBEGIN"


@dataclass
class Layout:
    """One MPEG stream: where it starts, its first frame, its frames, the junk between them, its end."""

    start: int
    first: int
    frames: list[tuple[int, int]]
    gaps: list[tuple[int, int]]
    end: int


def _layout(buf: bytes, start: int = 0, stop: int | None = None) -> Layout:
    """The frames of the stream at `start`.

    The stream ends at the first of: a tag after its frames, a second Xing/Info frame, the
    frame count its Info frame declares, or the tags at the end of the region. What follows
    (the second of two files joined with ``cat``) is not part of it.
    """
    stop = len(buf) if stop is None else stop
    first = start
    while id3v2_size(buf, first):
        first += id3v2_size(buf, first)
    _tail, end = trailing_tags(buf, first, stop)
    frames: list[tuple[int, int]] = []
    gaps: list[tuple[int, int]] = []
    declared: int | None = None
    pos = released = first
    while pos < end:
        if pos - released > RELEASE_BYTES:
            release(buf, released, pos - released)
            released = pos
        length = frame_length(bytes(buf[pos:pos + 4]))
        if not length:
            if frames and _tag_at(buf, pos):
                break
            nxt = _sync(buf, pos, end)
            gaps.append((pos, nxt))
            pos = nxt
            continue
        if frames and (is_info_frame(bytes(buf[pos:pos + 40])) or (declared is not None and len(frames) > declared)):
            break
        frames.append((pos, min(pos + length, end)))
        if len(frames) == 1 and is_info_frame(bytes(buf[pos:pos + 40])):
            declared = _declared_frames(bytes(buf[pos:pos + 48]))
        pos += length
    if not frames:
        raise malformed("no MPEG audio frames found")
    stream_stop = frames[-1][1]
    return Layout(start, first, frames, [g for g in gaps if g[0] < stream_stop], stream_stop)


def parse(buf: bytes, start: int, stop: int) -> Layout:
    """The MPEG stream that starts at `start` (see `_layout` for where it ends)."""
    return _layout(buf, start, stop)


def walk(buf: bytes, layout: Layout) -> list[Field]:
    """Tags in front of the stream, the Xing/LAME frame, and anything between frames."""
    fields: list[Field] = []
    pos = layout.start
    while pos < layout.first:
        fields.extend(id3v2_fields(buf, pos))
        pos += id3v2_size(buf, pos)
    first = bytes(buf[layout.frames[0][0]:layout.frames[0][1]])
    lame = _lame_offset(first)
    if lame is not None:
        version = first[lame:lame + 9]
        fields.append(Field("MPEG", "LAME encoder", readable(version) or version.hex(), version != NEUTRAL_LAME))
    if is_info_frame(first):
        fields += spare_field("MPEG", "Xing/Info frame", canonical_info_frame(first)[1])
    fields.append(Field("MPEG", "frames", f"{len(layout.frames)} frames, "
                                          f"{sum(b - a for a, b in layout.frames)} bytes", False))
    for a, b in layout.gaps:
        fields.append(Field("MPEG", "bytes between frames", preview(buf, a, b) or f"{b - a} bytes", True))
    return fields


def rebuild(buf: bytes, layout: Layout, *, zero_reservoir: bool = False) -> Rebuilt:
    """The frames alone, with the Info frame rebuilt from its fields (encoder version neutralised).

    With `zero_reservoir`, unused reservoir bytes are zeroed too (see `zero_filler`); the
    decoded audio stays identical but the frames no longer are, so `strip` leaves it off.
    """
    frames = layout.frames
    out = Rebuilt(kept=["MPEG audio frames (unused reservoir bytes zeroed)" if zero_reservoir
                        else "MPEG audio frames"])
    first = bytes(buf[frames[0][0]:frames[0][1]])
    audio = frames
    if is_info_frame(first):
        out.pieces.append(canonical_info_frame(first)[0])
        out.kept.append("Xing/Info frame (rebuilt, LAME version neutralised)")
        audio = frames[1:]
    if zero_reservoir:
        body = [bytearray(buf[a:b]) for a, b in audio]
        zero_filler(body)
        out.pieces.append(b"".join(body))
    else:
        for a, b in audio:
            last = out.pieces[-1] if out.pieces else None
            if isinstance(last, Span) and last.stop == a:
                out.pieces[-1] = Span(last.start, b)
            else:
                out.pieces.append(Span(a, b))
    out.audio_bytes = sum(b - a for a, b in audio)
    out.dropped = (["ID3v2"] if layout.first > layout.start else []) + (["bytes between frames"] if layout.gaps else [])
    return out
