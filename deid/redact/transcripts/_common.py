"""What every transcript format shares: clock times, and placeholders that keep punctuation."""

from __future__ import annotations

import re
from dataclasses import dataclass

_CLOCK = re.compile(r"^(?:(\d+):)?(\d{1,2}):(\d{1,2}(?:[.,]\d+)?)$")
_TRAILING = re.compile(r"[.,;:!?]+$")


@dataclass(frozen=True)
class Replacement:
    """Words `first`..`last` (indices into `Transcript.words`) written as one `placeholder`."""

    first: int
    last: int
    placeholder: str


def parse_time(text: str) -> float:
    """Seconds from ``"12.5"``, ``"01:02.500"`` or ``"1:02:03,250"``; raises ValueError otherwise."""
    text = text.strip()
    m = _CLOCK.match(text)
    if m:
        hours, minutes, seconds = m.groups()
        return int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds.replace(",", "."))
    value = float(text)
    if value != value:  # NaN
        raise ValueError(text)
    return value


def format_clock(seconds: float) -> str:
    """WebVTT's ``hh:mm:ss.mmm``."""
    ms = round(seconds * 1000)
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def placeholder_text(last_word: str, placeholder: str) -> str:
    """The placeholder with the sentence punctuation that followed the last redacted word."""
    m = _TRAILING.search(last_word.strip())
    return placeholder + (m.group(0) if m else "")


def by_first(replacements: list[Replacement]) -> tuple[dict[int, Replacement], set[int]]:
    """Index replacements by their first word, and collect the words they swallow."""
    first = {r.first: r for r in replacements}
    swallowed = {i for r in replacements for i in range(r.first + 1, r.last + 1)}
    return first, swallowed
