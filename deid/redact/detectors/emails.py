"""E-mail addresses and web addresses, spoken ("j dot smith at gmail dot com") or written.

The normaliser joins the spoken forms into one token; this detector reports them, and what
follows an e-mail cue ("my email is ...") however the recogniser heard it.
"""

from __future__ import annotations

from deid.redact import vocab
from deid.redact.detectors.base import Finding
from deid.redact.normalise import Normalised, Token

# After these, the rest of the sentence is the address: tiny.en hears "s dot taylor at gmail dot
# com" as "at www .kaylerapte -mail .com", and the local part, the name, sits outside the web
# address it made of the rest.
EMAIL_CUES = (
    ("email", "is"), ("e-mail", "is"), ("email", "address", "is"), ("e-mail", "address", "is"), ("email's",),
    ("email", "me", "at"), ("e-mail", "me", "at"), ("write", "to", "me", "at"), ("emails", "are"),
)
_CUES_BY_FIRST: dict[str, list[tuple[str, ...]]] = {}  # in EMAIL_CUES order: the first that matches is taken
for _cue in EMAIL_CUES:
    _CUES_BY_FIRST.setdefault(_cue[0], []).append(_cue)
# How far an e-mail cue reaches: tokens, and seconds of speech.
MAX_CUED_TOKENS = 16
MAX_CUED_SECONDS = 8.0


def find_emails(norm: Normalised) -> list[Finding]:
    """E-mail addresses (entity ``email``) and web addresses (entity ``url``), and the rest of the
    sentence after an e-mail cue (entity ``email``, detector ``email:cue``)."""
    out = [
        Finding(t.first, t.last, t.kind, f"{t.kind}:spoken" if t.first != t.last else t.kind)
        for t in norm.tokens
        if t.kind in ("email", "url")
    ]
    return out + _after_email_cue(norm)


def _after_email_cue(norm: Normalised) -> list[Finding]:
    toks, words = norm.tokens, norm.words
    out = []
    for i in range(len(toks)):
        n = next((len(c) for c in _CUES_BY_FIRST.get(toks[i].text, ()) if tuple(t.text for t in toks[i : i + len(c)]) == c), 0)
        if not n:
            continue
        j = i + n
        end = None
        for k in range(j, min(len(toks), j + MAX_CUED_TOKENS)):
            t = toks[k]
            glued = k + 1 < len(toks) and toks[k + 1].first == t.last  # ".kaylerapte": a dot, no full stop
            if (t.kind == "stop" and not glued) or t.text in vocab.CLOSINGS:
                break
            a, b = words[toks[j].first], words[t.last]
            if a.timed and b.timed and b.end - a.start > MAX_CUED_SECONDS:
                break
            if t.kind != "comma":
                end = k
            if t.kind != "stop" and norm.ends_sentence(k) and not _address_goes_on(toks, k + 1):
                break  # the end of a Whisper segment, with no full stop written
        if end is not None:
            out.append(Finding(toks[j].first, toks[end].last, "email", "email:cue"))
    return out


# What may start the rest of an address heard over a Whisper segment end ("at www .kaylerapte" |
# "-mail .com", "m dot okafor" | "at gmail dot com").
_ADDRESS_GOES_ON = {"at", "dot", "underscore", "dash", "hyphen"}


def _address_goes_on(toks: list[Token], m: int) -> bool:
    """Whether the next segment, from token `m`, carries on an address rather than a new sentence."""
    if m >= len(toks):
        return False
    t = toks[m]
    return t.kind in ("symbol", "dotted", "email", "url") or t.text in _ADDRESS_GOES_ON
