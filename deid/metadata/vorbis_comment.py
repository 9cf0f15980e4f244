"""Vorbis comments: the tag format of FLAC, Ogg Vorbis and Opus."""

from __future__ import annotations

import base64
import binascii
import struct

from deid.metadata._common import Field, readable, shorten
from deid.metadata.pictures import flac_picture_fields


def comment_fields(container: str, data: bytes, *, where: str) -> tuple[list[Field], int]:
    """Fields for a comment list (vendor string first), and the number of bytes it used.

    An empty vendor string is the neutral value deid writes; any other is reported as
    personal because it names the encoder and its version.
    """
    fields: list[Field] = []
    try:
        (vlen,) = struct.unpack_from("<I", data, 0)
        vendor = data[4:4 + vlen]
        pos = 4 + vlen
        (count,) = struct.unpack_from("<I", data, pos)
        pos += 4
        if vendor:
            fields.append(Field(container, f"{where}vendor", readable(vendor), True))
        for _ in range(count):
            (clen,) = struct.unpack_from("<I", data, pos)
            raw = data[pos + 4:pos + 4 + clen]
            pos += 4 + clen
            key, _, value = raw.partition(b"=")
            name = key.decode("ascii", "replace").upper()
            if name == "METADATA_BLOCK_PICTURE":
                try:
                    fields.extend(flac_picture_fields(container, f"{where}{name}", base64.b64decode(value)))
                    continue
                except (binascii.Error, ValueError):
                    pass
            fields.append(Field(container, f"{where}{name}", shorten(value.decode("utf-8", "replace")), True))
    except struct.error:
        fields.append(Field(container, f"{where}comments", readable(data), True))
        return fields, len(data)
    return fields, pos
