"""Spans in time (placing, padding, merging), replacing samples (no original energy inside a span,
duration kept, block edges), and the report (no transcript text)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import deid
from deid.redact import PlacementError, Span, Word, append_report, place, report_lines, span_edits
from deid.redact.detectors.base import Finding
from deid.redact.replace import FADE_SECONDS, TONE_HZ

RATES = (8000, 16000, 44100, 48000)


def speech_like(sr: int, seconds: float = 3.0, channels: int = 0, seed: int = 0) -> np.ndarray:
    """Loud broadband noise in syllable-like bursts: anything left of it inside a span shows."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * np.arange(n) / sr)
    shape = (channels, n) if channels else (n,)
    return (0.5 * envelope * rng.standard_normal(shape)).astype(np.float32)


def test_spans_are_padded_clipped_and_merged():
    ws = [Word(w, i * 0.5, i * 0.5 + 0.5) for i, w in enumerate("a b c d e f g h i j".split())]  # no gaps: padding alone
    findings = [Finding(0, 0, "name", "a"), Finding(4, 4, "number", "b"), Finding(5, 5, "phone", "c"), Finding(9, 9, "date", "d")]
    spans = place(findings, ws, padding=0.25, merge_gap=0.3, duration=5.1)
    # word 0 at 0-0.5 -> 0 (clipped) .. 0.75; words 4 and 5 touch: merged; word 9 clipped at the end.
    assert [(s.start, s.end) for s in spans] == [(0.0, 0.75), (1.75, 3.25), (4.25, 5.1)]
    assert spans[1].entity == "phone" and spans[1].entities == ("phone", "number")
    # 0.3 s apart after padding is not "closer than 0.3 s": two spans; 0.29 s is one.
    two = [Word("a", 0, 1), Word("x", 1, 1.8), Word("b", 1.8, 2)]
    assert len(place([Finding(0, 0, "name", "a"), Finding(2, 2, "name", "a")], two, padding=0.25)) == 2
    one = [Word("a", 0, 1), Word("x", 1, 1.79), Word("b", 1.79, 2)]
    assert len(place([Finding(0, 0, "name", "a"), Finding(2, 2, "name", "a")], one, padding=0.25)) == 1


def test_a_finding_reaches_into_the_unheard_audio_around_it():
    # Whisper timed a card number read over six seconds as half a second, and heard nothing after.
    ws = [Word("card", 0.0, 0.4), Word("is", 0.5, 0.7), Word("4946.", 1.0, 1.2), Word("92813726", 1.3, 1.5), Word("thanks", 9.0, 9.4)]
    (span,) = place([Finding(2, 3, "number", "digits")], ws, padding=0.0)
    # Forward 0.45 s a digit from its start; backward as far, but not before the word before it began.
    assert span.start == pytest.approx(0.5) and span.end == pytest.approx(1.0 + 12 * 0.45)
    # A name reaches up to a second into a pause, never over the next word.
    ws = [Word("Okafor", 0.0, 0.5), Word("and", 0.8, 1.0), Word("Smith", 3.0, 3.4)]
    spans = place([Finding(0, 0, "name", "n"), Finding(2, 2, "name", "n")], ws, padding=0.0, merge_gap=0.0, duration=10)
    assert [(s.start, s.end) for s in spans] == [(0.0, 0.8), (2.0, 4.4)]


def test_pauses_inside_a_run_of_digits_are_one_span():
    from deid.redact import find_pii

    # "oh one" alone is too short to be a number; after a pause of 1.5 s it is still part of one.
    said = "my number is five five five . . . oh one thanks".split()
    times = [0, 0.3, 0.6, 1.0, 1.3, 1.6, 2.2, 2.4, 2.6, 3.4, 3.7, 5.0]
    ws = [Word(w, t, t + 0.25) for w, t in zip(said, times)]
    spans = find_pii(ws, padding=0.0, merge_gap=0.0)
    assert len(spans) == 1 and spans[0].start == pytest.approx(0.6) and spans[0].end == pytest.approx(4.95)


def test_a_finding_that_cannot_be_placed_fails():
    ws = [Word("call", 0.0, 0.3), Word("5550123", None, None)]
    with pytest.raises(PlacementError, match="no time"):
        place([Finding(1, 1, "number", "digits")], ws)
    # With the file's end known, it is bounded by it.
    assert place([Finding(1, 1, "number", "digits")], ws, padding=0, duration=2.0)[0].end == 2.0


@pytest.mark.parametrize("sr", RATES)
@pytest.mark.parametrize("signal", ["tone", "silence", "noise"])
def test_no_original_energy_inside_a_span_and_duration_kept(sr: int, signal: str):
    y = speech_like(sr)
    spans = [Span(0.5, 1.2, ("name",), ("x",)), Span(2.0, 2.6, ("phone",), ("x",))]
    out = deid.redact(y, sr, spans, signal=signal)
    assert out.shape == y.shape and out.dtype == y.dtype
    # Replacing the original with anything else gives the same samples inside the spans beyond
    # the fades: what is there depends on no original sample. Measure how much of the original
    # is left: the part of the output that changes with it.
    other = deid.redact(speech_like(sr, seed=99), sr, spans, signal=signal)
    fade = int(np.ceil(FADE_SECONDS * sr))
    for s in spans:
        a, b = int(np.floor(s.start * sr)), int(np.ceil(s.end * sr))
        inner = slice(a + fade, b - fade)
        assert np.array_equal(out[inner], other[inner])
        residual = out[inner] - other[inner]
        assert float(np.sum(residual.astype(np.float64) ** 2)) == 0.0
        # Within the fades the original only fades out.
        ramp = np.abs(out[a : a + fade] - other[a : a + fade])
        assert np.all(ramp <= np.abs(y[a : a + fade] - speech_like(sr, seed=99)[a : a + fade]) + 1e-6)
    # Outside the spans nothing changed.
    mask = np.ones(y.shape[-1], bool)
    for s in spans:
        mask[int(np.floor(s.start * sr)) : int(np.ceil(s.end * sr))] = False
    assert np.array_equal(out[mask], y[mask])


@pytest.mark.parametrize("sr", (16000, 44100))
def test_the_tone_is_1_khz_at_a_moderate_level(sr: int):
    y = np.zeros(sr * 2, np.float32)
    out = deid.redact(y, sr, [(0.5, 1.5)])
    inner = out[int(0.6 * sr) : int(1.4 * sr)]
    spectrum = np.abs(np.fft.rfft(inner * np.hanning(inner.size)))
    peak_hz = np.argmax(spectrum) * sr / inner.size
    assert abs(peak_hz - TONE_HZ) < 3
    assert 20 * np.log10(np.abs(inner).max()) == pytest.approx(-20.0, abs=0.1)
    noise = deid.redact(y, sr, [(0.5, 1.5)], signal="noise")[int(0.6 * sr) : int(1.4 * sr)]
    assert np.sqrt(np.mean(noise**2)) == pytest.approx(np.sqrt(np.mean(inner**2)), rel=0.1)


@pytest.mark.parametrize("signal", ["tone", "noise"])
def test_blocks_across_a_span_edge_give_the_whole_file_result(signal: str):
    sr = 16000
    y = speech_like(sr, seconds=6.0, channels=2)
    spans = [(0.9, 2.3), (3.99, 4.01), (5.5, 6.0)]
    whole = deid.redact(y, sr, spans, signal=signal, seed=7)
    edits = span_edits(spans, sr, signal=signal, seed=7)
    rng = np.random.default_rng(1)
    cuts = np.unique(np.concatenate([[0, y.shape[-1]], [int(1.5 * sr), int(4.0 * sr), int(4.005 * sr)], rng.integers(1, y.shape[-1], 5)]))
    blocks = [y[:, a:b].copy() for a, b in zip(cuts[:-1], cuts[1:])]
    for a, block in zip(cuts[:-1], blocks):
        for edit in edits:
            edit.apply(block, int(a))
    assert np.array_equal(np.concatenate(blocks, axis=1), whole)
    # Both channels are replaced the same way.
    a, b = int(1.0 * sr), int(2.2 * sr)
    assert np.array_equal(whole[0, a:b], whole[1, a:b])


def test_noise_is_seeded_and_never_from_global_state():
    sr = 16000
    y = np.zeros(sr, np.float32)
    np.random.seed(0)
    a = deid.redact(y, sr, [(0.1, 0.9)], signal="noise", seed=3)
    np.random.seed(1)
    b = deid.redact(y, sr, [(0.1, 0.9)], signal="noise", seed=3)
    c = deid.redact(y, sr, [(0.1, 0.9)], signal="noise", seed=4)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_input_is_not_modified():
    y = speech_like(16000)
    before = y.copy()
    deid.redact(y, 16000, [(0.5, 1.0)])
    assert np.array_equal(y, before)


def test_report_has_times_types_and_detectors_and_no_text(tmp_path):
    from deid.redact import find_pii

    said = "hi this is Margaret Okafor my number is 647-221-0488".split()
    ws = [Word(w, i * 0.5, i * 0.5 + 0.4) for i, w in enumerate(said)]
    spans = find_pii(ws, duration=10)
    report = tmp_path / "report.jsonl"
    append_report(report, spans, "calls/a.wav")
    append_report(report, spans, "calls/b.wav")
    text = report.read_text(encoding="utf-8")
    lines = [json.loads(line) for line in text.splitlines()]
    assert len(lines) == 2 * len(spans) == 4
    assert set(lines[0]) == {"file", "start", "end", "entity", "detector", "entities", "detectors"}
    assert {line["entity"] for line in lines} == {"name", "phone"}
    for word in said[3:5] + ["647", "221", "0488", "Margaret"]:
        assert word.lower() not in text.lower()
    assert report_lines(spans, "x")[0] == json.dumps(json.loads(report_lines(spans, "x")[0]))
