"""What to evaluate on: clips with speaker labels and optional reference transcripts."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from deid.errors import AudioError, DeidError

_AUDIO_SUFFIXES = {f".{fmt.lower()}" for fmt in sf.available_formats()} | {".oga", ".opus"}


@dataclass(frozen=True)
class Clip:
    """One utterance of one speaker.

    Attributes
    ----------
    path : Path
    speaker : str
    reference : str or None
        What was said, if known.
    """

    path: Path
    speaker: str
    reference: str | None = None


def clips_from_folder(folder: str | Path) -> list[Clip]:
    """One sub-folder per speaker, audio files anywhere below it (LibriSpeech's chapter folders too)."""
    root = Path(folder)
    if not root.is_dir():
        raise DeidError("not a folder", root)
    clips = [
        Clip(path, speaker_dir.name)
        for speaker_dir in sorted(p for p in root.iterdir() if p.is_dir())
        for path in sorted(speaker_dir.rglob("*"))
        if path.suffix.lower() in _AUDIO_SUFFIXES and path.is_file()
    ]
    return _checked(clips, root)


def clips_from_table(table: str | Path) -> list[Clip]:
    """A CSV or TSV with a header naming at least ``path`` and ``speaker``.

    Paths are relative to the table's folder. A ``text`` (or ``transcript``) column, when
    present, gives the reference transcripts.
    """
    table = Path(table)
    rows = _read_table(table)
    fields = set(rows[0]) if rows else set()
    if not {"path", "speaker"} <= fields:
        raise DeidError("needs a header with the columns 'path' and 'speaker'", table)
    text_col = next((c for c in ("text", "transcript") if c in fields), None)
    clips = [
        Clip(table.parent / row["path"], row["speaker"], row[text_col] if text_col else None) for row in rows
    ]
    for clip in clips:
        if not clip.path.is_file():
            raise DeidError("listed audio file does not exist", clip.path)
    return _checked(clips, table)


def with_references(clips: list[Clip], refs: str | Path) -> list[Clip]:
    """Attach transcripts from a CSV/TSV with the columns ``path`` and ``text``.

    ``path`` may be relative to the transcript file's folder, or just the file name or
    stem when those are unique. Clips without a transcript make the WER fall back to the
    ASR of the original, so every clip must have one.
    """
    refs = Path(refs)
    rows = _read_table(refs)
    if not rows or not {"path", "text"} <= set(rows[0]):
        raise DeidError("needs a header with the columns 'path' and 'text'", refs)
    by_key: dict[str, str] = {}
    for row in rows:
        p = Path(row["path"])
        for key in (str((refs.parent / p).resolve()), p.name, p.stem):
            by_key.setdefault(key, row["text"])
    out = []
    for clip in clips:
        text = next(
            (by_key[k] for k in (str(clip.path.resolve()), clip.path.name, clip.path.stem) if k in by_key), None
        )
        if text is None:
            raise DeidError(f"no transcript for {clip.path.name}", refs)
        out.append(Clip(clip.path, clip.speaker, text))
    return out


def load_mono(path: Path) -> tuple[np.ndarray, int]:
    """Read a clip as mono float32; an evaluation listens the way a speaker model does."""
    try:
        y, sr = sf.read(path, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as error:
        raise AudioError(f"cannot read audio: {error}", path) from error
    return y.mean(axis=1), int(sr)


def _read_table(path: Path) -> list[dict[str, str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise DeidError(f"cannot read: {error.strerror}", path) from error
    delimiter = "\t" if "\t" in text.partition("\n")[0] else ","
    return list(csv.DictReader(text.splitlines(), delimiter=delimiter))


def _checked(clips: list[Clip], where: Path) -> list[Clip]:
    counts: dict[str, int] = {}
    for clip in clips:
        counts[clip.speaker] = counts.get(clip.speaker, 0) + 1
    usable = [s for s, n in counts.items() if n >= 2]
    if len(usable) < 2:
        raise DeidError("an evaluation needs at least two speakers with two clips each", where)
    # A speaker with one clip has no target trial and cannot be identified: leave them out.
    return [clip for clip in clips if counts[clip.speaker] >= 2]
