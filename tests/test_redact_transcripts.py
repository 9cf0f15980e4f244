"""Timed transcripts: every reader, the redacted writers (placeholders, nothing personal left), and
broken files failing with the file and the line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deid.redact import Transcript, TranscriptError, detect, read_transcript, write_transcript
from deid.redact.find import replacements

SAID = "Hi this is Margaret Okafor my number is 647-221-0488 thanks".split()
PERSONAL = ("Margaret", "Okafor", "647", "221", "0488")


def _times(i: int) -> tuple[float, float]:
    return round(0.5 * i, 3), round(0.5 * i + 0.4, 3)


def whisper_doc(words=SAID) -> dict:
    ws = [{"word": " " + w, "start": _times(i)[0], "end": _times(i)[1], "probability": 0.9} for i, w in enumerate(words)]
    return {
        "text": " ".join(words),
        "segments": [{"id": 0, "start": 0.0, "end": ws[-1]["end"], "text": " ".join(words), "tokens": [1, 2, 3], "words": ws}],
        "language": "en",
    }


def whisperx_doc(words=SAID) -> dict:
    ws = [{"word": w, "start": _times(i)[0], "end": _times(i)[1], "score": 0.8, "speaker": "SPEAKER_00"} for i, w in enumerate(words)]
    return {"segments": [{"start": 0.0, "end": ws[-1]["end"], "text": " ".join(words), "words": ws}], "word_segments": ws}


def aws_doc(words=SAID) -> dict:
    items = []
    for i, w in enumerate(words):
        start, end = _times(i)
        items.append({"start_time": f"{start:.3f}", "end_time": f"{end:.3f}", "type": "pronunciation",
                      "alternatives": [{"confidence": "0.99", "content": w}]})
        if w == "Okafor":
            items.append({"type": "punctuation", "alternatives": [{"confidence": "0.0", "content": ","}]})
    return {"jobName": "call-with-Margaret-Okafor", "accountId": "1234", "status": "COMPLETED",
            "results": {"transcripts": [{"transcript": " ".join(words)}], "items": items}}


def vtt_inline(words=SAID) -> str:
    head = "WEBVTT\n\nNOTE made by a recogniser\n\n"
    body = f"00:00:00.000 --> 00:00:{len(words) * 0.5:06.3f}\n" + words[0]
    for i, w in enumerate(words[1:], 1):
        body += f" <00:00:{_times(i)[0]:06.3f}>{w}"
    return head + body + "\n"


def vtt_per_word(words=SAID) -> str:
    cues = [f"{i + 1}\n00:00:{_times(i)[0]:06.3f} --> 00:00:{_times(i)[1]:06.3f}\n{w}\n" for i, w in enumerate(words)]
    return "WEBVTT\n\n" + "\n".join(cues)


def table(words=SAID, sep=",", header=True) -> str:
    rows = [f"{_times(i)[0]}{sep}{_times(i)[1]}{sep}{w}" for i, w in enumerate(words)]
    return ("start" + sep + "end" + sep + "word\n" if header else "") + "\n".join(rows) + "\n"


FORMATS = {
    "whisper.json": ("whisper-json", lambda: json.dumps(whisper_doc(), indent=1)),
    "whisperx.json": ("whisper-json", lambda: json.dumps(whisperx_doc(), indent=1)),
    "aws.json": ("aws-json", lambda: json.dumps(aws_doc(), indent=1)),
    "inline.vtt": ("webvtt", vtt_inline),
    "cues.vtt": ("webvtt", vtt_per_word),
    "words.csv": ("csv", table),
    "words.tsv": ("csv", lambda: table(sep="\t")),
    "noheader.csv": ("csv", lambda: table(header=False)),
}


@pytest.mark.parametrize("name", FORMATS)
def test_reader_gives_every_word_with_its_times(tmp_path: Path, name: str):
    fmt, make = FORMATS[name]
    path = tmp_path / name
    path.write_text(make(), encoding="utf-8")
    t = read_transcript(path, duration=10.0)
    assert t.format == fmt
    assert [w.text.strip() for w in t.words] == SAID
    for i, w in enumerate(t.words):
        start, end = _times(i)
        assert w.start == pytest.approx(start, abs=1e-6)
        if name != "inline.vtt":  # inline tags give starts; a word ends where the next starts
            assert w.end == pytest.approx(end, abs=1e-6)
        assert w.line >= 1


@pytest.mark.parametrize("name", FORMATS)
def test_redacted_transcript_keeps_the_format_and_drops_what_was_said(tmp_path: Path, name: str):
    fmt, make = FORMATS[name]
    path = tmp_path / name
    path.write_text(make(), encoding="utf-8")
    t = read_transcript(path, duration=10.0)
    out = write_transcript(t, replacements(detect(t.words)), tmp_path / f"out-{name}")
    text = out.read_text(encoding="utf-8")
    for secret in PERSONAL:
        assert secret not in text
    assert "[NAME]" in text and "[PHONE]" in text
    again = read_transcript(out, duration=10.0)  # the output is a transcript of the same format
    assert again.format == fmt
    said = [w.text.strip(" ,") for w in again.words]
    assert said == ["Hi", "this", "is", "[NAME]", "my", "number", "is", "[PHONE]", "thanks"]
    phone = again.words[said.index("[PHONE]")]
    assert phone.start == pytest.approx(_times(8)[0]) and phone.end >= _times(8)[1] - 0.11
    if fmt.endswith("json"):
        doc = json.loads(text)
        assert "tokens" not in json.dumps(doc) and "jobName" not in doc


def test_whisper_segment_ends_are_read_and_the_asr_words_keep_them(tmp_path: Path):
    """The last word of each Whisper segment is a sentence end for the detectors; ASR words written
    as Whisper JSON keep their segments, so a sidecar made of them is read back the same."""
    from deid.redact.plan import asr_transcript

    doc = whisper_doc()
    ws = doc["segments"][0]["words"]
    doc["segments"] = [{"start": 0.0, "end": ws[4]["end"], "words": ws[:5]}, {"start": ws[5]["start"], "words": ws[5:]}]
    path = tmp_path / "t.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    words = read_transcript(path, duration=10.0).words
    assert [i for i, w in enumerate(words) if w.ends_segment] == [4, len(SAID) - 1]
    again = tmp_path / "again.json"
    again.write_text(asr_transcript(words).redacted([]), encoding="utf-8")
    def said(ws):
        return [(w.text.strip(), w.start, w.end, w.ends_segment) for w in ws]

    assert said(read_transcript(again, duration=10.0).words) == said(words)


def test_writer_never_overwrites_its_input(tmp_path: Path):
    path = tmp_path / "t.csv"
    path.write_text(table(), encoding="utf-8")
    t = read_transcript(path)
    before = path.read_bytes()
    with pytest.raises(TranscriptError, match="overwrite its input"):
        write_transcript(t, [], path)
    assert path.read_bytes() == before


def test_untimed_whisperx_words_are_read_and_bounded_by_neighbours(tmp_path: Path):
    doc = whisperx_doc()
    for w in doc["segments"][0]["words"]:
        if w["word"] == "647-221-0488":  # WhisperX cannot align digits: no times
            del w["start"], w["end"]
    path = tmp_path / "x.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    t = read_transcript(path)
    from deid.redact import find_pii

    spans = find_pii(t.words, padding=0.0)
    phone = [s for s in spans if s.entity == "phone"][0]
    # Bounded by the timed words around it (a number may also reach over the word before it).
    assert phone.start == pytest.approx(_times(7)[0]) and phone.end == pytest.approx(_times(9)[0])


def _line(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


BROKEN = {
    "bad.json": ('{"segments": [\n {"words": [\n  {"word": "hi", "start": 0.0, "end": 0.3}\n  {"word": "x"}]}]}', "line 4: not valid JSON"),
    "nowords.json": ('{"segments": [\n {"start": 0, "end": 1,\n  "text": "hello"}]}', "line 2: segment has no word times"),
    "strtime.json": ('{"segments": [{"words": [\n {"word": "hi", "start": "soon", "end": 0.3}]}]}', "line 2: start is not a number"),
    "other.json": ('{"hello": 1}', "neither Whisper"),
    "aws.json": ('{"results": {"items": [\n {"type": "pronunciation", "alternatives": [{"content": "hi"}]}]}}', "line 2: pronunciation item has no start_time"),
    "bad.vtt": ("WEBVTT\n\n00:00:01.000 --> soon\nhello\n", "line 3: cue timing"),
    "nohead.vtt": ("00:00:01.000 --> 00:00:02.000\nhello\n", "line 1: not WebVTT"),
    "bad.csv": ("start,end,word\n0.0,0.4,hi\n0.5,later,there\n", "line 3: start or end is not a time"),
    "short.csv": ("start,end,word\n0.0,0.4,hi\n0.5,0.9\n", "line 3: expected start,end,word"),
    "header.csv": ("begin,finish,token\n0.0,0.4,hi\n", "line 1: header must name"),
    "backwards.csv": ("0.0,0.4,hi\n1.0,1.4,there\n0.5,0.9,again\n", "line 3: times go backwards"),
    "inverted.csv": ("0.0,0.4,hi\n1.0,0.6,there\n", "line 2: word ends .* before it starts"),
    "pastend.tsv": ("0.0\t0.4\thi\n9.0\t12.5\tthere\n", "line 2: word ends at 12.500 s, after the end of the audio"),
    "empty.json": ("", "empty transcript"),
    "binary.csv": (b"\xff\xfe\x00garbage", "not UTF-8"),
    "deep.json": ("[" * 100000 + "]" * 100000, "nested too deeply|not valid JSON"),
}


@pytest.mark.parametrize("name", BROKEN)
def test_broken_transcripts_fail_with_the_file_and_the_line(tmp_path: Path, name: str):
    content, message = BROKEN[name]
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(TranscriptError, match=message) as e:
        read_transcript(path, duration=10.0)
    assert str(e.value).startswith(str(path)) and "\n" not in str(e.value)
    # The error points at the line, never quotes a word of it.
    for word in ("there", "again", "hello"):
        assert word not in e.value.reason


def test_missing_transcript_is_one_line(tmp_path: Path):
    with pytest.raises(TranscriptError, match="cannot read transcript"):
        read_transcript(tmp_path / "none.json")


def test_transcript_object_is_the_documented_type(tmp_path: Path):
    path = tmp_path / "w.json"
    path.write_text(json.dumps(whisper_doc()), encoding="utf-8")
    assert isinstance(read_transcript(path), Transcript)
