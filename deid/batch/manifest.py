"""The resume manifest: one small JSON record per output, in ``OUT_DIR/.deid/records/``.

A record says which input content, preset, key and key scope produced an output (and, when it
was redacted, which redaction options and transcript), and the output's size and SHA-256, so
that a rerun can tell a complete, current output from a stale or half-finished one. It sits
beside the outputs, where reviewers can read it, so it holds nothing that helps undo the
distortion or identify a recording:

- no drawn parameters and no key;
- the input content, the key scope (which may name a speaker) and the key are recorded only as
  HMACs under the key itself, which cannot be inverted, cannot be checked against a candidate
  recording without the key, and are different from the per-file seeds (other HMAC labels);
- the output path only, never the input path (with ``--rename hashed`` that path is a hash).

Every field is keyed or the same for the whole run (mode, link, format, version), and every
record file gets the neutral modification time, so that neither its content nor its date
tells which recording it belongs to or in which order recordings were processed.

Each record is written to a temporary file, flushed and renamed, after its output is in place,
so a record never describes an output that is not complete. One run at a time writes into an
output folder: :func:`writer_lock` holds ``OUT_DIR/.deid/lock`` for the whole run.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from deid.batch.scan import STATE_DIR
from deid.errors import DeidError
from deid.keys import Key
from deid.paths import is_temp_name, temp_beside

RECORDS = "records"
VERSION = 1
LOCK = "lock"
#: The random key of the records of ``strip`` runs given no key of their own.
RECORDS_KEY = "records.key"


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
    #: What was redacted and from which words (options, the sidecar's hash or the ASR), keyed.
    redact_id: str = ""
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
    name = hashlib.sha256(output_rel.encode("utf-8", "surrogateescape")).hexdigest()[:40]
    return out_root / STATE_DIR / RECORDS / f"{name}.json"


def read_record(out_root: Path, output_rel: str) -> Record | None:
    """The record of an output, or None when there is none or it cannot be read."""
    try:
        data = json.loads(record_path(out_root, output_rel).read_text(encoding="utf-8"))
        return Record(**data)
    except (OSError, ValueError, TypeError):
        return None


def write_text_atomic(path: Path, text: str, *, errors: str = "strict", mtime: int | None = None) -> None:
    """Write a small text file atomically: temporary file beside it, fsync, rename.

    `mtime` (seconds since the epoch) dates the file before it appears under its name.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temp_beside(path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors=errors, newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if mtime is not None:
            os.utime(tmp, (mtime, mtime))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_record(out_root: Path, record: Record) -> None:
    """Write the record of an output (after the output itself is in place), dated 2000-01-01."""
    from deid.batch.work import NEUTRAL_MTIME

    write_text_atomic(record_path(out_root, record.output), json.dumps(asdict(record), sort_keys=True),
                      mtime=NEUTRAL_MTIME)


def records_key(out_root: Path) -> Key:
    """The random key that keys the records of an output folder whose runs have no key of their own.

    Kept in ``OUT_DIR/.deid/``: a record then matches no recording outside that folder. (The
    runs that need it, ``strip`` without a key, keep the audio bit-identical, so their outputs
    already say as much about the input as a record could.)
    """
    path = out_root / STATE_DIR / RECORDS_KEY
    try:
        secret = bytes.fromhex(path.read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        secret = b""
    if len(secret) < 32:
        secret = secrets.token_bytes(32)
        write_text_atomic(path, secret.hex())
    return Key(secret, "the output folder's records key")


@contextmanager
def writer_lock(out_root: Path) -> Iterator[None]:
    """Hold ``OUT_DIR/.deid/lock`` for a run; refuse if another run holds it.

    The lock is an ``flock`` on an open file, so the kernel releases it when the run ends in
    any way (a kill -9 included): a stale lock never blocks a rerun.
    """
    folder = out_root / STATE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    handle = open(folder / LOCK, "a+", encoding="ascii")  # noqa: SIM115 - held for the whole run
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            handle.seek(0)
            holder = handle.read().strip()
            who = f" (pid {holder})" if holder.isdigit() else ""
            raise DeidError(f"another deid run{who} is writing into this folder; wait for it to finish, "
                            "or give another output folder", out_root) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()


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

    Only names deid gives its own temporary files (``.NAME.XXXXXXXX.deid-tmp``) are touched,
    and only by the run that holds :func:`writer_lock`, so no other run's write is in flight.
    """
    removed = 0
    if not out_root.is_dir():
        return 0
    for folder, _dirs, names in os.walk(out_root):
        for name in names:
            if is_temp_name(name):
                try:
                    os.unlink(os.path.join(folder, name))
                    removed += 1
                except OSError:
                    pass
    return removed
