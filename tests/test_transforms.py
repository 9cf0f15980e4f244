"""Each transform's measured effect on real speech: F0, envelope, SNR, band, loudness, length."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ffmpeg_loudness, load
from measure import envelope_ratio, f0_shift_semitones, snr_db

from deid.pipeline import Pipeline
from deid.transforms import Bandlimit, Formant, McAdams, Pitch, Shift, Vtln
from deid.transforms.bandlimit import bandlimit
from deid.transforms.formant import shift_formants
from deid.transforms.loudness import normalize_loudness
from deid.transforms.mcadams import mcadams
from deid.transforms.noise import add_noise, noise_at
from deid.transforms.pitch import shift_pitch
from deid.transforms.shift import shift_voice
from deid.transforms.vtln import warp_vtln
from deid.transforms.wsola import wsola


@pytest.mark.slow
@pytest.mark.parametrize("method", ["psola", "world"])
@pytest.mark.parametrize("semitones", [-4.0, 3.0, 6.0])
def test_pitch_moves_median_f0_by_the_requested_semitones(voices, method, semitones):
    """Through the path every preset takes: a Pipeline, with its peak ceiling."""
    pipeline = Pipeline([Pitch(semitones=semitones, method=method)])
    errors = []
    for path in voices:
        y = load(path)
        out = pipeline(y, 16000, seed=1)
        assert out.shape == y.shape
        errors.append(f0_shift_semitones(y, out, 16000) - semitones)
    # Median over eight speakers; DIO's F0 on a few voices (creak, subharmonics) still misleads
    # the shift of single clips, so a minority may miss by more (see the README's limits).
    assert np.median(np.abs(errors)) <= 0.25, np.round(errors, 2)
    assert np.mean(np.abs(errors) <= 0.5) >= 0.75, np.round(errors, 2)


@pytest.mark.slow
@pytest.mark.parametrize("sr", [8000, 44100, 48000])
def test_pitch_accuracy_holds_at_other_rates(voices, sr):
    pipeline = Pipeline([Pitch(semitones=4.0)])
    errors = []
    for path in voices[::2]:
        y = load(path, sr)
        out = pipeline(y, sr, seed=1)
        assert out.shape == y.shape
        errors.append(f0_shift_semitones(y, out, sr) - 4.0)
    assert np.median(np.abs(errors)) <= 0.25, np.round(errors, 2)


def test_pure_functions_are_the_steps_alone(speech):
    """One path per transform: a pure function gives what its step gives inside a pipeline."""
    assert np.array_equal(shift_pitch(speech, sr=16000, semitones=3.0), Pipeline([Pitch(semitones=3.0)]).apply(
        speech, 16000, [{"semitones": 3.0, "method": "psola"}]))
    assert np.array_equal(shift_formants(speech, sr=16000, ratio=1.1, method="stft"),
                          Formant(method="stft").apply(speech, 16000, ratio=1.1, method="stft"))
    assert np.array_equal(warp_vtln(speech, sr=16000, alpha=0.1, method="world"),
                          Vtln(method="world").apply(speech, 16000, alpha=0.1, method="world"))


@pytest.mark.slow
@pytest.mark.parametrize("method", ["psola", "stft", "world"])
@pytest.mark.parametrize("ratio", [0.87, 1.15])
def test_formant_moves_the_long_term_envelope_and_keeps_f0(voices, method, ratio):
    measured, f0_moves = [], []
    for path in voices[::2]:
        y = load(path)
        out = shift_formants(y, sr=16000, ratio=ratio, method=method)
        assert out.shape == y.shape
        measured.append(envelope_ratio(y, out, 16000))
        f0_moves.append(f0_shift_semitones(y, out, 16000))
    assert np.median(measured) == pytest.approx(ratio, rel=0.03), measured
    assert np.max(np.abs(f0_moves)) <= 0.25, f0_moves


@pytest.mark.slow
@pytest.mark.parametrize(("sr", "semitones"), [(16000, -4.0), (48000, 3.0)])
def test_shift_moves_f0_and_formants_together(voices, sr, semitones):
    f0_moves, env_ratios = [], []
    for path in voices[::2]:
        y = load(path, sr)
        out = shift_voice(y, sr=sr, semitones=semitones)
        assert out.shape == y.shape
        f0_moves.append(f0_shift_semitones(y, out, sr))
        env_ratios.append(envelope_ratio(y, out, sr))
    assert np.median(f0_moves) == pytest.approx(semitones, abs=0.25), np.round(f0_moves, 2)
    assert np.median(env_ratios) == pytest.approx(2.0 ** (semitones / 12.0), rel=0.03), env_ratios


@pytest.mark.parametrize("stretch", [0.8, 1.26])
def test_wsola_changes_duration_but_not_pitch_and_leaves_no_gaps(stretch):
    sr = 16000
    t = np.arange(sr) / sr
    # A vowel-like tone whose F0 glides from 120 to 180 Hz, with harmonics.
    phase = 2 * np.pi * np.cumsum(120.0 + 60.0 * t) / sr
    y = sum(np.sin(k * phase) / k for k in range(1, 8)).astype(np.float32) * 0.2
    out = wsola(y, int(len(y) * stretch), sr=sr)
    assert len(out) == int(len(y) * stretch)
    # F0 of the output at the same relative position equals the input's: median over frames.
    from measure import harvest_f0

    f_in, f_out = harvest_f0(y, sr), harvest_f0(out, sr)
    pos = np.linspace(0.1, 0.9, 30)
    a = f_in[(pos * len(f_in)).astype(int)]
    b = f_out[(pos * len(f_out)).astype(int)]
    assert np.median(np.abs(12 * np.log2(b / a))) < 0.1
    # Frames are joined in phase: the short-time level stays within 1 dB of the input's.
    level = 10 * np.log10(np.mean(np.lib.stride_tricks.sliding_window_view(out, 320)[sr // 20 : -sr // 20 : 80] ** 2, axis=1))
    ref = 10 * np.log10(np.mean(y**2))
    assert np.max(np.abs(level - ref)) < 1.0, (level.min() - ref, level.max() - ref)


def test_vtln_warps_the_envelope_in_the_direction_of_alpha(speech):
    up = warp_vtln(speech, sr=16000, alpha=0.1)
    down = warp_vtln(speech, sr=16000, alpha=-0.1)
    assert envelope_ratio(speech, up, 16000) > 1.05
    assert envelope_ratio(speech, down, 16000) < 0.95
    assert abs(f0_shift_semitones(speech, up, 16000)) <= 0.25


def test_mcadams_identity_at_alpha_one_and_formant_move_below(speech):
    assert np.max(np.abs(mcadams(speech, sr=16000, alpha=1.0) - speech)) < 1e-5
    out = mcadams(speech, sr=16000, alpha=0.8)
    assert out.shape == speech.shape
    # Formants below the 2.5 kHz fixed point move up when alpha < 1.
    assert envelope_ratio(speech, out, 16000, lo=200.0, hi=2000.0) > 1.03


@pytest.mark.parametrize("sr", [8000, 16000, 48000])
def test_mcadams_raises_low_formants_at_every_rate(voices, sr):
    # Angles are taken at their 16 kHz equivalent, so the fixed point stays at 2546 Hz and
    # formants below it move up for alpha < 1 at every rate (at fs / 2 pi they would not move
    # at all below 7.6 kHz at 48 kHz). How far they move still depends on the rate, since the
    # LPC order stays 20 (see the README).
    y = load(voices[2], sr)
    out = mcadams(y, sr=sr, alpha=0.8)
    assert out.shape == y.shape
    assert envelope_ratio(y, out, sr, hi=2000.0) > 1.02


@pytest.mark.parametrize("color", ["white", "pink", "brown"])
@pytest.mark.parametrize("target", [5.0, 20.0, 35.0])
def test_noise_snr_is_within_half_a_db(speech, color, target):
    out = add_noise(speech, snr_db=target, color=color, seed=7)
    assert abs(snr_db(speech, out) - target) <= 0.5


def test_noise_depends_only_on_its_seed_and_position():
    """Any span of the noise is the same samples, whatever span it is drawn with, across tile edges."""
    whole = noise_at(0, 200000, color="pink", seed=5)
    for start, n in ((0, 1000), (32000, 700), (32250, 50000), (123456, 54321)):
        assert np.array_equal(noise_at(start, n, color="pink", seed=5), whole[start: start + n])
    assert np.mean(whole.astype(np.float64) ** 2) == pytest.approx(1.0, abs=0.03)
    assert not np.array_equal(noise_at(0, 1000, color="pink", seed=6), whole[:1000])


def test_noise_color_sets_the_spectral_slope(speech):
    slopes = {}
    for color in ("white", "pink", "brown"):
        noise = add_noise(np.full(1 << 16, 0.1, np.float32), snr_db=0.0, color=color, seed=1) - 0.1
        spec = np.abs(np.fft.rfft(noise)) ** 2
        f = np.fft.rfftfreq(len(noise), 1 / 16000)
        band = (f > 100) & (f < 6000)
        slopes[color] = np.polyfit(np.log10(f[band]), 10 * np.log10(spec[band]), 1)[0]
    assert slopes["white"] == pytest.approx(0.0, abs=1.0)
    assert slopes["pink"] == pytest.approx(-10.0, abs=1.0)
    assert slopes["brown"] == pytest.approx(-20.0, abs=1.0)


def test_bandlimit_removes_energy_outside_the_band(speech):
    out = bandlimit(speech, sr=16000, low_hz=300.0, high_hz=3400.0)
    spec_in, spec_out = (np.abs(np.fft.rfft(x)) ** 2 for x in (speech, out))
    f = np.fft.rfftfreq(len(speech), 1 / 16000)
    outside = (f < 150) | (f > 5000)
    inside = (f > 500) & (f < 3000)
    assert 10 * np.log10(spec_out[outside].sum() / spec_in[outside].sum()) < -30
    assert 10 * np.log10(spec_out[inside].sum() / spec_in[inside].sum()) > -0.5


@pytest.mark.parametrize("sr", [16000, 48000])
@pytest.mark.parametrize("target", [-30.0, -23.0, -16.0])
def test_loudness_reaches_the_target(voices, target, sr, tmp_path):
    """Measured by FFmpeg's ebur128 filter (another meter than libebur128), which reports 0.1 LU steps."""
    y = load(voices[1], sr)
    out = normalize_loudness(y, sr=sr, target_lufs=target)
    assert ffmpeg_loudness(out, sr, tmp_path) == pytest.approx(target, abs=0.15)


@pytest.mark.parametrize("step", [Pitch(), Formant(), Vtln(), McAdams(), Bandlimit(), Shift()])
def test_apply_is_deterministic_given_the_drawn_values(speech, step):
    drawn = step.draw(np.random.default_rng(3))
    a = step.apply(speech, 16000, **drawn)
    b = step.apply(speech, 16000, **drawn)
    assert a.shape == speech.shape and np.array_equal(a, b)
    assert not np.allclose(a, speech)


def test_f0_estimate_handles_every_corpus_clip(corpus):
    import soundfile as sf

    from deid.transforms import world

    for path in sorted(corpus.glob("*/*.flac")):
        y, sr = sf.read(path, dtype="float32")
        for frame_period in (5.0, 10.0):
            f0 = world.estimate_f0(y, sr=sr, frame_period=frame_period)
            assert np.all(np.isfinite(f0)) and np.all(f0 >= 0)


def test_mains_hum_is_notched_before_f0_estimation():
    from deid.transforms import world

    sr = 16000
    t = np.arange(3 * sr) / sr
    # A 150 Hz voice-like tone with harmonics, under a 60 Hz hum with its own harmonics as loud
    # as the voice's fundamental: DIO on the raw signal tracks the hum.
    voice = sum(np.sin(2 * np.pi * 150.0 * k * t) / k for k in range(1, 10))
    hum = sum(np.sin(2 * np.pi * 60.0 * k * t) / k for k in range(1, 4))
    y = (0.1 * voice + 0.1 * hum).astype(np.float32)
    f0 = world.estimate_f0(y, sr=sr)
    assert np.median(f0[f0 > 0]) == pytest.approx(150.0, rel=0.03)
    assert world.remove_hum(voice, sr) is voice  # no hum: untouched
    features = world.analyze(y, sr=sr)
    assert np.median(features.f0[features.f0 > 0]) == pytest.approx(150.0, rel=0.03)
    assert world.hum_of(y, sr) == pytest.approx(60.0, abs=0.02)


def test_hum_is_decided_alike_whole_and_block_by_block():
    """The mains-hum spectrum adds up over blocks of any size to that of the whole signal."""
    from deid.transforms import world

    sr = 8000
    t = np.arange(9 * sr) / sr
    y = 0.1 * np.sin(2 * np.pi * 150.0 * t) + 0.02 * np.sin(2 * np.pi * 50.2 * t)
    y += 0.01 * np.random.default_rng(0).standard_normal(len(t))
    whole = world.HumStats().add(y, sr, 0)
    parts = world.HumStats()
    for a, b in ((0, 5000), (5000, 40000), (40000, 40008), (40008, len(y))):
        parts.add(y[a:b], sr, a)
    # Each part is resampled to the hum rate on its own, so the edges differ a little.
    assert whole.frequency == pytest.approx(50.2, abs=0.01) and parts.frequency == pytest.approx(whole.frequency, abs=0.005)


HUMMING_CLIPS = ["1116/1116-132847-0000_seg1.flac", "1723/1723-141149-0000_seg1.flac", "3374/3374-298025-0000_seg1.flac"]


def voice_shift(y: np.ndarray, out: np.ndarray, sr: int) -> float:
    """Median F0 change by Harvest after the hum is notched out of both signals (scipy's own notch,
    at the hum frequency a fine FFT finds): Harvest itself follows a strong hum."""
    from scipy import fft, signal

    size = 1 << 21
    power = np.abs(fft.rfft(y * np.hanning(len(y)), n=size)) ** 2
    freqs = np.fft.rfftfreq(size, 1.0 / sr)
    hum = max((freqs[near[np.argmax(power[near])]] for near in (np.flatnonzero(np.abs(freqs - m) < 1.0) for m in (50.0, 60.0))),
              key=lambda f: power[int(round(f * size / sr))])

    def clean(z: np.ndarray) -> np.ndarray:
        z = np.asarray(z, dtype=np.float64)
        for k in range(1, 6):
            b, a = signal.iirnotch(k * hum, 30.0, fs=sr)
            z = signal.filtfilt(b, a, z)
        return np.ascontiguousarray(z)

    return f0_shift_semitones(clean(y), clean(out), sr)


@pytest.mark.slow
def test_pitch_shift_on_clips_with_mains_hum(corpus):
    """The corpus clips with the most prominent hum (29-45 dB above its surroundings).

    WORLD lands within 0.5 semitone on each. The PSOLA tracker (DIO on an 8 kHz copy) still
    misses the low voice of speaker 1723 by several semitones with or without the notch (see the
    README's limits), but the notch takes its miss down on average. Over all 37 corpus clips with
    hum, 78 % of PSOLA shifts and 92 % of WORLD shifts land within 0.5 semitone.
    """
    from deid.transforms import world
    from deid.transforms.psola import psola

    world_errors, with_notch, without = [], [], []
    for name in HUMMING_CLIPS:
        y = load(corpus / name)
        world_errors.append(voice_shift(y, shift_pitch(y, sr=16000, semitones=4.0, method="world"), 16000) - 4.0)
        with_notch.append(voice_shift(y, shift_pitch(y, sr=16000, semitones=4.0), 16000) - 4.0)
        plain = psola(y, sr=16000, factor=2 ** (4 / 12), f0=world.estimate_f0(y, sr=16000, hum=None))
        without.append(voice_shift(y, plain, 16000) - 4.0)
    assert np.max(np.abs(world_errors)) <= 0.5, np.round(world_errors, 2)
    assert np.mean(np.abs(with_notch)) < np.mean(np.abs(without)), (np.round(with_notch, 2), np.round(without, 2))


def _onsets(y: np.ndarray, sr: int) -> np.ndarray:
    """Times (s) where the envelope (1-ms steps, over 10 ms: more than a period) rises through half its maximum."""
    hop = sr // 1000
    power = np.mean(y[: len(y) // hop * hop].reshape(-1, hop) ** 2, axis=1)
    level = np.convolve(power, np.ones(10) / 10, mode="same")
    above = level > 0.5 * level.max()
    return (np.flatnonzero(above[1:] & ~above[:-1]) + 1) / 1000.0


def test_psola_time_map_moves_each_event_by_the_map_and_keeps_length_and_pitch():
    """Harmonic bursts every 0.5 s; the map reads the input 40 ms ahead between 1 and 3 s."""
    from deid.transforms import world
    from deid.transforms.psola import psola

    sr = 16000
    t = np.arange(4 * sr) / sr
    tone = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 11))
    gate = np.clip(np.minimum(t % 0.5, 0.25 - t % 0.5) / 0.003, 0.0, 1.0)
    y = (0.1 * tone * gate).astype(np.float32)
    f0 = np.full(len(y) // 160 + 1, 150.0)
    frames = np.arange(len(y) // 160 + 2) * 0.01
    shift = 0.04 * np.clip(np.minimum(frames - 0.5, 3.5 - frames) / 0.5, 0.0, 1.0)
    timing = np.minimum((frames + shift) * sr, len(y))

    plain = psola(y, sr=sr, f0=f0)
    moved = psola(y, sr=sr, f0=f0, timing=timing)
    assert len(moved) == len(y)
    before, after, kept = _onsets(y, sr), _onsets(moved, sr), _onsets(plain, sr)
    assert len(before) == len(after) == len(kept) == 8
    # An event at input time T is heard at the output time t the map reads T from.
    expected = np.interp(before, timing / sr, frames)
    assert np.sum(np.abs(expected - before) > 0.035) >= 4
    # One period of 150 Hz is 6.7 ms: a grain lands within one period of where the map asks.
    assert np.max(np.abs(after - expected)) <= 0.007, np.round(after - expected, 4)
    assert np.max(np.abs(kept - before)) <= 0.007, np.round(kept - before, 4)
    pitch = world.estimate_f0(moved, sr=sr, hum=None)
    assert abs(12 * np.log2(np.median(pitch[pitch > 0]) / 150.0)) < 0.2


@pytest.mark.parametrize("hum", [50.13, 59.87])
def test_hum_frequency_is_found_to_a_few_hundredths_of_a_hertz(hum):
    """A notch of Q 30 placed 0.1 Hz off the hum takes only 20 dB off it: the frequency must be exact."""
    from deid.transforms import world

    sr = 16000
    t = np.arange(5 * sr) / sr
    rng = np.random.default_rng(1)
    y = 0.05 * rng.standard_normal(len(t)) + 0.05 * sum(np.sin(2 * np.pi * hum * k * t) / k for k in range(1, 4))
    assert world.hum_of(y, sr) == pytest.approx(hum, abs=0.02)
    assert world.hum_of(0.05 * rng.standard_normal(len(t)), sr) is None
