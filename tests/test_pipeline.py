"""Keyed randomness, presets, the Pipeline list API and the Python entry points."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import load

import deid
from deid.errors import DeidError, PresetError
from deid.keys import Key, resolve_key, rng_for
from deid.pipeline import Pipeline
from deid.transforms import Formant, Noise, Pitch


def test_every_preset_loads_validates_and_runs_on_real_speech(speech):
    names = deid.list_presets()
    assert {"light", "standard", "strong", "fast", "vpc-mcadams"} <= set(names)
    for name in names:
        pipe = deid.load_preset(name)
        assert pipe.description and "\n" not in pipe.description
        out, result = deid.anonymize(speech, 16000, name, seed=5, report=True)
        assert out.shape == speech.shape and out.dtype == np.float32
        assert np.max(np.abs(out)) <= 0.99 + 1e-6
        assert not np.allclose(out, speech, atol=1e-3)
        assert [a.step for a in result.applied] == [s.name for s in pipe]


def test_same_key_same_output_other_key_other_parameters(speech):
    a, ra = deid.anonymize(speech, 16000, key=b"first secret key", report=True)
    b, _ = deid.anonymize(speech, 16000, key=b"first secret key", report=True)
    c, rc = deid.anonymize(speech, 16000, key=b"other secret key", report=True)
    assert np.array_equal(a, b)
    assert [s.params for s in ra.applied] != [s.params for s in rc.applied]
    assert not np.allclose(a, c)


def test_drawn_values_are_plain_data_and_replay_exactly(speech):
    pipe = deid.load_preset("standard")
    drawn = pipe.draw(rng_for(Key.from_seed(1), "scope"))
    import json

    assert json.loads(json.dumps(drawn)) == drawn
    assert np.array_equal(pipe.apply(speech, 16000, drawn), pipe.apply(speech, 16000, drawn))


def test_scope_links_voices(voices):
    pipe = deid.load_preset("standard")
    key = Key.from_seed(3)
    y1, y2 = load(voices[0]), load(voices[1])
    r1 = pipe.run(y1, 16000, key=key, scope="speaker:alice")
    r2 = pipe.run(y2, 16000, key=key, scope="speaker:alice")
    r3 = pipe.run(y1, 16000, key=key)
    r4 = pipe.run(y2, 16000, key=key)
    params = lambda r: [(a.step, {k: v for k, v in a.params.items() if k != "seed"}) for a in r.applied]  # noqa: E731
    assert params(r1) == params(r2)
    assert params(r3) != params(r4)


def test_channel_link_gives_each_channel_its_own_voice(speech):
    stereo = np.stack([speech, speech])
    linked = deid.load_preset("standard").run(stereo, 16000, seed=2, link="channel")
    shared = deid.load_preset("standard").run(stereo, 16000, seed=2)
    assert {a.channel for a in linked.applied} == {0, 1}
    assert not np.allclose(linked.audio[0], linked.audio[1])
    assert np.array_equal(shared.audio[0], shared.audio[1])


def test_consecutive_domain_steps_share_one_pass(speech):
    # Pitch then formant in the PSOLA domain runs as one pass; it must equal the pure function
    # that does both, and differ from applying them one after the other.
    from deid.transforms.psola import psola

    pipe = Pipeline([Pitch(semitones=3.0), Formant(ratio=1.1)])
    drawn = pipe.draw(np.random.default_rng(0))
    assert np.array_equal(pipe.apply(speech, 16000, drawn), psola(speech, sr=16000, factor=2 ** 0.25, ratio=1.1))


def test_pipeline_is_list_like_and_callable(speech):
    pipe = Pipeline([Pitch(semitones=2.0)])
    pipe.append(Noise(snr_db=30.0))
    pipe.insert(1, Formant(ratio=0.9))
    assert [s.name for s in pipe] == ["pitch", "formant", "noise"]
    assert len(pipe[1:]) == 2
    del pipe[2]
    out = pipe(speech, 16000, seed=1)
    assert out.shape == speech.shape
    with pytest.raises(DeidError, match="holds transforms, not str"):
        pipe.append("pitch")
    assert "semitones = 2.0" in pipe.to_toml()


def test_clipping_is_prevented_and_reported(speech):
    loud = speech / np.max(np.abs(speech))
    result = Pipeline([Noise(snr_db=0.0, color="white")]).run(loud, 16000, seed=1)
    assert result.scaled and result.gain < 1.0
    assert np.max(np.abs(result.audio)) <= 0.99 + 1e-6


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[[step]]\ntype = "pitch"\nsemitones = 40', ["step 1", "'pitch'", "'semitones'", "[-12, 12]"]),
        ('[[step]]\ntype = "formant"\nratio = [1.5, 1.2]', ["'ratio'", "min > max"]),
        ('[[step]]\ntype = "noise"\ncolor = "purple"', ["'color'", "'white', 'pink', 'brown'"]),
        ('[[step]]\ntype = "formant"\nratio = { range = [1.1, 1.2], sign = "random" }', ["'ratio'", "random sign"]),
        ('[[step]]\ntype = "warp-drive"', ["unknown step type 'warp-drive'"]),
        ('[[step]]\ntype = "pitch"\nsemitone = 2', ["unknown parameter(s) semitone"]),
        ("description = 'x'", ["at least one [[step]]"]),
        ("[[step]\n", ["not valid TOML"]),
    ],
)
def test_preset_errors_name_file_step_parameter_and_range(tmp_path, text, expected):
    path = tmp_path / "mine.toml"
    path.write_text(text)
    with pytest.raises(PresetError) as info:
        deid.load_preset(path)
    message = str(info.value)
    assert str(path) in message
    for part in expected:
        assert part in message


def test_user_preset_file_runs(tmp_path, speech):
    path = tmp_path / "mine.toml"
    path.write_text('description = "mine"\n[[step]]\ntype = "pitch"\nsemitones = { range = [2, 3], sign = "random" }\n')
    out, result = deid.anonymize(speech, 16000, path, seed=1, report=True)
    assert 2.0 <= abs(result.applied[0].params["semitones"]) <= 3.0


def test_random_sign_draws_both_signs():
    step = Pitch(semitones={"range": [3.0, 5.0], "sign": "random"})
    values = [step.draw(np.random.default_rng(i))["semitones"] for i in range(200)]
    assert min(values) <= -3.0 and max(values) >= 3.0
    assert all(3.0 <= abs(v) <= 5.0 for v in values)


def test_key_never_shows_itself(monkeypatch):
    secret = "correct horse battery staple"
    key = resolve_key(secret)
    assert secret not in repr(key) and secret not in str(key) and secret not in f"{key!r} {key}"
    monkeypatch.setenv("DEID_KEY", secret)
    assert resolve_key() == key
    with pytest.raises(DeidError) as info:
        resolve_key(secret, seed=1)
    assert secret not in str(info.value)


def test_fresh_key_without_key_or_seed(monkeypatch, speech):
    monkeypatch.delenv("DEID_KEY", raising=False)
    assert not resolve_key().reproducible
    assert not np.array_equal(deid.anonymize(speech, 16000), deid.anonymize(speech, 16000))


@pytest.mark.parametrize(
    ("y", "reason"),
    [
        (np.zeros(16000, np.float32), "silent"),
        (np.array([0.5], np.float32), "too short"),
        (np.r_[np.ones(8000, np.float32) * 0.1, np.nan, np.ones(8000, np.float32) * 0.1], "NaN"),
    ],
)
def test_bad_arrays_get_a_clear_error(y, reason):
    with pytest.raises(DeidError, match=reason):
        deid.anonymize(y, 16000, seed=1)


def test_integer_input_is_scaled(speech):
    pcm = (speech * 32767).astype(np.int16)
    assert np.allclose(deid.anonymize(pcm, 16000, "fast", seed=1), deid.anonymize(pcm / 32768.0, 16000, "fast", seed=1), atol=1e-4)
