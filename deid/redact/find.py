"""Finding spoken personal information in timed words: every detector, the user's lists, then time."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from deid.redact.detectors.addresses import find_addresses
from deid.redact.detectors.base import ENTITIES, Finding
from deid.redact.detectors.dates import find_dates
from deid.redact.detectors.digits import find_cued_numbers, find_digit_runs
from deid.redact.detectors.emails import find_emails
from deid.redact.detectors.ids import find_ids
from deid.redact.detectors.names import find_names
from deid.redact.detectors.phones import find_phones
from deid.redact.detectors.terms import allowed_words, find_terms
from deid.redact.normalise import normalise
from deid.redact.options import RedactOptions
from deid.redact.spans import Span, place
from deid.redact.transcripts import Replacement
from deid.redact.words import Word, check_words

PLACEHOLDERS = {e: f"[{e.upper()}]" for e in ENTITIES}


def detect(words: Sequence[Word], options: RedactOptions | None = None) -> list[Finding]:
    """Every finding in `words` for the chosen entity types, user terms included, allowed words removed.

    Parameters
    ----------
    words : sequence of Word
    options : RedactOptions, optional

    Returns
    -------
    list of Finding, sorted by word position.
    """
    options = options or RedactOptions()
    words = list(words)
    norm = normalise(words)
    wanted = options.entities
    findings: list[Finding] = []
    if "number" in wanted:
        findings += find_digit_runs(norm, min_digits=options.min_digits)
    findings += find_cued_numbers(norm, wanted)
    if "phone" in wanted:
        findings += find_phones(norm, region=options.region)
    if "id" in wanted:
        findings += find_ids(norm)
    if wanted & {"email", "url"}:
        findings += [f for f in find_emails(norm) if f.entity in wanted]
    if "date" in wanted:
        findings += find_dates(norm)
    if "address" in wanted:
        findings += find_addresses(norm)
    if "name" in wanted:
        findings += find_names(norm)
    if options.ner_model:
        from deid.redact.detectors.ner import find_entities

        findings += [f for f in find_entities(words, options.ner_model) if f.entity in wanted]
    if options.allow:
        allowed = allowed_words(norm, options.allow)
        findings = [f for f in findings if not all(i in allowed for i in range(f.first, f.last + 1))]
    findings += find_terms(norm, options.terms)
    return sorted(set(findings))


def find_pii(
    words: Sequence[Word],
    options: RedactOptions | None = None,
    *,
    duration: float | None = None,
    **overrides: Any,
) -> list[Span]:
    """Spans of audio that hold spoken personal information.

    Parameters
    ----------
    words : sequence of Word
        Timed words, from `deid.transcribe` or `deid.redact.read_transcript`.
    options : RedactOptions, optional
        What to look for and how to pad and merge; keyword `overrides` change single options
        (``find_pii(words, entities={"phone"}, padding=0.1)``).
    duration : float, optional
        Length of the audio in seconds: spans are clipped to it, and words past it fail.

    Returns
    -------
    list of Span
        Sorted, padded, merged, non-overlapping.

    Raises
    ------
    deid.DeidError
        Word times that cannot be right, or a finding that cannot be placed in time.
    """
    options = (options or RedactOptions()).but(**overrides) if overrides else options or RedactOptions()
    check_words(words, duration=duration)
    findings = detect(words, options)
    return place(findings, words, padding=options.padding, merge_gap=options.merge_gap, duration=duration)


def replacements(findings: Sequence[Finding]) -> list[Replacement]:
    """Placeholders for a redacted transcript: overlapping findings become one, named by the most
    specific entity among them (``[PHONE]`` rather than ``[NUMBER]``)."""
    rank = {e: k for k, e in enumerate(ENTITIES)}
    out: list[Replacement] = []
    best: list[str] = []
    for f in sorted(findings):
        if out and f.first <= out[-1].last:
            last = out[-1]
            best[-1] = min(best[-1], f.entity, key=rank.__getitem__)
            out[-1] = Replacement(last.first, max(last.last, f.last), PLACEHOLDERS[best[-1]])
        else:
            best.append(f.entity)
            out.append(Replacement(f.first, f.last, PLACEHOLDERS[f.entity]))
    return out
