"""Every registered transform and every preset survives JSON, pickle and TOML, and declares what it needs.

A batch pickles the pipeline into every worker task and records the drawn values as JSON; a user
saves a chain with ``to_toml`` and loads it back as a preset. Each round trip must give the same
thing back, and the same bytes out.
"""

from __future__ import annotations

import dataclasses
import json
import pickle

import numpy as np
import pytest

import deid
from deid.errors import PresetError
from deid.keys import Key, rng_for
from deid.pipeline import Pipeline
from deid.transforms import REGISTRY
from deid.transforms.base import Choice, Fixed, Range

SR = 16000
CHAINS = {f"step:{name}": Pipeline([cls()]) for name, cls in sorted(REGISTRY.items())}
CHAINS |= {f"preset:{name}": deid.load_preset(name) for name in deid.list_presets()}


def signal() -> np.ndarray:
    """Two seconds of a voiced, gliding tone with harmonics and a little noise: enough for every step."""
    t = np.arange(2 * SR) / SR
    phase = 2 * np.pi * np.cumsum(120.0 + 40.0 * np.sin(2 * np.pi * 0.7 * t)) / SR
    y = sum(np.sin(k * phase) / k for k in range(1, 12)) * 0.1
    return (y + 0.003 * np.random.default_rng(0).standard_normal(len(t))).astype(np.float32)


def test_every_family_is_registered() -> None:
    assert set(REGISTRY) == {"bandlimit", "drift", "formant", "loudness", "mcadams", "noise", "pitch", "pseudovoice",
                             "shift", "vtln"}


@pytest.mark.parametrize("name", sorted(CHAINS))
def test_drawn_values_are_json_and_replay_the_same_output(name: str) -> None:
    pipe = CHAINS[name]
    drawn = pipe.draw(rng_for(Key.from_seed(1), "scope"))
    assert json.loads(json.dumps(drawn)) == drawn
    y = signal()
    assert np.array_equal(pipe.apply(y, SR, json.loads(json.dumps(drawn))), pipe.apply(y, SR, drawn))


@pytest.mark.parametrize("name", sorted(CHAINS))
def test_pickled_chain_is_equal_and_gives_the_same_bytes(name: str) -> None:
    pipe = CHAINS[name]
    copy = pickle.loads(pickle.dumps(pipe))
    assert list(copy) == list(pipe) and copy.name == pipe.name and copy.description == pipe.description
    y = signal()
    assert np.array_equal(copy(y, SR, seed=4), pipe(y, SR, seed=4))


@pytest.mark.parametrize("name", sorted(CHAINS))
def test_to_toml_loads_back_as_the_same_chain(name: str, tmp_path) -> None:
    pipe = CHAINS[name]
    path = tmp_path / "saved.toml"
    path.write_text(pipe.to_toml(), encoding="utf-8")
    loaded = deid.load_preset(path)
    assert list(loaded) == list(pipe) and loaded.description == pipe.description
    assert repr(list(loaded)) == repr(list(pipe))


def test_round_trips_keep_ranges_signs_and_choices(tmp_path) -> None:
    from deid.transforms import Noise, Pitch, PseudoVoice

    pipe = Pipeline([Pitch(semitones={"range": [2.0, 3.5], "sign": "random"}), Noise(color={"choice": ["pink", "brown"]}),
                     PseudoVoice(voice=(1, 5))], description='with "quotes" \\ and a backslash')
    path = tmp_path / "ranges.toml"
    path.write_text(pipe.to_toml(), encoding="utf-8")
    for copy in (deid.load_preset(path), pickle.loads(pickle.dumps(pipe))):
        assert list(copy) == list(pipe) and copy.description == pipe.description
    assert isinstance(pipe[0].semitones, Range) and pipe[0].semitones.sign
    assert isinstance(pipe[1].color, Choice) and isinstance(pipe[2].strength, Fixed)


@pytest.mark.parametrize("cls", [REGISTRY[n] for n in sorted(REGISTRY)], ids=sorted(REGISTRY))
def test_every_transform_declares_what_it_needs(cls: type) -> None:
    step = cls()
    assert step.context >= 0.0
    domain = step.domain()
    if domain is None:
        # A step on samples processes a block, and measures one if it says it measures.
        assert type(step).process is not deid.transforms.Transform.process
    else:
        assert type(step).modify is not deid.transforms.Transform.modify and domain.context > 0
    if step.measures:
        assert type(step).measure is not deid.transforms.Transform.measure
    for field in dataclasses.fields(step):
        assert field.name in step.LIMITS


@pytest.mark.parametrize("name", ["pitch", "formant", "vtln", "pseudovoice"])
def test_the_engine_a_step_runs_on_is_one_value(name: str) -> None:
    with pytest.raises(PresetError, match=f"step '{name}': parameter 'method' must be one value"):
        REGISTRY[name](method={"choice": [REGISTRY[name].LIMITS["method"].values[0]] * 2})
