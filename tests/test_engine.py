"""The engine: long files in blocks as whole, statistics passes, absolute time, span edits, buffers.

Measured on 3 minutes of corpus speech cut into 30-s blocks:

- pointwise chains (noise, loudness, gains, statistics) give the samples whole-file processing
  gives, up to the rounding of the statistics' sums (1 float32 ulp where any differs); chains of
  local steps differ only by float rounding at the crossfades (below 1e-5);
- with PSOLA (``standard``) the output is not sample-identical even whole-file: PSOLA lays
  grains from the start of the signal, so any change of start point shifts their phase. The
  block output's log-mel spectrogram differs from the whole-file one by at most 2.5 dB on average
  over speech frames and by at most 1.5 times what a 3-sample shift of the input already causes
  in whole-file processing (1.14 times when measured); its level is within 0.1 dB and its noise
  floor within 0.5 dB;
- at every cut there is no click (no sample step more than 1.5 times the largest that whole-file
  processing has within 25 ms of the same place) and no level jump (the RMS over 1 s around
  the cut within 4 dB of the whole-file output's).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from conftest import ffmpeg_loudness

from deid import engine
from deid.api import anonymize_file
from deid.audio import open_input
from deid.engine import SpanEdit, find_cuts
from deid.pipeline import Pipeline
from deid.presets import load_preset
from deid.transforms import Bandlimit, Loudness, Noise, Pitch
from deid.transforms.base import Block, Limit, Param, Transform

SR = 16000
BLOCK = 30.0


@pytest.fixture(scope="module")
def long_float(long_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The long file as float WAV, so that outputs are compared without quantisation."""
    path = tmp_path_factory.mktemp("float") / "long.wav"
    sf.write(path, sf.read(long_file, dtype="float32")[0], SR, subtype="FLOAT")
    return path


def both(src: Path, tmp: Path, preset: str | Pipeline, suffix: str = ".flac", **kwargs: Any) -> tuple[np.ndarray, np.ndarray, Any, Any]:
    whole = anonymize_file(src, tmp / f"whole{suffix}", preset, seed=3, block_seconds=None, **kwargs)
    blocks = anonymize_file(src, tmp / f"blocks{suffix}", preset, seed=3, block_seconds=BLOCK, **kwargs)
    read = lambda p: sf.read(p, always_2d=True, dtype="float32")[0].T  # noqa: E731
    return read(tmp / f"whole{suffix}"), read(tmp / f"blocks{suffix}"), whole, blocks


def cut_positions(src: Path, block: float = BLOCK) -> list[int]:
    with open_input(src, hash=False) as source:
        return find_cuts(source, block=int(block * SR))[1:-1]


def logmel(y: np.ndarray) -> np.ndarray:
    import librosa

    return 10 * np.log10(librosa.feature.melspectrogram(y=y, sr=SR, n_fft=512, hop_length=160, n_mels=40) + 1e-10)


@dataclass(frozen=True, repr=False)
class Wobble(Transform):
    """A test step the engine has never heard of: a gain that moves with absolute time."""

    depth: Param = 0.5
    name = "wobble"
    LIMITS = {"depth": Limit(0.0, 1.0)}

    def process(self, block: Block, stats: Any, *, depth: float) -> np.ndarray:
        t = (block.start + np.arange(len(block.samples))) / block.sr
        return (block.samples * (1.0 + depth * np.sin(2 * np.pi * t / 7.0))).astype(np.float32)


@dataclass(frozen=True, repr=False)
class CentreClip(Transform):
    """A test step with statistics of its whole input: it clips at a fraction of the input's RMS."""

    fraction: Param = 0.5
    name = "centre-clip"
    LIMITS = {"fraction": Limit(0.0, 10.0)}
    measures = True

    def measure(self, block: Block, stats: Any, *, fraction: float) -> tuple[float, int]:
        own = block.samples[block.owned].astype(np.float64)
        total = (float(own @ own), len(own))
        return total if stats is None else (stats[0] + total[0], stats[1] + total[1])

    def process(self, block: Block, stats: tuple[float, int], *, fraction: float) -> np.ndarray:
        limit = fraction * np.sqrt(stats[0] / stats[1])
        return np.clip(block.samples, -limit, limit)


def test_pointwise_chains_are_identical_whole_and_in_blocks(long_float: Path, long_file: Path, tmp_path: Path) -> None:
    """Noise seeded by position, one streamed loudness meter, steps the engine does not know."""
    chain = Pipeline([Wobble(), CentreClip(fraction=2.0), Noise(snr_db=20.0), Loudness(target_lufs=-26.0)])
    whole, blocks, _, _ = both(long_float, tmp_path, chain, suffix=".wav")
    # Statistics summed block by block round differently from one sum: 1 ulp here and there.
    assert np.max(np.abs(whole - blocks) / np.maximum(np.abs(whole), 1e-6)) < 3e-7
    noise_whole, noise_blocks, _, _ = both(long_float, tmp_path, Pipeline(chain[2:]), suffix=".wav")
    assert np.array_equal(noise_whole, noise_blocks)
    assert abs(ffmpeg_loudness(blocks[0], SR, tmp_path) + 26.0) <= 0.15
    x = sf.read(long_file, dtype="float32")[0]
    # The clip limit is 2 x the RMS of the whole input (after the wobble), the same in every block.
    wobbled = Wobble().apply(x, SR, depth=0.5)
    assert np.mean(np.abs(wobbled) > 2 * np.sqrt(np.mean(wobbled.astype(np.float64) ** 2))) > 0.005


def test_local_chains_match_whole_file_within_rounding(long_float: Path, tmp_path: Path) -> None:
    chain = Pipeline([Bandlimit(low_hz=200.0, high_hz=3600.0), Loudness(target_lufs=-26.0)])
    whole, blocks, _, _ = both(long_float, tmp_path, chain, suffix=".wav")
    assert whole.shape == blocks.shape
    assert np.max(np.abs(whole - blocks)) < 1e-5


def test_a_voice_moving_in_absolute_time_moves_alike_in_blocks(long_float: Path, tmp_path: Path) -> None:
    """`drift` is tied to the absolute sample index the engine hands each block."""
    from deid.transforms import Drift

    whole, blocks, _, _ = both(long_float, tmp_path, Pipeline([Drift(tilt_norm=0.5)]), suffix=".wav")
    assert whole.shape == blocks.shape
    # Cuts fall in the quietest 20 ms and are crossfaded; the rest is the same computation.
    error = np.sqrt(np.mean((whole - blocks) ** 2)) / np.sqrt(np.mean(whole**2))
    assert error < 0.01, error


@pytest.mark.slow
def test_standard_in_blocks_keeps_drawn_values_level_and_spectrum(long_file: Path, tmp_path: Path) -> None:
    whole, blocks, whole_result, block_result = both(long_file, tmp_path, "standard")
    assert [a.as_dict() for a in block_result.applied] == [a.as_dict() for a in whole_result.applied]
    assert whole.shape == blocks.shape
    assert abs(10 * np.log10(np.mean(blocks**2) / np.mean(whole**2))) < 0.1

    x = sf.read(long_file, dtype="float32")[0]
    pipeline = load_preset("standard")
    reference = pipeline.run(x, SR, seed=3, scope="s").audio
    shifted = pipeline.run(np.concatenate([np.zeros(3, np.float32), x]), SR, seed=3, scope="s").audio[3:]
    lw, lb = logmel(whole[0]), logmel(blocks[0])
    speech = lw.max(axis=0) > lw.max() - 50
    block_error = np.mean(np.abs(lw - lb)[:, speech])
    shift_error = np.mean(np.abs(logmel(reference) - logmel(shifted))[:, speech])
    assert block_error < 2.5 and block_error < 1.5 * shift_error, (block_error, shift_error)

    # The noise floor: the quietest 5% of 50-ms frames, where only the added noise is heard.
    def floor(y: np.ndarray) -> float:
        frames = np.sqrt(np.mean(y[: len(y) // 800 * 800].reshape(-1, 800) ** 2, axis=1))
        return 20 * np.log10(np.percentile(frames, 5))

    assert abs(floor(blocks[0]) - floor(whole[0])) < 0.5


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["standard", "fast", Pipeline([Bandlimit(low_hz=200.0, high_hz=3600.0), Noise(snr_db=20.0)])],
                         ids=["standard", "fast", "bandlimit+noise"])
def test_cuts_are_seamless(long_file: Path, tmp_path: Path, preset: str | Pipeline) -> None:
    """Around each cut the block output steps and sounds as the whole-file output does there."""
    whole, blocks, _, _ = both(long_file, tmp_path, preset)
    w, b = whole[0], blocks[0]
    cuts = cut_positions(long_file)
    assert len(cuts) >= 5
    for cut in cuts:
        near = slice(cut - SR // 40, cut + SR // 40)
        assert np.abs(np.diff(b[near])).max() <= 1.5 * np.abs(np.diff(w[near])).max(), f"click at {cut}"
        span = slice(cut - SR // 2, cut + SR // 2)
        level = 20 * np.log10(np.sqrt(np.mean(b[span] ** 2) / np.mean(w[span] ** 2)))
        assert abs(level) < 4.0, f"level jump of {level:.1f} dB at {cut}"


def test_peak_ceiling_is_one_gain_for_the_whole_file(long_float: Path, tmp_path: Path) -> None:
    loud = Pipeline([Bandlimit(low_hz=100.0, high_hz=7000.0), Loudness(target_lufs=-6.0)])
    whole, blocks, whole_result, block_result = both(long_float, tmp_path, loud, suffix=".wav")
    assert block_result.gain < 1.0 and block_result.gain == pytest.approx(whole_result.gain, rel=1e-6)
    assert np.max(np.abs(blocks)) == pytest.approx(0.99, abs=1e-4)


@pytest.mark.slow
def test_stereo_48k_in_blocks_with_one_voice_per_channel(long_file: Path, tmp_path: Path) -> None:
    import soxr

    x = sf.read(long_file, dtype="float32")[0][: 70 * SR]
    high = soxr.resample(x, SR, 48000)
    stereo = tmp_path / "stereo.flac"
    sf.write(stereo, np.stack([high, high[::-1]], axis=1), 48000, subtype="PCM_24")
    result = anonymize_file(stereo, tmp_path / "out.flac", "standard", seed=3, link="channel", block_seconds=20.0)
    info = sf.info(tmp_path / "out.flac")
    assert (info.samplerate, info.channels, info.frames) == (48000, 2, len(high))
    voices = [a.params for a in result.applied if a.step == "pseudovoice"]
    assert len(voices) == 2 and voices[0] != voices[1]


def test_every_block_knows_its_absolute_position(long_file: Path) -> None:
    """Blocks tile the signal: each owns [cut, next cut), starts its context before it, and knows the length."""
    seen: list[tuple[int, tuple[int, int], int, int]] = []

    @dataclass(frozen=True, repr=False)
    class Spy(Wobble):
        context = 0.5

        def process(self, block: Block, stats: Any, *, depth: float) -> np.ndarray:
            seen.append((block.start, block.own, block.total, len(block.samples)))
            return block.samples

    with open_input(long_file) as source:
        source.scan()
        cuts = find_cuts(source, block=int(BLOCK * SR))
        engine.run([Spy()], source, engine.ArraySink(1, source.frames), [[{"depth": 0.5}]], block_seconds=BLOCK,
                   ceiling=False)
        n = source.frames
    assert [own for _, own, _, _ in seen] == list(zip(cuts[:-1], cuts[1:]))
    half = int(engine.FADE * SR) // 2
    for k, (start, own, total, length) in enumerate(seen):
        assert total == n
        assert start == max(0, own[0] - (half if k else 0) - SR // 2)
        assert start + length == min(n, own[1] + (half if k < len(seen) - 1 else 0) + SR // 2)


def test_statistics_passes_run_only_when_a_step_asks(long_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Input reads per block: one pass for a local step with the ceiling recomputing it, one more per statistics."""
    with open_input(long_file) as source:
        source.scan()
        reads: list[tuple[int, int]] = []
        original = source.read
        monkeypatch.setattr(source, "read", lambda a, b: reads.append((a, b)) or original(a, b))
        blocks = len(find_cuts(source, block=int(BLOCK * SR))) - 1

        def passes(steps: list[Transform], drawn: list[dict[str, Any]], *, ceiling: bool = True) -> float:
            reads.clear()
            engine.run(steps, source, engine.ArraySink(1, source.frames), [drawn], block_seconds=BLOCK, ceiling=ceiling)
            return (len(reads) - (blocks - 1)) / blocks  # find_cuts reads once around every inner cut

        assert passes([Wobble()], [{"depth": 0.5}], ceiling=False) == 1
        assert passes([Wobble()], [{"depth": 0.5}]) == 2
        assert passes([Wobble(), CentreClip()], [{"depth": 0.5}, {"fraction": 0.5}]) == 3


@pytest.mark.slow
def test_span_edit_crossing_a_block_edge_is_replaced_whole(long_float: Path, tmp_path: Path) -> None:
    """Beyond its fades, a span crossing a cut holds the replacement alone, in blocks as whole."""
    cut = cut_positions(long_float)[1]
    start, stop, fade = cut - int(1.3 * SR), cut + int(0.7 * SR), 80
    tone = (0.2 * np.sin(2 * np.pi * 1000.0 * np.arange(stop - start) / SR)).astype(np.float32)
    edit = SpanEdit(start, stop, tone, fade=fade)
    plain_whole, plain_blocks, _, _ = both(long_float, tmp_path, "standard", suffix=".wav")
    whole, blocks, _, _ = both(long_float, tmp_path, "standard", suffix=".wav", edits=[edit])
    for out, plain in ((whole, plain_whole), (blocks, plain_blocks)):
        inside = out[0, start + fade: stop - fade]
        # The replacement alone: no original energy (float WAV, so no quantisation either).
        assert np.max(np.abs(inside - tone[fade:-fade])) < 1e-6
        assert np.array_equal(out[0, :start], plain[0, :start]) and np.array_equal(out[0, stop:], plain[0, stop:])
    assert np.array_equal(whole[0, start + fade: stop - fade], blocks[0, start + fade: stop - fade])


def test_empty_chain_passes_audio_through_except_in_the_spans(long_file: Path, tmp_path: Path) -> None:
    x = sf.read(long_file, dtype="int16")[0]
    spans = [SpanEdit(10 * SR, 12 * SR, fade=160), SpanEdit(44 * SR, 47 * SR)]
    for block_seconds in (None, BLOCK):
        out = tmp_path / f"edited-{block_seconds}.flac"
        result = anonymize_file(long_file, out, Pipeline([]), seed=1, edits=spans, block_seconds=block_seconds)
        y = sf.read(out, dtype="int16")[0]
        assert result.gain == 1.0 and len(y) == len(x)
        keep = np.ones(len(x), bool)
        for span in spans:
            keep[span.start: span.stop] = False
            assert not np.any(y[span.start + span.fade: span.stop - span.fade])
        assert np.array_equal(y[keep], x[keep])


def test_span_edits_are_checked() -> None:
    y = np.random.default_rng(0).standard_normal(SR).astype(np.float32) * 0.1
    for bad, why in ((SpanEdit(100, 2 * SR), "not inside"), (SpanEdit(10, 20, fade=6), "fade"),
                     (SpanEdit(0, 100, np.zeros(99)), "does not fit")):
        with pytest.raises(Exception, match=why):
            Pipeline([]).run(y, SR, seed=1, edits=[bad])


def test_buffers_on_disk_hold_only_transformed_voice(long_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A chain whose first step measures (loudness) buffers only after the pitch step; a chain that
    never changes the voice buffers nothing and recomputes instead. Every buffer is unlinked."""
    x = sf.read(long_file, dtype="float32")[0]
    written: list[np.ndarray] = []
    opened: list[Any] = []
    original_init, original_write = engine._FileBuffer.__init__, engine._FileBuffer.write

    def init(self: Any, *args: Any) -> None:
        original_init(self, *args)
        opened.append(os.readlink(f"/proc/self/fd/{self._file.fileno()}"))

    def write(self: Any, piece: np.ndarray) -> None:
        written.append(piece[0].copy())
        original_write(self, piece)

    monkeypatch.setattr(engine._FileBuffer, "__init__", init)
    monkeypatch.setattr(engine._FileBuffer, "write", write)
    with open_input(long_file) as source:
        source.scan()
        for steps, drawn in (([Loudness(), Pitch(semitones=4.0)], [{"target_lufs": -23.0}, {"semitones": 4.0, "method": "psola"}]),
                             ([Bandlimit(), Loudness()], [{"low_hz": 300.0, "high_hz": 3400.0}, {"target_lufs": -23.0}])):
            written.clear()
            engine.run(steps, source, engine.ArraySink(1, source.frames), [drawn], block_seconds=BLOCK)
            if steps[0].name == "bandlimit":
                assert not written
                continue
            buffered = np.concatenate(written)
            assert len(buffered) == len(x)
            # Correlation over 1-s frames with the input: pitch-shifted speech does not follow it.
            frames = slice(0, len(x) // SR * SR)
            a, b = x[frames].reshape(-1, SR), buffered[frames].reshape(-1, SR)
            corr = np.sum(a * b, 1) / np.sqrt(np.sum(a * a, 1) * np.sum(b * b, 1) + 1e-12)
            assert np.median(np.abs(corr)) < 0.2, np.median(np.abs(corr))
    assert opened and all(path.endswith("(deleted)") and path.startswith(tempfile.gettempdir()) for path in opened)


@pytest.mark.slow
def test_killed_run_leaves_no_original_audio_anywhere(long_file: Path, tmp_path: Path) -> None:
    """Kill a long single-file run mid-way (its first step is loudness): nothing under OUT or in the
    temp folder holds the original voice, and every temporary file the run had open was unlinked."""
    out, temp = tmp_path / "out", tmp_path / "tmp"
    out.mkdir()
    temp.mkdir()
    preset = tmp_path / "loud-first.toml"
    preset.write_text('description = "loudness first"\n[[step]]\ntype = "loudness"\n[[step]]\ntype = "pitch"\n'
                      'semitones = 4.0\n[[step]]\ntype = "noise"\n')
    command = [sys.executable, "-m", "deid", "anonymize", str(long_file), str(out / "out.flac"), "--seed", "1",
               "--preset", str(preset), "--block-seconds", "10"]
    proc = subprocess.Popen(command, env={**os.environ, "TMPDIR": str(temp)}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    held: set[str] = set()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        for fd in Path(f"/proc/{proc.pid}/fd").glob("*"):
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith(str(temp)) or target.startswith(str(out)):
                held.add(target)
        if any(t.startswith(str(temp)) for t in held) and len(held) >= 2:
            break
        time.sleep(0.02)
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert held, "the run was killed before it opened a buffer"
    assert all(t.endswith("(deleted)") for t in held), held
    assert not list(temp.iterdir())
    x = sf.read(long_file, dtype="float32")[0]
    for path in (p for p in out.rglob("*") if p.is_file()):
        try:
            data = sf.read(path, dtype="float32")[0]
        except (sf.LibsndfileError, RuntimeError):
            # Raw samples, as the statistics passes once left beside the output.
            raw = path.read_bytes()
            data = np.nan_to_num(np.frombuffer(raw[: len(raw) // 4 * 4], dtype=np.float32))
        n = min(len(data), len(x))
        corr = float(np.dot(data[:n], x[:n]) / np.sqrt(np.dot(data[:n], data[:n]) * np.dot(x[:n], x[:n]) + 1e-12))
        assert abs(corr) < 0.2, (path, corr)


@pytest.mark.parametrize("method", ["psola", "world"])
def test_f0_is_estimated_once_per_block(long_file: Path, monkeypatch: pytest.MonkeyPatch, method: str) -> None:
    """The statistics pass keeps each block's F0 contour for the processing pass: one estimate per
    block in blocks, one for the whole signal, whatever the passes (issue 12: F0 was estimated twice)."""
    from deid.keys import Key, rng_for
    from deid.transforms import PseudoVoice, world

    estimator = "estimate_f0" if method == "psola" else "track_f0"
    calls: list[int] = []
    original = getattr(world, estimator)
    monkeypatch.setattr(world, estimator, lambda y, **kw: calls.append(len(y)) or original(y, **kw))
    x = sf.read(long_file, dtype="float32", frames=45 * SR)[0][None, :]
    pipe = Pipeline([PseudoVoice(method=method)])
    drawn = pipe.draw(rng_for(Key.from_seed(1), "scope"))
    for block_seconds in (None, 15.0):
        calls.clear()
        stream = engine.ArrayStream(x, SR)
        blocks = 1 if block_seconds is None else len(find_cuts(stream, block=int(block_seconds * SR))) - 1
        engine.run(list(pipe), stream, engine.ArraySink(1, x.shape[1]), [drawn], block_seconds=block_seconds)
        assert len(calls) == blocks, (block_seconds, calls)
        assert blocks == (1 if block_seconds is None else 3)
