"""The spoken-form normaliser: words as heard, rewritten the way detectors can read them.

People say "six four seven, two two one, oh four double eight", "margaret dot okafor at gmail
dot com" and "m a r g"; Whisper writes some of that as "647-221-0488", some as words, and "14th"
or "555123" as it likes. The normaliser turns every form into one: digit strings for numbers
(with the groups they were spoken in, so a quantity can be told from an identifier), joined
letters for spelling, ``local@domain`` for spoken e-mails. Every token keeps the range of source
words it came from, and every character of the normalised text maps back to its token, so any
hit has word times.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from deid.redact import vocab
from deid.redact.words import Word

_RAW = re.compile(
    r"""
     (?P<email>[a-z0-9][a-z0-9._%+-]*@[a-z0-9-]+(?:\.[a-z0-9-]+)+)
    |(?P<url>(?:https?://|www\.)[^\s,]+
             |[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:com|org|net|edu|gov|io|co|uk|us|ca|de|info|biz|me|app|dev|ai)\b(?:/[^\s,]*)?)
    |(?P<date>\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}|\d{4}[/.-]\d{1,2}[/.-]\d{1,2})
    |(?P<time>\d{1,2}:\d{2}(?::\d{2})?)
    |(?P<decimal>\d+\.\d+)
    |(?P<ordinal>\d+(?:st|nd|rd|th)\b)
    |(?P<digits>\d+)
    |(?P<dotted>[a-z0-9]*[a-z][a-z0-9]*(?:[._][a-z0-9]+)+)
    |(?P<alpha>[a-z]+(?:['’][a-z]+)*)
    |(?P<stop>[.?!;]+)
    |(?P<comma>[,:])
    |(?P<symbol>[@$£€¥%+#&/_-])
    """,
    re.X,
)
_DECIMAL_TAIL = re.compile(r"^\.\d+")
# A full stop inside a number read out in groups stands for a pause no longer than this (s).
NUMBER_PAUSE = 1.0
# What may follow a dash or comma inside one spoken number ("647-221-0488", "five five five, oh one").
_CONTINUES = {"unit", "teen", "tens", "written", "repeat", "weak", "ordinal", "ordinal-written"}


@dataclass(frozen=True)
class Group:
    """Digits said in one breath: ``"5"`` (a digit word), ``"25"`` (a cardinal), ``"555"`` (written)."""

    digits: str
    how: str  # "digit", "cardinal", "repeat" or "written"


@dataclass(frozen=True)
class Token:
    """One normalised token and the source words it came from.

    Attributes
    ----------
    text : str
        Normalised text: digits for a number, the joined letters of a spelling, an e-mail address.
    kind : str
        ``word``, ``number``, ``ordinal``, ``letters``, ``email``, ``url``, ``dotted``, ``date``,
        ``time``, ``decimal``, ``comma``, ``stop`` or ``symbol``.
    first, last : int
        Source word indices (inclusive).
    cap : bool
        The source word was capitalised.
    groups : tuple of Group
        For numbers: how the digits were said.
    """

    text: str
    kind: str
    first: int
    last: int
    cap: bool = False
    groups: tuple[Group, ...] = ()

    @property
    def is_number(self) -> bool:
        return self.kind in ("number", "ordinal")

    @property
    def value(self) -> int | None:
        return int(self.text) if self.is_number and self.text.isdigit() else None


@dataclass
class Normalised:
    """A normalised word list.

    Attributes
    ----------
    words : list of Word
        The source words.
    raw : list of Token
        One token per piece of each word, before numbers, letters and e-mails are joined:
        what word-level detectors (names, user terms) read.
    tokens : list of Token
        The joined tokens: what number, e-mail, date and address detectors read.
    text : str
        ``tokens`` joined by spaces.
    """

    words: list[Word]
    raw: list[Token]
    tokens: list[Token]
    text: str = ""
    _owner: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __post_init__(self) -> None:
        owner = []
        for i, t in enumerate(self.tokens):
            if i:
                owner.append(-1)
            owner += [i] * len(t.text)
        self.text = " ".join(t.text for t in self.tokens)
        self._owner = np.asarray(owner, dtype=np.int64)

    def ends_sentence(self, k: int) -> bool:
        """Whether token `k` ends a sentence: a full stop, question mark, ``!`` or ``;``, or the last
        token of a word that ends a Whisper segment."""
        t = self.tokens[k]
        if t.kind == "stop":
            return True
        last_of_word = k + 1 == len(self.tokens) or self.tokens[k + 1].first > t.last
        return last_of_word and self.words[t.last].ends_segment

    def words_of_chars(self, start: int, end: int) -> tuple[int, int]:
        """The source words (first, last) behind characters ``text[start:end]``."""
        owners = self._owner[start:end]
        owners = owners[owners >= 0]
        if owners.size == 0:
            raise ValueError(f"characters {start}:{end} belong to no token")
        return self.tokens[int(owners.min())].first, self.tokens[int(owners.max())].last


def normalise(words: Sequence[Word]) -> Normalised:
    """Rewrite `words` in the normalised spoken form.

    Parameters
    ----------
    words : sequence of Word

    Returns
    -------
    Normalised
    """
    raw = _tokenise(words)
    tokens = _join_emails(_join_letters(_join_numbers(raw, words)))
    return Normalised(list(words), raw, tokens)


def _tokenise(words: Sequence[Word]) -> list[Token]:
    out = []
    for i, word in enumerate(words):
        text = word.text.strip()
        cap = next((c.isupper() for c in text if c.isalpha()), False)
        lower = text.lower()
        tail = _DECIMAL_TAIL.match(lower)
        after_digits = out and out[-1].kind == "digits" and out[-1].last == i - 1
        if tail and after_digits and words[i - 1].text.rstrip()[-1:].isdigit():
            # Whisper splits "7.30" and "10.50" into the words "7" and ".30": one decimal, not a full stop.
            tail = tail.group(0)
            out[-1] = Token(out[-1].text + tail, "decimal", out[-1].first, i, out[-1].cap)
            lower = lower[len(tail) :]
        for m in _RAW.finditer(lower):
            kind, piece = m.lastgroup, m.group(0)
            if kind == "url" and "@" in piece:
                kind = "email"
            out.append(Token(piece, kind, i, i, cap))
    return out


def _number_element(t: Token) -> str | None:
    """What a token is inside a spoken number, or None if it cannot be part of one."""
    if t.kind in ("digits", "decimal"):
        return "written"  # Whisper writes "5.5" and "10.50" for digits said with a pause
    if t.kind == "ordinal":
        return "ordinal-written"
    if t.kind != "word" and t.kind != "alpha":
        return None
    w = t.text
    if w in vocab.UNITS:
        return "weak" if w in vocab.WEAK_ZEROS else "unit"
    if w in vocab.TEENS:
        return "teen"
    if w in vocab.TENS:
        return "tens"
    if w in vocab.SCALES:
        return "scale"
    if w in vocab.REPEATS:
        return "repeat"
    if w in vocab.ORDINALS:
        return "ordinal"
    if w == "and":
        return "and"
    return None


def _join_numbers(raw: list[Token], words: Sequence[Word]) -> list[Token]:
    """Join runs of number words and digit strings into one number token each."""
    kinds = [_number_element(t) for t in raw]
    n = len(raw)

    def strong(i: int) -> bool:
        return 0 <= i < n and kinds[i] not in (None, "weak", "and", "repeat")

    def weak_zero_ok(i: int) -> bool:
        # "oh" is zero only next to other number words ("oh one two", "oh oh seven"), never alone.
        j, k = i, i
        while j > 0 and kinds[j - 1] == "weak":
            j -= 1
        while k + 1 < n and kinds[k + 1] == "weak":
            k += 1
        before, after = j - 1, k + 1
        while before >= 0 and raw[before].text in ("-", ","):
            before -= 1
        while after < n and raw[after].text in ("-", ","):
            after += 1
        return strong(before) or strong(after) or (0 <= before and kinds[before] == "repeat")

    def repeated(j: int) -> int | None:
        """The digit that "double"/"triple" at `j` repeats ("double oh", "-double -oh"), or None."""
        k = j + 1 + (j + 1 < n and raw[j + 1].text == "-")
        ok = k < n and (kinds[k] in ("unit", "weak") or (kinds[k] == "written" and len(raw[k].text) == 1))
        return k if ok else None

    out: list[Token] = []
    i = 0
    while i < n:
        kind = kinds[i]
        starts = kind in ("unit", "teen", "tens", "scale", "ordinal", "written", "ordinal-written") or (
            kind == "weak" and weak_zero_ok(i)
        ) or (kind == "repeat" and repeated(i) is not None)
        if not starts:
            out.append(Token(raw[i].text, "word" if raw[i].kind == "alpha" else raw[i].kind, raw[i].first, raw[i].last, raw[i].cap))
            i += 1
            continue
        j = i
        members = []
        while j < n:
            k = kinds[j]
            if k is None and _separates(raw, j, words) and members and j + 1 < n and kinds[j + 1] in _CONTINUES:
                members.append(j)
                j += 1
                continue
            if k == "and" and members and _hundreds(raw[members[-1]], kinds[members[-1]]) and j + 1 < n and kinds[j + 1] in ("unit", "teen", "tens", "written"):
                members.append(j)
                j += 1
                continue
            if k in ("unit", "teen", "tens", "scale", "written") or (k == "weak" and weak_zero_ok(j)):
                members.append(j)
                j += 1
                continue
            if k == "repeat" and repeated(j) is not None:
                members += list(range(j, repeated(j) + 1))
                j = repeated(j) + 1
                continue
            if k in ("ordinal", "ordinal-written"):
                members.append(j)
                j += 1
                break  # an ordinal ends a number ("the fourteenth", "twenty first")
            break
        groups, ordinal = _groups([raw[m] for m in members], [kinds[m] for m in members])
        digits = "".join(g.digits for g in groups)
        first, last = raw[members[0]], raw[members[-1]]
        if len(digits) >= 7 and out and out[-1].text in ("plus", "+"):  # "plus four four ...": international
            first = out.pop()
            digits = "+" + digits
        out.append(Token(digits, "ordinal" if ordinal else "number", first.first, last.last, first.cap, tuple(groups)))
        i = j
    return out


def _hundreds(t: Token, kind: str | None) -> bool:
    """ "hundred"/"thousand", or a written round number ("700"), which "and" may continue
    ("seven hundred and ninety seven", written by Whisper as "700 and 97")."""
    return kind == "scale" or (kind == "written" and len(t.text) >= 3 and t.text.endswith("00"))


def _separates(raw: list[Token], j: int, words: Sequence[Word]) -> bool:
    """A dash or comma between two groups of one number; or a full stop, which Whisper writes for
    a pause inside a number read out in groups ("647221. 0488"), when the pause is short."""
    if raw[j].text in ("-", ","):
        return True
    if raw[j].text != "." or j + 1 >= len(raw):
        return False
    before, after = words[raw[j].last], words[raw[j + 1].first]
    return before.timed and after.timed and after.start - before.end <= NUMBER_PAUSE


def _groups(tokens: list[Token], kinds: list[str]) -> tuple[list[Group], bool]:
    """Split one spoken number into the groups it was said in, and whether it ends in an ordinal.

    "twenty five" is one group (25), "five five" two (5, 5), "three hundred and five" one (305),
    "nineteen eighty four" two (19, 84), "double oh" one ("00").
    """
    groups: list[Group] = []
    total = current = 0
    last = None  # kind of the previous element of the open cardinal, None when none is open
    single = True
    ordinal = False

    def close() -> None:
        nonlocal total, current, last, single
        if last is not None:
            groups.append(Group(str(total + current), "digit" if single else "cardinal"))
        total = current = 0
        last = None
        single = True

    k = 0
    while k < len(tokens):
        t, kind = tokens[k], kinds[k]
        w = t.text
        if kind in ("written", "ordinal-written"):
            digits = re.sub(r"\D", "", w)
            if last == "and" and len(digits) <= 2:  # "700 and 97"
                current += int(digits)
                last = "unit-done"
            elif k + 1 < len(kinds) and kinds[k + 1] == "and" and _hundreds(t, kind):
                close()
                current, last, single = int(digits), "scale", False
            else:
                close()
                groups.append(Group(digits, "written"))
                ordinal = kind == "ordinal-written"
        elif kind == "repeat":
            close()
            k += tokens[k + 1].text == "-"
            nxt = tokens[k + 1]
            d = nxt.text if kinds[k + 1] == "written" else str(vocab.UNITS[nxt.text])
            groups.append(Group(d * vocab.REPEATS[w], "repeat"))
            k += 1
        elif kind in ("unit", "weak"):
            d = vocab.UNITS[w]
            # "three hundred five" is 305, but in "one eight hundred five five five" the digits go on
            # one by one after the hundred: 1-800-555.
            digits_follow = k + 1 < len(kinds) and kinds[k + 1] in ("unit", "weak")
            if last in ("tens", "scale", "and") and d > 0 and current % 10 == 0 and not (last == "scale" and digits_follow):
                current += d
                single = False
                last = "unit-done"
            else:
                close()
                current, last = d, "unit"
        elif kind in ("teen", "tens"):
            value = (vocab.TEENS if kind == "teen" else vocab.TENS)[w]
            if last in ("scale", "and") and current % 100 == 0:
                current += value
            else:
                close()
                current = value
            single = False
            last = kind
        elif kind == "scale":
            scale = vocab.SCALES[w]
            if last is None:
                current = 1
            if scale >= 1000:
                total, current = (total + current) * scale, 0
            else:
                current *= scale
            single = False
            last = "scale"
        elif kind == "ordinal":
            value = vocab.ORDINALS[w]
            if last in ("tens", "scale", "and") and value < 10:
                current += value
                single = False
            else:
                close()
                current, single = value, False
            last = "ordinal"
            ordinal = True
        elif kind == "and":
            last = "and"
        elif w == "-" and last == "tens":
            last = "tens"  # "twenty-five" is one number
        else:  # a comma or a dash between groups
            close()
        k += 1
    close()
    return groups, ordinal


def _join_letters(tokens: list[Token]) -> list[Token]:
    """Join spelled letters ("m a r g", "M-A-R-G") into one token."""
    out: list[Token] = []
    i = 0
    n = len(tokens)
    while i < n:
        j = i
        letters = []
        while j < n:
            t = tokens[j]
            if t.kind == "word" and len(t.text) == 1:
                letters.append(t)
                j += 1
            elif t.text == "-" and letters and j + 1 < n and tokens[j + 1].kind == "word" and len(tokens[j + 1].text) == 1:
                j += 1
            else:
                break
        if len(letters) >= 2 and not all(t.text in ("a", "i") for t in letters):
            out.append(Token("".join(t.text for t in letters), "letters", letters[0].first, letters[-1].last, letters[0].cap))
            i = j
        else:
            out.append(tokens[i])
            i += 1
    return out


def _label(t: Token) -> bool:
    return t.kind in ("word", "letters", "number", "dotted") and t.text not in ("at", "dot")


def _join_emails(tokens: list[Token]) -> list[Token]:
    """Join spoken e-mail addresses and web addresses into one token each."""
    out = list(tokens)
    i = 0
    while i < len(out):
        t = out[i]
        if t.text in ("at", "@") and i > 0:
            end, domain = _domain(out, i + 1)
            if end is not None:
                start, local = _local_part(out, i)
                if start is not None:
                    joined = Token(f"{local}@{domain}", "email", out[start].first, out[end].last, out[start].cap)
                    out[start : end + 1] = [joined]
                    i = start + 1
                    continue
        if _label(t) and (t.text == "www" or t.text not in vocab.COMMON_WORDS):
            end, domain = _domain(out, i)
            if end is not None and end > i:
                out[i : end + 1] = [Token(domain, "url", out[i].first, out[end].last, t.cap)]
        i += 1
    return out


def _connector(t: Token) -> str | None:
    if t.text in vocab.EMAIL_CONNECTORS:
        return vocab.EMAIL_CONNECTORS[t.text]
    if t.text in (".", "_", "-"):
        return t.text
    return None


def _dot(tokens: list[Token], j: int) -> bool:
    """A spoken "dot", or a written "." glued to the label after it (".com", "gmail.com"): not the
    full stop that ends a sentence ("past six. It takes")."""
    t = tokens[j]
    if t.text in ("dot", "period"):
        return True
    return t.text == "." and j + 1 < len(tokens) and tokens[j + 1].first == t.last


def _domain(tokens: list[Token], i: int) -> tuple[int | None, str]:
    """A domain starting at token `i` ("gmail dot com", "gmail.com"): its last token index and text."""
    if i >= len(tokens):
        return None, ""
    if tokens[i].kind == "url":
        return i, tokens[i].text
    if not _label(tokens[i]):
        return None, ""
    parts = [tokens[i].text]
    j = i
    end = None
    while j + 2 < len(tokens) and _dot(tokens, j + 1) and _label(tokens[j + 2]):
        parts += [".", tokens[j + 2].text]
        j += 2
        if tokens[j].text in vocab.TLDS:
            end = j
    if end is None:
        return None, ""
    return end, "".join(parts[: end - i + 1])


def _local_part(tokens: list[Token], at: int) -> tuple[int | None, str]:
    """The local part before "at": connected labels ("j dot smith"), and up to two names before them."""
    j = at - 1
    if not _label(tokens[j]) and tokens[j].kind not in ("email", "url"):
        return None, ""
    parts = [tokens[j].text]
    while j >= 2 and _connector(tokens[j - 1]) and _label(tokens[j - 2]):
        parts[:0] = [tokens[j - 2].text, _connector(tokens[j - 1])]
        j -= 2
    for _ in range(2):
        prev = tokens[j - 1] if j >= 1 else None
        if prev is None or not _label(prev) or prev.text in vocab.COMMON_WORDS or prev.text in vocab.NAME_STOPS:
            break
        parts.insert(0, prev.text)
        j -= 1
    return j, "".join(parts)
