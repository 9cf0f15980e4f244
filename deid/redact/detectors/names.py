"""Person names, from the US Census first- and last-name lists (public domain, carried by the
`names` package), gated by context cues and by capitalisation where the transcript has it.

- After a strong cue ("my name is", "surname is", "spelled", a title such as "Dr") the next words
  are a name whatever they are, up to four and up to a stop word or punctuation: an ASR writes a
  rare surname as common words ("Okafor" -> "oak a four"), and those words must go too.
- After a weak cue ("this is", "it's", "I'm", "speak to", "hi") the next words are a name only if
  they look like one: listed and not an everyday word, or capitalised in a cased transcript.
- "Margaret speaking", "Okafor here": the words before.
- Without a cue, in a cased transcript: a capitalised listed name inside a sentence, with the
  capitalised words after it ("... spoke to Margaret Okafor yesterday", "... with Miller"): a
  first name that is no everyday word, or any listed name but months, weekdays and languages.
- Spelled-out letters right after a name ("Okafor, O K A F O R").
"""

from __future__ import annotations

import functools
from pathlib import Path

from deid.redact import vocab
from deid.redact.detectors.base import Finding
from deid.redact.normalise import Normalised, Token

MAX_NAME_WORDS = 4
_NOT_NAMES = vocab.TITLES | vocab.COMMON_WORDS | vocab.NAME_STOPS | vocab.WAKE_WORDS | vocab.FILLERS
_ALWAYS_CAPITAL = vocab.ALWAYS_CAPITALISED | set(vocab.MONTHS) | vocab.TITLES | vocab.WAKE_WORDS | vocab.FILLERS | vocab.NAME_STOPS
# "in Paris", "at Chelsea": a capitalised first name after these is more often a place.
_PLACE_BEFORE = {"in", "at", "near", "visiting", "around", "across"}


@functools.cache
def census_names() -> tuple[frozenset[str], frozenset[str]]:
    """The first names (female and male) and last names of the 1990 US Census lists, lower case."""
    import names

    folder = Path(names.__file__).parent

    def read(name: str) -> frozenset[str]:
        # Four columns a line (name, frequency, cumulative frequency, rank): every fourth word.
        return frozenset((folder / name).read_text(encoding="ascii").lower().split()[::4])

    return read("dist.female.first") | read("dist.male.first"), read("dist.all.last")


def find_names(norm: Normalised) -> list[Finding]:
    """Person names (entity ``name``)."""
    first_names, last_names = census_names()
    toks = [t for t in norm.raw if t.kind != "symbol" or t.text == "-"]
    cased = any(t.cap for t in toks) and not all(t.cap for t in toks if t.kind == "alpha")
    finder = _Finder(toks, first_names, last_names, cased)
    return finder.run()


class _Finder:
    def __init__(self, toks: list[Token], first: frozenset[str], last: frozenset[str], cased: bool) -> None:
        self.toks, self.first, self.last, self.cased = toks, first, last, cased
        self.found: list[Finding] = []

    def run(self) -> list[Finding]:
        toks = self.toks
        i = 0
        while i < len(toks):
            strong = _cue_at(toks, i, vocab.STRONG_NAME_CUES)
            if strong:
                spell = toks[i + strong - 1].text.startswith("spel") or toks[i].text == "spell"
                i = self._take(i + strong, strong=True, limit=30 if spell else MAX_NAME_WORDS, spell=spell)
                continue
            if toks[i].text in vocab.TITLES and toks[i].kind == "alpha":
                j = i + 1 + (i + 1 < len(toks) and toks[i + 1].text == ".")
                if j < len(toks) and (self._looks_like_name(toks[j]) or toks[j].text not in vocab.COMMON_WORDS):
                    i = self._take(j, strong=True, limit=2)
                    continue
            weak = _cue_at(toks, i, vocab.WEAK_NAME_CUES)
            if weak and i + weak < len(toks) and toks[i + weak].kind == "comma" and self.cased:
                weak += 1  # "Hello, David Miller speaking": in a cased transcript the capital tells
            if weak and i + weak < len(toks) and self._looks_like_name(toks[i + weak]):
                i = self._take(i + weak, strong=False, limit=3)
                continue
            t = toks[i]
            spelled = _letters_at(toks, i)
            if spelled:
                self._add(self._spelled_word_before(i, spelled), i + spelled - 1, "names:spelled")
                i += spelled
                continue
            if t.kind == "alpha" and t.text in vocab.NAME_BEFORE:
                j = i - 1
                while j >= 0 and i - j <= 2 and (self._looks_like_name(toks[j]) or self._capitalised(toks[j])):
                    j -= 1
                if j < i - 1:
                    self._add(j + 1, i - 1, "names:cue")
            elif (
                self.cased
                and t.cap
                and not _title_case(toks, i)
                and not _sentence_start(toks, i)
                and not (i and toks[i - 1].text in _PLACE_BEFORE)
                and not _in_street_name(toks, i)
                and self._capitalised_name(t)
            ):
                i = self._take(i, strong=False, limit=3, detector="names:capitalised", known=True)
                continue
            i += 1
        return self.found

    def _looks_like_name(self, t: Token) -> bool:
        if t.kind != "alpha":
            return False
        word = t.text.removesuffix("'s").removesuffix("’s")
        if word in _NOT_NAMES:
            return False
        if self.cased:
            return t.cap
        return word in self.first or word in self.last

    def _capitalised_name(self, t: Token) -> bool:
        """A listed name capitalised inside a sentence: a first name that is no everyday word, or
        any listed name ("Miller", "Price": the capital tells the name from the word) but those
        a transcript always capitalises (months, weekdays, languages)."""
        word = t.text.removesuffix("'s").removesuffix("’s")
        if self._looks_like_name(t) and word in self.first:
            return True
        return (word in self.first or word in self.last) and word not in _ALWAYS_CAPITAL

    def _capitalised(self, t: Token) -> bool:
        """A listed name capitalised in a cased transcript ("Miller speaking"), though an everyday word."""
        return self.cased and t.cap and t.kind == "alpha" and self._capitalised_name(t)

    def _surname(self, t: Token) -> bool:
        """A word after a name that goes on with it, even if it is an everyday word ("David Miller")."""
        word = t.text.removesuffix("'s")
        if t.kind != "alpha" or word in vocab.NAME_STOPS or word in vocab.FILLERS or word in vocab.TITLES:
            return False
        return t.cap if self.cased else word in self.last

    def _take(self, j: int, *, strong: bool, limit: int, spell: bool = False, detector: str = "names:cue",
              known: bool = False) -> int:
        """Take the name starting at token `j` (`known`: its first word is one); return the index after it."""
        toks = self.toks
        start = j
        skip = vocab.FILLERS | {",", "is", "was"}
        while j < len(toks) and (toks[j].text in skip or (spell and toks[j].kind in ("stop", "comma"))):
            j += 1
            start = j
        taken = 0
        while j < len(toks) and taken < limit:
            t = toks[j]
            if t.text == "-" and taken:
                j += 1
                continue
            letter = spell and len(t.text) == 1 and t.kind == "alpha"
            if t.kind in ("stop", "comma") or (t.kind == "alpha" and t.text in vocab.NAME_STOPS and not letter):
                if spell and t.kind == "comma":
                    j += 1
                    continue
                break
            if t.kind not in ("alpha", "digits"):
                break
            if not (strong or (known and not taken) or self._looks_like_name(t) or (taken and self._surname(t))):
                break
            taken += 1
            j += 1
        if taken:
            end = j - 1
            while toks[end].text == "-":
                end -= 1
            end = self._spelling_after(end)
            self._add(start, end, detector)
        return max(j, start + 1)

    def _spelling_after(self, end: int) -> int:
        """Extend a name over the letters that spell it out right after it ("Okafor, O-K-A-F-O-R")."""
        toks = self.toks
        j = end + 1
        while j < len(toks) and (toks[j].kind == "comma" or toks[j].text in ("that's", "spelled", "spelt", "-")):
            j += 1
        n = _letters_at(toks, j)
        return j + n - 1 if n >= 3 else end

    def _spelled_word_before(self, i: int, n: int) -> int:
        """The word a spelling spells, just before it ("Okafor, that's O K A F O R"), or `i`."""
        letters = "".join(t.text for t in self.toks[i : i + n] if t.text != "-")
        j = i - 1
        while j >= 0 and (self.toks[j].kind == "comma" or self.toks[j].text in ("that's", "thats", "spelled", "spelt", "is")):
            j -= 1
        return j if j >= 0 and self.toks[j].text.removesuffix("'s") == letters else i

    def _add(self, a: int, b: int, detector: str) -> None:
        self.found.append(Finding(self.toks[a].first, self.toks[b].last, "name", detector))


def _letters_at(toks: list[Token], i: int) -> int:
    """How many tokens from `i` spell letters out ("O-K-A-F-O-R", "m a r g"), hyphens included;
    0 unless at least three letters (a lone "a" or "I" is a word)."""
    k, letters = i, 0
    while k < len(toks) and ((toks[k].kind == "alpha" and len(toks[k].text) == 1) or (toks[k].text == "-" and letters)):
        letters += toks[k].text != "-"
        k += 1
    while k > i and toks[k - 1].text == "-":
        k -= 1
    return k - i if letters >= 3 else 0


@functools.cache
def _cues_by_first_word(cues: tuple[tuple[str, ...], ...]) -> dict[str, list[tuple[str, ...]]]:
    index: dict[str, list[tuple[str, ...]]] = {}
    for cue in sorted(cues, key=len, reverse=True):
        index.setdefault(cue[0], []).append(cue)
    return index


def _cue_at(toks: list[Token], i: int, cues: tuple[tuple[str, ...], ...]) -> int:
    """Length (in tokens) of the longest cue phrase starting at token `i`, or 0."""
    for cue in _cues_by_first_word(cues).get(toks[i].text, ()):
        n = len(cue)
        if i + n <= len(toks) and all(toks[i + k].text == cue[k] for k in range(1, n)):
            return n
    return 0


def _title_case(toks: list[Token], i: int) -> bool:
    """Most words of the sentence around `i` are capitalised: capitals say nothing about names there."""
    a = i
    while a > 0 and toks[a - 1].kind != "stop":
        a -= 1
    b = i
    while b + 1 < len(toks) and toks[b + 1].kind != "stop":
        b += 1
    alpha = [t for t in toks[a : b + 1] if t.kind == "alpha"]
    return len(alpha) >= 3 and sum(t.cap for t in alpha) > len(alpha) / 2


def _in_street_name(toks: list[Token], i: int) -> bool:
    """Whether token `i` names a street rather than a person ("87 Birchwood Lane", "Hyde Park"):
    after a house number, before a capitalised street suffix, or that suffix itself."""
    def suffix(k: int) -> bool:
        return 0 <= k < len(toks) and toks[k].cap and toks[k].text in vocab.STREET_SUFFIXES

    return toks[i - 1].is_number or suffix(i + 1) or (suffix(i) and toks[i - 1].cap)


def _sentence_start(toks: list[Token], i: int) -> bool:
    j = i - 1
    while j >= 0 and toks[j].kind == "comma":
        j -= 1
    return j < 0 or toks[j].kind == "stop"
