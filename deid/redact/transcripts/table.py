"""A plain table of words: ``start,end,word`` as CSV or TSV, with or without a header row.

Times are seconds (``12.5``) or clock times (``00:00:12.500``). With a header, the columns are
found by name (``start``, ``end``, and ``word``, ``text`` or ``token``), and other columns are
ignored; without one, they are the first three.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from deid.redact.transcripts._common import Replacement, by_first, parse_time, placeholder_text
from deid.redact.words import TranscriptError, Word

_WORD_COLUMNS = ("word", "text", "token")


@dataclass(frozen=True)
class Layout:
    delimiter: str
    header: tuple[str, str, str] | None  # the names of the start, end and word columns


def read(text: str, path: str | Path) -> tuple[list[Word], Layout]:
    first_line = text.split("\n", 1)[0]
    delimiter = "\t" if str(path).lower().endswith(".tsv") or "\t" in first_line else ","
    rows = csv.reader(io.StringIO(text), delimiter=delimiter)
    words: list[Word] = []
    layout = Layout(delimiter, None)
    columns = (0, 1, 2)
    try:
        for row in rows:
            line = rows.line_num
            if not row or not "".join(row).strip():
                continue
            if line == 1 and not _is_time(row[0]):
                names = [c.strip().lower() for c in row]
                try:
                    word_col = next(names.index(c) for c in _WORD_COLUMNS if c in names)
                    columns = (names.index("start"), names.index("end"), word_col)
                except (StopIteration, ValueError):
                    raise TranscriptError(
                        "line 1: header must name the columns start, end and word", path
                    ) from None
                layout = Layout(delimiter, tuple(row[c].strip() for c in columns))
                continue
            if len(row) <= max(columns):
                raise TranscriptError(f"line {line}: expected start{delimiter}end{delimiter}word", path)
            try:
                start, end = parse_time(row[columns[0]]), parse_time(row[columns[1]])
            except ValueError:
                raise TranscriptError(f"line {line}: start or end is not a time", path) from None
            words.append(Word(row[columns[2]].strip(), start, end, line))
    except csv.Error as e:
        raise TranscriptError(f"line {rows.line_num}: not a CSV/TSV table ({e})", path) from None
    return words, layout


def write(layout: Layout, words: list[Word], replacements: list[Replacement]) -> str:
    first, swallowed = by_first(replacements)
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=layout.delimiter, lineterminator="\n")
    if layout.header:
        writer.writerow(layout.header)
    for i, w in enumerate(words):
        if i in swallowed:
            continue
        if i in first:
            r = first[i]
            writer.writerow([f"{w.start:.3f}", f"{words[r.last].end:.3f}", placeholder_text(words[r.last].text, r.placeholder)])
        else:
            writer.writerow([f"{w.start:.3f}", f"{w.end:.3f}", w.text])
    return buf.getvalue()


def _is_time(text: str) -> bool:
    try:
        parse_time(text)
    except ValueError:
        return False
    return True
