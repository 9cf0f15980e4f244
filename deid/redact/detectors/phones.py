"""Phone numbers, found by Google's libphonenumber (`phonenumbers`) in the normalised text.

The normaliser has already turned "six four seven, two two one, oh four double eight" and
"647-221-0488" into one digit string, so the matcher sees a number however it was said. The
leniency is POSSIBLE, not VALID: fictional and unassigned ranges (555-01xx) are still numbers a
caller gave, and must go.
"""

from __future__ import annotations

from deid.redact.detectors.base import Finding
from deid.redact.normalise import Normalised


def find_phones(norm: Normalised, *, region: str = "US") -> list[Finding]:
    """Phone numbers, national for `region` (ISO 3166 code) or international with "+"/"plus"."""
    import phonenumbers

    out = []
    matcher = phonenumbers.PhoneNumberMatcher(norm.text, region, leniency=phonenumbers.Leniency.POSSIBLE)
    for match in matcher:
        first, last = norm.words_of_chars(match.start, match.end)
        out.append(Finding(first, last, "phone", "phonenumbers"))
    return out
