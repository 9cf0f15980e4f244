"""Which paths deid may write, and the names of its temporary files.

One rule for every command and every file deid writes (an output, the rename map, the audit
log, a report, a transcript): it is never a file the run reads (an input, the key file, the
preset, the speaker map), never inside a folder the run reads, never another of the run's
own outputs, and never an existing file that is read-only or a folder. Paths are compared
after resolving links and ``..``, and by device and inode, so a symbolic link, a hard link or
a bind mount does not get past the check. Call :func:`check_writes` before any work.

Temporary files live beside their target as ``.NAME.XXXXXXXX.deid-tmp``; that name is
deid's alone, and clean-up touches nothing else (:func:`is_temp_name`). Each is written
through a :class:`TempFile`, which holds a lock on it from its creation until it is renamed
onto its target or removed: a temporary file nobody holds is what a killed run left, and
:func:`remove_leftovers` removes those and only those, whichever run meets them.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from deid.errors import DeidError

TEMP_SUFFIX = ".deid-tmp"
_TEMP_NAME = re.compile(r"^\..+\.[A-Za-z0-9_]{8}" + re.escape(TEMP_SUFFIX) + "$")

PathLike = str | os.PathLike[str]


def as_path(value: object, label: str) -> Path:
    """`value` as a Path, or a DeidError naming `label` when it is no path at all.

    Neither None, a number (``open(3)`` would open file descriptor 3) nor an empty string (which
    ``Path`` turns into the current folder) is a path.
    """
    if not isinstance(value, (str, os.PathLike)):
        raise DeidError(f"{label} must be a path (str or os.PathLike), not {type(value).__name__}")
    if os.fspath(value) == "":
        raise DeidError(f"{label} is an empty path")
    return Path(value)


def read_failure(exc: OSError) -> str:
    """Why a file could not be read, in the words every command uses."""
    if exc.errno == errno.ELOOP:
        return "is a loop of symbolic links"
    return f"cannot read: {exc.strerror or exc}"


def temp_beside(target: PathLike) -> tuple[int, Path]:
    """A new temporary file beside `target` (same folder, so a rename can replace the target).

    Returns the open descriptor and the path; the name is one :func:`is_temp_name` knows.
    """
    target = Path(target)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=TEMP_SUFFIX)
    return fd, Path(name)


class TempFile:
    """A file written beside `target` under deid's temporary name, locked while it exists.

    Write through :attr:`handle`; read back through :attr:`path`. :meth:`publish` renames it
    onto `target` (after an fsync), :meth:`discard` removes it; until one of them, the lock
    tells :func:`remove_leftovers` that a live run is writing it.
    """

    def __init__(self, target: PathLike) -> None:
        self.target = Path(target)
        while True:
            fd, self.path = temp_beside(self.target)
            fcntl.flock(fd, fcntl.LOCK_EX)
            # Another run's clean-up may have taken the file between its creation and the lock.
            if _names(self.path, fd):
                break
            os.close(fd)
        self.handle = os.fdopen(fd, "wb")

    def publish(self, *, mtime: int | None = None) -> None:
        """Flush and fsync the file, date it (seconds since the epoch) and rename it onto the target."""
        try:
            self.handle.flush()
            os.fsync(self.handle.fileno())
            if mtime is not None:
                os.utime(self.path, (mtime, mtime))
            os.replace(self.path, self.target)
        except BaseException:
            self.discard()
            raise
        self.handle.close()

    def discard(self) -> None:
        """Remove the file; the target is untouched."""
        self.path.unlink(missing_ok=True)
        self.handle.close()


def _names(path: Path, fd: int) -> bool:
    """Whether `path` still names the file open as `fd`."""
    try:
        return os.path.samestat(os.stat(path, follow_symlinks=False), os.fstat(fd))
    except OSError:
        return False


def remove_leftovers(folder: PathLike, *, name: str | None = None, recursive: bool = False) -> int:
    """Remove the temporary files killed runs left in `folder`; returns how many.

    Only deid's own names (:func:`is_temp_name`), and only those no live run holds (see
    :class:`TempFile`), so a run writing into the same folder keeps its files. `name` limits it
    to the leftovers of one target (``.NAME.XXXXXXXX.deid-tmp``); `recursive` goes into
    sub-folders.
    """
    removed = 0
    prefix = "" if name is None else f".{name}."
    for root, dirs, names in os.walk(folder):
        if not recursive:
            dirs.clear()
        for entry in names:
            if entry.startswith(prefix) and is_temp_name(entry) and _remove_if_left(Path(root, entry)):
                removed += 1
    return removed


def _remove_if_left(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # held: a live run is writing it
        os.close(fd)
        return False
    try:
        if _names(path, fd):
            path.unlink()
            return True
        return False
    except OSError:
        return False
    finally:
        os.close(fd)


def printable(text: str) -> str:
    """`text` as any terminal can show it: bytes of a file name that are not UTF-8 as ``\\xNN``."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def is_temp_name(name: str) -> bool:
    """Whether `name` is one deid gives its temporary files (and so one it may clean up)."""
    return _TEMP_NAME.match(name) is not None


@dataclass(frozen=True)
class Identity:
    """A path resolved, and the (device, inode) of what it names if it exists."""

    path: Path
    inode: tuple[int, int] | None
    mode: int = 0

    def same(self, other: Identity) -> bool:
        return self.path == other.path or (self.inode is not None and self.inode == other.inode)


def identity(path: PathLike) -> Identity:
    """Resolve `path` (links, ``..``) and stat what it names.

    Raises
    ------
    DeidError
        When the path is a loop of symbolic links.
    """
    try:
        resolved = Path(path).resolve()
    except RuntimeError:  # Python 3.11 reports a link loop this way
        raise DeidError("is a loop of symbolic links", path) from None
    try:
        st = os.stat(resolved)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise DeidError("is a loop of symbolic links", path) from None
        return Identity(resolved, None)
    return Identity(resolved, (st.st_dev, st.st_ino), st.st_mode)


def _inside(write: Identity, folder: Identity) -> bool:
    """Whether `write` is `folder` or lies anywhere under it (also through another name of it)."""
    if write.path == folder.path or folder.path in write.path.parents:
        return True
    if folder.inode is None:
        return False
    for parent in [write.path, *write.path.parents]:
        try:
            st = os.stat(parent)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == folder.inode:
            return True
    return False


def read_only(found: Identity) -> bool:
    """Whether an existing file may not be written (by permission, or with no write bit at all)."""
    return found.inode is not None and (not found.mode & 0o222 or not os.access(found.path, os.W_OK))


def check_writes(
    writes: Mapping[str, PathLike | None],
    *,
    reads: Mapping[str, PathLike | None] | None = None,
    folders: Mapping[str, PathLike | None] | None = None,
) -> None:
    """Refuse, before any work, a path deid would write that could destroy something.

    Parameters
    ----------
    writes : mapping of label to path
        What the run will write, by the name a user knows it by (``"the output"``,
        ``"--audit"``); None entries are ignored.
    reads : mapping of label to path, optional
        Files the run reads (``"the input"``, ``"the key file"``, ``"the preset"``).
    folders : mapping of label to path, optional
        Folders the run reads (``"the input folder"``): nothing may be written inside them.

    Raises
    ------
    DeidError
        Naming the path and what it would have destroyed.
    """
    read_ids = {label: identity(p) for label, p in (reads or {}).items() if p is not None}
    folder_ids = {label: identity(p) for label, p in (folders or {}).items() if p is not None}
    seen: dict[str, Identity] = {}
    for label, path in writes.items():
        if path is None:
            continue
        if str(path) == "":
            raise DeidError(f"{label} is an empty path")
        found = identity(path)
        for what, other in read_ids.items():
            if found.same(other):
                raise DeidError(f"{label} is {what}; deid never writes over a file it reads", path)
        for what, folder in folder_ids.items():
            if _inside(found, folder):
                raise DeidError(f"{label} lies inside {what} {folder.path}; deid never writes there", path)
        for what, other in seen.items():
            if found.same(other):
                raise DeidError(f"{label} is also {what}; give each its own file", path)
        if found.inode is not None and stat.S_ISDIR(found.mode):
            raise DeidError(f"{label} is a folder; give a file name", path)
        if read_only(found):
            raise DeidError(f"{label} exists and is read-only; deid does not replace it", path)
        seen[label] = found
