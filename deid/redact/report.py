"""The redaction report: one JSON line per span, with the file, the times, the entity type and the
detector, and never a word of what was said."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from deid.redact.spans import Span


def report_lines(spans: Sequence[Span], file: str | Path) -> list[str]:
    """JSON lines for `spans` of `file`: ``{"file", "start", "end", "entity", "detector", "entities", "detectors"}``."""
    return [
        json.dumps(
            {
                "file": str(file),
                "start": round(s.start, 3),
                "end": round(s.end, 3),
                "entity": s.entity,
                "detector": s.detector,
                "entities": sorted(set(s.entities)),
                "detectors": sorted(set(s.detectors)),
            },
            ensure_ascii=False,
        )
        for s in spans
    ]


def append_report(path: str | Path, spans: Sequence[Span], file: str | Path) -> None:
    """Append the lines of one file to the report at `path` (one write, so lines never interleave)."""
    lines = report_lines(spans, file)
    if lines:
        with open(path, "a", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
