"""E-mail addresses and web addresses, spoken ("j dot smith at gmail dot com") or written.

The normaliser joins the spoken forms into one token; this detector reports them.
"""

from __future__ import annotations

from deid.redact.detectors.base import Finding
from deid.redact.normalise import Normalised


def find_emails(norm: Normalised) -> list[Finding]:
    """E-mail addresses (entity ``email``) and web addresses (entity ``url``)."""
    return [
        Finding(t.first, t.last, t.kind, f"{t.kind}:spoken" if t.first != t.last else t.kind)
        for t in norm.tokens
        if t.kind in ("email", "url")
    ]
