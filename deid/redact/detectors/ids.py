"""Checksummed identifiers, validated by `python-stdnum`: card numbers (Luhn), US social-security
numbers, IBANs, Canadian SINs and UK NHS numbers.

A checksum alone says little about a short number (one in ten strings passes Luhn), so SSNs, SINs
and NHS numbers also need their usual grouping or a cue word nearby ("social security", "NHS").
Any of them is also a run of digits; this detector names them, so `--entities id` can ask for them
alone.
"""

from __future__ import annotations

import re

from deid.redact.detectors.base import Finding
from deid.redact.normalise import Normalised, Token

_CUES = {
    "ssn": ({"social", "security", "ssn"}, 9),
    "sin": ({"insurance", "sin"}, 9),
    "nhs": ({"nhs"}, 10),
}
_IBAN_START = re.compile(r"^[a-z]{2}\d{2}")


def find_ids(norm: Normalised) -> list[Finding]:
    """Card numbers, SSNs, IBANs, SINs and NHS numbers."""
    from stdnum import iban, luhn
    from stdnum.ca import sin
    from stdnum.gb import nhs
    from stdnum.us import ssn

    out = []
    toks = norm.tokens
    for i, t in enumerate(toks):
        if t.kind == "number":
            digits = t.text.lstrip("+")
            if 13 <= len(digits) <= 19 and luhn.is_valid(digits):
                out.append(Finding(t.first, t.last, "id", "stdnum:luhn"))
                continue
            nearby = {x.text for x in toks[max(0, i - 6) : i]}
            for name, validator in (("ssn", ssn), ("sin", sin), ("nhs", nhs)):
                cues, length = _CUES[name]
                grouped = name == "ssn" and [len(g.digits) for g in t.groups] == [3, 2, 4]
                if len(digits) == length and (grouped or nearby & cues) and validator.is_valid(digits):
                    out.append(Finding(t.first, t.last, "id", f"stdnum:{name}"))
                    break
        found = _iban_at(toks, i, iban)
        if found is not None:
            out.append(Finding(t.first, toks[found].last, "id", "stdnum:iban"))
    return out


def _iban_at(toks: list[Token], i: int, iban) -> int | None:
    """The last token of an IBAN starting at token `i` ("GB82 WEST 1234..."), said in pieces."""
    compact = ""
    best = None
    for j in range(i, min(len(toks), i + 24)):
        t = toks[j]
        if t.kind not in ("word", "letters", "number") or not t.text.isalnum():
            break
        compact += t.text
        if j == i and not _IBAN_START.match(compact) and not (len(compact) == 2 and compact.isalpha()):
            return None
        if len(compact) > 34:
            break
        if len(compact) >= 15 and iban.is_valid(compact.upper()):
            best = j
    return best
