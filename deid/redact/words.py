"""A timed word, and the checks every word list passes before anything is detected in it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from deid.errors import DeidError

# Recognisers round word times; an end this close past the audio's end is the same instant.
END_TOLERANCE = 0.1


class TranscriptError(DeidError):
    """A transcript that cannot be trusted to place every word in time."""


@dataclass(frozen=True)
class Word:
    """One word as heard, with its times in seconds from the start of the file.

    Parameters
    ----------
    text : str
        The word as the recogniser wrote it, punctuation included (``"Okafor,"``, ``"647-221-0488"``).
    start, end : float or None
        Times in seconds. ``None`` for a word the transcript left untimed (WhisperX leaves
        numbers it could not align); a finding on such a word is placed between its timed
        neighbours, or fails.
    line : int
        The line of the transcript file the word came from (0 when it came from the ASR), so an
        error can point at it without quoting it.
    ends_segment : bool
        The word is the last of a Whisper segment (a Whisper/WhisperX JSON transcript, or the
        built-in ASR): a sentence end, as a full stop is, where the recogniser wrote none.
    """

    text: str
    start: float | None
    end: float | None
    line: int = 0
    ends_segment: bool = False

    @property
    def timed(self) -> bool:
        return self.start is not None and self.end is not None


def check_words(words: Sequence[Word], *, path: str | Path | None = None, duration: float | None = None) -> None:
    """Refuse word times that cannot be right: not numbers, negative, backwards, or past the audio.

    The error names the file and the line, never the word: transcripts hold what reviewers must
    not read.

    Raises
    ------
    TranscriptError
    """
    previous_start = -math.inf
    for word in words:
        if not word.timed:
            continue
        where = f"line {word.line}: " if word.line else ""
        if not (math.isfinite(word.start) and math.isfinite(word.end)) or word.start < 0:
            raise TranscriptError(f"{where}word time is not a time ({word.start!r} to {word.end!r} s)", path)
        if word.end < word.start:
            raise TranscriptError(f"{where}word ends ({word.end:.3f} s) before it starts ({word.start:.3f} s)", path)
        if word.start < previous_start:
            raise TranscriptError(
                f"{where}times go backwards (word starts at {word.start:.3f} s, the one before at {previous_start:.3f} s)",
                path,
            )
        if duration is not None and word.end > duration + END_TOLERANCE:
            raise TranscriptError(
                f"{where}word ends at {word.end:.3f} s, after the end of the audio ({duration:.3f} s): "
                "is this the transcript of another file?",
                path,
            )
        previous_start = word.start
