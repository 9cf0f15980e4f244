"""Street addresses and postcodes.

- After an address cue ("I live at", "send it to", "my address is"), a house number and the words
  after it, whatever they sound like.
- A house number, up to four street words and a street suffix: "87 Birchwood Lane", "eighty
  seven birchwood lane", "1600 North Pennsylvania Avenue", then an apartment or unit if one
  follows. Suffixes that are also everyday words (way, park, hill, view...) count only when the
  transcript capitalises them.
- A street named without its number in a cased transcript: capitalised words and a capitalised
  suffix ("Kingsley Road").
- P.O. boxes.
- US ZIP codes after a state or a "zip code" cue, and UK and Canadian postcodes however they
  were spelled out ("S W one A, one A A").
"""

from __future__ import annotations

import re

from deid.redact import vocab
from deid.redact.detectors.base import Finding
from deid.redact.normalise import Normalised, Token

_CLEAR_SUFFIXES = {
    "street", "st", "lane", "ln", "avenue", "ave", "road", "rd", "drive", "boulevard", "blvd", "court", "ct",
    "terrace", "crescent", "parkway", "pkwy", "highway", "hwy", "trail", "alley", "mews", "gardens", "grove",
    "plaza", "place", "close", "circle", "square", "broadway",
}
_CUES_BY_FIRST: dict[str, list[tuple[str, ...]]] = {}
for _cue in sorted(vocab.ADDRESS_CUES, key=len, reverse=True):
    _CUES_BY_FIRST.setdefault(_cue[0], []).append(_cue)
_POSTCODES = re.compile(r"^(?:[a-z]{1,2}\d[a-z\d]?\d[a-z]{2}|[a-z]\d[a-z]\d[a-z]\d)$")


def find_addresses(norm: Normalised) -> list[Finding]:
    """Street addresses, P.O. boxes and postcodes."""
    toks = norm.tokens
    out = []
    for i in range(len(toks)):
        cued = _after_address_cue(toks, i)
        if cued is not None:
            out.append(Finding(toks[cued[0]].first, toks[cued[1]].last, "address", "address:cue"))
    for i, t in enumerate(toks):
        if t.kind == "number" and len(t.text) <= 6:
            end = _street_after(toks, i)
            if end is not None:
                out.append(Finding(t.first, toks[_unit_after(toks, end)].last, "address", "address:street"))
                continue
            if len(t.text) in (5, 9) and _zip_cued(toks, i):
                out.append(Finding(t.first, t.last, "address", "address:zip"))
        if t.text in ("po", "p.o") and i + 2 < len(toks) and toks[i + 1].text == "box" and toks[i + 2].is_number:
            out.append(Finding(t.first, toks[i + 2].last, "address", "address:pobox"))
        end = _postcode_at(toks, i)
        if end is not None:
            out.append(Finding(t.first, toks[end].last, "address", "address:postcode"))
    if _cased(toks):
        out += _street_names(toks)
    return out


def _cased(toks: list[Token]) -> bool:
    words = [t for t in toks if t.kind == "word"]
    return any(t.cap for t in words) and not all(t.cap for t in words)


def _street_names(toks: list[Token]) -> list[Finding]:
    """A street named without its number, in a cased transcript: up to three capitalised words
    and a capitalised street suffix ("... and made it to Kingsley Road"), the recogniser having
    lost the number or the cue before it."""
    out = []
    for i, t in enumerate(toks):
        if not (t.cap and t.text in _CLEAR_SUFFIXES and i):
            continue
        j = i
        while j > 0 and i - j < 3 and toks[j - 1].cap and toks[j - 1].kind in ("word", "letters") and not _sentence_start(toks, j - 1) \
                and toks[j - 1].text not in vocab.NAME_STOPS | vocab.ALWAYS_CAPITALISED:
            j -= 1
        if j < i:
            out.append(Finding(toks[j].first, toks[_unit_after(toks, i)].last, "address", "address:street-name"))
    return out


def _sentence_start(toks: list[Token], i: int) -> bool:
    return i == 0 or toks[i - 1].kind == "stop"


def _after_address_cue(toks: list[Token], i: int) -> tuple[int, int] | None:
    """After "I live at", "send it to", "my address is": a house number and up to four words after
    it, whatever they sound like (an ASR hears "Birchwood Lane" as "merch one day")."""
    for cue in _CUES_BY_FIRST.get(toks[i].text, ()):
        n = len(cue)
        if tuple(t.text for t in toks[i : i + n]) != cue:
            continue
        j = i + n + (i + n < len(toks) and toks[i + n].text == "is")
        if j >= len(toks):
            return None
        end = j
        for k in range(j + 1, min(len(toks), j + 5)):
            t = toks[k]
            if t.kind in ("stop", "comma") or t.text in vocab.NAME_STOPS - {"at", "on", "in"}:
                break
            end = k
        if toks[j].is_number:
            return j, end
        # No number heard ("I live at Iodine Harrow Drive"): the words up to a street suffix.
        suffix = next((k for k in range(end, j - 1, -1) if toks[k].text in _CLEAR_SUFFIXES), None)
        return (j, suffix) if suffix is not None else None
    return None


def _street_after(toks: list[Token], i: int) -> int | None:
    for j in range(i + 1, min(len(toks), i + 6)):
        t = toks[j]
        if t.kind == "ordinal" and j == i + 1:
            continue  # "87 5th Avenue"
        if t.kind not in ("word", "letters") or t.text in vocab.NAME_STOPS - {"at", "on", "in"} or t.text in vocab.UNITS_OF_MEASURE:
            return None
        if t.text in vocab.STREET_SUFFIXES and j > i + 1 and (t.text in _CLEAR_SUFFIXES or t.cap):
            return j
        if j == i + 1 and t.text in vocab.STREET_SUFFIXES and t.text in _CLEAR_SUFFIXES:
            return None
    return None


def _unit_after(toks: list[Token], end: int) -> int:
    """Extend past "apartment 4 B", "unit twelve", "suite 300", a direction, or a comma before one."""
    j = end + 1
    if j < len(toks) and toks[j].text in vocab.DIRECTIONS:
        end, j = j, j + 1
    if j < len(toks) and toks[j].kind == "comma":
        j += 1
    if j + 1 < len(toks) and toks[j].text in vocab.UNIT_WORDS and (toks[j + 1].is_number or toks[j + 1].kind == "letters"):
        end = j + 1
        if end + 1 < len(toks) and (len(toks[end + 1].text) == 1 or toks[end + 1].kind == "letters"):
            end += 1
    return end


def _zip_cued(toks: list[Token], i: int) -> bool:
    before = {t.text for t in toks[max(0, i - 3) : i]}
    return bool(before & (vocab.US_STATES | vocab.POSTCODE_CUES)) or "code" in before


def _postcode_at(toks: list[Token], i: int) -> int | None:
    """Last token of a UK or Canadian postcode that starts at token `i`, said in any pieces."""
    if toks[i].kind not in ("word", "letters") or not toks[i].text.isalpha() or len(toks[i].text) > 2:
        return None
    compact = ""
    for j in range(i, min(len(toks), i + 7)):
        t = toks[j]
        # Postcode pieces: spelled letters, short words that are not everyday ones, 1-2 digits.
        piece = (t.kind == "number" and len(t.text) <= 2) or (
            t.kind in ("word", "letters") and t.text.isalnum() and len(t.text) <= 3
            and (len(t.text) == 1 or t.kind == "letters" or t.text not in vocab.COMMON_WORDS | vocab.NAME_STOPS | vocab.UNITS_OF_MEASURE)
        )
        if not piece:
            return None
        compact += t.text
        if len(compact) > 7:
            return None
        if len(compact) >= 5 and _POSTCODES.match(compact) and any(c.isdigit() for c in compact):
            return j
    return None
