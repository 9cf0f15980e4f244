"""The built-in ASR and redaction end to end on espeak-ng speech: planted items are no longer heard,
non-personal words are. One Whisper model serves the whole session (loading it is the slow part)."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

import deid
from deid.asr import AsrDependencyError
from deid.redact import RedactOptions, Transcriber, plan_file, sidecar_for
from deid.redact import transcriber as transcribe_module
from tests.spoken_pii import espeak_available, leak_check, make_clips, render, speak

PHONE = "You can reach me on six four seven, two two one, oh four eight eight. Thanks, bye."


@pytest.fixture(scope="session")
def espeak():
    if not espeak_available():
        pytest.fail("espeak-ng is needed to make the spoken test set: apt-get install -y espeak-ng")


@pytest.fixture(scope="session")
def transcriber() -> Transcriber:
    return Transcriber(cpu_threads=1)


def test_without_the_extra_the_error_says_what_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "faster_whisper" else real(name, *a))
    with pytest.raises(AsrDependencyError, match=r"pip install 'deid-audio\[asr\]'"):
        Transcriber()


def test_a_model_directory_must_hold_a_whisper_model(tmp_path):
    with pytest.raises(AsrDependencyError, match="no model.bin"):
        Transcriber(tmp_path)


@pytest.mark.slow
def test_transcribe_gives_timed_words_inside_the_audio(espeak, transcriber, monkeypatch):
    y, sr = speak(PHONE)
    monkeypatch.setattr(transcribe_module, "shared_transcriber", lambda *a: transcriber)
    words = deid.transcribe(y, sr)
    assert len(words) >= 5
    duration = y.size / sr
    assert all(0 <= w.start <= w.end <= duration + 0.1 for w in words)
    assert all(a.start <= b.start for a, b in zip(words, words[1:]))
    spans = deid.find_pii(words, duration=duration)
    assert spans and spans[0].entity in ("phone", "number")
    # The span covers the number as heard, and is where the number was said: the audio after it
    # (thanks, bye) is outside.
    assert spans[0].end < duration - 0.3


@pytest.mark.slow
def test_long_audio_is_transcribed_in_windows_with_the_same_times(espeak, transcriber, monkeypatch):
    y, sr = speak(PHONE + " " + PHONE)
    whole = transcriber.words(y, sr)
    monkeypatch.setattr(transcribe_module, "WINDOW_SECONDS", 6.0)
    monkeypatch.setattr(transcribe_module, "SEARCH_SECONDS", 2.0)
    windowed = transcriber.words(y, sr)
    duration = y.size / sr
    assert windowed[-1].end > 6.0 and windowed[-1].end <= duration + 0.1  # more than one window, times offset
    assert all(a.start <= b.start for a, b in zip(windowed, windowed[1:]))

    def starts(ws, word):
        return [w.start for w in ws if w.text.strip(",.!?").lower() == word]

    # Whisper writes the digits differently with other context, but the sentence edges are heard
    # at the same times in both.
    for word in ("you", "bye"):
        assert len(starts(windowed, word)) == len(starts(whole, word)) == 2
        assert np.allclose(starts(windowed, word), starts(whole, word), atol=0.3)


@pytest.mark.slow
def test_streamed_blocks_at_another_rate_give_the_same_words(espeak, transcriber):
    y, sr = speak(PHONE)
    import soxr

    y44 = soxr.resample(y, sr, 44100).astype(np.float32)
    stereo = np.stack([y44, y44])
    blocks = [stereo[:, k : k + 10000] for k in range(0, stereo.shape[1], 10000)]
    streamed = list(transcriber.stream(iter(blocks), 44100))
    assert [w.text for w in streamed] == [w.text for w in transcriber.words(y44, 44100)]


@pytest.mark.slow
def test_planted_items_are_not_heard_after_redaction(espeak, transcriber):
    clips = [render(c) for c in make_clips(11, n_personal=4, n_plain=2)]

    def find(clip, words):
        return deid.find_pii(words, duration=clip.y.shape[-1] / clip.sr)

    result = leak_check(clips, transcriber.words, find)
    assert sum(result.heard.values()) >= 6, "the ASR must hear enough of the planted items for this to mean anything"
    assert sum(result.leaked.values()) == 0, result.leaks
    assert result.content_total >= 15
    assert result.content_kept / result.content_total >= 0.95


@pytest.mark.slow
def test_plan_from_asr_and_from_a_sidecar_agree(espeak, transcriber, tmp_path):
    y, sr = speak(PHONE)
    duration = y.size / sr
    plan = plan_file(RedactOptions(), duration=duration, audio=y, sr=sr, transcriber=transcriber)
    assert plan.spans
    sidecar = tmp_path / "call.json"
    sidecar.write_text(plan.transcript.redacted([]), encoding="utf-8")  # the ASR words as Whisper JSON
    audio = tmp_path / "call.wav"
    audio.touch()
    again = plan_file(RedactOptions(), duration=duration, transcript=sidecar_for(audio))
    assert again.spans == plan.spans
    assert "[PHONE]" in plan.redacted_transcript() and "647" not in plan.redacted_transcript()
    out = deid.redact(y, sr, plan.spans)
    assert out.shape == y.shape


@pytest.mark.slow
def test_asr_on_a_folder_redacts_what_it_hears(espeak, transcriber, tmp_path):
    """`anonymize --redact --asr` on a folder: each worker loads the model once, one thread; the
    phone number said after real corpus speech is not heard in the output."""
    import soundfile as sf
    import soxr
    from conftest import corpus_clips
    from typer.testing import CliRunner

    from deid.cli import app

    said, sr = speak(PHONE)
    corpus, csr = sf.read(corpus_clips(1)[0], dtype="float32")
    y = np.concatenate([corpus, np.zeros(csr // 2, np.float32), soxr.resample(said, sr, csr).astype(np.float32) * 0.5])
    for rel in ("a/one.flac", "two.flac"):
        (tmp_path / "in" / rel).parent.mkdir(parents=True, exist_ok=True)
        sf.write(tmp_path / "in" / rel, y, csr)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["anonymize", str(tmp_path / "in"), str(out), "--preset", "light", "--redact", "--asr",
                                      "--seed", "1", "--workers", "2", "--report", str(tmp_path / "r.jsonl")])
    assert result.exit_code == 0, result.output
    before = " ".join(w.text for w in transcriber.words(y, csr))
    assert "647" in before.replace(" ", "").replace("-", "")
    for rel in ("a/one.flac", "two.flac"):
        z, zsr = sf.read(out / rel, dtype="float32")
        assert z.shape == y.shape
        after = " ".join(w.text for w in transcriber.words(z, zsr))
        assert not any(d in after.replace(" ", "").replace("-", "") for d in ("647", "221", "0488")), after
    lines = (tmp_path / "r.jsonl").read_text().splitlines()
    assert {json.loads(line)["file"] for line in lines} == {"a/one.flac", "two.flac"}


def test_a_missing_sidecar_fails(tmp_path):
    audio = tmp_path / "calls" / "a.wav"
    audio.parent.mkdir()
    audio.touch()
    with pytest.raises(deid.DeidError, match=r"no transcript sidecar \(a\.\{json\|vtt\|tsv\|csv\}"):
        sidecar_for(audio)
    mirror = tmp_path / "transcripts" / "calls"
    mirror.mkdir(parents=True)
    (mirror / "a.vtt").write_text("WEBVTT\n", encoding="utf-8")
    assert sidecar_for(audio, in_root=tmp_path, transcripts=tmp_path / "transcripts") == mirror / "a.vtt"
    with pytest.raises(deid.DeidError, match="nothing to find personal data in"):
        plan_file(duration=1.0)


def test_speech_without_words_is_found_for_a_second_pass():
    from deid.redact import Word
    from deid.redact.transcriber import unheard_speech

    sr = 16000
    rng = np.random.default_rng(0)
    audio = np.zeros(10 * sr, np.float32)
    for a, b in ((0.5, 2.0), (3.0, 4.5), (6.0, 8.0)):  # three stretches of "speech"
        audio[int(a * sr) : int(b * sr)] = 0.3 * rng.standard_normal(int((b - a) * sr))
    heard = [Word("hello", 0.5, 1.0), Word("there", 1.0, 2.0), Word("stretched", 5.5, 8.2)]  # > 1.5 s: not trusted
    gaps = unheard_speech(audio, heard)
    assert len(gaps) == 2
    (a1, b1), (a2, b2) = sorted(gaps)
    assert a1 == pytest.approx(3.0 - 0.3, abs=0.05) and b1 == pytest.approx(4.5 + 0.3, abs=0.05)
    assert a2 == pytest.approx(6.0 - 0.3, abs=0.05) and b2 == pytest.approx(8.0 + 0.3, abs=0.05)
    assert unheard_speech(np.zeros(sr, np.float32), []) == []


def test_a_window_where_greedy_decoding_looped_is_decoded_again_with_a_beam(monkeypatch):
    from deid.redact import Word
    from deid.redact.transcriber import LOOP_BEAM, looped

    loop = "I live at Wednesday, noon," + " and noon," * 40
    assert looped(loop)
    assert not looped("Hi, this is Linda Garcia calling about my account. I was born on the 23rd of June, 1981.")
    assert not looped("five five five")  # too short to tell
    beams = []

    def decode(self, audio, *, beam_size):
        beams.append(beam_size)
        if beam_size == 1:
            return [("Hello there.", [Word("Hello", 0.0, 0.4)]), (loop, [Word("noon", 1.0, 1.2)] * 40)]
        return [("I live at 22 Elm Street.", [Word("I", 1.0, 1.1), Word("live", 1.1, 1.3)])]

    monkeypatch.setattr(Transcriber, "_decode", decode)
    ear = object.__new__(Transcriber)
    assert [w.text for w in ear._recognise(np.zeros(16000, np.float32))] == ["I", "live"]
    assert beams == [1, LOOP_BEAM]
    beams.clear()
    monkeypatch.setattr(Transcriber, "_decode", lambda self, audio, *, beam_size: beams.append(beam_size) or [("Hello there.", [])])
    ear._recognise(np.zeros(16000, np.float32))
    assert beams == [1]  # no loop: greedy only
