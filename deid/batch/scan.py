"""Walking an input folder: which files to process, which to skip and why.

The walk of a local folder recurses, follows symbolic links only while they stay inside the
input folder (anywhere, with ``follow_links``: review queues are folders of links into an
archive), and visits every real folder once, so a link back to a parent cannot loop. A folder
in a store is listed by prefix; it has no links. Both are judged by the same rules.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from deid.audio import AUDIO_EXTENSIONS
from deid.batch.storage import Folder, LocalFolder, StoreFolder, name_problem, open_folder
from deid.errors import DeidError
from deid.paths import is_temp_name

#: The folder deid keeps its state in, in an output folder (records, lock). Never taken as
#: input, and said so when an input folder holds one.
STATE_DIR = ".deid"


@dataclass(frozen=True)
class Skipped:
    """A path left out of the batch, and why (not audio, a link leading outside, a loop)."""

    rel: str
    reason: str


@dataclass
class Scan:
    """The files of a folder to process (relative POSIX paths, sorted), the ones skipped, and the refused.

    ``refused`` are audio objects of a store whose names cannot be mirrored as paths
    (:func:`~deid.batch.storage.name_problem`): they fail, so that the run says it did not do them.
    """

    root: str
    files: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    refused: list[Skipped] = field(default_factory=list)

    def take(self, name: str, *, pattern: str | None) -> None:
        """Judge the file at relative path ``name``: taken, skipped as not audio, or (not matching) ignored."""
        child = PurePosixPath(name)
        if pattern and not (fnmatch.fnmatch(name, pattern) or child.match(pattern)):
            return
        if is_temp_name(child.name) or child.suffix.lower() not in AUDIO_EXTENSIONS:
            self.skipped.append(Skipped(name, "not an audio file"))
        elif problem := name_problem(name):
            self.refused.append(Skipped(name, problem))
        else:
            self.files.append(name)

    def skip_state(self, name: str, count: int) -> None:
        self.skipped.append(Skipped(name, f"deid's own state folder ({count} files), never read as input; "
                                          "is this an output folder?"))


def check_folders(inp: Folder, out: Folder) -> None:
    """Refuse an input that is not a folder, and an output folder inside the input folder.

    An output inside the input would be picked up as input by the next run (and by this one,
    if it is walked after being written).
    """
    if isinstance(inp, StoreFolder):
        inp.check_input()
    elif not inp.path.is_dir():
        raise DeidError("input folder does not exist or is not a folder", inp.path)
    if isinstance(out, StoreFolder):
        out.check_output()
        if isinstance(inp, StoreFolder) and out.inside(inp):
            raise DeidError(f"the output folder is inside the input folder {inp}; choose one outside it", out)
        return
    if not isinstance(inp, StoreFolder):
        inside, there = inp.path.resolve(), out.path.resolve()
        if there == inside or inside in there.parents:
            raise DeidError(f"the output folder is inside the input folder {inp.path}; choose one outside it", out.path)
    if out.path.exists() and not out.path.is_dir():
        raise DeidError("output exists and is not a folder", out.path)


def scan(inp: Folder | Path, *, pattern: str | None = None, follow_links: bool = False,
         out: Folder | None = None) -> Scan:
    """List the audio files under ``inp``.

    Parameters
    ----------
    inp : Folder or Path
        The input folder (local, or a prefix in a store).
    pattern : str, optional
        A glob (``*.flac``, ``calls/**/*.wav``) that relative paths must match. Files that do
        not match are not counted anywhere: the pattern narrows the batch. Files that match
        but are not audio are skipped and counted.
    follow_links : bool
        Follow symbolic links that lead outside a local input folder (by default they are
        skipped). Every real folder is still visited once.
    out : Folder, optional
        The output folder: never walked into, even when a link leads there.

    Returns
    -------
    Scan
        Files whose extension is a readable audio format, and skipped entries.
    """
    inp = open_folder(inp)
    if not isinstance(inp, LocalFolder):
        return _list(inp, pattern)
    root = inp.path.resolve()
    result = Scan(str(inp.path))
    seen: set[tuple[int, int]] = set()
    outside: tuple[int, int] | None = None
    out_path = out.path.resolve() if isinstance(out, LocalFolder) else None
    if out_path is not None:
        try:
            st = out_path.stat()
            outside = (st.st_dev, st.st_ino)
        except OSError:
            pass

    def walk(folder: Path, rel: PurePosixPath) -> None:
        st = folder.stat()
        if (st.st_dev, st.st_ino) == outside:
            result.skipped.append(Skipped(str(rel), "the output folder (reached through a link), never read as input"))
            return
        if (st.st_dev, st.st_ino) in seen:
            result.skipped.append(Skipped(str(rel), "folder already visited through a link (a link loop)"))
            return
        seen.add((st.st_dev, st.st_ino))
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            result.skipped.append(Skipped(str(rel) or ".", f"cannot list folder: {exc.strerror}"))
            return
        for entry in entries:
            child = rel / entry.name
            path = Path(entry.path)
            if entry.is_symlink():
                try:
                    target = path.resolve(strict=True)
                except (OSError, RuntimeError):
                    result.skipped.append(Skipped(str(child), "broken link or link loop"))
                    continue
                if not follow_links and target != root and root not in target.parents:
                    result.skipped.append(Skipped(str(child), "link leads outside the input folder "
                                                              "(--follow-links follows it)"))
                    continue
                if out_path is not None and (target == out_path or out_path in target.parents):
                    result.skipped.append(Skipped(str(child), "link leads into the output folder, never read as input"))
                    continue
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if is_dir and entry.name == STATE_DIR:
                result.skip_state(str(child), sum(len(names) for _root, _dirs, names in os.walk(path)))
            elif is_dir:
                walk(path, child)
            else:
                result.take(str(child), pattern=pattern)

    walk(root, PurePosixPath())
    return result


def _list(inp: Folder, pattern: str | None) -> Scan:
    """A store's folder, listed by prefix; objects under a ``.deid`` prefix are deid's state, counted and skipped."""
    result = Scan(str(inp))
    state: dict[str, int] = {}
    for name in inp.list_files():
        parts = name.split("/")
        if STATE_DIR in parts[:-1]:
            folder = "/".join(parts[: parts.index(STATE_DIR) + 1])
            state[folder] = state.get(folder, 0) + 1
            continue
        result.take(name, pattern=pattern)
    for folder, count in sorted(state.items()):
        result.skip_state(folder, count)
    return result
