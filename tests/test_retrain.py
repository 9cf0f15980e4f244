"""The retrained attacker (``deid.evaluate.retrain``): GE2E / additive-margin fine-tuning of Resemblyzer.

The corpus tests fine-tune on 24 speakers (3 folds: 16 training speakers each, 3 of them held
out for model selection), for a short budget; `benchmarks/privacy.py` runs the full protocol.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from tests.test_evaluate import CORPUS, identity, needs_corpus, subset

_missing = [m for m in ("torch", "sklearn", "resemblyzer") if importlib.util.find_spec(m) is None]
pytestmark = pytest.mark.skipif(
    bool(_missing), reason=f"evaluation extra not installed (missing {', '.join(_missing)}): pip install 'deid-audio[eval]'"
)


def mcadams_fixed(y: np.ndarray, sr: int, key: bytes) -> np.ndarray:
    """McAdams alpha = 0.8 for every file and key: a fixed transform an attacker can learn."""
    from deid.transforms.mcadams import mcadams

    return mcadams(y, sr=sr, alpha=0.8)


def test_ge2e_loss_is_low_for_clustered_embeddings_and_high_for_mixed_ones():
    import torch
    import torch.nn.functional as F

    from deid.evaluate.retrain import ge2e_loss

    torch.manual_seed(0)
    centres = F.normalize(torch.randn(8, 1, 32), dim=-1)
    clustered = F.normalize(centres + 0.05 * torch.randn(8, 4, 32), dim=-1).reshape(32, 32)
    mixed = clustered[torch.randperm(32)]
    w, b = torch.tensor(10.0), torch.tensor(-5.0)
    low, high = ge2e_loss(clustered, w, b, 8, 4), ge2e_loss(mixed, w, b, 8, 4)
    assert low < 0.1 < np.log(8) * 0.8 < high


@pytest.fixture(scope="module")
def evaluation():
    from deid.evaluate import Evaluation
    from deid.evaluate.retrain import RetrainSettings

    # 40 steps of 64 partials per fold (about 30 s of one core), validated every 8; the time cap
    # only matters on a very busy machine.
    return Evaluation(
        subset(24), asr=None, quality=False, folds=3, runs=1, retrain_minutes=6.0,
        retrain=RetrainSettings(steps=40, validate_every=8, patience=3),
    )


@needs_corpus
@pytest.mark.slow
def test_retrained_encoder_still_verifies_untouched_speech(evaluation):
    report = evaluation.run(identity, "identity")
    a = report.attacks
    assert sum(report.settings["retrain"]["steps"]) > 0
    # Fine-tuned on untouched speech of 13 speakers, it verifies the 8 unseen ones about as well.
    assert a["retrained"].eer <= a["original"].eer + 0.03
    assert a["retrained"].id_accuracy > 0.85


@needs_corpus
@pytest.mark.slow
def test_retrained_encoder_beats_the_backend_on_a_fixed_transform(evaluation):
    report = evaluation.run(mcadams_fixed, "mcadams-0.8")
    a = report.attacks
    log = report.settings["retrain"]
    # It learned: a checkpoint after step 0 was chosen on held-out speakers in some fold.
    assert max(log["best_steps"]) > 0
    assert min(a["retrained"].eer, a["retrained+backend"].eer) < a["trained"].eer


@needs_corpus
def test_finetune_leaves_the_public_encoder_alone_and_keeps_the_best_checkpoint():
    import torch

    from deid.evaluate.embeddings import SpeakerEncoder
    from deid.evaluate.data import load_mono
    from deid.evaluate.retrain import RetrainSettings, finetune

    clips = subset(8, clips_per_speaker=2)
    encoder = SpeakerEncoder()
    features = [encoder.features(*load_mono(c.path)) for c in clips]
    before = {k: v.clone() for k, v in encoder.model.state_dict().items()}
    settings = RetrainSettings(steps=7, seconds=60.0, speakers=4, partials=4, validate_every=2, patience=100)
    net, log = finetune(encoder.model, [features, features], np.array([c.speaker for c in clips]),
                        settings=settings, rng=np.random.default_rng(0))
    assert all(torch.equal(before[k], v) for k, v in encoder.model.state_dict().items())
    assert log.steps >= 2 and log.validation[0][0] == 0
    # The last step is validated too, whether or not the budget is a multiple of validate_every.
    assert log.validation[-1][0] == log.steps
    best = min(eer for _, eer in log.validation)
    assert dict(log.validation)[log.best_step] == best
