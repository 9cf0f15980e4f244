"""pseudovoice: the output takes the pseudo-voice's pitch whoever went in."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from deid.transforms.pseudovoice import BANK, PseudoVoice
from deid.transforms.world import estimate_f0

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("DEID_CORPUS", REPO.parent / "shared" / "corpus"))
pytestmark = pytest.mark.skipif(
    not (CORPUS / "clips.tsv").is_file(), reason=f"speech corpus not found at {CORPUS} (set DEID_CORPUS)"
)


def median_f0(y: np.ndarray, sr: int) -> float:
    f0 = estimate_f0(y, sr=sr)
    return float(np.exp(np.median(np.log(f0[f0 > 0]))))


@pytest.mark.parametrize("voice", [0, len(BANK) - 1])
def test_every_speaker_lands_on_the_pseudo_voice_pitch(voice):
    from deid.pipeline import Pipeline

    pipeline = Pipeline([PseudoVoice(voice=voice)])
    # A male (1334) and a female (696) voice of the corpus end on the same target.
    for path in ("1334/1334-135589-0000_seg1.flac", "696/696-92939-0000_seg1.flac"):
        y, sr = sf.read(CORPUS / path, dtype="float32")
        out = pipeline(y, sr, seed=1)
        assert out.shape == y.shape
        assert abs(12 * np.log2(median_f0(out, sr) / BANK[voice][0])) < 1.5


def test_same_key_same_voice_other_key_may_differ():
    from deid.pipeline import Pipeline

    y, sr = sf.read(CORPUS / "696/696-92939-0000_seg1.flac", dtype="float32")
    pipeline = Pipeline([PseudoVoice()])
    assert np.array_equal(pipeline(y, sr, seed=1), pipeline(y, sr, seed=1))
    drawn = {pipeline.draw(np.random.default_rng(s))[0]["voice"] for s in range(20)}
    assert len(drawn) > 1
