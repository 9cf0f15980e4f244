"""MP4/M4A (AAC, ALAC): walk the atoms, rebuild with the technical atoms only; decode with PyAV.

Kept: ``ftyp``; in ``moov`` the ``mvhd``, ``iods`` and the sound tracks (``trak`` with a
``soun`` handler) with ``tkhd``, ``edts/elst`` (encoder priming), ``mdia/mdhd``, ``hdlr``
(name blanked), ``minf/smhd``, ``dinf/dref`` (self-contained only) and the sample tables
in ``stbl``; the audio samples of those tracks, copied byte for byte into one new ``mdat``.
Zeroed: the creation and modification dates of ``mvhd``/``tkhd``/``mdhd``; the ``mdhd``
language becomes ``und``. Dropped: ``udta`` (``©xyz`` location, ``©nam``...), ``meta``
(``keys`` such as ``com.apple.quicktime.location.ISO6709`` and ``com.android.model``,
``ilst`` with ``covr`` pictures), ``uuid`` (XMP), ``free``/``skip``/``wide``, non-audio
tracks (timed metadata, chapters) together with their samples, and any byte of ``mdat``
that no kept sample table points at.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from deid.errors import AudioError
from deid.metadata._common import Field, Rebuilt, Span, is_blank, malformed, readable, shorten
from deid.metadata.pictures import picture_fields

if TYPE_CHECKING:
    import numpy as np

_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"dinf", b"stbl", b"udta", b"edts", b"ilst", b"meta"}
KEEP = {
    b"": {b"ftyp", b"moov", b"mdat"},
    b"moov": {b"mvhd", b"iods", b"trak"},
    b"trak": {b"tkhd", b"edts", b"mdia"},
    b"edts": {b"elst"},
    b"mdia": {b"mdhd", b"hdlr", b"minf"},
    b"minf": {b"smhd", b"dinf", b"stbl", b"hdlr"},
    b"dinf": {b"dref"},
    b"stbl": {b"stsd", b"stts", b"stsc", b"stsz", b"stco", b"co64", b"stss", b"ctts", b"sgpd", b"sbgp",
              b"cslg", b"sdtp"},
}
_DATED = (b"mvhd", b"tkhd", b"mdhd")
_EPOCH = datetime(1904, 1, 1, tzinfo=timezone.utc)
_UND = struct.pack(">H", ((ord("u") - 0x60) << 10) | ((ord("n") - 0x60) << 5) | (ord("d") - 0x60))


@dataclass
class Atom:
    """One atom (box): its type, where its header and payload lie, and its children if any."""

    kind: bytes
    start: int
    payload: int
    end: int
    children: list[Atom] = field(default_factory=list)


def _name(kind: bytes) -> str:
    return kind.decode("latin-1")


def _parse(buf: bytes, start: int, end: int, parent: bytes = b"") -> list[Atom]:
    atoms: list[Atom] = []
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", buf[pos:pos + 8])
        head = 8
        if size == 1:
            if pos + 16 > end:
                raise malformed(f"MP4 atom {_name(kind)!r} is truncated")
            size, head = struct.unpack(">Q", buf[pos + 8:pos + 16])[0], 16
        elif size == 0:
            size = end - pos
        if size < head or pos + size > end:
            raise malformed(f"MP4 atom {_name(kind)!r} at byte {pos} overruns its parent")
        atom = Atom(kind, pos, pos + head, pos + size)
        if kind in _CONTAINERS and parent != b"ilst":
            inner = atom.payload
            # ISO 'meta' is a full box (4 bytes of version/flags); QuickTime 'meta' is not.
            if kind == b"meta" and buf[inner:inner + 4] == b"\0\0\0\0":
                inner += 4
            atom.children = _parse(buf, inner, atom.end, kind)
        elif parent == b"ilst":
            atom.children = _parse(buf, atom.payload, atom.end, b"item")
        atoms.append(atom)
        pos += size
    if pos < end:  # fewer than 8 stray bytes: still reported, never silently skipped
        atoms.append(Atom(b"", pos, pos, end))
    return atoms


def _tree(buf: bytes) -> list[Atom]:
    if len(buf) < 12 or buf[4:8] != b"ftyp":
        raise malformed("not an MP4 file")
    return _parse(buf, 0, len(buf))


def _child(atom: Atom, kind: bytes) -> Atom | None:
    return next((c for c in atom.children if c.kind == kind), None)


def _find(atom: Atom, *path: bytes) -> Atom | None:
    for kind in path:
        nxt = _child(atom, kind)
        if nxt is None:
            return None
        atom = nxt
    return atom


def _handler(trak: Atom, buf: bytes) -> bytes:
    hdlr = _find(trak, b"mdia", b"hdlr")
    return bytes(buf[hdlr.payload + 8:hdlr.payload + 12]) if hdlr else b""


def _dates(buf: bytes, atom: Atom) -> tuple[int, int, int]:
    """(creation, modification, offset of the field after them) of a dated full box."""
    if buf[atom.payload] == 1:
        created, modified = struct.unpack(">QQ", buf[atom.payload + 4:atom.payload + 20])
        return created, modified, atom.payload + 20
    created, modified = struct.unpack(">II", buf[atom.payload + 4:atom.payload + 12])
    return created, modified, atom.payload + 12


def _when(seconds: int) -> str:
    try:
        return (_EPOCH + timedelta(seconds=seconds)).isoformat()
    except OverflowError:
        return str(seconds)


def _qt_string(data: bytes) -> str:
    """QuickTime user-data text: 16-bit length, 16-bit language, then the text."""
    if len(data) >= 4:
        (length,) = struct.unpack(">H", data[:2])
        if 4 + length <= len(data):
            return shorten(data[4:4 + length].decode("utf-8", "replace"))
    return readable(data)


def _keys(buf: bytes, meta: Atom) -> list[str]:
    keys = _child(meta, b"keys")
    if keys is None:
        return []
    names = []
    pos = keys.payload + 8
    while pos + 8 <= keys.end:
        (size,) = struct.unpack(">I", buf[pos:pos + 4])
        if size < 8:
            break
        names.append(bytes(buf[pos + 8:pos + size]).decode("utf-8", "replace"))
        pos += size
    return names


def _item_fields(buf: bytes, item: Atom, where: str, keys: list[str]) -> list[Field]:
    index = int.from_bytes(item.kind, "big")
    name = keys[index - 1] if keys and 0 < index <= len(keys) else _name(item.kind)
    if item.kind == b"----":  # iTunes free-form item: the key is in its 'mean' and 'name' atoms
        parts = [bytes(buf[c.payload + 4:c.end]).decode("utf-8", "replace") for c in item.children
                 if c.kind in (b"mean", b"name")]
        name = ":".join(["----", *parts])
    fields: list[Field] = []
    for data in item.children:
        body = bytes(buf[data.payload:data.end])
        if data.kind in (b"mean", b"name"):
            continue
        if data.kind != b"data":
            fields.append(Field("MP4", f"{where}{name}.{_name(data.kind)}", readable(body[4:]), True))
            continue
        kind, value = int.from_bytes(body[1:4], "big"), body[8:]
        if kind in (13, 14, 27) or name == "covr":
            mime = {13: "image/jpeg", 14: "image/png", 27: "image/bmp"}.get(kind, "")
            fields.extend(picture_fields("MP4", f"{where}{name}", value, mime=mime))
        elif kind in (1, 4) and b"\0" not in value:
            fields.append(Field("MP4", f"{where}{name}", shorten(value.decode("utf-8" if kind == 1 else "utf-16-be",
                                                                               "replace")), True))
        else:
            fields.append(Field("MP4", f"{where}{name}", readable(value) or value.hex(), True))
    return fields or [Field("MP4", f"{where}{name}", readable(bytes(buf[item.payload:item.end])), True)]


def _leaf_fields(buf: bytes, atom: Atom, path: str, kept: bool) -> list[Field]:
    body = bytes(buf[atom.payload:atom.end]) if atom.kind != b"mdat" else b""
    if atom.kind == b"ftyp":
        brands = [_name(body[i:i + 4]) for i in range(8, len(body) - 3, 4)]
        return [Field("MP4", path, f"brand {_name(body[:4])}, compatible {', '.join(brands)}", False)]
    if atom.kind == b"mdat":
        return [Field("MP4", path, f"{atom.end - atom.payload} bytes of media data", False)]
    if atom.kind in (b"free", b"skip", b"wide") and is_blank(body):
        return [Field("MP4", path, f"{len(body)} bytes of padding", False)]
    if not kept:
        if atom.kind == b"\xa9xyz" or (atom.kind[:1] == b"\xa9" and path.startswith("moov.udta")):
            return [Field("MP4", path, _qt_string(body), True)]
        return [Field("MP4", path, readable(body) or f"{len(body)} bytes", True)]
    fields: list[Field] = []
    if atom.kind in _DATED:
        created, modified, _ = _dates(buf, atom)
        fields.append(Field("MP4", path, "technical", False))
        for label, value in (("creation_time", created), ("modification_time", modified)):
            if value:
                fields.append(Field("MP4", f"{path}.{label}", _when(value), True))
        return fields
    if atom.kind == b"hdlr":
        handler = _name(body[8:12])
        name = body[24:].rstrip(b"\0")
        if name and name[0] == len(name) - 1:
            name = name[1:]  # QuickTime stores a Pascal string here
        fields.append(Field("MP4", path, f"handler {handler}", False))
        if name:
            fields.append(Field("MP4", f"{path}.name", readable(name), True))
        return fields
    if atom.kind == b"dref":
        entries = _dref_entries(body)
        contained = all(flags & 1 and not rest for _kind, flags, rest in entries)
        return [Field("MP4", path, f"{len(entries)} data references" if contained else
                      " | ".join(readable(rest) for _k, _f, rest in entries), not contained)]
    return [Field("MP4", path, f"{len(body)} bytes", False)]


def _dref_entries(body: bytes) -> list[tuple[bytes, int, bytes]]:
    entries = []
    pos = 8
    while pos + 12 <= len(body):
        size, kind, flags = struct.unpack(">I4sI", body[pos:pos + 12])
        if size < 12:
            break
        entries.append((kind, flags & 0xFFFFFF, body[pos + 12:pos + size]))
        pos += size
    return entries


def _walk(buf: bytes, atoms: list[Atom], parent: bytes, prefix: str, kept: bool, keys: list[str]) -> list[Field]:
    fields: list[Field] = []
    for atom in atoms:
        path = f"{prefix}{_name(atom.kind) or 'trailing bytes'}"
        keep = kept and atom.kind in KEEP.get(parent, set())
        if atom.kind == b"trak" and keep and _handler(atom, buf) != b"soun":
            fields.append(Field("MP4", path, f"{_name(_handler(atom, buf))} track (not audio)", True))
            keep = False
        if atom.kind == b"meta":
            fields += _walk(buf, atom.children, b"meta", f"{path}.", False, _keys(buf, atom))
        elif atom.kind == b"ilst":
            for item in atom.children:
                fields += _item_fields(buf, item, f"{path}.", keys)
        elif atom.kind == b"keys":
            fields.append(Field("MP4", path, shorten(", ".join(keys)), True))
        elif atom.children or atom.kind in _CONTAINERS:
            if not keep and atom.kind not in (b"udta", b"trak"):
                fields.append(Field("MP4", path, "container", True))
            fields += _walk(buf, atom.children, atom.kind, f"{path}.", keep, keys)
        else:
            fields += _leaf_fields(buf, atom, path, keep)
    return fields


def walk(buf: bytes) -> list[Field]:
    """Every atom of an MP4 file; technical atoms from the allow-list are marked so."""
    return _walk(buf, _tree(buf), b"", "", True, [])


def _u32s(buf: bytes, start: int, count: int, width: int = 4) -> list[int]:
    fmt = ">" + ("I" if width == 4 else "Q") * count
    return list(struct.unpack(fmt, buf[start:start + width * count]))


def _chunks(buf: bytes, stbl: Atom) -> tuple[list[int], list[int], bytes]:
    """Chunk offsets and sizes of one track, and which offset atom it uses."""
    stsc, stsz = _child(stbl, b"stsc"), _child(stbl, b"stsz")
    offsets_atom = _child(stbl, b"stco") or _child(stbl, b"co64")
    if stsc is None or stsz is None or offsets_atom is None:
        raise malformed("MP4 sound track lacks stsc/stsz/stco (stz2 is not supported)")
    width = 4 if offsets_atom.kind == b"stco" else 8
    (count,) = struct.unpack(">I", buf[offsets_atom.payload + 4:offsets_atom.payload + 8])
    offsets = _u32s(buf, offsets_atom.payload + 8, count, width)
    (runs,) = struct.unpack(">I", buf[stsc.payload + 4:stsc.payload + 8])
    table = _u32s(buf, stsc.payload + 8, runs * 3)
    uniform, samples = struct.unpack(">II", buf[stsz.payload + 4:stsz.payload + 12])
    sizes = [uniform] * samples if uniform else _u32s(buf, stsz.payload + 12, samples)
    chunk_sizes: list[int] = []
    sample = 0
    for run in range(runs):
        first, per_chunk = table[3 * run], table[3 * run + 1]
        last = table[3 * (run + 1)] - 1 if run + 1 < runs else count
        for _ in range(first, last + 1):
            chunk_sizes.append(sum(sizes[sample:sample + per_chunk]))
            sample += per_chunk
    if len(chunk_sizes) != count or sample != samples:
        raise malformed("MP4 sample tables disagree (stsc/stsz/stco)")
    return offsets, chunk_sizes, offsets_atom.kind


def _dated(buf: bytes, atom: Atom) -> bytes:
    body = bytearray(buf[atom.payload:atom.end])
    width = 8 if body[0] == 1 else 4
    body[4:4 + 2 * width] = bytes(2 * width)
    if atom.kind == b"mdhd":
        lang = 4 + 2 * width + 4 + width
        body[lang:lang + 2] = _UND
    return bytes(body)


def _box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", 8 + len(body)) + kind + body


def _serialize(buf: bytes, atom: Atom, parent: bytes, offsets: dict[int, list[int]]) -> bytes:
    if atom.kind in KEEP and atom.kind != b"":
        body = b"".join(_serialize(buf, c, atom.kind, offsets) for c in atom.children
                        if c.kind in KEEP[atom.kind] and (c.kind != b"trak" or _handler(c, buf) == b"soun"))
        return _box(atom.kind, body)
    if atom.kind in _DATED:
        return _box(atom.kind, _dated(buf, atom))
    if atom.kind == b"hdlr":
        return _box(b"hdlr", bytes(buf[atom.payload:atom.payload + 24]) + b"\0")
    if atom.kind == b"dref":
        body = bytes(buf[atom.payload:atom.end])
        if not all(flags & 1 and not rest for _k, flags, rest in _dref_entries(body)):
            raise malformed("MP4 file refers to media outside itself (dref)")
        return _box(b"dref", body)
    if atom.kind in (b"stco", b"co64"):
        new = offsets[atom.start]
        fmt = ">" + ("I" if atom.kind == b"stco" else "Q") * len(new)
        return _box(atom.kind, bytes(buf[atom.payload:atom.payload + 4]) + struct.pack(">I", len(new))
                    + struct.pack(fmt, *new))
    return bytes(buf[atom.start:atom.end])


def rebuild(buf: bytes) -> Rebuilt:
    """``ftyp`` + cleaned ``moov`` + one ``mdat`` holding only the sound tracks' samples."""
    atoms = _tree(buf)
    moovs = [a for a in atoms if a.kind == b"moov"]
    if len(moovs) != 1:
        raise malformed(f"MP4 file has {len(moovs)} moov atoms; strip needs exactly one")
    if any(a.kind == b"moof" for a in atoms) or _child(moovs[0], b"mvex"):
        raise malformed("fragmented MP4 is not supported by strip")
    moov = moovs[0]
    tracks = [t for t in moov.children if t.kind == b"trak" and _handler(t, buf) == b"soun"]
    if not tracks:
        raise malformed("MP4 file has no sound track")
    chunks: list[tuple[int, int, int, int]] = []  # source offset, size, offsets atom start, index
    tables: dict[int, list[int]] = {}
    for trak in tracks:
        stbl = _find(trak, b"mdia", b"minf", b"stbl")
        if stbl is None:
            raise malformed("MP4 sound track has no sample table")
        offsets, sizes, _kind = _chunks(buf, stbl)
        key = (_child(stbl, b"stco") or _child(stbl, b"co64")).start
        tables[key] = [0] * len(offsets)
        chunks += [(o, s, key, i) for i, (o, s) in enumerate(zip(offsets, sizes))]
    chunks.sort()
    for (a, size, _k, _i), (b, _s, _k2, _i2) in zip(chunks, chunks[1:]):
        if a + size > b:
            raise malformed("MP4 sample chunks overlap")
    if chunks and chunks[-1][0] + chunks[-1][1] > len(buf):
        raise malformed("MP4 sample data is truncated")
    ftyp = next(a for a in atoms if a.kind == b"ftyp")
    ftyp_bytes = bytes(buf[ftyp.start:ftyp.end])
    payload = sum(size for _o, size, _k, _i in chunks)
    mdat_head = 8 if payload + 8 <= 0xFFFFFFFF else 16
    base = len(ftyp_bytes) + len(_serialize(buf, moov, b"", tables)) + mdat_head
    pos = base
    for _o, size, key, index in chunks:
        tables[key][index] = pos
        pos += size
    out = Rebuilt(kept=["ftyp", "moov (dates zeroed, handler names blanked)", f"{len(tracks)} sound track(s)", "mdat"])
    mdat = (struct.pack(">I4s", 8 + payload, b"mdat") if mdat_head == 8
            else struct.pack(">I4sQ", 1, b"mdat", 16 + payload))
    out.pieces = [ftyp_bytes, _serialize(buf, moov, b"", tables), mdat]
    for offset, size, _k, _i in chunks:
        last = out.pieces[-1]
        if isinstance(last, Span) and last.stop == offset:
            out.pieces[-1] = Span(last.start, offset + size)
        else:
            out.pieces.append(Span(offset, offset + size))
    out.audio_bytes = payload
    out.dropped = sorted({f.field for f in walk(buf) if f.personal})
    return out


def read_m4a(path: str | Path) -> tuple[np.ndarray, int]:
    """Decode the first audio stream of an MP4/M4A (AAC, ALAC) file with PyAV (FFmpeg).

    Parameters
    ----------
    path : str or Path
        The file to decode.

    Returns
    -------
    y : np.ndarray, shape (channels, n)
        float32 samples.
    sr : int
        Sample rate in Hz.

    Raises
    ------
    AudioError
        If the file has no audio stream or cannot be decoded.
    """
    import av
    import numpy as np

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise AudioError("no audio stream", path)
            stream = container.streams.audio[0]
            sr = stream.codec_context.sample_rate
            channels = stream.codec_context.channels
            layout = stream.codec_context.layout.name
            resampler = av.AudioResampler(format="fltp", layout=layout, rate=sr)
            blocks: list[np.ndarray] = []
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    blocks.append(out.to_ndarray())
            for out in resampler.resample(None):
                blocks.append(out.to_ndarray())
    except av.error.FFmpegError as exc:
        raise AudioError(f"cannot decode: {exc}", path) from None
    if not blocks:
        return np.zeros((channels, 0), dtype=np.float32), sr
    return np.ascontiguousarray(np.concatenate(blocks, axis=1), dtype=np.float32), sr
