"""MP4/M4A (AAC, ALAC): walk the atoms, rebuild with the technical atoms only; decode with PyAV.

Kept: ``ftyp``; in ``moov`` the ``mvhd`` and the sound tracks (``trak`` with a ``soun``
handler) with ``tkhd``, ``edts/elst`` (encoder priming), ``mdia/mdhd``, ``hdlr`` (name
blanked), ``minf/smhd``, ``dinf/dref`` (self-contained only) and the sample tables in
``stbl`` (``stsd`` with an AAC or ALAC sample entry, ``stts``, ``ctts``, ``stss``, ``stsc``,
``stsz``, ``stco``/``co64``, and the roll sample groups AAC uses); the audio samples of those
tracks, copied byte for byte into one new ``mdat``. Every kept atom is written back from its
parsed fields (`deid.metadata.mp4_boxes`): dates in ``mvhd``/``tkhd``/``mdhd`` become zero, the
``mdhd`` language ``und``, reserved fields zero, and a sample entry keeps only the box its codec
needs. Dropped: ``udta`` (``©xyz`` location, ``loci``, ``©nam``...), ``meta`` (``keys`` such as
``com.apple.quicktime.location.ISO6709`` and ``com.android.model``, ``ilst`` with ``covr``
pictures), ``uuid`` (XMP), ``free``/``skip``/``wide``, ``iods``, non-audio tracks (timed
metadata, chapters) together with their samples, boxes hidden inside a sample entry, and any
byte of ``mdat`` that no kept sample table points at.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from deid.errors import AudioError
from deid.metadata import mp4_boxes as boxes
from deid.metadata._common import (Field, FieldReader, Rebuilt, Span, is_blank, malformed, preview, readable, shorten,
                                   spare_field)
from deid.metadata.pictures import picture_fields

if TYPE_CHECKING:
    import numpy as np

_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"dinf", b"stbl", b"udta", b"edts", b"ilst", b"meta"}
KEEP = {
    b"": {b"ftyp", b"moov", b"mdat"},
    b"moov": {b"mvhd", b"trak"},
    b"trak": {b"tkhd", b"edts", b"mdia"},
    b"edts": {b"elst"},
    b"mdia": {b"mdhd", b"hdlr", b"minf"},
    b"minf": {b"smhd", b"dinf", b"stbl"},
    b"dinf": {b"dref"},
    b"stbl": {b"stsd", b"stts", b"stsc", b"stsz", b"stco", b"co64", b"stss", b"ctts", b"sgpd", b"sbgp"},
    b"stsd": set(boxes.CODECS),
    b"entry": {b"esds", b"alac", b"btrt"},
}
#: Kept atoms and the function that rebuilds each from its fields.
_CANONICAL = {b"ftyp": boxes.ftyp, b"mvhd": boxes.mvhd, b"tkhd": boxes.tkhd, b"mdhd": boxes.mdhd, b"hdlr": boxes.hdlr,
              b"smhd": boxes.smhd, b"dref": boxes.dref, b"elst": boxes.elst, b"stts": boxes.stts, b"ctts": boxes.ctts,
              b"stss": boxes.stss, b"stsc": boxes.stsc, b"stsz": boxes.stsz, b"stco": boxes.stco, b"co64": boxes.co64,
              b"btrt": boxes.btrt, b"esds": boxes.esds, b"alac": boxes.alac}
#: Audio sample entry types whose child boxes the walker lists (to show anything hidden there).
_AUDIO_ENTRIES = {b"mp4a", b"alac", b"Opus", b"fLaC", b"ac-3", b"ec-3", b"samr", b"sawb", b"lpcm", b"sowt",
                  b"twos", b"ulaw", b"alaw", b"ima4", b".mp3", b"mp3 ", b"enca"}
_DATED = (b"mvhd", b"tkhd", b"mdhd")
_EPOCH = datetime(1904, 1, 1, tzinfo=timezone.utc)
#: Real files nest atoms about eight deep; a deeper file is refused rather than walked.
MAX_DEPTH = 32
#: ``com.apple.quicktime.location.ISO6709`` and ``©xyz``: latitude, longitude, altitude.
_ISO6709 = re.compile(r"\s*([+-][0-9]+(?:\.[0-9]*)?)([+-][0-9]+(?:\.[0-9]*)?)([+-][0-9]+(?:\.[0-9]*)?)?")


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


def _parse(buf: bytes, start: int, end: int, parent: bytes = b"", depth: int = 0) -> list[Atom]:
    if depth > MAX_DEPTH:
        raise malformed(f"MP4 atoms are nested more than {MAX_DEPTH} deep")
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
        inner, child_parent = None, kind
        if kind in _CONTAINERS and parent != b"ilst":
            inner = atom.payload
            # ISO 'meta' is a full box (4 bytes of version/flags); QuickTime 'meta' is not.
            if kind == b"meta" and buf[inner:inner + 4] == b"\0\0\0\0":
                inner += 4
        elif parent == b"ilst":
            inner, child_parent = atom.payload, b"item"
        elif kind == b"stsd" and parent == b"stbl":
            inner = atom.payload + 8  # version, flags and entry count
        elif parent == b"stsd" and kind in _AUDIO_ENTRIES and size - head >= 28:
            inner = atom.payload + boxes.sample_entry_header(bytes(buf[atom.payload:atom.payload + 28]))
            child_parent = b"entry"
        elif kind == b"wave" and parent == b"entry":
            inner, child_parent = atom.payload, b"entry"
        if inner is not None:
            atom.children = _parse(buf, min(inner, atom.end), atom.end, child_parent, depth + 1)
        atoms.append(atom)
        pos += size
    if pos < end:  # fewer than 8 stray bytes: still reported, never silently skipped
        atoms.append(Atom(b"", pos, pos, end))
    return atoms


def _file_end(buf: bytes, start: int, stop: int) -> int:
    """Where the MP4 file that starts at `start` ends: before a second ``ftyp`` (a second file)."""
    pos = start
    while pos + 8 <= stop:
        size, kind = struct.unpack(">I4s", buf[pos:pos + 8])
        if kind == b"ftyp" and pos > start:
            return pos
        if size == 1 and pos + 16 <= stop:
            size = struct.unpack(">Q", buf[pos + 8:pos + 16])[0]
        elif size == 0:
            size = stop - pos
        if size < 8 or pos + size > stop:
            return stop  # the walker reports the atom that overruns
        pos += size
    return stop


@dataclass(frozen=True)
class Tree:
    """An MP4 file's atoms, and where the file ends."""

    atoms: list[Atom]
    end: int


def parse(buf: bytes, start: int, stop: int) -> Tree:
    """The atoms of the MP4 file that starts at `start` (up to a second ``ftyp``, if any)."""
    if stop - start < 12 or buf[start + 4:start + 8] != b"ftyp":
        raise malformed("not an MP4 file")
    end = _file_end(buf, start, stop)
    return Tree(_parse(buf, start, end), end)


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


def _dates(body: bytes) -> tuple[int, int]:
    """Creation and modification dates of a dated full box (seconds since 1904)."""
    if body[:1] == b"\x01":
        return struct.unpack(">QQ", body[4:20]) if len(body) >= 20 else (0, 0)
    return struct.unpack(">II", body[4:12]) if len(body) >= 12 else (0, 0)


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


def _degrees(text: str, whole_digits: int) -> float:
    """One ISO 6709 coordinate: degrees, degrees and minutes, or degrees, minutes and seconds."""
    sign = -1.0 if text[0] == "-" else 1.0
    body = text[1:]
    whole = body.split(".")[0]
    extra = len(whole) - whole_digits
    if extra == 2:
        return sign * (int(whole[:whole_digits]) + float(body[whole_digits:]) / 60)
    if extra == 4:
        return sign * (int(whole[:whole_digits]) + int(whole[whole_digits:whole_digits + 2]) / 60
                       + float(body[whole_digits + 2:]) / 3600)
    return sign * float(body)


def iso6709(text: str) -> str | None:
    """``"+48.8583+002.2945+35/"`` as ``"48.858300, 2.294500, altitude 35 m"``; None if it is not one."""
    match = _ISO6709.match(text)
    if match is None:
        return None
    try:
        lat, lon = _degrees(match.group(1), 2), _degrees(match.group(2), 3)
    except ValueError:
        return None
    altitude = f", altitude {float(match.group(3)):g} m" if match.group(3) else ""
    return f"{lat:.6f}, {lon:.6f}{altitude}"


def _loci_string(data: bytes, pos: int) -> tuple[str, int]:
    """A 3GPP null-terminated string (UTF-8, or UTF-16 after a byte-order mark) and the offset after it."""
    if data[pos:pos + 2] in (b"\xfe\xff", b"\xff\xfe"):
        end = pos + 2
        while end + 1 < len(data) and data[end:end + 2] != b"\0\0":
            end += 2
        return data[pos:end].decode("utf-16", "replace"), end + 2
    end = data.find(b"\0", pos)
    end = len(data) if end < 0 else end
    return data[pos:end].decode("utf-8", "replace"), end + 1


def _loci(body: bytes) -> tuple[str, str | None]:
    """The 3GPP ``loci`` box: a place name, its role, position and altitude, the body, notes."""
    try:
        name, pos = _loci_string(body, 6)
        role = body[pos]
        lon, lat, alt = struct.unpack(">iii", body[pos + 1:pos + 13])
        planet, pos = _loci_string(body, pos + 13)
        notes, _ = _loci_string(body, pos)
    except (IndexError, struct.error):
        return readable(body), None
    where = f"{lat / 65536:.6f}, {lon / 65536:.6f}, altitude {alt / 65536:g} m"
    roles = {0: "shooting location", 1: "real location", 2: "fictional location"}
    text = f"{name!r} ({roles.get(role, f'role {role}')}), {where}, on {planet or '?'}"
    return shorten(text + (f", notes {notes!r}" if notes else "")), where


def _place_fields(path: str, text: str) -> list[Field]:
    position = iso6709(text)
    return [Field("MP4", f"{path} position", position, True)] if position else []


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
            text = value.decode("utf-8" if kind == 1 else "utf-16-be", "replace")
            fields.append(Field("MP4", f"{where}{name}", shorten(text), True))
            if "location" in name.lower() or name == "\xa9xyz":
                fields += _place_fields(f"{where}{name}", text)
        else:
            fields.append(Field("MP4", f"{where}{name}", readable(value) or value.hex(), True))
    return fields or [Field("MP4", f"{where}{name}", readable(bytes(buf[item.payload:item.end])), True)]


def _leaf_fields(buf: bytes, atom: Atom, path: str, kept: bool) -> list[Field]:
    if atom.kind == b"mdat":
        return [Field("MP4", path, f"{atom.end - atom.payload} bytes of media data", False)]
    if atom.end - atom.payload > 1 << 20 and not kept:
        return [Field("MP4", path, preview(buf, atom.payload, atom.end), True)]
    body = bytes(buf[atom.payload:atom.end])
    if atom.kind in (b"free", b"skip", b"wide") and is_blank(body):
        return [Field("MP4", path, f"{len(body)} bytes of padding", False)]
    if not kept:
        if atom.kind == b"\xa9xyz" or (atom.kind[:1] == b"\xa9" and path.startswith("moov.udta")):
            text = _qt_string(body)
            return [Field("MP4", path, text, True)] + (_place_fields(path, text) if atom.kind == b"\xa9xyz" else [])
        if atom.kind == b"loci":
            text, position = _loci(body)
            return [Field("MP4", path, text, True)] + ([Field("MP4", f"{path} position", position, True)]
                                                        if position else [])
        return [Field("MP4", path, preview(buf, atom.payload, atom.end) or f"{len(body)} bytes", True)]
    fields = _kept_fields(atom, path, body)
    try:
        fields += spare_field("MP4", path, _CANONICAL[atom.kind](body)[1]) if atom.kind in _CANONICAL else []
    except AudioError as exc:
        fields.append(Field("MP4", f"{path} (not rebuildable)", exc.reason, True))
    return fields


def _kept_fields(atom: Atom, path: str, body: bytes) -> list[Field]:
    """What a kept atom says: its technical summary, and any date or name it carries."""
    fields: list[Field] = []
    if atom.kind == b"ftyp":
        brands = [_name(body[i:i + 4]) for i in range(8, len(body) - 3, 4)]
        return [Field("MP4", path, f"brand {_name(body[:4])}, compatible {', '.join(brands)}", False)]
    if atom.kind in _DATED:
        created, modified = _dates(body)
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
        try:
            boxes.dref(body)
        except AudioError:
            return [Field("MP4", path, readable(body[8:]) or "external data references", True)]
        return [Field("MP4", path, "self-contained", False)]
    return [Field("MP4", path, f"{len(body)} bytes", False)]


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
        elif parent == b"stsd" and keep:
            fields += _entry_fields(buf, atom, path)
        elif atom.kind == b"stsd":
            fields.append(Field("MP4", path, f"{len(atom.children)} sample description(s)", not keep))
            fields += _walk(buf, atom.children, atom.kind, f"{path}.", keep, keys)
        elif atom.children or atom.kind in _CONTAINERS:
            if not keep and atom.kind not in (b"udta", b"trak"):
                fields.append(Field("MP4", path, "container", True))
            fields += _walk(buf, atom.children, atom.kind, f"{path}.", keep, keys)
        else:
            fields += _leaf_fields(buf, atom, path, keep)
    return fields


def _entry_children(buf: bytes, entry: Atom) -> dict[bytes, bytes]:
    """The payloads of a sample entry's boxes by type (``esds`` also from inside QuickTime's ``wave``)."""
    found: dict[bytes, bytes] = {}
    for child in entry.children:
        for atom in [child, *(child.children if child.kind == b"wave" else [])]:
            found.setdefault(atom.kind, bytes(buf[atom.payload:atom.end]))
    return found


def _entry_fields(buf: bytes, entry: Atom, path: str) -> list[Field]:
    """A kept sample entry: its codec, channels and rate, what it hides, and its boxes."""
    body = bytes(buf[entry.payload:entry.end])
    if len(body) < 28:
        return [Field("MP4", path, readable(body) or f"{len(body)} bytes", True)]
    channels, rate = struct.unpack(">H", body[16:18])[0], struct.unpack(">I", body[24:28])[0] >> 16
    fields = [Field("MP4", path, f"{_name(entry.kind)} audio, {channels} ch, {rate} Hz", False)]
    try:
        fields += spare_field("MP4", path, boxes.sample_entry(entry.kind, body, _entry_children(buf, entry))[1])
    except AudioError as exc:
        fields.append(Field("MP4", f"{path} (not rebuildable)", exc.reason, True))
    return fields + _walk(buf, entry.children, b"entry", f"{path}.", True, [])


def walk(buf: bytes, tree: Tree) -> list[Field]:
    """Every atom of a parsed MP4 file; technical atoms from the allow-list are marked so."""
    return _walk(buf, tree.atoms, b"", "", True, [])


def _table(buf: bytes, atom: Atom, entry: int, what: str, *, uniform: bool = False) -> tuple[int, bytes, int]:
    """A sample table's entry count and entries, bounded by the atom's bytes (and its uniform size)."""
    r = FieldReader(bytes(buf[atom.payload:atom.end]), what=f"MP4 {what}")
    r.take(4)
    size = r.int(4) if uniform else 0
    if size:
        return r.int(4), b"", size
    count, entries = boxes.table(r, entry, what)
    return count, entries, 0


def _chunks(buf: bytes, stbl: Atom) -> tuple[list[int], list[int]]:
    """Chunk offsets and sizes of one sound track.

    Every count is checked against the bytes that hold it before anything is allocated, so a
    table that declares four billion entries in a 17 KB file is refused, not built.
    """
    import numpy as np

    stsc, stsz = _child(stbl, b"stsc"), _child(stbl, b"stsz")
    offsets_atom = _child(stbl, b"stco") or _child(stbl, b"co64")
    if stsc is None or stsz is None or offsets_atom is None:
        raise malformed("MP4 sound track lacks stsc/stsz/stco (stz2 is not supported)")
    width = 4 if offsets_atom.kind == b"stco" else 8
    count, raw, _ = _table(buf, offsets_atom, width, _name(offsets_atom.kind))
    offsets = np.frombuffer(raw, dtype=">u4" if width == 4 else ">u8").astype(np.uint64)
    runs_count, raw, _ = _table(buf, stsc, 12, "stsc")
    runs = np.frombuffer(raw, dtype=">u4").reshape(runs_count, 3).astype(np.int64)
    samples, raw, uniform = _table(buf, stsz, 4, "stsz", uniform=True)
    if uniform and samples * uniform > len(buf):
        raise malformed(f"MP4 stsz declares {samples} samples of {uniform} bytes; the file holds {len(buf)} bytes")
    firsts = runs[:, 0]
    if count and (not runs_count or firsts[0] != 1 or (np.diff(firsts) <= 0).any() or firsts[-1] > count):
        raise malformed("MP4 sample tables disagree (stsc/stco)")
    per_chunk = np.repeat(runs[:, 1], np.diff(np.append(firsts, count + 1))) if count else np.zeros(0, np.int64)
    if int(per_chunk.sum()) != samples:
        raise malformed("MP4 sample tables disagree (stsc/stsz)")
    if uniform:
        sizes = per_chunk * uniform
    else:
        cumulative = np.concatenate([[0], np.cumsum(np.frombuffer(raw, dtype=">u4").astype(np.int64))])
        ends = np.cumsum(per_chunk)
        sizes = cumulative[ends] - cumulative[ends - per_chunk]
    if count and int(offsets.max()) + int(sizes.max()) > len(buf):
        raise malformed("MP4 sample data is truncated")
    return [int(o) for o in offsets], [int(z) for z in sizes]


def _sound_tables(atoms: list[Atom], buf: bytes) -> list[Atom]:
    """The sample tables (``stbl``) of every sound track."""
    tracks = [t for moov in atoms if moov.kind == b"moov" for t in moov.children
              if t.kind == b"trak" and _handler(t, buf) == b"soun"]
    return [stbl for t in tracks if (stbl := _find(t, b"mdia", b"minf", b"stbl")) is not None]


def check(buf: bytes, tree: Tree) -> None:
    """Refuse an MP4 file whose sound tracks' sample tables declare more than their bytes hold,
    disagree with each other, or point past the end of the file (a cut or forged file)."""
    for stbl in _sound_tables(tree.atoms, buf):
        if _child(stbl, b"stsc") and _child(stbl, b"stsz") and (_child(stbl, b"stco") or _child(stbl, b"co64")):
            _chunks(buf, stbl)


def _serialize(buf: bytes, atom: Atom, offsets: dict[int, list[int]]) -> bytes:
    """The atom rebuilt from its fields, with only the kept children; new chunk offsets in stco/co64."""
    kind = atom.kind
    if kind == b"stsd":
        entries = [c for c in atom.children if c.kind in KEEP[b"stsd"]]
        if len(entries) != len(atom.children) or not entries:
            unknown = ", ".join(sorted({_name(c.kind) for c in atom.children} - {_name(k) for k in boxes.CODECS}))
            raise malformed(f"MP4 sound track in codec {unknown or 'none'}; strip handles AAC (mp4a) and ALAC")
        body = b"".join(boxes.box(c.kind, boxes.sample_entry(c.kind, bytes(buf[c.payload:c.end]),
                                                              _entry_children(buf, c))[0]) for c in entries)
        return boxes.box(kind, bytes(4) + struct.pack(">I", len(entries)) + body)
    if kind in KEEP:
        children = [c for c in atom.children
                    if c.kind in KEEP[kind] and (c.kind != b"trak" or _handler(c, buf) == b"soun")]
        parts: list[bytes] = []
        groups: set[bytes] = set()
        for child in children:
            if child.kind == b"sgpd":
                rebuilt = boxes.sgpd(bytes(buf[child.payload:child.end]))
                if rebuilt is not None:
                    groups.add(bytes(buf[child.payload + 4:child.payload + 8]))
                    parts.append(boxes.box(b"sgpd", rebuilt[0]))
            elif child.kind != b"sbgp":
                parts.append(_serialize(buf, child, offsets))
        for child in children:
            if child.kind == b"sbgp":
                body, grouping, _spare = boxes.sbgp(bytes(buf[child.payload:child.end]))
                parts += [boxes.box(b"sbgp", body)] if grouping in groups else []
        return boxes.box(kind, b"".join(parts))
    if kind in (b"stco", b"co64"):
        new = offsets[atom.start]
        fmt = ">" + ("I" if kind == b"stco" else "Q") * len(new)
        return boxes.box(kind, bytes(4) + struct.pack(">I", len(new)) + struct.pack(fmt, *new))
    return boxes.box(kind, _CANONICAL[kind](bytes(buf[atom.payload:atom.end]))[0])


def rebuild(buf: bytes, tree: Tree) -> Rebuilt:
    """``ftyp`` + cleaned ``moov`` + one ``mdat`` holding only the sound tracks' samples."""
    atoms = tree.atoms
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
        offsets, sizes = _chunks(buf, stbl)
        key = (_child(stbl, b"stco") or _child(stbl, b"co64")).start
        tables[key] = [0] * len(offsets)
        chunks += [(o, s, key, i) for i, (o, s) in enumerate(zip(offsets, sizes))]
    chunks.sort()
    for (a, size, _k, _i), (b, _s, _k2, _i2) in zip(chunks, chunks[1:]):
        if a + size > b:
            raise malformed("MP4 sample chunks overlap")
    ftyp = next(a for a in atoms if a.kind == b"ftyp")
    ftyp_bytes = _serialize(buf, ftyp, tables)
    payload = sum(size for _o, size, _k, _i in chunks)
    mdat_head = 8 if payload + 8 <= 0xFFFFFFFF else 16
    base = len(ftyp_bytes) + len(_serialize(buf, moov, tables)) + mdat_head
    pos = base
    for _o, size, key, index in chunks:
        tables[key][index] = pos
        pos += size
    out = Rebuilt(kept=["ftyp", "moov (rebuilt from its fields: dates zeroed, handler names blanked)",
                        f"{len(tracks)} sound track(s)", "mdat"])
    mdat = (struct.pack(">I4s", 8 + payload, b"mdat") if mdat_head == 8
            else struct.pack(">I4sQ", 1, b"mdat", 16 + payload))
    out.pieces = [ftyp_bytes, _serialize(buf, moov, tables), mdat]
    for offset, size, _k, _i in chunks:
        last = out.pieces[-1]
        if isinstance(last, Span) and last.stop == offset:
            out.pieces[-1] = Span(last.start, offset + size)
        else:
            out.pieces.append(Span(offset, offset + size))
    out.audio_bytes = payload
    out.dropped = sorted({f.field for f in walk(buf, tree) if f.personal})
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
