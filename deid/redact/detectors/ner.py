"""Optional named-entity recognition with a spaCy model the user installed (`--ner-model PATH`).

Never required, and never downloaded: `spacy.load` is given a local directory. Its entities add to
the rule-based ones: PERSON is a name; GPE, LOC and FAC an address; DATE a date.
"""

from __future__ import annotations

import functools
from pathlib import Path

from deid.errors import DeidError
from deid.redact.detectors.base import Finding
from deid.redact.words import Word

LABELS = {"PERSON": "name", "PER": "name", "GPE": "address", "LOC": "address", "FAC": "address", "DATE": "date"}


@functools.cache
def load_model(path: str):
    """Load a spaCy pipeline from a local directory, once per process."""
    try:
        import spacy
    except ImportError:
        raise DeidError("--ner-model needs spaCy: pip install spacy (and a model of your choice)", path) from None
    if not Path(path).is_dir():
        raise DeidError("not a spaCy model directory", path)
    try:
        return spacy.load(path)
    except (OSError, ValueError) as e:
        raise DeidError(f"cannot load the spaCy model ({e})", path) from None


def find_entities(words: list[Word], model_path: str | Path) -> list[Finding]:
    """Entities the model finds in the words, joined with spaces."""
    nlp = load_model(str(model_path))
    starts, text = [], ""
    for w in words:
        if text:
            text += " "
        starts.append(len(text))
        text += w.text.strip()
    import bisect

    out = []
    for ent in nlp(text).ents:
        entity = LABELS.get(ent.label_)
        if entity is None:
            continue
        first = bisect.bisect_right(starts, ent.start_char) - 1
        last = bisect.bisect_right(starts, ent.end_char - 1) - 1
        out.append(Finding(first, last, entity, f"ner:{ent.label_}"))
    return out
