"""Runs of digits: any number of at least N digits, said or written, unless it is clearly a quantity.

Identifiers are read out digit by digit or in groups ("five five five, oh one two three"); what is
exempt is what people say as an amount: a number followed by a unit ("three hundred grams",
"twenty five minutes"), a price ("$500"), a time of day ("seven thirty", "at seven oh five") and
a year said as one ("in nineteen ninety eight"). Dates of birth are the date detector's.
"""

from __future__ import annotations

from deid.redact import vocab
from deid.redact.detectors.base import Finding
from deid.redact.normalise import Normalised, Token

# Numbers said within this many seconds of a run (a pause while reading a number out), with at
# most two misheard words between, belong to it.
CONTINUE_PAUSE = 2.0
# ... and numbers with nothing heard between them, within this many seconds (Whisper heard
# "4946. 92813726" with four seconds of a card number said between them).
UNHEARD_PAUSE = 10.0
# Misheard digits ("free" for three) taken in a row next to a run.
MAX_MISHEARD = 4


def find_digit_runs(norm: Normalised, *, min_digits: int = 3) -> list[Finding]:
    """Numbers of at least `min_digits` digits that are not quantities, times of day or years."""
    out = []
    toks = norm.tokens
    for i, t in enumerate(toks):
        # A run that ends in an ordinal ("48, 4, 7, 2, 8th") is a run too; "the 14th" is too short.
        if not t.is_number or sum(c.isdigit() for c in t.text) < min_digits:
            continue
        if is_quantity(toks, i) or is_round(t) or is_time_of_day(toks, i) or is_year(toks, i):
            continue
        first, last = _continued(norm, i, -1), _continued(norm, i, +1)
        out.append(Finding(toks[first].first, toks[last].last, "number", "digits"))
    return out


def find_cued_numbers(norm: Normalised, wanted: frozenset[str] | set[str]) -> list[Finding]:
    """What follows a number cue ("my number is", "you can reach me on", "card number"), up to the
    end of its sentence, whatever the recogniser made of it.

    On a telephone line tiny.en hears "three five four, five five five" as "free time for time
    time time", which no digit rule reads; the cue is heard better than the number. A sentence
    end (a full stop, a question mark, the end of a Whisper segment) ends it, unless more of the
    number follows (Whisper writes pauses inside a number as full stops): see
    :func:`_number_goes_on`. Another personal-data cue ends it too. Nothing is taken unless the
    stretch holds a number or two words that sound like digits.
    """
    toks, words = norm.tokens, norm.words
    out = []
    for i in range(len(toks)):
        n, entity = _number_cue_at(toks, i)
        if not n or entity not in wanted:
            continue
        j = i + n
        while j < len(toks) and toks[j].text in vocab.NUMBER_CUE_LINKS:
            j += 1
        end, numbers, soundalikes = None, 0, 0
        k = j
        while k < len(toks) and k < j + MAX_CUED_TOKENS:
            t = toks[k]
            if t.kind == "stop":
                if not _number_goes_on(norm, k):
                    break
            elif k > j and (_number_cue_at(toks, k)[0] or _other_cue_at(toks, k) or t.text in vocab.CLOSINGS):
                break
            if words[t.last].timed and words[toks[j].first].timed and words[t.last].end - words[toks[j].first].start > MAX_CUED_SECONDS:
                break
            numbers += t.is_number
            soundalikes += t.text in vocab.DIGIT_SOUNDALIKES or t.text in vocab.UNITS
            if t.kind not in ("stop", "comma"):
                end = k
            if t.kind != "stop" and norm.ends_sentence(k) and not _number_goes_on(norm, k):
                break  # the end of a Whisper segment, with no full stop written
            k += 1
        if end is not None and (numbers or soundalikes >= 2):
            out.append(Finding(toks[j].first, toks[end].last, entity, "digits:cue"))
    return out


# How far a number cue reaches: tokens, and seconds of speech (a card number takes about eight).
MAX_CUED_TOKENS = 24
MAX_CUED_SECONDS = 12.0


def _number_goes_on(norm: Normalised, k: int) -> bool:
    """Whether the number after a cue goes on past the sentence end at token `k`: the next
    sentence starts with a number ("647221. 0488"), or with words that sound like digits up to a
    number, a closing or a sentence end of their own ("free time for. Time time time. Nine nine
    eight"). A new sentence of words ("I live here", "so I called") ends the number."""
    toks = norm.tokens
    heard = 0
    m = k + 1
    while m < len(toks) and (toks[m].text in vocab.DIGIT_SOUNDALIKES or toks[m].kind == "comma"):
        heard += toks[m].kind != "comma"
        if heard and norm.ends_sentence(m):
            return True
        m += 1
    if m == len(toks):
        return heard > 0
    t = toks[m]
    return t.is_number or (heard > 0 and (t.kind == "stop" or t.text in vocab.CLOSINGS))


def _number_cue_at(toks: list[Token], i: int) -> tuple[int, str]:
    """Length and entity of the longest number cue at token `i`, or (0, "")."""
    for cue, entity in _CUES_BY_FIRST.get(toks[i].text, ()):
        n = len(cue)
        if tuple(t.text for t in toks[i : i + n]) == cue:
            return n, entity
    return 0, ""


def _other_cue_at(toks: list[Token], i: int) -> bool:
    """Whether another kind of personal data is announced at `i` ("I live at", "my name is")."""
    return any(tuple(t.text for t in toks[i : i + len(c)]) == c for c in vocab.ADDRESS_CUES + vocab.STRONG_NAME_CUES
               if c[0] == toks[i].text) or toks[i].text in ("my", "born", "email")


_CUES_BY_FIRST: dict[str, list[tuple[tuple[str, ...], str]]] = {}
for _cue, _entity in sorted(vocab.NUMBER_CUES.items(), key=lambda kv: -len(kv[0])):
    _CUES_BY_FIRST.setdefault(_cue[0], []).append((_cue, _entity))


def _continued(norm: Normalised, i: int, step: int) -> int:
    """Extend a run over the numbers said right before or after it, and over the misheard digits
    around and between them ("fine fine fine 940 free free to 7", "647221. Now for 88"): the index
    of the farthest token that belongs to it."""
    toks, words = norm.tokens, norm.words
    end = i  # the farthest number
    reach = i  # the farthest number or misheard digit next to it
    j = i + step
    between = 0
    while 0 <= j < len(toks) and between <= MAX_MISHEARD:
        t = toks[j]
        a, b = (toks[reach], t) if step > 0 else (t, toks[reach])
        gap_from, gap_to = words[a.last], words[b.first]
        if not (gap_from.timed and gap_to.timed):
            break
        gap = gap_to.start - gap_from.end
        if t.is_number:
            # Nothing heard between two numbers: the gap is more of the number, unheard.
            if gap > (UNHEARD_PAUSE if between == 0 else CONTINUE_PAUSE):
                break
            end = reach = j
            between = 0
        elif t.text in vocab.DIGIT_SOUNDALIKES and gap <= CONTINUE_PAUSE:
            between += 1
            if 2 <= between <= MAX_MISHEARD:  # one "to" or "for" beside a number is just a word
                reach = j
        elif t.kind not in ("stop", "comma"):
            break
        j += step
    return reach


def _next_word(toks: list[Token], i: int) -> Token | None:
    j = i + 1
    while j < len(toks) and (toks[j].text in vocab.FILLERS or toks[j].kind == "comma"):
        j += 1
    return toks[j] if j < len(toks) else None


def _prev_word(toks: list[Token], i: int) -> Token | None:
    j = i - 1
    while j >= 0 and toks[j].text in vocab.FILLERS:
        j -= 1
    return toks[j] if j >= 0 else None


def is_quantity(toks: list[Token], i: int) -> bool:
    """A number followed by a unit ("and a half" between allowed), or after a currency sign."""
    prev = _prev_word(toks, i)
    if prev is not None and prev.text in vocab.CURRENCY_SIGNS:
        return True
    j = i + 1
    if [t.text for t in toks[j : j + 3]] == ["and", "a", "half"]:
        j += 3
    nxt = toks[j] if j < len(toks) else None
    if nxt is None or not (nxt.text in vocab.UNITS_OF_MEASURE or nxt.text == "%"):
        return False
    # A unit glued on by the ASR ("238ft" for "238 Harrow") is believed for amounts people say
    # that way ("6ft", "300g"), not for a house-number-like 3+ digits.
    glued = nxt.first == toks[i].last and j == i + 1
    return not glued or len(toks[i].text) <= 2 or is_round(toks[i])


def is_round(t: Token) -> bool:
    """ "three hundred", "2000", "fifteen hundred": an amount said as one round number."""
    return len(t.groups) == 1 and t.groups[0].how != "digit" and len(t.text) <= 4 and t.text.endswith("00")


def is_time_of_day(toks: list[Token], i: int) -> bool:
    """ "seven thirty", "eleven fifteen pm", "at seven oh five", "at 730 tomorrow": an hour then
    minutes, said as a time (Whisper writes "seven thirty" as "730")."""
    g = toks[i].groups
    prev, nxt = _prev_word(toks, i), _next_word(toks, i)
    time_after = nxt is not None and nxt.text in vocab.AFTER_TIME
    cued = (prev is not None and prev.text in vocab.TIME_CUES) or time_after
    text = toks[i].text
    if [x.how for x in g] == ["written"] and len(text) in (3, 4):
        # "at 535" may be a house number: a written time needs a time word after it, or an event
        # before its cue ("starts at 1050", "wake me up at 730").
        k = i - 1
        while k >= 0 and toks[k].text in vocab.FILLERS:
            k -= 1
        before_cue = _prev_word(toks, k) if k >= 0 else None
        event = cued and before_cue is not None and before_cue.text in vocab.TIMED_EVENTS
        return (time_after or event) and 1 <= int(text[:-2]) <= 12 and int(text[-2:]) <= 59
    if [x.how for x in g] == ["written", "written"] and len(g[1].digits) == 2 and cued:  # "at 10-30 tomorrow"
        return 1 <= int(g[0].digits) <= 12 and int(g[1].digits) <= 59
    if not g or int(g[0].digits) not in range(1, 13) or g[0].how not in ("digit", "cardinal"):
        return False
    if len(g) == 2 and g[1].how == "cardinal" and 10 <= int(g[1].digits) <= 59:
        return True
    return cued and len(g) == 3 and g[1].digits == "0" and g[2].how == "digit"


def is_year(toks: list[Token], i: int) -> bool:
    """A year said as one ("nineteen eighty four", "two thousand nineteen"), or written after "in"."""
    t = toks[i]
    if len(t.text) != 4 or not 1900 <= int(t.text) <= 2099:
        return False
    hows = [g.how for g in t.groups]
    if hows in (["cardinal", "cardinal"], ["cardinal"]):
        return True
    prev = _prev_word(toks, i)
    return hows == ["written"] and prev is not None and prev.text in vocab.YEAR_CUES
