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

Each record is written to a temporary file, flushed and renamed (in a store: one PUT), after
its output is in place, so a record never describes an output that is not complete. One run at
a time writes into an output folder: :func:`writer_lock` holds ``OUT_DIR/.deid/lock`` for the
whole run (a lease renewed by the run, in a store).
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from deid.batch.lifeline import alive
from deid.batch.scan import STATE_DIR
from deid.batch.storage import Folder, LocalFolder, StoreFolder, open_folder, sha256_file, write_text_atomic
from deid.errors import DeidError
from deid.keys import Key
from deid import paths

__all__ = ["Record", "is_current", "keyed_id", "read_record", "records_key", "remove_leftovers", "sha256_file",
           "write_record", "write_text_atomic", "writer_lock"]

RECORDS = "records"
VERSION = 1
LOCK = "lock"
#: The random key of the records of ``strip`` runs given no key of their own.
RECORDS_KEY = "records.key"
#: A lock in a store is a lease: its run rewrites it every RENEW_SECONDS; one not renewed for
#: LEASE_SECONDS (by the clock of the machine that reads it) belongs to a run that is gone.
LEASE_SECONDS = 120
RENEW_SECONDS = 20


@dataclass(frozen=True)
class Record:
    """What produced one output; equal records mean the output need not be made again.

    ``tag`` is the store's tag of the output object (its ETag, generation...), empty for files.
    """

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
    tag: str = ""

    def matches(self, other: Record) -> bool:
        """Same input, settings and key: everything but the output's own size, hash and tag."""
        mine, theirs = asdict(self), asdict(other)
        for name in ("size", "sha256", "tag"):
            mine.pop(name)
            theirs.pop(name)
        return mine == theirs


def keyed_id(key: Key, label: str, value: str) -> str:
    """HMAC(key, label + value), shortened: what a record holds of an input, a scope, a preset or the key."""
    return key.digest(f"deid-manifest-{label}:{value}").hex()[:32]


def record_name(output_rel: str) -> str:
    """Where the record of an output lives, relative to the output folder: named by a hash of the output path."""
    name = hashlib.sha256(output_rel.encode("utf-8", "surrogateescape")).hexdigest()[:40]
    return f"{STATE_DIR}/{RECORDS}/{name}.json"


def read_record(out: Folder, output_rel: str) -> Record | None:
    """The record of an output, or None when there is none or it cannot be read."""
    text = out.read_text(record_name(output_rel))
    try:
        return Record(**json.loads(text)) if text is not None else None
    except (ValueError, TypeError):
        return None


def write_record(out: Folder, record: Record) -> None:
    """Write the record of an output (after the output itself is in place), dated 2000-01-01."""
    from deid.batch.work import NEUTRAL_MTIME

    out.write_text(record_name(record.output), json.dumps(asdict(record), sort_keys=True), mtime=NEUTRAL_MTIME)


def records_key(out: Folder) -> Key:
    """The random key that keys the records of an output folder whose runs have no key of their own.

    Kept in ``OUT_DIR/.deid/``: a record then matches no recording outside that folder. (The
    runs that need it, ``strip`` without a key, keep the audio bit-identical, so their outputs
    already say as much about the input as a record could.)
    """
    name = f"{STATE_DIR}/{RECORDS_KEY}"
    try:
        secret = bytes.fromhex((out.read_text(name) or "").strip())
    except ValueError:
        secret = b""
    if len(secret) < 32:
        secret = secrets.token_bytes(32)
        out.write_text(name, secret.hex())
    return Key(secret, "the output folder's records key")


class Held:
    """The lock of a run: :meth:`check` raises when the run has lost it (a store lease taken over)."""

    def __init__(self, out: Folder | None = None) -> None:
        self.out = out
        self.lost = ""

    def check(self) -> None:
        if self.lost:
            raise DeidError(self.lost, self.out)


@contextmanager
def writer_lock(out: Folder | str | Path) -> Iterator[Held]:
    """Hold ``OUT_DIR/.deid/lock`` for a run; refuse if another run holds it.

    In a local folder the lock is an ``flock`` on an open file, so the kernel releases it when
    the run ends in any way (a kill -9 included): a stale lock never blocks a rerun. In a store
    it is an object created only if absent (:class:`_Lease`).
    """
    out = open_folder(out)
    if isinstance(out, StoreFolder):
        lease = _Lease(out)
        lease.acquire()
        try:
            yield lease
        finally:
            lease.release()
        return
    folder = out.path / STATE_DIR
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle = open(folder / LOCK, "a+", encoding="ascii")  # noqa: SIM115 - held for the whole run
    except OSError as exc:
        raise DeidError(f"cannot write into the output folder: {exc.strerror or exc}", out.path) from None
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
                            "or give another output folder", out.path) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield Held(out)
    finally:
        handle.close()


def _machine() -> str:
    """This machine and process namespace, as a hash that does not tell its name (hostnames often name a person).

    Two runs with the same value see each other's processes, so a lock's pid can be checked.
    """
    parts = [socket.gethostname()]
    try:
        with open("/etc/machine-id", encoding="ascii") as f:
            parts.append(f.read().strip())
    except OSError:
        pass
    try:
        parts.append(str(os.stat("/proc/self/ns/pid").st_ino))
    except OSError:
        pass
    return hashlib.sha256(("deid-machine:" + ":".join(parts)).encode()).hexdigest()[:16]


class _Lease(Held):
    """The lock of an output folder in a store: ``OUT/.deid/lock``, an object that says which run holds it.

    It is created only if absent, with the store's conditional PUT where it has one (S3's and
    Azure's ``If-None-Match``, GCS's generation precondition); the run rewrites it every
    :data:`RENEW_SECONDS`. A lock is stale, and replaced, when its run is gone: on this
    machine when its process no longer exists, elsewhere when it has not been renewed for
    :data:`LEASE_SECONDS`. Two runs that replace the same stale lock at the same moment could
    both believe they hold it; each reads the lock back at every renewal and the one that finds
    another run's there stops.
    """

    def __init__(self, out: StoreFolder) -> None:
        super().__init__(out)
        self.name = f"{STATE_DIR}/{LOCK}"
        self.run = secrets.token_hex(16)
        self.machine = _machine()
        self.renewed = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _body(self) -> str:
        return json.dumps({"run": self.run, "machine": self.machine, "pid": os.getpid(), "renewed": round(time.time())})

    def _holder(self) -> dict[str, object] | None:
        text = self.out.read_text(self.name)
        if text is None:
            return None
        try:
            holder = json.loads(text)
        except ValueError:
            holder = None
        if not isinstance(holder, dict) or not isinstance(holder.get("run"), str):
            raise DeidError(f"{self.name} is not a deid lock; if no deid run is writing here, remove it", self.out)
        return holder

    def _refusal(self, holder: dict[str, object]) -> str | None:
        """Why ``holder`` still holds the folder, or None if its run is gone."""
        renewed = holder.get("renewed")
        age = time.time() - renewed if isinstance(renewed, (int, float)) else float("inf")
        pid = holder.get("pid")
        here = holder.get("machine") == self.machine
        if age > LEASE_SECONDS or (here and isinstance(pid, int) and not alive(pid)):
            return None
        where = "on this machine" if here else "on another machine"
        return (f"another deid run (pid {pid} {where}, lock renewed {max(0, round(age))} s ago) is writing into this "
                f"folder; wait for it to finish, or give another output folder (a lock not renewed for "
                f"{LEASE_SECONDS} s is taken over)")

    def acquire(self) -> None:
        for _ in range(3):
            if self.out.create_text(self.name, self._body()):
                break
            holder = self._holder()
            if holder is None:  # removed between the two calls
                continue
            refusal = self._refusal(holder)
            if refusal is not None:
                raise DeidError(refusal, self.out)
            self.out.remove(self.name)
        else:
            raise DeidError("another deid run is taking this folder's lock at the same time", self.out)
        holder = self._holder()
        if holder is None or holder.get("run") != self.run:
            raise DeidError("another deid run took this folder's lock at the same time; give it the folder, "
                            "or wait for it to finish", self.out)
        self.renewed = time.monotonic()
        self._thread = threading.Thread(target=self._renew, name="deid-lease", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        while not self._stop.wait(RENEW_SECONDS):
            try:
                holder = self._holder()
                if holder is None or holder.get("run") != self.run:
                    self.lost = "another deid run took over this output folder's lock; this run stopped"
                    return
                self.out.write_text(self.name, self._body())
                self.renewed = time.monotonic()
            except DeidError:
                if time.monotonic() - self.renewed > LEASE_SECONDS - RENEW_SECONDS:
                    self.lost = (f"could not renew this output folder's lock for {LEASE_SECONDS - RENEW_SECONDS} s "
                                 "(is the store reachable?); another run could take it, so this run stopped")
                    return

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        try:
            holder = self._holder()
            if holder is not None and holder.get("run") == self.run:
                self.out.remove(self.name)
        except DeidError:
            pass  # a lock left behind is taken over once it is stale


def is_current(out: Folder, wanted: Record) -> bool:
    """Whether the output of ``wanted`` exists, is complete, and was made the same way.

    ``wanted`` carries the identity fields; its size, hash and tag are ignored. A file on disk
    is hashed and compared with the stored record, an object in a store compared by size and
    tag, so a truncated or replaced output is redone.
    """
    stored = read_record(out, wanted.output)
    if stored is None or not stored.matches(wanted):
        return False
    return out.intact(wanted.output, stored.size, stored.sha256, stored.tag)


def remove_leftovers(out: Folder) -> int:
    """Delete the temporary files that interrupted writes left anywhere under `out`; returns how many.

    Only deid's own temporary names that no live run holds (:func:`deid.paths.remove_leftovers`).
    A store has none: its uploads are atomic (an interrupted multipart upload is invisible; a
    lifecycle rule of the bucket aborts it).
    """
    if not isinstance(out, LocalFolder):
        return 0
    return paths.remove_leftovers(out.path, recursive=True)
