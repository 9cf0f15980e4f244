"""What a detector reports: an entity type on a range of source words."""

from __future__ import annotations

from dataclasses import dataclass

# The entity types, from the most specific to the least: when findings merge into one span, the
# span is reported as its most specific one.
ENTITIES = ("id", "phone", "email", "url", "date", "address", "name", "term", "number")


@dataclass(frozen=True, order=True)
class Finding:
    """Words `first`..`last` (inclusive indices into the word list) hold an `entity`.

    Attributes
    ----------
    entity : str
        One of `ENTITIES`.
    detector : str
        Which rule found it (``"digits"``, ``"phonenumbers"``, ``"stdnum:luhn"``, ``"names:cue"``...).
    """

    first: int
    last: int
    entity: str
    detector: str
