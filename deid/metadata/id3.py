"""Hand-parsed ID3v2, ID3v1, APEv2 and Lyrics3 tags.

These tags sit in front of or behind MP3 streams, inside WAV ``id3 `` and AIFF ``ID3 ``
chunks, and (against the spec, but often) around FLAC files. Every byte of them is
metadata, so the walker only needs to find their extent and render their content; the
parser is deliberately independent of mutagen so that verification does not share a
blind spot with the tools it checks.
"""

from __future__ import annotations

import struct
import zlib

from deid.metadata._common import Field, readable, shorten
from deid.metadata.pictures import picture_fields, picture_type

_ENCODINGS = {0: "latin-1", 1: "utf-16", 2: "utf-16-be", 3: "utf-8"}


def _syncsafe(b: bytes) -> int:
    return (b[0] << 21) | (b[1] << 14) | (b[2] << 7) | b[3]


def id3v2_size(buf: bytes, pos: int) -> int:
    """Total length of the ID3v2 tag starting at `pos` (header, body and footer), or 0."""
    head = bytes(buf[pos:pos + 10])
    if len(head) < 10 or head[:3] != b"ID3" or head[3] == 0xFF or any(b & 0x80 for b in head[6:10]):
        return 0
    return 10 + _syncsafe(head[6:10]) + (10 if head[3] >= 4 and head[5] & 0x10 else 0)


def _split(data: bytes, enc: int) -> tuple[bytes, bytes]:
    """Split at the first terminator of encoding `enc` (two aligned NULs for UTF-16)."""
    if enc in (1, 2):
        for i in range(0, len(data) - 1, 2):
            if data[i:i + 2] == b"\0\0":
                return data[:i], data[i + 2:]
        return data, b""
    head, _, tail = data.partition(b"\0")
    return head, tail


def _text(data: bytes, enc: int) -> str:
    codec = _ENCODINGS.get(enc, "latin-1")
    try:
        return data.decode(codec).replace("\0", " / ").strip(" /")
    except UnicodeDecodeError:
        return readable(data)


def _frame_fields(container: str, fid: str, body: bytes) -> list[Field]:
    if not body:
        return [Field(container, fid, "", True)]
    enc = body[0]
    if fid in ("APIC", "PIC"):
        if fid == "PIC":
            mime, rest = "image/" + body[1:4].decode("latin-1").lower(), body[4:]
        else:
            raw, rest = body[1:].split(b"\0", 1) if b"\0" in body[1:] else (body[1:], b"")
            mime = raw.decode("latin-1")
        kind = rest[0] if rest else 0
        desc, data = _split(rest[1:], enc)
        note = picture_type(kind) + (f", description {_text(desc, enc)!r}" if desc else "")
        return picture_fields(container, fid, data, mime=mime, note=note)
    if fid in ("TXXX", "TXX", "WXXX", "WXX"):
        desc, value = _split(body[1:], enc)
        shown = value.decode("latin-1") if fid.startswith("W") else _text(value, enc)
        return [Field(container, f"{fid}:{_text(desc, enc)}", shorten(shown), True)]
    if fid in ("COMM", "COM", "USLT", "ULT"):
        desc, value = _split(body[4:], enc)
        return [Field(container, f"{fid}:{_text(desc, enc)}", shorten(_text(value, enc)), True)]
    if fid[0] == "T":
        return [Field(container, fid, shorten(_text(body[1:], enc)), True)]
    if fid[0] == "W":
        return [Field(container, fid, shorten(body.decode("latin-1")), True)]
    if fid in ("PRIV", "UFID"):
        owner, data = body.split(b"\0", 1) if b"\0" in body else (body, b"")
        return [Field(container, f"{fid}:{owner.decode('latin-1')}", readable(data), True)]
    return [Field(container, fid, readable(body), True)]


def id3v2_fields(buf: bytes, pos: int = 0, *, where: str = "") -> list[Field]:
    """Render every frame of the ID3v2 tag at `pos`; malformed parts are reported, not raised."""
    size = id3v2_size(buf, pos)
    head = bytes(buf[pos:pos + 10])
    major, flags = head[3], head[5]
    container = f"{where}ID3v2.{major}"
    body = bytes(buf[pos + 10:pos + 10 + _syncsafe(head[6:10])])
    if flags & 0x80 and major < 4:
        body = body.replace(b"\xff\x00", b"\xff")
    off = 0
    if flags & 0x40:
        ext = struct.unpack(">I", body[:4])[0] if len(body) >= 4 else 0
        off = (ext + 4) if major == 3 else _syncsafe(body[:4]) if major >= 4 else 0
    fields: list[Field] = []
    id_len, head_len = (3, 6) if major == 2 else (4, 10)
    while off + head_len <= len(body) and body[off] != 0:
        fid = body[off:off + id_len].decode("latin-1")
        if major == 2:
            flen, fflags = int.from_bytes(body[off + 3:off + 6], "big"), 0
        else:
            raw = body[off + 4:off + 8]
            flen = _syncsafe(raw) if major >= 4 and not any(b & 0x80 for b in raw) else int.from_bytes(raw, "big")
            fflags = int.from_bytes(body[off + 8:off + 10], "big")
        data = body[off + head_len:off + head_len + flen]
        off += head_len + flen
        if major >= 4:
            if fflags & 0x0040:
                data = data[1:]
            if fflags & 0x0001:
                data = data[4:]
            if fflags & 0x0002:
                data = data.replace(b"\xff\x00", b"\xff")
            compressed, encrypted = fflags & 0x0008, fflags & 0x0004
        else:
            if fflags & 0x0080:
                data = data[4:]
            if fflags & 0x0020:
                data = data[1:]
            compressed, encrypted = fflags & 0x0080, fflags & 0x0040
        if encrypted:
            fields.append(Field(container, fid, f"<{len(data)} encrypted bytes>", True))
            continue
        if compressed:
            try:
                data = zlib.decompress(data)
            except zlib.error:
                fields.append(Field(container, fid, readable(data), True))
                continue
        fields.extend(_frame_fields(container, fid, data))
    if off < len(body) and not all(b == 0 for b in body[off:]):
        fields.append(Field(container, "padding", readable(body[off:]), True))
    if not fields:
        fields.append(Field(container, "tag", f"empty tag, {size} bytes", True))
    return fields


def _ape_fields(buf: bytes, start: int, stop: int, where: str) -> list[Field]:
    container = f"{where}APEv2"
    fields: list[Field] = []
    version, size, count, _flags = struct.unpack_from("<IIII", buf, stop - 24)
    pos = stop - size
    for _ in range(count):
        if pos + 8 > stop - 32:
            break
        vlen, iflags = struct.unpack_from("<II", buf, pos)
        key_end = bytes(buf[pos + 8:stop]).find(b"\0")
        if key_end < 0:
            break
        key = bytes(buf[pos + 8:pos + 8 + key_end]).decode("ascii", "replace")
        value = bytes(buf[pos + 9 + key_end:pos + 9 + key_end + vlen])
        pos += 9 + key_end + vlen
        if (iflags >> 1) & 3 == 1 and b"\0" in value:
            name, data = value.split(b"\0", 1)
            fields.extend(picture_fields(container, key, data, note=f"file name {name.decode('utf-8', 'replace')!r}"))
        else:
            fields.append(Field(container, key, readable(value), True))
    return fields or [Field(container, "tag", f"empty tag, {stop - start} bytes", True)]


def trailing_tags(buf: bytes, start: int, end: int, *, where: str = "") -> tuple[list[Field], int]:
    """Find the tags appended to a stream ending at `end` (ID3v1, Lyrics3, APEv2, appended ID3v2).

    Returns their fields and the offset where the tags begin (`end` when there are none).
    Tags are peeled from the end one at a time because taggers stack them in any order.
    """
    fields: list[Field] = []
    while end > start:
        if end - start >= 128 and buf[end - 128:end - 125] == b"TAG":
            raw = bytes(buf[end - 128:end])
            parts = [("title", raw[3:33]), ("artist", raw[33:63]), ("album", raw[63:93]),
                     ("year", raw[93:97]), ("comment", raw[97:127])]
            fields.extend(Field(f"{where}ID3v1", name, readable(value), True)
                          for name, value in parts if value.strip(b"\0 "))
            fields.append(Field(f"{where}ID3v1", "genre", str(raw[127]), True))
            end -= 128
            if end - start >= 227 and buf[end - 227:end - 223] == b"TAG+":
                fields.append(Field(f"{where}ID3v1", "TAG+", readable(bytes(buf[end - 227:end])), True))
                end -= 227
        elif end - start >= 32 and buf[end - 32:end - 24] == b"APETAGEX":
            _version, size, _count, flags = struct.unpack_from("<IIII", buf, end - 24)
            tag_start = end - size - (32 if flags & 0x80000000 else 0)
            if tag_start < start:
                break
            fields.extend(_ape_fields(buf, tag_start, end, where))
            end = tag_start
        elif end - start >= 15 and buf[end - 9:end] == b"LYRICS200" and bytes(buf[end - 15:end - 9]).isdigit():
            tag_start = end - 15 - int(bytes(buf[end - 15:end - 9]))
            if tag_start < start:
                break
            fields.append(Field(f"{where}Lyrics3", "tag", readable(bytes(buf[tag_start:end - 15])), True))
            end = tag_start
        elif end - start >= 10 and buf[end - 10:end - 7] == b"3DI":
            size = 20 + _syncsafe(bytes(buf[end - 4:end]))
            if end - size < start or id3v2_size(buf, end - size) != size:
                break
            fields.extend(id3v2_fields(buf, end - size, where=where))
            end -= size
        else:
            break
    return fields, end
