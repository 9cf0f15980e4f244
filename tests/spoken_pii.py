"""A spoken-PII test set made on the spot with espeak-ng, and the leak check, for the redaction
tests and `benchmarks/redaction.py`.

Every personal item is made up and spoken the way people say it: digit by digit, in groups,
"double oh", e-mails spelled with "dot" and "at", common and rare names, house numbers. Beside
them, sentences whose numbers and words are not personal (timers, quantities, times of day) must
survive. Voices, speeds and a telephone band vary, all drawn from an explicit seed.

The leak check transcribes original and redacted audio with an ASR and counts, per planted item,
the strings that the ASR heard in the original and still hears after redaction.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

SR = 16000
VOICES = ("en-us", "en-us+f3", "en-gb", "en-gb-x-rp", "en-us+m3", "en-gb+f4")
SPEEDS = (145, 165, 180)


@dataclass(frozen=True)
class Item:
    """One planted item: its entity type and the strings that would give it away if heard.

    Digit strings are matched against the digits heard; words against the words heard.
    """

    entity: str
    strings: tuple[str, ...]


@dataclass(frozen=True)
class Sentence:
    text: str  # as spoken
    items: tuple[Item, ...] = ()  # empty: a non-personal sentence, every word must survive


@dataclass
class Clip:
    """Several sentences spoken in one voice, as one recording."""

    sentences: list[Sentence]
    voice: str
    speed: int
    telephone: bool
    y: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    sr: int = SR

    @property
    def items(self) -> list[Item]:
        return [item for s in self.sentences for item in s.items]

    @property
    def personal(self) -> bool:
        return bool(self.items)


COMMON = [("Margaret", "Johnson"), ("David", "Miller"), ("Linda", "Garcia"), ("Robert", "Wilson"), ("Susan", "Taylor")]
RARE = [("Chiamaka", "Okafor"), ("Siobhan", "Przybylski"), ("Oluwaseun", "Adeyemi"), ("Thaddeus", "Featherstone"), ("Ngozi", "Thistlewood")]
STREETS = ["Birchwood Lane", "Maple Avenue", "Kingsley Road", "Elm Street", "Harrow Drive"]
DIGIT_WORDS = ["oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def spoken_digits(digits: str, groups: tuple[int, ...], *, double: bool = False) -> str:
    """"6472210488", (3, 3, 4) -> "six four seven, two two one, oh four double eight"."""
    parts, k = [], 0
    for g in groups:
        chunk = digits[k : k + g]
        k += g
        words, i = [], 0
        while i < len(chunk):
            if double and i + 1 < len(chunk) and chunk[i] == chunk[i + 1]:
                words.append("double " + DIGIT_WORDS[int(chunk[i])])
                i += 2
            else:
                words.append(DIGIT_WORDS[int(chunk[i])])
                i += 1
        parts.append(" ".join(words))
    return ", ".join(parts)


def _digits(rng: np.random.Generator, n: int, first_nonzero: bool = True) -> str:
    d = "".join(str(x) for x in rng.integers(0, 10, n))
    return (str(rng.integers(1, 10)) + d[1:]) if first_nonzero else d


def _luhn_complete(prefix: str) -> str:
    total = 0
    for i, c in enumerate(reversed(prefix)):
        d = int(c)
        if i % 2 == 0:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return prefix + str((10 - total % 10) % 10)


_NUMBER_NAMES = {
    1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine", 10: "ten",
    11: "eleven", 12: "twelve", 13: "thirteen", 14: "fourteen", 15: "fifteen", 16: "sixteen", 17: "seventeen",
    18: "eighteen", 19: "nineteen", 20: "twenty", 30: "thirty", 40: "forty", 50: "fifty", 60: "sixty",
    70: "seventy", 80: "eighty", 90: "ninety",
}
_ORDINAL_NAMES = {1: "first", 2: "second", 3: "third", 5: "fifth", 8: "eighth", 9: "ninth", 12: "twelfth"}
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"]


def number_words(n: int) -> str:
    if n < 20 or n % 10 == 0 and n < 100:
        return _NUMBER_NAMES[n]
    if n < 100:
        return f"{_NUMBER_NAMES[n - n % 10]} {_NUMBER_NAMES[n % 10]}"
    if n < 1000:
        rest = n % 100
        return f"{_NUMBER_NAMES[n // 100]} hundred" + (f" and {number_words(rest)}" if rest else "")
    return f"{number_words(n // 100)} {number_words(n % 100)}" if n % 100 else f"{number_words(n // 100)} hundred"


def ordinal_words(n: int) -> str:
    if n in _ORDINAL_NAMES:
        return _ORDINAL_NAMES[n]
    if n < 20:
        return number_words(n) + "th"
    if n % 10 == 0:
        return number_words(n)[:-1] + "ieth"
    return f"{_NUMBER_NAMES[n - n % 10]} {ordinal_words(n % 10)}"


def year_words(y: int) -> str:
    """1984 -> "nineteen eighty four", 2005 -> "two thousand and five", 1905 -> "nineteen oh five"."""
    if y >= 2000:
        return "two thousand" + (f" and {number_words(y % 100)}" if y % 100 else "")
    if y % 100 == 0:
        return f"{number_words(y // 100)} hundred"
    return f"{number_words(y // 100)} {number_words(y % 100)}" if y % 100 >= 10 else f"{number_words(y // 100)} oh {number_words(y % 100)}"


def personal_sentences(rng: np.random.Generator) -> list[Sentence]:
    """One sentence of every planted kind, with fresh made-up values."""
    pick = lambda seq: seq[int(rng.integers(len(seq)))]  # noqa: E731
    first_c, last_c = pick(COMMON)
    first_r, last_r = pick(RARE)
    phone = "555" + _digits(rng, 7, False)
    area = str(rng.integers(2, 10)) + _digits(rng, 2, False)
    phone10 = area + "555" + _digits(rng, 4, False)
    double = _digits(rng, 2, True) + "00" + _digits(rng, 4, False)
    card = _luhn_complete("4" + _digits(rng, 14, False))
    account = _digits(rng, 8)
    house = int(rng.integers(12, 99))
    house3 = int(rng.integers(101, 999))
    street = pick(STREETS)
    zip_code = _digits(rng, 5)
    day, month, year = int(rng.integers(1, 29)), pick(MONTHS), int(rng.integers(1950, 2005))
    first_e, last_e = pick(COMMON + RARE)
    local = last_e.lower()
    return [
        Sentence(f"Hi, this is {first_c} {last_c} calling about my account.", (Item("name", (first_c.lower(), last_c.lower())),)),
        Sentence(f"My name is {first_r} {last_r}.", (Item("name", (first_r.lower(), last_r.lower())),)),
        Sentence(f"Could I speak to Doctor {last_r}, please?", (Item("name", (last_r.lower(),)),)),
        Sentence(f"You can reach me on {spoken_digits(phone10, (3, 3, 4))}.", (Item("phone", (phone10,)),)),
        Sentence(f"My number is {spoken_digits(phone, (3, 3, 4))}.", (Item("phone", (phone,)),)),
        Sentence(f"Call me back on {spoken_digits(double, (4, 4), double=True)}.", (Item("phone", (double,)),)),
        Sentence(f"The card number is {spoken_digits(card, (4, 4, 4, 4))}.", (Item("id", (card,)),)),
        Sentence(f"My account number is {spoken_digits(account, (4, 4))}.", (Item("number", (account,)),)),
        Sentence(f"My email is {first_e[0].lower()} dot {local} at gmail dot com.", (Item("email", (local,)),)),
        Sentence(f"I live at {number_words(house)} {street}.", (Item("address", (str(house), street.split()[0].lower())),)),
        Sentence(f"Send it to {number_words(house3)} {street}.", (Item("address", (str(house3), street.split()[0].lower())),)),
        Sentence(f"My zip code is {spoken_digits(zip_code, (5,))}.", (Item("address", (zip_code,)),)),
        Sentence(
            f"I was born on the {ordinal_words(day)} of {month}, {year_words(year)}.",
            (Item("date", (str(day), month.lower(), str(year))),),
        ),
    ]


NON_PERSONAL = [
    "Set a timer for fifteen minutes.",
    "Add three hundred grams of flour to the bowl.",
    "Wake me up at seven thirty tomorrow morning.",
    "The train leaves at half past six.",
    "Turn the volume up to twenty percent.",
    "It takes about forty five minutes to bake.",
    "Remind me to buy two litres of milk.",
    "What is the weather like this afternoon?",
    "Play some relaxing music in the kitchen.",
    "The meeting starts at ten fifteen on the third floor.",
    "Preheat the oven to two hundred degrees.",
    "I would like to cancel my order, please.",
]


def make_clips(seed: int, *, n_personal: int, n_plain: int, per_clip: int = 3) -> list[Clip]:
    """Clips of `per_clip` sentences each: `n_personal` with planted items, `n_plain` without."""
    rng = np.random.default_rng(seed)
    clips = []
    pool: list[Sentence] = []
    for _ in range(n_personal):
        chosen = []
        for _ in range(per_clip):
            if not pool:
                pool = personal_sentences(rng)
                rng.shuffle(pool)
            chosen.append(pool.pop())
        clips.append(_clip(rng, chosen))
    plain = list(NON_PERSONAL)
    rng.shuffle(plain)
    for k in range(n_plain):
        chosen = [Sentence(plain[(k * per_clip + j) % len(plain)]) for j in range(per_clip)]
        clips.append(_clip(rng, chosen))
    return clips


def _clip(rng: np.random.Generator, sentences: list[Sentence]) -> Clip:
    voice = VOICES[int(rng.integers(len(VOICES)))]
    speed = SPEEDS[int(rng.integers(len(SPEEDS)))]
    telephone = bool(rng.random() < 0.34)
    return Clip(sentences, voice, speed, telephone)


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def speak(text: str, *, voice: str = "en-us", speed: int = 160) -> tuple[np.ndarray, int]:
    """`text` spoken by espeak-ng, as float32 mono at its native 22050 Hz."""
    import io

    import soundfile as sf

    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "--stdout", text], check=True, capture_output=True
    ).stdout
    y, sr = sf.read(io.BytesIO(wav), dtype="float32")
    return y, sr


def render(clip: Clip, *, pause: float = 0.6) -> Clip:
    """Speak a clip's sentences with pauses between them; telephone clips become 8 kHz, 300-3400 Hz."""
    import soxr
    from scipy.signal import butter, sosfiltfilt

    parts = []
    for s in clip.sentences:
        y, sr = speak(s.text, voice=clip.voice, speed=clip.speed)
        parts += [soxr.resample(y, sr, SR).astype(np.float32), np.zeros(int(pause * SR), np.float32)]
    y = np.concatenate([np.zeros(int(0.3 * SR), np.float32), *parts])
    sr = SR
    if clip.telephone:
        sos = butter(6, [300, 3400], btype="bandpass", fs=SR, output="sos")
        y = soxr.resample(sosfiltfilt(sos, y), SR, 8000).astype(np.float32)
        sr = 8000
    clip.y, clip.sr = y * (0.5 / max(1e-6, float(np.abs(y).max()))), sr
    return clip


_STOP_WORDS = {
    "a", "an", "the", "to", "of", "in", "on", "at", "for", "and", "is", "it", "my", "me", "i", "up", "some",
    "about", "like", "what", "this", "would", "please",
}


def heard(words: list[str]) -> tuple[set[str], list[str]]:
    """What an ASR transcript says, as words (lower case, no punctuation) and digit runs, the
    numbers read through deid's own normaliser so "six four seven" and "647" compare equal."""
    from deid.redact import Word
    from deid.redact.normalise import normalise

    norm = normalise([Word(w, None, None) for w in words])
    plain = {re.sub(r"[^a-z0-9']", "", w.lower()) for w in words}
    runs = re.findall(r"\d+", norm.text)
    return plain | {t.text for t in norm.tokens if t.kind == "word"}, runs


def item_heard(item_string: str, vocabulary: set[str], runs: list[str]) -> bool:
    """A digit string counts as heard when any 3 of its consecutive digits (or all, if shorter) are."""
    if item_string.isdigit():
        k = min(3, len(item_string))
        return any(item_string[i : i + k] in r for r in runs for i in range(len(item_string) - k + 1)) if len(item_string) > 3 else any(item_string in r for r in runs)
    return item_string in vocabulary


def content_words(words: list[str]) -> list[str]:
    return [w for w in (re.sub(r"[^a-z']", "", x.lower()) for x in words) if w and w not in _STOP_WORDS]


@dataclass
class LeakResult:
    """Per entity type: items planted, heard in the original, still heard after redaction."""

    planted: dict[str, int] = field(default_factory=dict)
    heard: dict[str, int] = field(default_factory=dict)
    leaked: dict[str, int] = field(default_factory=dict)
    content_total: int = 0
    content_kept: int = 0
    leaks: list[str] = field(default_factory=list)

    def add_clip(self, clip: Clip, original: list[str], redacted: list[list[str]]) -> None:
        """Count one clip. `redacted` holds transcripts of the redacted audio: the whole clip, and
        (see `between_spans`) every stretch between spans, so that an ASR thrown off by a tone
        cannot hide a leak by falling silent."""
        vocab_o, runs_o = heard(original)
        vocab_r, runs_r = set(), []
        for words in redacted:
            v, r = heard(words)
            vocab_r |= v
            runs_r += r
        for item in clip.items:
            self.planted[item.entity] = self.planted.get(item.entity, 0) + 1
            in_original = [s for s in item.strings if item_heard(s, vocab_o, runs_o)]
            if not in_original:
                continue
            self.heard[item.entity] = self.heard.get(item.entity, 0) + 1
            still = [s for s in in_original if item_heard(s, vocab_r, runs_r)]
            if still:
                self.leaked[item.entity] = self.leaked.get(item.entity, 0) + 1
                self.leaks.append(f"{item.entity} ({clip.voice}, {clip.speed} wpm{', phone' if clip.telephone else ''})")
        if not clip.personal:
            before = content_words(original)
            after = {w for words in redacted for w in content_words(words)}
            self.content_total += len(before)
            self.content_kept += sum(w in after for w in before)


def between_spans(y: np.ndarray, sr: int, spans, *, margin: float = 0.05, shortest: float = 0.3) -> list[np.ndarray]:
    """The stretches of `y` outside every span (each span widened by `margin`), at least `shortest` s long."""
    pieces, t = [], 0.0
    for sp in [*spans, None]:
        end = y.shape[-1] / sr if sp is None else max(0.0, sp.start - margin)
        if end - t >= shortest:
            pieces.append(y[..., int(t * sr) : int(end * sr)])
        if sp is not None:
            t = sp.end + margin
    return pieces


def leak_check(clips: list[Clip], transcribe: Callable[[np.ndarray, int], list[str]], find_spans) -> LeakResult:
    """Transcribe every clip, redact it with `find_spans(clip, words) -> spans`, transcribe the
    redacted audio whole and between its spans, and count what is still heard."""
    import deid

    result = LeakResult()
    for clip in clips:
        original = transcribe(clip.y, clip.sr)
        spans = find_spans(clip, original)
        y = deid.redact(clip.y, clip.sr, spans)
        after = [transcribe(y, clip.sr)] + [transcribe(p, clip.sr) for p in between_spans(y, clip.sr, spans)]
        result.add_clip(clip, [w.text for w in original], [[w.text for w in a] for a in after])
    return result
