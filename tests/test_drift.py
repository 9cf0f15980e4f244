"""Drift (``deid.transforms.drift``): an envelope that moves slowly over absolute time, on real speech."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import load
from tests.measure import envelope_ratio, f0_shift_semitones


def level_db(y: np.ndarray, frame: int) -> np.ndarray:
    n = len(y) // frame
    return 10 * np.log10(np.mean(y[: n * frame].reshape(n, frame) ** 2, axis=1) + 1e-12)


def test_nothing_to_move_leaves_the_signal_as_it_was(speech):
    from deid.transforms.drift import drift

    out = drift(speech, sr=16000, seed=1, warp=0.0, shape_db=0.0)
    assert np.max(np.abs(out - speech)) < 1e-5


@pytest.mark.parametrize("sr", [16000, 48000])
def test_pitch_timing_and_level_are_kept(voices, sr):
    from deid.transforms.drift import drift

    y = load(voices[1], sr)
    out = drift(y, sr=sr, seed=2, warp=0.08, shape_db=4.0, tilt_norm=0.7)
    assert out.shape == y.shape
    assert abs(f0_shift_semitones(y, out, sr)) < 0.1
    # Each 50-ms frame keeps its level (the drift re-colours, it does not re-shape loudness).
    speechy = level_db(y, sr // 20) > level_db(y, sr // 20).max() - 30
    assert np.median(np.abs(level_db(out, sr // 20) - level_db(y, sr // 20))[speechy]) < 0.5


def test_the_envelope_moves_within_the_file_and_by_the_seed(voices):
    from deid.transforms.drift import drift

    y = np.concatenate([load(p) for p in voices[:4]])
    out = drift(y, sr=16000, seed=3, warp=0.10, shape_db=0.0, period=1.0)
    second = 16000
    # The formant ratio read on 2-s stretches wanders; with warp = 0.10 it may reach ×0.905-×1.105.
    ratios = [envelope_ratio(y[i : i + 2 * second], out[i : i + 2 * second], 16000) for i in range(0, len(y) - 2 * second, 2 * second)]
    assert max(ratios) - min(ratios) > 0.05
    assert 0.88 < min(ratios) and max(ratios) < 1.13
    other = drift(y, sr=16000, seed=4, warp=0.10, shape_db=0.0, period=1.0)
    assert np.sqrt(np.mean((other - out) ** 2)) > 0.1 * np.sqrt(np.mean(out**2))


def test_blocks_given_their_absolute_start_move_as_the_whole_file(voices):
    from deid.transforms.drift import drift

    y = np.concatenate([load(p) for p in voices[:2]])
    whole = drift(y, sr=16000, seed=5, tilt_norm=0.5)
    context = 1024  # one frame of context each side, as a block engine would give
    cut = len(y) // 2 + 77
    first = drift(y[: cut + context], sr=16000, seed=5, tilt_norm=0.5, start=0)[:cut]
    second = drift(y[cut - context :], sr=16000, seed=5, tilt_norm=0.5, start=cut - context)[context:]
    joined = np.concatenate([first, second])
    error = np.sqrt(np.mean((joined - whole) ** 2)) / np.sqrt(np.mean(whole**2))
    assert error < 0.03
    # Without the absolute start the second block would take the trajectory of the file's start.
    wrong = np.concatenate([first, drift(y[cut - context :], sr=16000, seed=5, tilt_norm=0.5)[context:]])
    assert np.sqrt(np.mean((wrong - whole) ** 2)) / np.sqrt(np.mean(whole**2)) > 3 * error


def test_tilt_normalisation_narrows_the_spread_of_per_frame_tilt(voices):
    from deid.transforms.drift import drift

    y = load(voices[2])

    def tilts(x: np.ndarray) -> np.ndarray:
        frames = np.lib.stride_tricks.sliding_window_view(x, 512)[::256] * np.hanning(512)
        power = np.abs(np.fft.rfft(frames, axis=-1)) ** 2
        freqs = np.fft.rfftfreq(512, 1 / 16000)
        band = (freqs > 200) & (freqs < 5000)
        loud = power.sum(axis=1) > 1e-3 * power.sum(axis=1).max()
        o = np.log2(freqs[band] / 1000)
        return np.polyfit(o, 10 * np.log10(power[loud][:, band] + 1e-12).T, 1)[0]

    before = tilts(y)
    after = tilts(drift(y, sr=16000, seed=6, warp=0.0, shape_db=0.0, tilt_norm=0.8, tilt=-6.0))
    assert np.std(after) < 0.7 * np.std(before)
    assert abs(np.median(after) + 6.0) < abs(np.median(before) + 6.0)
