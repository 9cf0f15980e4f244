"""Describe embedded pictures: size, dimensions, and the EXIF/GPS they carry.

Cover pictures are where phones and cameras leave the richest traces (owner name,
GPS position, device serial). Decoding EXIF is Pillow's job; it is imported only
when a picture is actually found.
"""

from __future__ import annotations

import io
import struct
import warnings

from deid.metadata._common import Field, malformed, readable

_PICTURE_TYPES = {0: "other", 1: "file icon", 2: "other file icon", 3: "front cover", 4: "back cover",
                  5: "leaflet", 6: "media", 7: "lead artist", 8: "artist", 9: "conductor", 10: "band",
                  11: "composer", 12: "lyricist", 13: "recording location", 14: "during recording",
                  15: "during performance", 16: "video capture", 17: "bright fish", 18: "illustration",
                  19: "band logo", 20: "publisher logo"}


def picture_type(code: int) -> str:
    """The ID3/FLAC name of a picture type code."""
    return _PICTURE_TYPES.get(code, f"type {code}")


def _gps_degrees(values: object, ref: object) -> float | None:
    try:
        d, m, s = (float(v) for v in values)  # type: ignore[union-attr]
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    sign = -1.0 if str(ref).strip("\0").upper() in ("S", "W") else 1.0
    return sign * (d + m / 60.0 + s / 3600.0)


def picture_fields(container: str, name: str, data: bytes, *, mime: str = "", note: str = "") -> list[Field]:
    """Fields for one embedded picture: a summary line, then one line per EXIF/GPS tag.

    Parameters
    ----------
    container, name : str
        Where the picture sits (used as the `Field` container and field prefix).
    data : bytes
        The encoded image.
    mime : str
        The MIME type declared by the container, if any.
    note : str
        Extra words for the summary (picture type, description).
    """
    summary = f"{mime or 'image'}, {len(data)} bytes"
    fields: list[Field] = []
    try:
        from PIL import ExifTags, Image

        # A damaged EXIF block is still reported as far as it reads; Pillow's warnings about
        # it would only clutter the inspect table.
        with warnings.catch_warnings(), Image.open(io.BytesIO(data)) as image:
            warnings.simplefilter("ignore")
            summary += f", {image.width}x{image.height} {image.format}"
            exif = image.getexif()
            for tag, value in exif.items():
                if tag in (ExifTags.IFD.GPSInfo, ExifTags.IFD.Exif):
                    continue
                fields.append(Field(container, f"{name} EXIF {ExifTags.TAGS.get(tag, hex(tag))}",
                                    _render(value), True))
            for tag, value in exif.get_ifd(ExifTags.IFD.Exif).items():
                fields.append(Field(container, f"{name} EXIF {ExifTags.TAGS.get(tag, hex(tag))}",
                                    _render(value), True))
            gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
            for tag, value in gps.items():
                fields.append(Field(container, f"{name} GPS {ExifTags.GPSTAGS.get(tag, hex(tag))}",
                                    _render(value), True))
            lat = _gps_degrees(gps.get(2), gps.get(1)) if 2 in gps else None
            lon = _gps_degrees(gps.get(4), gps.get(3)) if 4 in gps else None
            if lat is not None and lon is not None:
                fields.append(Field(container, f"{name} GPS position", f"{lat:.6f}, {lon:.6f}", True))
    except ImportError:
        summary += ", EXIF not decoded (Pillow missing)"
    except Exception:  # noqa: BLE001 - any undecodable image is still reported, by size
        summary += ", not a decodable image"
    if note:
        summary += f", {note}"
    return [Field(container, name, summary, True), *fields]


def _render(value: object) -> str:
    if isinstance(value, bytes):
        return readable(value)
    return readable(str(value).encode("utf-8"))


def flac_picture_fields(container: str, name: str, block: bytes) -> list[Field]:
    """Parse a FLAC PICTURE block (also the payload of Vorbis ``METADATA_BLOCK_PICTURE``)."""
    try:
        kind, mime_len = struct.unpack_from(">II", block, 0)
        pos = 8
        mime = block[pos:pos + mime_len].decode("ascii", "replace")
        pos += mime_len
        (desc_len,) = struct.unpack_from(">I", block, pos)
        desc = block[pos + 4:pos + 4 + desc_len].decode("utf-8", "replace")
        pos += 4 + desc_len + 16
        (data_len,) = struct.unpack_from(">I", block, pos)
        data = block[pos + 4:pos + 4 + data_len]
    except struct.error:
        raise malformed(f"{name}: truncated picture block") from None
    note = picture_type(kind) + (f", description {desc!r}" if desc else "")
    return picture_fields(container, name, data, mime=mime, note=note)
