"""The Transform contract, parameter specifications and the registry.

A transform is a frozen dataclass whose fields are *parameter specifications*: a fixed value, a
``[min, max]`` range (optionally with a random sign) or a choice. ``draw(rng)`` turns them into
concrete, JSON-serialisable values; everything after that is deterministic given those values.

What a transform declares, so that the engine (:mod:`deid.engine`) can run it on a whole signal
or on a long file in blocks without knowing it by name:

- ``context``: seconds of input it needs beyond each side of a block to process the block as it
  would inside the whole signal (0 for a pointwise step such as noise or a gain);
- ``changes_voice``: whether its output no longer carries the input voice (pitch, formants,
  timbre); only such audio may ever be held in a temporary buffer;
- ``measures``: whether it needs statistics of its whole input first. The engine then calls
  ``measure(block, stats, **drawn)`` on every block in order (``stats`` is what the previous blocks
  gave, None at first) and hands the total to ``process``;
- ``domain()``: the representation it edits (WORLD features, a PSOLA plan) when it shares one
  analysis and one synthesis with its neighbours in that domain; None for a step on samples.

A step on samples implements ``process(block, stats, **drawn)``; a domain step implements
``modify(state, stats, **drawn)`` (and ``measure(state, stats, **drawn)`` on the domain's
analysis when it measures). ``apply(y, sr, **drawn)`` runs the step alone on a whole signal
through the engine: the same path as inside a pipeline.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np

from deid.errors import PresetError

REGISTRY: dict[str, type[Transform]] = {}


@dataclass(frozen=True)
class Fixed:
    """A parameter that always takes one value."""

    value: Any

    def draw(self, rng: np.random.Generator) -> Any:
        return self.value

    def bounds(self) -> tuple[Any, Any]:
        return self.value, self.value

    def to_toml(self) -> Any:
        return self.value


@dataclass(frozen=True)
class Range:
    """A number drawn uniformly from ``[lo, hi]``; with ``sign`` its sign is drawn too."""

    lo: float
    hi: float
    sign: bool = False

    def draw(self, rng: np.random.Generator) -> float:
        value = float(rng.uniform(self.lo, self.hi))
        if self.sign and rng.random() < 0.5:
            value = -value
        return value

    def bounds(self) -> tuple[float, float]:
        return (-self.hi, self.hi) if self.sign else (self.lo, self.hi)

    def to_toml(self) -> Any:
        if self.sign:
            return {"range": [self.lo, self.hi], "sign": "random"}
        return [self.lo, self.hi]


@dataclass(frozen=True)
class Choice:
    """One of several values, drawn with equal probability."""

    options: tuple[Any, ...]

    def draw(self, rng: np.random.Generator) -> Any:
        return self.options[int(rng.integers(len(self.options)))]

    def bounds(self) -> tuple[Any, Any]:
        return self.options[0], self.options[-1]

    def to_toml(self) -> Any:
        return {"choice": list(self.options)}


Param = Fixed | Range | Choice


@dataclass(frozen=True)
class Limit:
    """What a parameter may be: a numeric interval, or a set of allowed values.

    ``signed`` says whether ``{range = [..], sign = "random"}`` makes sense for it.
    """

    lo: float | None = None
    hi: float | None = None
    values: tuple[Any, ...] | None = None
    signed: bool = False

    def describe(self) -> str:
        if self.values is not None:
            return "one of " + ", ".join(repr(v) for v in self.values)
        return f"[{self.lo:g}, {self.hi:g}]"

    def check_value(self, value: Any) -> bool:
        return self.problem(value) is None

    def problem(self, value: Any) -> str | None:
        """Why `value` is not allowed (its type, or its value), or None when it is."""
        if self.values is not None:
            return None if _hashable(value) and value in self.values else "is not allowed"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"must be a number, not {type(value).__name__}"
        if value != value:
            return "is NaN, not a number"
        return None if self.lo <= value <= self.hi else "is out of range"


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def parse_param(step: str, name: str, raw: Any, limit: Limit) -> Param:
    """Turn a preset value into a parameter specification and check it against ``limit``.

    Accepted forms: a value; ``[min, max]`` for numbers; ``{range = [min, max], sign = "random"}``;
    ``{choice = [a, b, ...]}`` or a list of strings.
    """

    def fail(why: str) -> PresetError:
        return PresetError(f"step '{step}': parameter '{name}' {why}; allowed: {limit.describe()}")

    if isinstance(raw, (Fixed, Range, Choice)):
        param = raw
    elif isinstance(raw, Mapping):
        keys = set(raw)
        if keys == {"choice"}:
            if not isinstance(raw["choice"], (list, tuple)):
                raise fail(f"has choice = {raw['choice']!r}; a choice is a list of values")
            param = Choice(tuple(raw["choice"]))
        elif "range" in keys and keys <= {"range", "sign"}:
            sign = raw.get("sign", "positive")
            if sign not in ("random", "positive"):
                raise fail(f"has sign = {sign!r} (use \"random\" or \"positive\")")
            param = _range(raw["range"], sign == "random", fail)
        else:
            raise fail(f"has unknown keys {sorted(keys)}")
    elif isinstance(raw, (list, tuple)):
        if raw and all(isinstance(v, str) for v in raw):
            param = Choice(tuple(raw))
        else:
            param = _range(raw, False, fail)
    else:
        param = Fixed(raw)

    if isinstance(param, Choice):
        if not param.options:
            raise fail("is an empty choice")
        bad = [v for v in param.options if limit.problem(v) is not None]
        if bad:
            raise fail(f"has the choice {bad[0]!r}, which {limit.problem(bad[0])}")
    elif isinstance(param, Range):
        if param.sign and not limit.signed:
            raise fail("cannot take a random sign")
        lo, hi = param.bounds()
        if not (limit.check_value(lo) and limit.check_value(hi)):
            raise fail(f"range [{param.lo:g}, {param.hi:g}]{' with random sign' if param.sign else ''} is out of range")
    else:
        problem = limit.problem(param.value)
        if problem is not None:
            raise fail(f"= {param.value!r} {problem}")
    return param


def _range(raw: Any, sign: bool, fail: Callable[[str], PresetError]) -> Range:
    if (
        not isinstance(raw, (list, tuple))
        or len(raw) != 2
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in raw)
    ):
        raise fail(f"range must be [min, max] of two numbers, got {raw!r}")
    lo, hi = float(raw[0]), float(raw[1])
    if lo > hi:
        raise fail(f"range [{lo:g}, {hi:g}] has min > max")
    return Range(lo, hi, sign)


@dataclass
class Block:
    """A stretch of one channel handed to a step: its samples and where they sit in the whole signal.

    Parameters
    ----------
    samples : np.ndarray, shape (n,)
        float32 audio, including the context the engine added on each side.
    sr : int
        Sample rate in Hz.
    start : int
        Absolute index, in the whole signal, of ``samples[0]``: time-varying parameters and noise
        seeded by position come out the same whether a file is processed whole or in blocks.
    own : (int, int), optional
        The absolute span ``[lo, hi)`` this block stands for: statistics count only these samples,
        so that every sample of the signal is counted once. Defaults to all of ``samples``.
    total : int, optional
        Length of the whole signal. Defaults to ``start + len(samples)``.
    keep : dict
        What ``measure`` leaves for the ``process`` of the same block (an F0 contour), so that a
        statistics pass is not repeated by the processing pass. Analyses that grow with the
        block (spectral envelopes) are kept only when the block is the whole signal.
    """

    samples: np.ndarray
    sr: int
    start: int = 0
    own: tuple[int, int] | None = None
    total: int | None = None
    keep: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        stop = self.start + len(self.samples)
        if self.own is None:
            self.own = (self.start, stop)
        if self.total is None:
            self.total = stop

    @property
    def owned(self) -> slice:
        """Where the block's own span lies in ``samples``."""
        lo, hi = self.own
        return slice(lo - self.start, hi - self.start)

    @property
    def whole(self) -> bool:
        """Whether the block is the whole signal."""
        return self.start == 0 and len(self.samples) == self.total


class Domain(Protocol):
    """A representation that several steps edit in turn between one analysis and one synthesis.

    Consecutive steps of a pipeline in the same domain (the WORLD vocoder features, or a PSOLA
    plan) share it, so a chain of pitch and formant steps costs one analysis, not one per step.
    ``context`` and ``measures`` mean what they mean for a transform; ``measure`` gathers the
    statistics the analysis itself needs (the mains-hum decision), and ``analyze`` gets their
    total. With ``synthesis=False`` the analysis may leave out what only synthesis needs.
    """

    context: ClassVar[float]
    measures: ClassVar[bool]

    @staticmethod
    def measure(block: Block, stats: Any) -> Any: ...

    @staticmethod
    def analyze(block: Block, stats: Any, *, synthesis: bool = True) -> Any: ...

    @staticmethod
    def synthesize(state: Any) -> np.ndarray: ...


class Transform:
    """Base of every registered transform.

    Subclasses are frozen dataclasses: each field holds a parameter specification, and
    ``LIMITS`` maps every field name to its :class:`Limit`. Construction validates the fields, so
    ``Pitch(semitones=40)`` fails at once with a message naming the step, parameter and range.
    Fields named in ``FIXED`` (the engine a step runs on) must hold one value, not a range or a
    choice: how a chain is run may not depend on the draw.
    """

    name: ClassVar[str] = ""
    LIMITS: ClassVar[dict[str, Limit]] = {}
    FIXED: ClassVar[tuple[str, ...]] = ()
    #: Seconds of input needed beyond each side of a block (see the module docstring).
    context: ClassVar[float] = 0.0
    #: Whether the output no longer carries the input voice.
    changes_voice: ClassVar[bool] = False
    #: Whether the step needs statistics of its whole input (``measure``) before processing.
    measures: ClassVar[bool] = False

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            raw = getattr(self, field.name)
            param = parse_param(self.name, field.name, raw, self.LIMITS[field.name])
            if field.name in self.FIXED and not isinstance(param, Fixed):
                raise PresetError(f"step '{self.name}': parameter '{field.name}' must be one value, "
                                  f"not a range or a choice; allowed: {self.LIMITS[field.name].describe()}")
            object.__setattr__(self, field.name, param)

    def draw(self, rng: np.random.Generator) -> dict[str, Any]:
        """Draw concrete values for every parameter, in field order, from ``rng``."""
        return {f.name: _plain(getattr(self, f.name).draw(rng)) for f in dataclasses.fields(self)}

    def domain(self) -> type[Domain] | None:
        """The domain this step works in, or None for a step that works on samples."""
        return None

    def measure(self, block: Any, stats: Any, **drawn: Any) -> Any:
        """Add one block (a :class:`Block`, or the domain's analysis of one) to the statistics so far."""
        raise NotImplementedError(f"step '{self.name}' needs no statistics")

    def process(self, block: Block, stats: Any, **drawn: Any) -> np.ndarray:
        """The step's output for ``block.samples`` (same length), given the drawn values and statistics."""
        raise NotImplementedError(f"step '{self.name}' works in a domain, not on samples")

    def modify(self, state: Any, stats: Any, **drawn: Any) -> None:
        """Edit the domain state in place (only for steps whose ``domain()`` is not None)."""
        raise NotImplementedError(f"step '{self.name}' works on samples, not in a domain")

    def apply(self, y: np.ndarray, sr: int, **drawn: Any) -> np.ndarray:
        """The step alone on the whole signal ``y`` (float32, shape ``(n,)``) with drawn values.

        It runs through the engine exactly as inside a pipeline: statistics are measured on ``y``.
        """
        from deid.engine import apply_steps

        return apply_steps([self], y, sr, [drawn])

    def to_toml(self) -> dict[str, Any]:
        """The step as a preset table."""
        return {"type": self.name} | {f.name: getattr(self, f.name).to_toml() for f in dataclasses.fields(self)}

    def __repr__(self) -> str:
        args = ", ".join(f"{f.name}={getattr(self, f.name).to_toml()!r}" for f in dataclasses.fields(self))
        return f"{type(self).__name__}({args})"


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


def register(name: str) -> Callable[[type], type]:
    """Class decorator: make a transform available to presets under ``name``."""

    def decorate(cls: type) -> type:
        cls.name = name
        REGISTRY[name] = cls
        return cls

    return decorate


def create(step: Mapping[str, Any]) -> Transform:
    """Build a transform from a preset table ``{type = "pitch", semitones = [...], ...}``."""
    kind = step.get("type")
    if not isinstance(kind, str) or kind not in REGISTRY:
        known = ", ".join(sorted(REGISTRY))
        raise PresetError(f"unknown step type {kind!r}; known types: {known}")
    cls = REGISTRY[kind]
    allowed = {f.name for f in dataclasses.fields(cls)}
    extra = sorted(set(step) - allowed - {"type"})
    if extra:
        raise PresetError(f"step '{kind}': unknown parameter(s) {', '.join(extra)}; allowed: {', '.join(sorted(allowed))}")
    return cls(**{k: v for k, v in step.items() if k != "type"})
