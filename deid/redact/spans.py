"""From findings on words to spans in time: placed, padded and merged, or the file fails."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from deid.errors import DeidError
from deid.redact.detectors.base import ENTITIES, Finding
from deid.redact.words import Word


# How far a finding reaches into the unheard audio around it (seconds), and a number from its
# start per digit (slow speech takes about 0.45 s a digit).
REACH = 1.0
DIGIT_SECONDS = 0.45


class PlacementError(DeidError):
    """A finding that cannot be placed in time: the file must not pass unredacted."""


@dataclass(frozen=True)
class Span:
    """A stretch of audio to replace, in seconds.

    Attributes
    ----------
    start, end : float
    entities : tuple of str
        The entity types found inside, most specific first (`ENTITIES` order).
    detectors : tuple of str
        The rules that found them, in the same order.
    """

    start: float
    end: float
    entities: tuple[str, ...]
    detectors: tuple[str, ...]

    @property
    def entity(self) -> str:
        return self.entities[0]

    @property
    def detector(self) -> str:
        return self.detectors[0]


def word_times(words: Sequence[Word], first: int, last: int, *, duration: float | None = None) -> tuple[float, float]:
    """Start and end of words `first`..`last`; untimed words are bounded by their timed neighbours.

    Raises
    ------
    PlacementError
        When there is no timed word (or file edge) on a side to bound them by.
    """
    start = next((w.start for w in words[first : last + 1] if w.timed), None)
    end = next((w.end for w in reversed(words[first : last + 1]) if w.timed), None)
    if not (words[first].timed and words[last].timed):
        before = next((w.end for w in reversed(words[:first]) if w.timed), 0.0)
        after = next((w.start for w in words[last + 1 :] if w.timed), duration)
        if after is None:
            raise PlacementError(
                f"a finding on words {first + 1}-{last + 1} has no time and no timed word after it to bound it"
            )
        start = before if not words[first].timed else start
        end = after if not words[last].timed else end
    return start, end


def _reach(words: Sequence[Word], f: Finding, start: float, end: float, duration: float | None) -> tuple[float, float]:
    """Extend a finding over the unheard audio around it, up to its neighbouring words.

    Recognisers time badly the words they heard badly: Whisper gives "4946. 92813726" one second
    when the card number took six to say, and what it did not hear of a number sits in the gap
    after it. So a finding reaches into the gaps before and after it, up to `REACH` seconds, and
    a number up to `DIGIT_SECONDS` per digit from its start (after it) and from its end (before it,
    over the word before it if need be). Gaps are pauses or unheard speech: redacting a pause
    costs nothing.
    """
    previous = next((w for w in reversed(words[: f.first]) if w.timed), None)
    after = next((w.start for w in words[f.last + 1 :] if w.timed), duration if duration is not None else end)
    digits = sum(_digits_said(w.text) for w in words[f.first : f.last + 1])
    new_end = max(end, min(after, max(end + REACH, start + DIGIT_SECONDS * digits)))
    if digits:
        # Whisper times a long number as a short word near its end; it may have begun during the
        # word before it, never before that word began.
        floor = previous.start if previous is not None else 0.0
        new_start = min(start, max(floor, min(start - REACH, end - DIGIT_SECONDS * digits)))
    else:
        new_start = min(start, max(previous.end if previous is not None else 0.0, start - REACH))
    return new_start, new_end


def _digits_said(text: str) -> int:
    """How many digits a word says: "0488." four, "five" one, "double" one more, "twenty" two."""
    from deid.redact import vocab

    written = sum(c.isdigit() for c in text)
    if written:
        return written
    word = text.strip(".,;:!?-").lower()
    if word in vocab.UNITS or word in vocab.REPEATS:
        return 1
    return 2 if word in vocab.TEENS or word in vocab.TENS else 0


def place(
    findings: Sequence[Finding],
    words: Sequence[Word],
    *,
    padding: float = 0.25,
    merge_gap: float = 0.3,
    duration: float | None = None,
) -> list[Span]:
    """Spans covering every finding, each padded by `padding` on both sides (within the file),
    and merged where they come closer than `merge_gap` (or overlap).

    Parameters
    ----------
    findings : sequence of Finding
    words : sequence of Word
        The words the findings index.
    padding, merge_gap : float
        Seconds.
    duration : float, optional
        Length of the audio: spans are clipped to it.
    """
    rank = {e: k for k, e in enumerate(ENTITIES)}
    raw = []
    for f in findings:
        start, end = _reach(words, f, *word_times(words, f.first, f.last, duration=duration), duration)
        start, end = max(0.0, start - padding), end + padding
        if duration is not None:
            end = min(end, duration)
        raw.append((start, end, f))
    raw.sort(key=lambda r: (r[0], r[1]))
    spans: list[Span] = []
    group: list[tuple[float, float, Finding]] = []

    def flush() -> None:
        if not group:
            return
        found = sorted({(rank[f.entity], f.entity, f.detector) for _, _, f in group})
        start, end = float(group[0][0]), float(max(g[1] for g in group))
        spans.append(Span(start, end, tuple(e for _, e, _ in found), tuple(d for _, _, d in found)))

    for item in raw:
        if group and item[0] - max(g[1] for g in group) >= merge_gap:
            flush()
            group = []
        group.append(item)
    flush()
    return spans
