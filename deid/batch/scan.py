"""Walking an input folder: which files to process, which to skip and why.

The walk recurses, follows symbolic links only while they stay inside the input folder, and
visits every real folder once, so a link back to a parent cannot loop.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from deid.audio import AUDIO_EXTENSIONS
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
    """The files of a folder to process (relative POSIX paths, sorted) and the ones skipped."""

    root: Path
    files: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def check_folders(in_dir: Path, out_dir: Path) -> None:
    """Refuse an input that is not a folder, and an output folder inside the input folder.

    An output inside the input would be picked up as input by the next run (and by this one,
    if it is walked after being written).
    """
    if not in_dir.is_dir():
        raise DeidError("input folder does not exist or is not a folder", in_dir)
    inside, out = in_dir.resolve(), out_dir.resolve()
    if out == inside or inside in out.parents:
        raise DeidError(f"the output folder is inside the input folder {in_dir}; choose one outside it", out_dir)
    if out.exists() and not out.is_dir():
        raise DeidError("output exists and is not a folder", out_dir)


def scan(in_dir: Path, *, pattern: str | None = None) -> Scan:
    """List the audio files under ``in_dir``.

    Parameters
    ----------
    in_dir : Path
        The input folder.
    pattern : str, optional
        A glob (``*.flac``, ``calls/**/*.wav``) that relative paths must match. Files that do
        not match are not counted anywhere: the pattern narrows the batch. Files that match
        but are not audio are skipped and counted.

    Returns
    -------
    Scan
        Files whose extension is a readable audio format, and skipped entries.
    """
    root = in_dir.resolve()
    result = Scan(in_dir)
    seen: set[tuple[int, int]] = set()

    def walk(folder: Path, rel: PurePosixPath) -> None:
        st = folder.stat()
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
                if target != root and root not in target.parents:
                    result.skipped.append(Skipped(str(child), "link leads outside the input folder"))
                    continue
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if is_dir and entry.name == STATE_DIR:
                count = sum(len(names) for _root, _dirs, names in os.walk(path))
                result.skipped.append(Skipped(str(child), f"deid's own state folder ({count} files), never read "
                                                          "as input; is this an output folder?"))
                continue
            if is_dir:
                walk(path, child)
                continue
            name = str(child)
            if pattern and not (fnmatch.fnmatch(name, pattern) or child.match(pattern)):
                continue
            if is_temp_name(entry.name) or Path(entry.name).suffix.lower() not in AUDIO_EXTENSIONS:
                result.skipped.append(Skipped(name, "not an audio file"))
            else:
                result.files.append(name)

    walk(root, PurePosixPath())
    return result
