"""Redaction of files and folders: `deid redact`, `deid anonymize --redact`, presets with [redact],
sidecars, resume, reports and the write rule, on real corpus speech with timed transcripts made
for it (the words say what the tests need; where they fall is what is measured)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import corpus_clips
from typer.testing import CliRunner

import deid
from deid.api import anonymize_file
from deid.cli import app
from deid.engine import find_cuts
from deid.errors import DeidError, PresetError
from deid.pipeline import Pipeline
from deid.presets import load_preset
from deid.redact import RedactOptions, Tone, Word
from deid.redact.replace import FADE_SECONDS

SR = 16000
# Three personal items, said apart, with words that are not personal between them.
SAID = [(0.5, "hi this is Margaret Okafor calling"), (4.5, "my number is 647-221-0488 okay"),
        (10.0, "and I live at 87 Birchwood Lane thanks")]


def run(*args: object) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def timed(words: list[str], start: float, step: float = 0.4) -> list[Word]:
    return [Word(w, round(start + k * step, 3), round(start + k * step + 0.3, 3)) for k, w in enumerate(words)]


def write_csv(path: Path, words: list[Word]) -> Path:
    path.write_text("start,end,word\n" + "".join(f"{w.start},{w.end},{w.text}\n" for w in words), encoding="utf-8")
    return path


def read(path: Path) -> np.ndarray:
    return sf.read(path, dtype="float32", always_2d=True)[0].T


def spans_of(words: list[Word], **options: object) -> list:
    return deid.find_pii(words, RedactOptions(**options))


@pytest.fixture(scope="module")
def call(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Word]]:
    """Real speech (a corpus clip), float WAV, with a transcript that plants a name, a phone
    number and an address over it."""
    folder = tmp_path_factory.mktemp("call")
    y = np.concatenate([sf.read(c, dtype="float32")[0] for c in corpus_clips(4)])
    assert y.size > 15 * SR
    path = folder / "call.wav"
    sf.write(path, y, SR, subtype="FLOAT")
    return path, [w for start, text in SAID for w in timed(text.split(), start)]


def inside(span, sr: int = SR) -> slice:
    """The samples of a span beyond its fades."""
    fade = round(FADE_SECONDS * sr)
    return slice(int(np.floor(span.start * sr)) + fade, int(np.ceil(span.end * sr)) - fade)


def test_redact_passes_audio_through_except_in_the_spans(call, tmp_path):
    src, words = call
    transcript = write_csv(tmp_path / "call.csv", words)
    code, out = run("redact", src, tmp_path / "out.wav", "--transcript", transcript)
    assert code == 0, out
    x, y = read(src), read(tmp_path / "out.wav")
    assert y.shape == x.shape
    spans = spans_of(words)
    assert [s.entity for s in spans] == ["name", "phone", "address"]
    keep = np.ones(x.shape[1], bool)
    for s in spans:
        part = inside(s)
        # The tone alone, in absolute time: nothing of the original left.
        assert np.array_equal(y[0, part], Tone(SR)(part.start, part.stop))
        keep[int(np.floor(s.start * SR)) : int(np.ceil(s.end * SR))] = False
    assert np.array_equal(y[:, keep], x[:, keep])
    assert f"{len(spans)} spans redacted" in out


def test_a_finding_without_times_is_replaced_between_its_timed_neighbours(call, tmp_path):
    """WhisperX leaves numbers it cannot align untimed: such a finding is never left audible. It is
    replaced from the timed word before it to the one after it, or to the end of the file."""
    src, words = call
    n = read(src).shape[1]
    doc = [{"word": w.text} if w.text in ("647-221-0488", "87") else {"word": w.text, "start": w.start, "end": w.end}
           for w in words]
    last = {"word": "5550123"}  # the file's last word, untimed: bounded by the end of the file
    transcript = tmp_path / "call.json"
    transcript.write_text(json.dumps({"segments": [{"start": 0.0, "end": 14.0, "words": [*doc, last]}]}))
    out, report = tmp_path / "out.wav", tmp_path / "spans.jsonl"
    code, said = run("redact", src, out, "--transcript", transcript, "--report", report, "--padding", "0")
    assert code == 0, said
    x, y = read(src), read(out)
    assert y.shape == x.shape
    spans = [json.loads(line) for line in report.read_text().splitlines()]
    for i, w in enumerate(words):
        if w.text in ("647-221-0488", "87"):
            assert any(s["start"] <= words[i - 1].end and s["end"] >= words[i + 1].start for s in spans), w.text
    assert any(s["end"] == pytest.approx(n / SR, abs=1e-3) and s["start"] <= words[-1].end for s in spans)
    for s in spans:
        part = slice(round(s["start"] * SR) + round(FADE_SECONDS * SR), round(s["end"] * SR) - round(FADE_SECONDS * SR))
        assert part.stop - part.start > SR // 10
        assert np.array_equal(y[0, part], Tone(SR)(part.start, part.stop))


def test_anonymize_redact_replaces_spans_after_the_chain_in_blocks_across_a_cut(tmp_path, long_file):
    """A span over a block edge is replaced whole, after the voice chain, and the voice outside it
    is what anonymize makes without redaction."""
    src = tmp_path / "long.wav"
    sf.write(src, sf.read(long_file, dtype="float32")[0], SR, subtype="FLOAT")
    from deid.audio import open_input

    with open_input(src, hash=False) as source:
        cut = find_cuts(source, block=30 * SR)[1]
    # The phone number is said over the cut.
    words = timed("you can reach me on 647-221-0488 thanks".split(), cut / SR - 2.4)
    transcript = write_csv(tmp_path / "long.csv", words)
    plain = anonymize_file(src, tmp_path / "plain.wav", "standard", seed=5, block_seconds=30)
    result = anonymize_file(src, tmp_path / "red.wav", "standard", seed=5, block_seconds=30, redact=True,
                            transcript=transcript)
    whole = anonymize_file(src, tmp_path / "whole.wav", "standard", seed=5, block_seconds=None, redact=True,
                           transcript=transcript)
    (span,) = result.redaction.spans
    assert span.start * SR < cut < span.end * SR
    a, b, p, w = read(tmp_path / "red.wav"), read(tmp_path / "plain.wav"), plain, read(tmp_path / "whole.wav")
    assert a.shape == b.shape == w.shape == read(src).shape
    part = inside(span)
    assert np.array_equal(a[0, part], Tone(SR)(part.start, part.stop))
    assert np.array_equal(w[0, part], a[0, part])
    lo, hi = int(np.floor(span.start * SR)), int(np.ceil(span.end * SR))
    assert np.array_equal(a[:, :lo], b[:, :lo]) and np.array_equal(a[:, hi:], b[:, hi:])
    assert result.gain == p.gain


def test_words_come_from_the_original_before_the_chain(call, tmp_path, monkeypatch):
    """The recogniser hears the input, read once, whole; never the pseudo-voice or a block."""
    src, words = call
    heard: list[np.ndarray] = []

    class Ear(deid.redact.Transcriber):
        def __init__(self) -> None:
            self.name = "test"

        def stream(self, blocks, sr):
            heard.extend(blocks)
            return iter(words)

    result = anonymize_file(src, tmp_path / "o.wav", "fast", seed=1, redact=True, transcript=Ear())
    assert np.array_equal(np.concatenate(heard, axis=-1), read(src))
    assert len(result.redaction.spans) == len(spans_of(words))


def test_api_anonymize_with_redaction(call):
    src, words = call
    x = read(src)[0]
    y, result = deid.anonymize(x, SR, "fast", seed=2, redact={"entities": "phone"}, transcript=words, report=True)
    (span,) = result.redaction.spans
    assert span.entity == "phone" and y.shape == x.shape
    part = inside(span)
    assert np.array_equal(y[part], Tone(SR)(part.start, part.stop))
    # Without redaction the same draw, the same voice outside the span.
    plain = deid.anonymize(x, SR, "fast", seed=2)
    assert np.array_equal(np.delete(y, np.r_[part.start - 80 : part.stop + 80]), np.delete(plain, np.r_[part.start - 80 : part.stop + 80]))


def test_a_sentence_end_closes_what_follows_a_number_cue(call, tmp_path):
    """After "my number is", the number is redacted, heard over several words and a comma, up to
    the sentence end (a full stop, or a Whisper segment end with none written); the next sentence
    is kept. Measured in the report's time ranges."""
    src, _ = call
    said = [(0.5, "My number is five five five, one two three."), (5.0, "I live here now."),
            (8.0, "You can reach me on free time for time time time"), (13.0, "I moved here last week")]
    segments = [timed(text.split(), start) for start, text in said]
    transcript = tmp_path / "call.json"
    transcript.write_text(json.dumps({"segments": [
        {"start": seg[0].start, "end": seg[-1].end, "text": text,
         "words": [{"word": " " + w.text, "start": w.start, "end": w.end} for w in seg]}
        for seg, (_, text) in zip(segments, said)]}), encoding="utf-8")
    report = tmp_path / "spans.jsonl"
    # No padding: what the spans cover is what was found (a number still reaches into the gaps
    # around it, up to the neighbouring words).
    code, text = run("redact", src, tmp_path / "out.wav", "--transcript", transcript, "--report", report,
                     "--padding", "0")
    assert code == 0, text
    spans = [json.loads(line) for line in report.read_text().splitlines()]
    assert [s["entity"] for s in spans] == ["number", "phone"], spans
    number, phone = segments[0][3:], segments[2][5:]
    for w in number + phone:
        assert any(s["start"] <= w.start and w.end <= s["end"] for s in spans), (w, spans)
    for w in segments[1] + segments[3]:
        assert not any(s["start"] < w.end and w.start < s["end"] for s in spans), (w, spans)


def test_a_folder_with_sidecars_and_one_missing(call, tmp_path):
    src, words = call
    root = tmp_path / "in"
    for rel in ("a.wav", "sub/b.wav", "sub/c.wav"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        os.link(src, root / rel)
    write_csv(root / "a.csv", words)
    (root / "sub" / "b.json").write_text(json.dumps({"segments": [{"words": [
        {"word": " " + w.text, "start": w.start, "end": w.end} for w in words]}]}), encoding="utf-8")
    report = tmp_path / "report.jsonl"
    out = tmp_path / "out"
    code, text = run("redact", root, out, "--report", report, "--transcript-out", "--workers", "2")
    assert code == 2, text
    assert "failed: sub/c.wav: no transcript sidecar" in text and "skipped" not in text.split("failed")[-1]
    assert not (out / "sub" / "c.wav").exists()  # never passed through unredacted
    for rel in ("a.wav", "sub/b.wav"):
        y = read(out / rel)
        for s in spans_of(words):
            part = inside(s)
            assert np.array_equal(y[0, part], Tone(SR)(part.start, part.stop))
    assert (out / "a.csv").read_text().count("[PHONE]") == 1
    redacted = json.loads((out / "sub" / "b.json").read_text())
    text_out = " ".join(w["word"] for s in redacted["segments"] for w in s["words"])
    assert "[NAME]" in text_out and "647" not in text_out and "Okafor" not in text_out
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    assert {line["file"] for line in lines} == {"a.wav", "sub/b.wav"}
    assert set(lines[0]) == {"file", "start", "end", "entity", "detector", "entities", "detectors"}
    assert not any(w.lower() in report.read_text().lower() for w in ("okafor", "margaret", "birchwood", "647"))


def test_follow_links_redacts_a_queue_of_links_into_an_archive(call, tmp_path):
    """A review queue of links (to a recording and its transcript, and to a folder of both) outside
    INPUT: skipped without --follow-links, redacted with it, the sidecars read through the links."""
    src, words = call
    archive, queue = tmp_path / "archive", tmp_path / "queue"
    for rel in ("2024/a.wav", "2025/c.wav"):
        (archive / rel).parent.mkdir(parents=True, exist_ok=True)
        os.link(src, archive / rel)
        write_csv((archive / rel).with_suffix(".csv"), words)
    (queue / "today").mkdir(parents=True)
    (queue / "today" / "first.wav").symlink_to(archive / "2024" / "a.wav")
    (queue / "today" / "first.csv").symlink_to(archive / "2024" / "a.csv")
    (queue / "older").symlink_to(archive / "2025", target_is_directory=True)
    code, text = run("redact", queue, tmp_path / "plain")
    assert code == 1 and text.count("link leads outside the input folder") == 3, text
    assert not list((tmp_path / "plain").rglob("*.wav"))
    out, report = tmp_path / "out", tmp_path / "report.jsonl"
    code, text = run("redact", queue, out, "--follow-links", "--report", report)
    assert code == 0 and "skipped: " not in text, text
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.wav")) == ["older/c.wav", "today/first.wav"]
    for rel in ("today/first.wav", "older/c.wav"):
        y = read(out / rel)
        for s in spans_of(words):
            part = inside(s)
            assert np.array_equal(y[0, part], Tone(SR)(part.start, part.stop))
    assert {json.loads(line)["file"] for line in report.read_text().splitlines()} == {"today/first.wav", "older/c.wav"}


def test_mirrored_transcripts_folder_and_resume(call, tmp_path):
    src, words = call
    root, sidecars, out = tmp_path / "in", tmp_path / "tr", tmp_path / "out"
    (root / "x").mkdir(parents=True)
    (sidecars / "x").mkdir(parents=True)
    os.link(src, root / "x" / "a.wav")
    transcript = write_csv(sidecars / "x" / "a.tsv", words)
    transcript.write_text(transcript.read_text().replace(",", "\t"))
    args = ("anonymize", root, out, "--preset", "fast", "--seed", "1", "--transcripts", sidecars)

    def made(*more: object) -> int:
        code, text = run(*args, *more)
        assert code == 0, text
        return int(re.search(r"anonymized\s*│\s*(\d+)", text).group(1))

    assert made() == 1 and made() == 0
    # Other options, another transcript, or no redaction: made again.
    assert made("--entities", "phone") == 1 and made("--entities", "phone") == 0
    transcript.write_text(transcript.read_text().replace("Okafor", "Adeyemi"))
    assert made("--entities", "phone") == 1
    args = args[:-2]
    assert made() == 1


def test_a_file_without_its_transcript_fails_and_writes_nothing(call, tmp_path):
    src, _ = call
    code, text = run("redact", src, tmp_path / "o.wav")
    assert code == 1 and "no transcript sidecar" in text and "--asr" in text
    assert not (tmp_path / "o.wav").exists()


@pytest.mark.parametrize("content, says", [
    ("start,end,word\n0.5,0.8,hello\n0.4,0.6,again\n", "line 3: times go backwards"),
    ("start,end,word\n0.5,0.8,hello\n0.9,999,again\n", "line 3: word ends at 999.000 s, after the end of the audio"),
    ('{"segments": [{"words": [{"word": "hi", "start": 0.1, "end": "x"}', "not valid JSON"),
])
def test_a_broken_transcript_is_one_line_naming_the_file_and_line(call, tmp_path, content, says):
    src, _ = call
    bad = tmp_path / "bad.csv"
    bad.write_text(content)
    code, text = run("anonymize", src, tmp_path / "o.wav", "--transcript", bad, "--seed", "1")
    assert code == 1 and says in text and str(bad) in text and len(text.strip().splitlines()) == 1, text
    assert "hello" not in text and "again" not in text
    assert not (tmp_path / "o.wav").exists()


def test_report_and_transcript_out_obey_the_write_rule(call, tmp_path):
    src, words = call
    transcript = write_csv(tmp_path / "call.csv", words)
    out = tmp_path / "out"
    out.mkdir()
    readonly = tmp_path / "ro.jsonl"
    readonly.write_text("")
    readonly.chmod(0o444)
    (tmp_path / "link.jsonl").symlink_to(src)
    for report, says in ((src, "is the input"), (transcript, "is the transcript"), (tmp_path / "link.jsonl", "is the input"),
                         (readonly, "read-only"), (out, "is a folder")):
        code, text = run("redact", src, out / "o.wav", "--transcript", transcript, "--report", report)
        assert code == 1 and says in text, text
    # A redacted transcript beside the output that would be the transcript read.
    code, text = run("redact", src, tmp_path / "call.wav", "--transcript", transcript, "--transcript-out")
    assert code == 1 and "--transcript-out is the transcript" in text
    # In a folder run the report may not lie among the outputs reviewers see.
    root = tmp_path / "in"
    root.mkdir()
    os.link(src, root / "a.wav")
    write_csv(root / "a.csv", words)
    code, text = run("redact", root, out, "--report", out / "r.jsonl")
    assert code == 1 and "--report must be kept away from the outputs" in text
    code, text = run("redact", root, tmp_path / "o2", "--report", root / "r.jsonl")
    assert code == 1 and "inside the input folder" in text
    assert not list(out.iterdir())


def test_preset_redact_table_is_validated_round_trips_and_is_the_default(call, tmp_path):
    src, words = call
    preset = tmp_path / "mine.toml"
    terms = tmp_path / "terms.txt"
    terms.write_text("Bluebird\n")
    body = 'description = "x"\n[[step]]\ntype = "shift"\nsemitones = 3.0\n\n[redact]\nentities = ["phone", "name"]\npadding = 0.1\nterms_file = "terms.txt"\n'
    preset.write_text(body)
    pipe = load_preset(preset)
    assert pipe.redact == RedactOptions(entities={"phone", "name"}, padding=0.1, terms=("Bluebird",))
    again = tmp_path / "again.toml"
    again.write_text(pipe.to_toml())
    assert load_preset(again).redact == pipe.redact and load_preset(again).to_toml() == pipe.to_toml()
    for table, says in (("padding = 9.0", "padding must be within"), ("entities = ['phone', 'ssn']", "unknown entity type 'ssn'"),
                        ("colour = 1", "unknown redaction option 'colour'"), ("terms_file = 'nope.txt'", "cannot read the term list"),
                        ("signal = 'beep'", "signal must be one of")):
        bad = tmp_path / "bad.toml"
        bad.write_text(f'description = "x"\n[[step]]\ntype = "shift"\nsemitones = 3.0\n\n[redact]\n{table}\n')
        with pytest.raises(PresetError, match=says) as err:
            load_preset(bad)
        assert str(bad) in str(err.value) and "\n" not in str(err.value)
    # The preset redacts by default: without a transcript the file fails; --no-redact turns it off.
    code, text = run("anonymize", src, tmp_path / "o.wav", "--preset", preset, "--seed", "1")
    assert code == 1 and "no transcript sidecar" in text
    transcript = write_csv(tmp_path / "call.csv", words)
    code, text = run("anonymize", src, tmp_path / "o.wav", "--preset", preset, "--seed", "1", "--transcript", transcript)
    assert code == 0 and "2 spans redacted" in text, text  # the preset's entities: no address
    code, text = run("anonymize", src, tmp_path / "p.wav", "--preset", preset, "--seed", "1", "--no-redact")
    assert code == 0 and "redacted" not in text
    code, text = run("anonymize", src, tmp_path / "q.wav", "--no-redact", "--asr")
    assert code == 1 and "--no-redact contradicts --asr" in text


def test_asr_without_the_extra_says_what_to_install(call, tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "faster_whisper" else real(name, *a))
    src, _ = call
    for args in (("redact", src, tmp_path / "o.wav", "--asr"), ("anonymize", src.parent, tmp_path / "out", "--asr", "--seed", "1")):
        code, text = run(*args)
        assert code == 1 and "pip install 'deid-audio[asr]'" in text, text
    assert not (tmp_path / "o.wav").exists() and not (tmp_path / "out").exists()


def test_asr_model_alone_asks_for_asr_and_never_with_a_transcript(call, tmp_path):
    src, words = call
    code, text = run("redact", src, tmp_path / "o.wav", "--asr-model", tmp_path)
    assert code == 1 and "not a CTranslate2 Whisper model directory" in text, text  # not "no sidecar"
    code, text = run("redact", src, tmp_path / "o.wav", "--asr-model", tmp_path, "--transcript", write_csv(tmp_path / "t.csv", words))
    assert code == 1 and "not both" in text, text
    assert not (tmp_path / "o.wav").exists()


def test_options_are_checked_before_any_work(call, tmp_path):
    src, _ = call
    for args, says in ((("--entities", "phone,ssn"), "unknown entity type 'ssn'"), (("--padding", "-1"), "padding must be within"),
                       (("--region", "USA"), "two-letter country code"), (("--terms", tmp_path / "none.txt"), "cannot read the term list"),
                       (("--asr", "--transcript", src), "not both"), (("--transcripts", tmp_path), "--transcripts is for a folder")):
        code, text = run("redact", src, tmp_path / "o.wav", *args)
        assert code == 1 and says in text and len(text.strip().splitlines()) == 1, text
    with pytest.raises(DeidError, match="must be True, False"):
        deid.anonymize(read(src)[0], SR, redact="yes", transcript=[])
    assert not (tmp_path / "o.wav").exists()


def test_redact_keeps_rate_channels_and_length_of_every_format(tmp_path, call):
    src, words = call
    x = read(src)
    stereo = np.stack([x[0], x[0][::-1]])
    for name, subtype, sr in (("s.flac", "PCM_24", 48000), ("s.wav", "PCM_16", 8000), ("s.ogg", "VORBIS", 44100)):
        import soxr

        y = soxr.resample(stereo.T, SR, sr).astype(np.float32)
        path = tmp_path / name
        sf.write(path, y, sr, subtype=subtype)
        transcript = write_csv(tmp_path / "w.csv", words)
        result = anonymize_file(path, tmp_path / f"out-{name}", Pipeline([]), seed=1, redact=True, transcript=transcript)
        info, before = sf.info(tmp_path / f"out-{name}"), sf.info(path)
        assert (info.samplerate, info.channels, info.frames, info.subtype) == (before.samplerate, 2, before.frames, before.subtype)
        out = read(tmp_path / f"out-{name}")
        for s in result.redaction.spans:
            part = inside(s, sr)
            tone = Tone(sr)(part.start, part.stop)
            tol = 1e-3 if subtype == "PCM_24" else 1e-4 * 2**8 if subtype == "PCM_16" else 0.05
            assert np.max(np.abs(out[:, part] - tone)) < tol
