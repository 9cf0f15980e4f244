"""The user's lists: `--terms FILE` (always redacted) and `--allow FILE` (never redacted).

One term per line, a word or a phrase, matched case-insensitively on whole words, punctuation
ignored; ``#`` starts a comment. A term made only of digits ("5550123") also matches a number
however it was said ("five five five, oh one two three").
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from deid.errors import DeidError
from deid.redact.detectors.base import Finding
from deid.redact.normalise import Normalised, Token, normalise
from deid.redact.words import Word


def load_terms(path: str | Path) -> tuple[str, ...]:
    """The terms of a list file: one per line, blank lines and ``#`` comments skipped."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise DeidError(f"cannot read the term list ({getattr(e, 'strerror', None) or e})", path) from None
    terms = tuple(t for t in (line.split("#", 1)[0].strip() for line in text.splitlines()) if t)
    return terms


def find_terms(norm: Normalised, terms: Iterable[str], *, entity: str = "term", detector: str = "terms") -> list[Finding]:
    """Every occurrence of every term."""
    words = _words(norm.raw)
    numbers = [t for t in norm.tokens if t.is_number]
    out = []
    for term in terms:
        digits = "".join(c for c in term if c.isdigit())
        if digits and digits == "".join(c for c in term if c.isalnum()):
            out += [Finding(t.first, t.last, entity, detector) for t in numbers if t.text.lstrip("+") == digits]
            continue
        pattern = [t.text for t in _words(normalise([Word(term, None, None)]).raw)]
        n = len(pattern)
        for k in range(len(words) - n + 1):
            if [w.text for w in words[k : k + n]] == pattern:
                out.append(Finding(words[k].first, words[k + n - 1].last, entity, detector))
    return out


def allowed_words(norm: Normalised, allow: Iterable[str]) -> set[int]:
    """Indices of the words covered by an allowed term."""
    return {i for f in find_terms(norm, allow) for i in range(f.first, f.last + 1)}


def _words(raw: list[Token]) -> list[Token]:
    return [t for t in raw if t.kind not in ("comma", "stop", "symbol")]
