"""MPEG audio (MP3): walk the frames, drop every tag, neutralise the LAME encoder version.

Kept: the MPEG audio frames, byte for byte, and the Xing/Info frame (a silent frame that
carries the frame count, seek table and the LAME gapless delay/padding that decoders use
to trim the stream to its true length). Its LAME version string (e.g. ``LAME3.100``) names
the encoder build, so it is replaced by ``LAME`` followed by spaces; the ``LAME`` prefix
stays because decoders only read the delay/padding when they see it. The tag checksum is
recomputed. Dropped: leading ID3v2, trailing ID3v1/TAG+, APEv2, Lyrics3 and appended ID3v2,
and any bytes between frames.
"""

from __future__ import annotations

import struct

from deid.metadata._common import Field, Rebuilt, Span, malformed, readable
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
        nxt = bytes(buf[pos:end]).find(b"\xff")
        if nxt < 0:
            return end
        pos += nxt
        length = frame_length(bytes(buf[pos:pos + 4]))
        if length and (pos + length >= end or frame_length(bytes(buf[pos + length:pos + length + 4]))):
            return pos
        pos += 1
    return end


def _lame_offset(frame: bytes) -> int | None:
    """Offset of the LAME extension inside a Xing/Info frame, or None."""
    mpeg1, mono = (frame[1] >> 3) & 3 == 3, (frame[3] >> 6) == 3
    side = (17 if mono else 32) if mpeg1 else (9 if mono else 17)
    xing = 4 + (0 if frame[1] & 1 else 2) + side
    if frame[xing:xing + 4] not in (b"Xing", b"Info"):
        return None
    (flags,) = struct.unpack(">I", frame[xing + 4:xing + 8])
    pos = xing + 8 + 4 * bool(flags & 1) + 4 * bool(flags & 2) + 100 * bool(flags & 4) + 4 * bool(flags & 8)
    return pos if pos + 36 <= len(frame) else None


def _crc16(data: bytes) -> int:
    """CRC-16/ARC, which the LAME tag uses for its own checksum."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def neutral_info_frame(frame: bytes) -> bytes:
    """The Xing/Info frame with its encoder version replaced and its tag CRC recomputed."""
    lame = _lame_offset(frame)
    if lame is None or frame[lame:lame + 9] == NEUTRAL_LAME:
        return frame
    out = bytearray(frame)
    out[lame:lame + 9] = NEUTRAL_LAME
    out[lame + 34:lame + 36] = struct.pack(">H", _crc16(bytes(out[:lame + 34])))
    return bytes(out)


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


def _layout(buf: bytes) -> tuple[int, list[tuple[int, int]], list[tuple[int, int]], int]:
    """Leading tag end, frame spans, gaps between frames, and where trailing tags begin."""
    start = 0
    while id3v2_size(buf, start):
        start += id3v2_size(buf, start)
    _tail, end = trailing_tags(buf, start, len(buf))
    frames: list[tuple[int, int]] = []
    gaps: list[tuple[int, int]] = []
    pos = start
    while pos < end:
        length = frame_length(bytes(buf[pos:pos + 4]))
        if not length:
            nxt = _sync(buf, pos, end)
            gaps.append((pos, nxt))
            pos = nxt
            continue
        frames.append((pos, min(pos + length, end)))
        pos += length
    if not frames:
        raise malformed("no MPEG audio frames found")
    return start, frames, gaps, end


def walk(buf: bytes) -> list[Field]:
    """Tags around the stream, the Xing/LAME frame, and anything between frames."""
    start, frames, gaps, end = _layout(buf)
    fields: list[Field] = []
    pos = 0
    while pos < start:
        fields.extend(id3v2_fields(buf, pos))
        pos += id3v2_size(buf, pos)
    first = bytes(buf[frames[0][0]:frames[0][1]])
    lame = _lame_offset(first)
    if lame is not None:
        version = first[lame:lame + 9]
        fields.append(Field("MPEG", "LAME encoder", readable(version) or version.hex(), version != NEUTRAL_LAME))
    fields.append(Field("MPEG", "frames", f"{len(frames)} frames, {sum(b - a for a, b in frames)} bytes", False))
    for a, b in gaps:
        fields.append(Field("MPEG", "bytes between frames", readable(bytes(buf[a:b])) or f"{b - a} bytes", True))
    tail, _ = trailing_tags(buf, start, len(buf))
    return fields + tail


def rebuild(buf: bytes, *, zero_reservoir: bool = False) -> Rebuilt:
    """The frames alone, with the Info frame's encoder version neutralised.

    With `zero_reservoir`, unused reservoir bytes are zeroed too (see `zero_filler`); the
    decoded audio stays identical but the frames no longer are, so `strip` leaves it off.
    """
    start, frames, gaps, end = _layout(buf)
    if zero_reservoir:
        return _rebuild_zeroed(buf, start, frames, gaps, end)
    out = Rebuilt(kept=["MPEG audio frames"])
    first = bytes(buf[frames[0][0]:frames[0][1]])
    spans = frames
    if _lame_offset(first) is not None:
        out.pieces.append(neutral_info_frame(first))
        out.kept.append("Xing/Info frame (LAME version neutralised)")
        spans = frames[1:]
    run_start = None
    prev_stop = None
    for a, b in spans:
        if run_start is None:
            run_start = a
        elif a != prev_stop:
            out.pieces.append(Span(run_start, prev_stop))
            run_start = a
        prev_stop = b
    if run_start is not None:
        out.pieces.append(Span(run_start, prev_stop))
    out.audio_bytes = sum(b - a for a, b in spans)
    out.dropped = (["ID3v2"] if start else []) + (["trailing tags"] if end < len(buf) else [])
    out.dropped += ["bytes between frames"] if gaps else []
    return out


def _rebuild_zeroed(buf: bytes, start: int, frames: list[tuple[int, int]], gaps: list[tuple[int, int]],
                    end: int) -> Rebuilt:
    out = Rebuilt(kept=["MPEG audio frames (unused reservoir bytes zeroed)"])
    first = bytes(buf[frames[0][0]:frames[0][1]])
    audio = frames
    if _lame_offset(first) is not None:
        out.pieces.append(neutral_info_frame(first))
        out.kept.append("Xing/Info frame (LAME version neutralised)")
        audio = frames[1:]
    body = [bytearray(buf[a:b]) for a, b in audio]
    zero_filler(body)
    out.pieces.append(b"".join(body))
    out.audio_bytes = sum(len(f) for f in body)
    out.dropped = (["ID3v2"] if start else []) + (["trailing tags"] if end < len(buf) else [])
    out.dropped += ["bytes between frames"] if gaps else []
    return out
