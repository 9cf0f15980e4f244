"""Dates: "March 14th, 1984", "the fourteenth of March", "03/14/1984", and whatever follows a
date-of-birth cue ("born in nineteen eighty four", "my date of birth is three fourteen eighty four").

A month name alone ("in March") and a weekday are not dates of anyone; a month with a day or a
year is.
"""

from __future__ import annotations

from deid.redact import vocab
from deid.redact.detectors.base import Finding
from deid.redact.normalise import Normalised, Token

_DOB_CUES = {"born", "birthday", "birth", "dob", "birthdate"}
# What ends the date after a birth cue before its sentence does ("... in 1974 and I live at").
_DATE_STOPS = {"and", "but", "so", "my", "i", "you", "live", "call", "number", "name", "email", "address"}


def find_dates(norm: Normalised) -> list[Finding]:
    """Calendar dates, and what follows a date-of-birth cue."""
    toks = norm.tokens
    out = []
    for i, t in enumerate(toks):
        if t.kind == "date":
            out.append(Finding(t.first, t.last, "date", "date:numeric"))
        elif t.kind == "word" and t.text in vocab.MONTHS:
            end = _month_phrase(toks, i)
            if end is not None:
                start = _day_before(toks, i)
                out.append(Finding(toks[start].first, toks[end].last, "date", "date"))
        elif t.text in _DOB_CUES:
            found = _after_dob_cue(toks, i)
            if found is not None:
                out.append(Finding(toks[found[0]].first, toks[found[1]].last, "date", "date:dob"))
    return out


def _is_day(t: Token) -> bool:
    return t.is_number and t.value is not None and 1 <= t.value <= 31 and len(t.text) <= 2


def _is_year(t: Token) -> bool:
    return t.kind == "number" and len(t.text) in (2, 4)


def _month_phrase(toks: list[Token], i: int) -> int | None:
    """Last token of "March 14th[,] [1984]", "March 1984", or the month of "14th of March"; else None."""
    j = i + 1
    if j < len(toks) and toks[j].text == "the":
        j += 1
    if j < len(toks) and _is_day(toks[j]):
        end = j
        k = j + 1 + (j + 1 < len(toks) and toks[j + 1].kind == "comma")
        if k < len(toks) and _is_year(toks[k]):
            end = k
        return end
    if j < len(toks) and toks[j].kind == "number" and len(toks[j].text) == 4 and toks[i].text not in vocab.AMBIGUOUS_MONTHS:
        return j
    k = i + 1 + (i + 1 < len(toks) and toks[i + 1].kind == "comma")
    year_after = k < len(toks) and _is_year(toks[k])
    if _day_before(toks, i, year_after=year_after) != i:
        return k if year_after else i
    return None


def _day_before(toks: list[Token], i: int, *, year_after: bool = True) -> int:
    """Index of the day in "14th of March", "the fourteenth March", "14 May 2021", or `i` when
    there is none (a plain number before a month needs a year after it: "give me 2 May" is not)."""
    j = i - 1
    if j >= 0 and toks[j].text in ("of", "on"):  # an ASR writes "the 21st on November"
        j -= 1
    if j >= 0 and _is_day(toks[j]) and (toks[j].kind == "ordinal" or j < i - 1 or year_after):
        return j
    return i


def _after_dob_cue(toks: list[Token], i: int) -> tuple[int, int] | None:
    """From the first date-like thing after a birth cue (at most 12 tokens on: "I was born on the
    island in 1974") to the end of its sentence, at most 8 tokens further: a year heard badly
    ("the 25th of July nineteen seventy for") is still the date."""
    for j in range(i + 1, min(len(toks), i + 13)):
        t = toks[j]
        if t.kind == "stop":
            return None
        if t.kind in ("date", "number", "ordinal") or (t.kind == "word" and t.text in vocab.MONTHS):
            end = j
            for k in range(j + 1, min(len(toks), j + 9)):
                if toks[k].kind == "stop" or toks[k].text in _DATE_STOPS or toks[k].text in vocab.CLOSINGS:
                    break
                if toks[k].kind != "comma":
                    end = k
            return j, end
    return None
