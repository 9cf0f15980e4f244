"""JSON that remembers the line each object started on, so an error can point at a word."""

from __future__ import annotations

import json
import json.decoder
import json.scanner
from pathlib import Path
from typing import Any

from deid.redact.words import TranscriptError


class LineDict(dict):
    """A JSON object with the line (1-based) of its opening brace."""

    line: int = 0


def load(text: str, path: str | Path) -> Any:
    """Parse `text`; every object comes back as a `LineDict`.

    Raises
    ------
    TranscriptError
        When `text` is not JSON, naming the line and column.
    """
    newlines = [i for i, c in enumerate(text) if c == "\n"]

    def parse_object(s_and_end, *args, **kwargs):
        s, end = s_and_end
        pairs, new_end = json.decoder.JSONObject(s_and_end, *args, **kwargs)
        obj = LineDict(pairs)
        obj.line = _line_of(newlines, end - 1)
        return obj, new_end

    decoder = json.JSONDecoder(object_pairs_hook=list)
    decoder.parse_object = parse_object
    # The C scanner calls its own object parser; the Python one calls ours.
    decoder.scan_once = json.scanner.py_make_scanner(decoder)
    try:
        return decoder.decode(text)
    except json.JSONDecodeError as e:
        raise TranscriptError(f"line {e.lineno}: not valid JSON ({e.msg}, column {e.colno})", path) from None
    except RecursionError:
        raise TranscriptError("not a transcript: JSON nested too deeply", path) from None


def _line_of(newlines: list[int], index: int) -> int:
    import bisect

    return bisect.bisect_left(newlines, index) + 1


def number(value: Any, what: str, obj: LineDict, path: str | Path) -> float | None:
    """A time field: a number, or a string holding one (Amazon writes ``"1.23"``); None if absent."""
    if value is None:
        return None
    try:
        if isinstance(value, bool):
            raise ValueError
        return float(value)
    except (TypeError, ValueError):
        raise TranscriptError(f"line {obj.line}: {what} is not a number", path) from None
