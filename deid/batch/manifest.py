"""The resume manifest: one small JSON record per output, in ``OUT_DIR/.deid/records/``.

A record says which input content, preset, key and key scope produced an output, and the
output's size and SHA-256, so that a rerun can tell a complete, current output from a stale or
half-finished one. It sits beside the outputs, where reviewers can read it, so it holds nothing
that helps undo the distortion or identify a recording:

- no drawn parameters and no key;
- the input content, the key scope (which may name a speaker) and the key are recorded only as
  HMACs under the key itself, which cannot be inverted, cannot be checked against a candidate
  recording without the key, and are different from the per-file seeds (other HMAC labels);
- the output path only, never the input path (with ``--rename hashed`` that path is a hash).

Each record is written to a temporary file, flushed and renamed, after its output is in place,
so a record never describes an output that is not complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from deid.batch.scan import STATE_DIR, TEMP_SUFFIX
from deid.keys import Key

RECORDS = "records"
VERSION = 1
#: Temporary files of deid's atomic writes: ``.NAME.`` + tempfile's 8 random characters +
#: ``.deid-tmp`` (audio and records) or ``.tmp`` (metadata rebuilds).
_LEFTOVER = re.compile(r"^\..+\.[a-z0-9_]{8}\.(deid-tmp|tmp)$")


@dataclass(frozen=True)
class Record:
    """What produced one output; equal records mean the output need not be made again."""

    output: str
    mode: str
    input_id: str
    preset_id: str
    key_id: str
    scope_id: str
    link: str
    format: str
    size: int
    sha256: str
    version: int = VERSION

    def matches(self, other: Record) -> bool:
        """Same input, settings and key: everything but the output's own size and hash."""
        mine, theirs = asdict(self), asdict(other)
        for name in ("size", "sha256"):
            mine.pop(name)
            theirs.pop(name)
        return mine == theirs


def keyed_id(key: Key | None, label: str, value: str) -> str:
    """HMAC(key, label + value), shortened; a plain SHA-256 when there is no key (``strip``)."""
    if key is None:
        return hashlib.sha256(f"{label}:{value}".encode()).hexdigest()[:32]
    return key.digest(f"deid-manifest-{label}:{value}").hex()[:32]


def sha256_file(path: str | Path) -> tuple[int, str]:
    """Size and SHA-256 of a file, read in 1 MiB pieces."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()


def record_path(out_root: Path, output_rel: str) -> Path:
    """Where the record of an output lives: named by a hash of the output path."""
    name = hashlib.sha256(output_rel.encode("utf-8")).hexdigest()[:40]
    return out_root / STATE_DIR / RECORDS / f"{name}.json"


def read_record(out_root: Path, output_rel: str) -> Record | None:
    """The record of an output, or None when there is none or it cannot be read."""
    try:
        data = json.loads(record_path(out_root, output_rel).read_text(encoding="utf-8"))
        return Record(**data)
    except (OSError, ValueError, TypeError):
        return None


def write_text_atomic(path: Path, text: str) -> None:
    """Write a small text file atomically: temporary file beside it, fsync, rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_record(out_root: Path, record: Record) -> None:
    """Write the record of an output (after the output itself is in place)."""
    write_text_atomic(record_path(out_root, record.output), json.dumps(asdict(record), sort_keys=True))


def is_current(out_root: Path, wanted: Record) -> bool:
    """Whether the output of ``wanted`` exists, is complete, and was made the same way.

    ``wanted`` carries the identity fields; its size and hash are ignored. The output on disk
    is hashed and compared with the stored record, so a truncated or replaced file is redone.
    """
    stored = read_record(out_root, wanted.output)
    if stored is None or not stored.matches(wanted):
        return False
    target = out_root / wanted.output
    try:
        if target.stat().st_size != stored.size:
            return False
        return sha256_file(target) == (stored.size, stored.sha256)
    except OSError:
        return False


def remove_leftovers(out_root: Path) -> int:
    """Delete the temporary files of writes that a crash or kill interrupted; returns how many.

    Only names deid gives its own temporary files (``.NAME.XXXXXXXX.deid-tmp`` or ``.tmp``) are
    touched. Two runs must not write into one output folder at the same time.
    """
    removed = 0
    if not out_root.is_dir():
        return 0
    for folder, _dirs, names in os.walk(out_root):
        for name in names:
            if _LEFTOVER.match(name):
                try:
                    os.unlink(os.path.join(folder, name))
                    removed += 1
                except OSError:
                    pass
    return removed
