"""Spoken-PII redaction: find names, numbers, addresses and the like in timed words, and replace
those stretches of audio.

>>> import deid
>>> words = deid.transcribe(y, sr)                      # doctest: +SKIP  (extra [asr])
>>> spans = deid.find_pii(words, duration=y.shape[-1] / sr)   # doctest: +SKIP
>>> y_red = deid.redact(y, sr, spans)                   # doctest: +SKIP  (a 1 kHz tone by default)

| concern | module |
|---|---|
| a timed word, checks on word times | `words.py` |
| reading and writing transcripts | `transcripts/` (one module per format) |
| the built-in ASR | `transcriber.py` (model loading shared with `deid evaluate`: `deid/asr.py`) |
| spoken forms to digits, letters, e-mails, with the map back to words | `normalise.py` |
| runs of digits | `detectors/digits.py` |
| phone numbers | `detectors/phones.py` |
| card numbers, SSN, IBAN and other checksummed ids | `detectors/ids.py` |
| e-mail and web addresses | `detectors/emails.py` |
| dates and dates of birth | `detectors/dates.py` |
| street addresses, postcodes | `detectors/addresses.py` |
| person names | `detectors/names.py` |
| `--terms` / `--allow` lists | `detectors/terms.py` |
| optional spaCy NER | `detectors/ner.py` |
| all detectors together | `find.py` |
| placing findings in time, padding, merging | `spans.py` |
| replacing samples (tone, silence, noise) in absolute time | `replace.py` |
| the JSON-lines report | `report.py` |
| options | `options.py` |
| one file's plan: words, findings, spans, the edits; sidecars | `plan.py` |
"""

from __future__ import annotations

import sys
import types

from deid.redact.detectors.base import ENTITIES, Finding
from deid.redact.find import detect, find_pii, replacements
from deid.redact.options import CHOOSABLE, SIGNALS, RedactOptions, parse_entities
from deid.redact.plan import FilePlan, plan_file, plan_stream, redact_options, sidecar_for
from deid.redact.replace import Noise, Tone, redact, span_edits
from deid.redact.report import append_report, report_lines
from deid.redact.spans import PlacementError, Span, place
from deid.redact.transcriber import Transcriber, transcribe
from deid.redact.transcripts import Transcript, TranscriptError, read_transcript, write_transcript
from deid.redact.words import Word

__all__ = [
    "CHOOSABLE",
    "ENTITIES",
    "SIGNALS",
    "FilePlan",
    "Finding",
    "PlacementError",
    "RedactOptions",
    "Span",
    "Noise",
    "Tone",
    "Transcriber",
    "Transcript",
    "TranscriptError",
    "Word",
    "append_report",
    "detect",
    "find_pii",
    "parse_entities",
    "place",
    "plan_file",
    "plan_stream",
    "read_transcript",
    "redact",
    "redact_options",
    "replacements",
    "report_lines",
    "sidecar_for",
    "span_edits",
    "transcribe",
    "write_transcript",
]


class _CallableModule(types.ModuleType):
    """``deid.redact`` is both this package and the function `redact`: once the package is imported,
    Python binds ``deid.redact`` to it, so calling it must still redact."""

    def __call__(self, *args, **kwargs):
        return redact(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
