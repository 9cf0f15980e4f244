"""Who speaks in a file, for ``--link speaker``: a speaker map (CSV), or the file's parent folder."""

from __future__ import annotations

import csv
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

from deid.errors import DeidError


def read_speaker_map(path: str | Path) -> dict[str, str]:
    """``path,speaker`` rows (a header row and ``#`` comments are allowed), keyed by resolved path and by
    the path as written; paths are relative to the map's folder.

    Raises
    ------
    DeidError
        When the map cannot be read or a row lacks a speaker.
    """
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = [r for r in csv.reader(f) if r and not r[0].startswith("#")]
    except (OSError, UnicodeDecodeError) as exc:
        raise DeidError(f"cannot read speaker map: {getattr(exc, 'strerror', None) or exc}", path) from None
    if rows and [c.strip().lower() for c in rows[0][:2]] == ["path", "speaker"]:
        rows = rows[1:]
    mapping: dict[str, str] = {}
    for number, row in enumerate(rows, start=1):
        if len(row) < 2 or not row[1].strip():
            raise DeidError(f"row {number} needs two columns, path and speaker", path)
        mapping[str((path.parent / row[0].strip()).resolve())] = row[1].strip()
        mapping[row[0].strip()] = row[1].strip()
    return mapping


def speaker_of(src: str | Path, mapping: dict[str, str] | None) -> str:
    """The speaker of a file: from the map (by resolved path, path or name), else its parent folder's name.

    A file in a store (``src`` a URL) is looked up by its URL and its name; its folder is the
    last part of its prefix.
    """
    from deid.batch.storage import is_url

    if is_url(str(src)):
        key = PurePosixPath(urlparse(str(src)).path)
        candidates, folder = (str(src), key.name), key.parent.name
    else:
        src = Path(src)
        candidates, folder = (str(src.resolve()), str(src), src.name), src.resolve().parent.name
    if mapping is not None:
        for candidate in candidates:
            if candidate in mapping:
                return mapping[candidate]
        raise DeidError("not listed in the speaker map", src)
    return folder
