"""WebVTT with word times: inline ``<00:00:01.500>`` tags, one word per cue, or whisper's ``<u>`` highlights.

A cue whose several words carry no times of their own gives each of them the cue's times, so a
finding in it is redacted over the whole cue: coarse, but never misplaced.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from deid.redact.transcripts._common import Replacement, by_first, format_clock, parse_time, placeholder_text
from deid.redact.words import TranscriptError, Word

_TIMING = re.compile(r"^\s*(\S+)\s+-->\s+(\S+)(.*)$")
_TIMESTAMP_TAG = re.compile(r"<(\d+:)?\d{1,2}:\d{1,2}\.\d{3}>")
_UNDERLINED = re.compile(r"<u>(.*?)</u>", re.S)
_ANY_TAG = re.compile(r"<[^>]*>")


@dataclass
class Cue:
    start: float
    end: float
    settings: str
    words: list[int] = field(default_factory=list)  # indices into the word list
    inline: bool = False  # the words carry their own start times


def looks_like(text: str) -> bool:
    return text.lstrip("\ufeff").startswith("WEBVTT")


def read(text: str, path: str | Path) -> tuple[list[Word], list[Cue]]:
    lines = text.lstrip("\ufeff").splitlines()
    if not lines or not lines[0].startswith("WEBVTT"):
        raise TranscriptError("line 1: not WebVTT (no WEBVTT header)", path)
    words: list[Word] = []
    cues: list[Cue] = []
    n = 1
    while n < len(lines):
        if not lines[n].strip():
            n += 1
            continue
        block_start = n
        block = []
        while n < len(lines) and lines[n].strip():
            block.append(lines[n])
            n += 1
        head = block[0].split(maxsplit=1)[0] if block[0].strip() else ""
        if head in ("NOTE", "STYLE", "REGION"):
            continue
        timing_at = 0 if "-->" in block[0] else 1
        if timing_at >= len(block) or "-->" not in block[timing_at]:
            raise TranscriptError(f"line {block_start + 1}: cue has no timing line", path)
        line_no = block_start + timing_at + 1
        m = _TIMING.match(block[timing_at])
        try:
            start, end = parse_time(m.group(1)), parse_time(m.group(2))
        except (AttributeError, ValueError):
            raise TranscriptError(f"line {line_no}: cue timing is not 'start --> end'", path) from None
        cue = Cue(start, end, m.group(3))
        _read_payload(" ".join(block[timing_at + 1 :]), cue, line_no, words)
        cues.append(cue)
    return words, cues


def _read_payload(payload: str, cue: Cue, line_no: int, words: list[Word]) -> None:
    underlined = _UNDERLINED.findall(payload)
    if underlined:  # whisper's highlight_words: the cue repeats its segment, one word underlined
        payload = underlined[0]
    tags = [parse_time(t.group(0)[1:-1]) for t in _TIMESTAMP_TAG.finditer(payload)]
    cue.inline = bool(tags)
    bounds = [cue.start, *tags, cue.end]
    for k, chunk in enumerate(_TIMESTAMP_TAG.sub("\0", payload).split("\0")):
        for token in _ANY_TAG.sub("", chunk).split():
            cue.words.append(len(words))
            words.append(Word(token, bounds[k], max(bounds[k], bounds[k + 1]), line_no))


def write(cues: list[Cue], words: list[Word], replacements: list[Replacement]) -> str:
    first, swallowed = by_first(replacements)
    out = ["WEBVTT", ""]
    for cue in cues:
        parts = []
        for i in cue.words:
            if i in swallowed:
                continue
            text = words[i].text
            if i in first:
                r = first[i]
                text = placeholder_text(words[r.last].text, r.placeholder)
            if cue.inline and parts:
                text = f"<{format_clock(words[i].start)}>{text}"
            parts.append(text)
        if not parts:
            continue
        out += [f"{format_clock(cue.start)} --> {format_clock(cue.end)}{cue.settings}", " ".join(parts), ""]
    return "\n".join(out)
