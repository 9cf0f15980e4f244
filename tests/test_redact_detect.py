"""The spoken-form normaliser and every detector, on text in spoken and in digit forms, with the
non-personal numbers and words that must survive."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from deid.redact import ENTITIES, RedactOptions, Word, detect, find_pii
from deid.redact.normalise import normalise
from deid.redact.options import RedactOptionsError


def words(text: str, step: float = 0.4) -> list[Word]:
    return [Word(w, round(i * step, 3), round(i * step + 0.3, 3)) for i, w in enumerate(text.split())]


def redacted(text: str = "", ws: list[Word] | None = None, **options) -> str:
    """The text (or words `ws`) with every finding's words replaced by its entity type in capitals."""
    ws = words(text) if ws is None else ws
    findings = sorted(detect(ws, RedactOptions(**options)), key=lambda f: ENTITIES.index(f.entity), reverse=True)
    out = [w.text for w in ws]
    for f in findings:  # the most specific entity last, so it names the word
        for i in range(f.first, f.last + 1):
            out[i] = f.entity.upper()
    return " ".join(out)


def entities(text: str, **options) -> set[str]:
    return {f.entity for f in detect(words(text), RedactOptions(**options))}


# ---- the normaliser and its map back to words -------------------------------------------------


@pytest.mark.parametrize(
    "said, digits",
    [
        ("six four seven two two one oh four eight eight", "6472210488"),
        ("six four seven, two two one, oh four double eight", "6472210488"),
        ("647-221-0488", "6472210488"),
        ("647221. 0488", "6472210488"),
        ("five five five one two three", "555123"),
        ("555123", "555123"),
        ("oh seven seven double oh triple nine", "07700999"),
        ("twenty five", "25"),
        ("twenty-five", "25"),
        ("three hundred and five", "305"),
        ("four thousand two hundred", "4200"),
        ("nineteen eighty four", "1984"),
        ("two thousand and nineteen", "2019"),
        ("one twenty three", "123"),
        ("1 -5 -double -oh 8", "15008"),
        ("700 and 97", "797"),
        ("one eight hundred five five five", "1800555"),
    ],
)
def test_numbers_in_every_spoken_and_written_form_become_one_digit_string(said: str, digits: str):
    norm = normalise(words(said))
    numbers = [t for t in norm.tokens if t.is_number]
    assert [t.text for t in numbers] == [digits]


def test_oh_is_zero_only_beside_numbers():
    assert [t.text for t in normalise(words("oh I see")).tokens if t.is_number] == []
    assert [t.text for t in normalise(words("oh one two")).tokens if t.is_number] == ["012"]


def test_ordinals_spelled_letters_and_spoken_emails():
    norm = normalise(words("on the 14th and the twenty first"))
    assert [(t.kind, t.text) for t in norm.tokens if t.is_number] == [("ordinal", "14"), ("ordinal", "21")]
    norm = normalise(words("it is O-K-A-F-O-R or m a r g"))
    assert [t.text for t in norm.tokens if t.kind == "letters"] == ["okafor", "marg"]
    norm = normalise(words("write to j dot smith underscore two at mail dot example dot com please"))
    assert [t.text for t in norm.tokens if t.kind == "email"] == ["j.smith_2@mail.example.com"]


def test_every_normalised_character_maps_back_to_its_source_word():
    ws = words("call six four seven, two two one at margaret dot okafor at gmail dot com or 14th")
    norm = normalise(ws)
    for start in range(len(norm.text)):
        if norm.text[start] == " ":
            continue
        first, last = norm.words_of_chars(start, start + 1)
        token = next(t for t in norm.tokens if t.first == first and t.last == last)
        assert token.text.find(norm.text[start]) >= 0
    phone = norm.text.index("647221")
    assert norm.words_of_chars(phone, phone + 6) == (1, 6)  # "six" .. "one" (comma words included)
    email = norm.text.index("margaret.okafor@gmail.com")
    assert norm.words_of_chars(email, email + 5) == (8, 14)
    assert ws[8].text == "margaret" and ws[14].text == "com"


# ---- detectors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "my pin is four four seven one",
        "my pin is 4471",
        "account number one two three four five six seven eight",
        "the reference is 8 -1 -2",
        "order 38812 is late",
        "10 to 238ft air of light",  # a unit glued on by the ASR to a house-number-like number
        "number 48, 4, 7, 2, 8th time",  # a run that ends in an ordinal
    ],
)
def test_digit_runs_are_numbers(text: str):
    assert "number" in entities(text)


def test_misheard_digits_around_a_run_belong_to_it():
    # "five five five, nine four oh, three three two seven" as Whisper heard it.
    assert redacted("my number is fine fine fine 940 free free to 7 my email") == (
        "my number is NUMBER NUMBER NUMBER NUMBER NUMBER NUMBER NUMBER NUMBER my email"
    )
    # One "to" or "for" before a number is a word.
    assert redacted("please write to 38812 now") == "please write to NUMBER now"


def test_digit_run_length_is_configurable():
    assert entities("my code is four seven", min_digits=2) == {"number"}
    assert entities("my code is four seven") == set()
    assert entities("my code is 4471", min_digits=5) == set()


@pytest.mark.parametrize(
    "text",
    [
        "set a timer for twenty five minutes",
        "add three hundred grams of flour",
        "add 300 grams of flour",
        "preheat the oven to two hundred degrees",
        "wake me up at seven thirty tomorrow",
        "wake me up at 730 tomorrow morning",
        "the meeting starts at 10 .50 on the third floor",
        "meet me at seven oh five pm",
        "it cost $500",
        "turn it up to 20 %",
        "back in nineteen ninety eight we moved",
        "it was in 2019, in the spring",
        "I walked 10000 steps",
        "it weighs fifteen hundred kilos",
        "he is 6ft tall and needs 300g of it",
        "the train leaves at half past six",
        "The train leaves at half past six. It takes about 45 minutes",  # "six. It" is no web address
        "Wake me up at 10 -30 tomorrow morning",
    ],
)
def test_quantities_times_of_day_and_years_survive(text: str):
    assert redacted(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "you can reach me on six four seven two two one oh four eight eight",
        "call me on 647-221-0488",
        "call me on (647) 221-0488",
        "my number is 6472210488",
        "call me on plus four four two zero seven nine four six zero nine five eight",
        "call +44 20 7946 0958",
    ],
)
def test_phone_numbers(text: str):
    assert "phone" in entities(text)


@pytest.mark.parametrize(
    "text, detector",
    [
        ("the card number is 4539 1488 0343 6467", "stdnum:luhn"),
        ("card four five three nine one four eight eight oh three four three six four six seven", "stdnum:luhn"),
        ("my social security number is 123-45-6789", "stdnum:ssn"),
        ("social security one two three four five six seven eight nine", "stdnum:ssn"),
        ("the IBAN is GB82 WEST 1234 5698 7654 32", "stdnum:iban"),
        ("iban g b eight two w e s t one two three four five six nine eight seven six five four three two", "stdnum:iban"),
        ("my NHS number is 943 476 5919", "stdnum:nhs"),
    ],
)
def test_checksummed_ids(text: str, detector: str):
    assert detector in {f.detector for f in detect(words(text)) if f.entity == "id"}


@pytest.mark.parametrize(
    "text, expected",
    [
        # "three five four, five five five" on a telephone line, as tiny.en heard it.
        ("you can reach me on free time for time time time thanks", "you can reach me on PHONE PHONE PHONE PHONE PHONE PHONE thanks"),
        # A full stop inside a number (a pause) does not end it; a new sentence of words does.
        ("my number is free time for. Time time time. Nine nine eight", "my number is " + " ".join(["NUMBER"] * 9)),
        ("My zip code is nine oh two one oh. Thanks", "My zip code is ADDRESS ADDRESS ADDRESS ADDRESS ADDRESS Thanks"),
        # A sentence end closes it: the next sentence is kept (even from "I", which sounds like a digit).
        ("my number is five five five, one two three. I live here now",
         "my number is " + " ".join(["NUMBER"] * 6) + " I live here now"),
        ("my number is 555-0123? I live here now", "my number is PHONE I live here now"),
        ("you can reach me on free time for. Now I live here", "you can reach me on PHONE PHONE PHONE Now I live here"),
        # ... unless more of the number follows.
        ("my number is 647221. Now for 88 thanks", "my number is NUMBER NUMBER NUMBER NUMBER thanks"),
    ],
)
def test_what_follows_a_number_cue_is_redacted_however_it_was_heard(text: str, expected: str):
    assert redacted(text) == expected


def test_a_whisper_segment_end_closes_what_follows_a_cue():
    """A segment end with no full stop written ends the stretch as a full stop does."""
    def said(*segments: str) -> str:
        ws = words(" ".join(segments))
        ends = set(itertools.accumulate(len(s.split()) for s in segments))
        return redacted(ws=[replace(w, ends_segment=i + 1 in ends) for i, w in enumerate(ws)])

    assert said("you can reach me on free time for time", "I moved here last week") == (
        "you can reach me on PHONE PHONE PHONE PHONE I moved here last week")
    assert said("my number is free time for", "time time time", "I moved here") == (
        "my number is " + " ".join(["NUMBER"] * 6) + " I moved here")
    assert said("my email is margaret dot okafor at gmail dot com", "I moved here") == (
        "my email is " + " ".join(["EMAIL"] * 7) + " I moved here")
    assert said("My email is at www .kaylerapte", "-mail .com", "I moved here") == (
        "My email is EMAIL EMAIL EMAIL EMAIL EMAIL I moved here")


def test_a_phone_number_heard_with_a_digit_too_many_is_still_a_phone():
    # "six four seven, two two one, oh four eight eight" as tiny.en heard it: no valid number.
    assert redacted("My phone number is 647221. 04888 thanks, bye", entities={"phone"}) == (
        "My phone number is PHONE PHONE thanks, bye"
    )


@pytest.mark.parametrize(
    "text",
    ["call me back tomorrow please", "call me when you get home", "you can reach me at the office",
     "What number is it? I think the number is big.", "please hold, my number is in the system",
     "The extension is being built now"],
)
def test_a_number_cue_without_a_number_takes_nothing(text: str):
    assert redacted(text) == text


def test_a_failed_checksum_is_no_card_but_still_a_number():
    found = detect(words("the card number is 4539 1488 0343 6468"))
    # (The cue "card number" still makes it an id, whatever the digits.)
    assert {f.entity for f in found if f.detector != "digits:cue"} == {"number"}


@pytest.mark.parametrize(
    "text, entity",
    [
        ("my email is margaret dot okafor at gmail dot com", "email"),
        ("email m dot okafor at gmail dot com", "email"),
        ("it's margaret.okafor@gmail.com thanks", "email"),
        ("it's margaret.okafor at gmail.com thanks", "email"),
        ("j underscore smith at outlook dot co dot uk", "email"),
        ("go to www dot okafor family dot org", "url"),
        ("see https://okafor.example.com/about", "url"),
    ],
)
def test_emails_and_urls(text: str, entity: str):
    assert entity in entities(text)


def test_what_follows_an_email_cue_is_the_address_however_it_was_heard():
    # "s dot taylor at gmail dot com" as tiny.en heard it: the name is outside the web address.
    assert redacted("My email is at www .kaylerapte -mail .com. Thanks") == "My email is EMAIL EMAIL EMAIL EMAIL EMAIL Thanks"
    assert redacted("my email is not working, can you help") == "my email is EMAIL EMAIL EMAIL EMAIL EMAIL"  # the price
    assert "email" not in entities("I sent an email yesterday. Is it there?")


def test_a_spoken_email_covers_its_local_part():
    out = redacted("my email is margaret dot okafor at gmail dot com ok")
    assert out == "my email is EMAIL EMAIL EMAIL EMAIL EMAIL EMAIL EMAIL ok"


@pytest.mark.parametrize(
    "text",
    [
        "I was born on the fourteenth of March nineteen eighty four",
        "born on March 14th, 1984",
        "my date of birth is 03/14/1984",
        "date of birth three fourteen eighty four",
        "I was born in nineteen eighty four",
        "the appointment is on July second",
        "it happened on 14 May 2021",
        "I want more number 21st on November, 2016",
        "I was born on the island in the island in 1974.",
    ],
)
def test_dates(text: str):
    assert "date" in entities(text)


def test_a_birth_date_runs_to_its_year_however_it_was_heard():
    assert redacted("I was born on the 25th of July nineteen seventy for the record") == "I was born on the " + " ".join(["DATE"] * 8)
    assert redacted("I was born on the 25th of July and I live here") == "I was born on the DATE DATE DATE and I live here"


@pytest.mark.parametrize("text", ["see you in March", "on Monday", "may I help you", "it is the second time"])
def test_a_month_or_weekday_alone_is_no_date(text: str):
    assert "date" not in entities(text)


@pytest.mark.parametrize(
    "text",
    [
        "I live at 87 Birchwood Lane",
        "I live at eighty seven Birchwood Lane",
        "send it to fourteen twenty two Maple Avenue apartment six",
        "1600 North Pennsylvania Avenue",
        "it's 221B Baker Street",
        "P O box one two three",
        # After an address cue the words are taken whatever the ASR made of them.
        "I live at 33 merch one day.",
        "I live at 90 -hour -drive.",
        "I live at Iodine Harrow Drive.",  # no number heard: the words up to the street suffix
        "my zip code is nine oh two one oh",
        "New York NY 10001",
        "London NW1 6XE",
        "the postcode is s w one a one a a",
        "Toronto M5V 3L9",
    ],
)
def test_addresses_and_postcodes(text: str):
    assert "address" in entities(text)


def test_street_address_span_covers_number_street_and_unit():
    assert redacted("send it to 1422 Maple Avenue apartment 6 today") == "send it to ADDRESS ADDRESS ADDRESS ADDRESS ADDRESS today"


def test_a_street_named_without_its_number_in_a_cased_transcript():
    assert redacted("I walked down and made it to Kingsley Road.") == "I walked down and made it to ADDRESS ADDRESS"
    assert "address" not in entities("i walked down and made it to kingsley road")  # no case, no clue
    assert "address" not in entities("Road works ahead, said the sign.")  # at a sentence's start


@pytest.mark.parametrize("text", ["I live at home with my parents", "it is a 5 minute walk", "turn left after 2 blocks onto the main road", "I ran 10 miles down the road", "meet me at 705 pm"])
def test_everyday_numbers_before_street_words_are_no_address(text: str):
    assert "address" not in entities(text)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Hi, this is Margaret Okafor calling about my account.", "Hi, this is NAME NAME calling about my account."),
        ("Hi, this is David Miller calling.", "Hi, this is NAME NAME calling."),  # a surname that is also a word
        ("hi this is david miller calling", "hi this is NAME NAME calling"),
        ("my name is margaret okafor and I live here", "my name is NAME NAME and I live here"),
        # A rare name misheard as common words is still taken after a strong cue.
        ("my name is margaret oak a four and I am calling", "my name is NAME NAME NAME NAME and I am calling"),
        ("Could I speak to Doctor Adeyemi, please?", "Could I speak to Doctor NAME please?"),
        ("please ask for Mrs. O'Brien at reception", "please ask for Mrs. NAME at reception"),
        ("Margaret speaking, how can I help?", "NAME speaking, how can I help?"),
        ("my surname is Przybylski", "my surname is NAME"),
        ("I spoke to Siobhan Featherstone yesterday.", "I spoke to NAME NAME yesterday."),
        ("can you spell that? O-K-A-F-O-R.", "can you spell that? NAME"),
        ("Okafor, that's O K A F O R.", "NAME NAME NAME NAME NAME NAME NAME NAME"),
        # A listed surname that is also a word, capitalised inside a sentence, with no cue.
        ("I had lunch with Miller yesterday.", "I had lunch with NAME yesterday."),
        ("Hello, David Miller speaking.", "Hello, NAME NAME speaking."),  # a title-cased sentence
        ("Hello, Miller speaking. How can I help?", "Hello, NAME speaking. How can I help?"),
    ],
)
def test_names(text: str, expected: str):
    assert redacted(text, entities={"name"}) == expected


@pytest.mark.parametrize(
    "text",
    [
        "It's fine, I'm good, this is great.",
        "I'm sorry I'm late",
        "yes I am a customer, I'm calling about the bill",
        "Alexa, play some music. Hey Siri, what's the weather?",
        "I'm in Paris next week.",
        "Will you mark the page?",
        "Set A Timer For Fifteen Minutes Please And Turn On The Lights",
        "I'm speaking English at Christmas, on Monday in May.",
        "Hello, How are you? Hi, This is great. Who is speaking?",
        "and I live at 87 Birchwood Lane, near Hyde Park",  # a surname that is a street's suffix
    ],
)
def test_everyday_words_are_no_names(text: str):
    assert "name" not in entities(text)


def test_user_terms_are_always_redacted_and_allowed_terms_never():
    assert "term" in entities("the project is called Bluebird", terms=("bluebird",))
    assert entities("ask for Doctor Adeyemi", allow=("adeyemi",)) == set()
    # Digits-only terms match however the number was said.
    assert entities("call one eight hundred five five five", allow=("1800555",)) == set()
    assert "term" in entities("code word Zephyr Falls", terms=("zephyr falls",), entities=set())
    # Every occurrence, however said.
    found = detect(words("PIN 4471 again four four seven one"), RedactOptions(terms=("4471",), entities=set()))
    assert [(f.first, f.last) for f in found] == [(1, 1), (3, 6)]


def test_entity_choice():
    text = "this is Margaret Okafor, call 647-221-0488 or mail m dot okafor at gmail dot com"
    assert entities(text, entities={"phone"}) == {"phone"}
    assert entities(text, entities={"name", "email"}) == {"name", "email"}
    assert entities(text) >= {"name", "phone", "email", "number"}


@pytest.mark.parametrize(
    "options, message",
    [
        ({"entities": {"names"}}, "unknown entity type 'names'"),
        ({"min_digits": 0}, "min_digits"),
        ({"padding": -1}, "padding"),
        ({"signal": "beep"}, "signal must be one of tone, silence, noise"),
        ({"region": "USA"}, "region"),
    ],
)
def test_options_are_validated_with_a_message(options: dict, message: str):
    with pytest.raises(RedactOptionsError, match=message):
        RedactOptions(**options)


def test_options_from_plain_data(tmp_path):
    terms = tmp_path / "terms.txt"
    terms.write_text("# our agents\nBluebird\n\nZephyr Falls  # a place\n", encoding="utf-8")
    o = RedactOptions.from_mapping({"entities": "name, phone", "terms_file": str(terms), "padding": 0.1})
    assert o.entities == {"name", "phone"} and o.terms == ("Bluebird", "Zephyr Falls") and o.padding == 0.1
    import json

    assert json.loads(json.dumps(o.as_dict()))["entities"] == ["name", "phone"]
    assert "Bluebird" not in json.dumps(o.as_dict())
    with pytest.raises(RedactOptionsError, match="unknown redaction option 'pad'"):
        RedactOptions.from_mapping({"pad": 1}, source="preset.toml")


def test_find_pii_gives_padded_spans_in_time():
    ws = words("hi my number is six four seven two two one oh four eight eight thanks", step=0.5)
    spans = find_pii(ws, duration=10.0)
    assert len(spans) == 1
    s = spans[0]
    # The gap after it is covered too, and (a number) the word before it, then 0.25 s of padding.
    assert s.start == pytest.approx(ws[3].start - 0.25) and s.end == pytest.approx(ws[14].start + 0.25)
    assert s.entity == "phone" and "number" in s.entities


def test_optional_spacy_ner_adds_its_entities(tmp_path):
    spacy = pytest.importorskip("spacy", reason="spaCy is in the [test] extra")
    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns([{"label": "PERSON", "pattern": [{"LOWER": "zanele"}, {"LOWER": "mbeki"}]}, {"label": "GPE", "pattern": "Soweto"}])
    nlp.to_disk(tmp_path / "model")
    text = "yesterday Zanele Mbeki flew to Soweto."
    assert "address" not in entities(text)
    found = detect(words(text), RedactOptions(ner_model=str(tmp_path / "model")))
    assert {(f.first, f.last, f.entity, f.detector) for f in found} >= {(1, 2, "name", "ner:PERSON"), (5, 5, "address", "ner:GPE")}
    assert entities(text, ner_model=str(tmp_path / "model"), entities={"date"}) == set()


def test_a_wrong_ner_model_is_one_line(tmp_path):
    from deid.errors import DeidError

    with pytest.raises(DeidError, match="not a spaCy model directory|needs spaCy"):
        detect(words("hello"), RedactOptions(ner_model=str(tmp_path / "nothing")))
