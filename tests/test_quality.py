"""DNSMOS listening quality (``deid.evaluate.quality``) on real speech from the shared corpus."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from tests.conftest import load

_missing = [m for m in ("speechmos", "onnxruntime", "soxr") if importlib.util.find_spec(m) is None]
pytestmark = pytest.mark.skipif(
    bool(_missing), reason=f"evaluation extra not installed (missing {', '.join(_missing)}): pip install 'deid-audio[eval]'"
)


@pytest.fixture(scope="module")
def meter():
    from deid.evaluate.quality import QualityMeter

    return QualityMeter()


def white_noise_at(y: np.ndarray, snr_db: float, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).standard_normal(y.size).astype(np.float32)
    noise *= np.sqrt(np.mean(y**2) / np.mean(noise**2) / 10 ** (snr_db / 10))
    return y + noise


def test_clean_speech_scores_above_the_same_speech_in_white_noise(meter, voices):
    for path in voices[:3]:
        y = load(path)
        clean, noisy = meter.score(y, 16000), meter.score(white_noise_at(y, 10.0), 16000)
        # The noise is in the background: BAK and OVRL fall most; every score falls.
        assert clean["bak"] > noisy["bak"] + 1.0
        assert clean["ovrl"] > noisy["ovrl"] + 0.5
        assert clean["sig"] > noisy["sig"]
        assert clean["p808"] > noisy["p808"]
        assert all(1.0 <= v <= 5.0 for v in clean.values())


def test_scores_do_not_depend_on_the_sample_rate(meter, voices):
    y16 = load(voices[0], 16000)
    s16, s48 = meter.score(y16, 16000), meter.score(load(voices[0], 48000), 48000)
    for name in s16:
        assert s48[name] == pytest.approx(s16[name], abs=0.1)


def test_identity_changes_nothing_and_summary_is_the_mean_change(meter, voices):
    from deid.evaluate.quality import SCORES, summarise

    clips = [(load(p), 16000) for p in voices[:2]]
    original = meter.score_all(clips)
    assert original.shape == (2, len(SCORES))
    same = summarise(original, meter.score_all(clips))
    assert all(same[name]["change"] == 0.0 and same[name]["change_sd"] == 0.0 for name in SCORES)
    noisy = meter.score_all([(white_noise_at(y, 10.0), sr) for y, sr in clips])
    changed = summarise(original, noisy)
    assert changed["ovrl"]["change"] == pytest.approx(float(np.mean(noisy[:, 2] - original[:, 2])))
    assert changed["ovrl"]["change"] < -0.5
