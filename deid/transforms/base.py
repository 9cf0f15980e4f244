"""The Transform contract, parameter specifications and the registry.

A transform is a frozen dataclass whose fields are *parameter specifications*: a fixed value, a
``[min, max]`` range (optionally with a random sign) or a choice. ``draw(rng)`` turns them into
concrete, JSON-serialisable values; ``apply(y, sr, **drawn)`` is deterministic given those values.
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
        if self.values is not None:
            return value in self.values
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        return self.lo <= value <= self.hi


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
        bad = [v for v in param.options if not limit.check_value(v)]
        if bad:
            raise fail(f"has {bad[0]!r} out of range")
    elif isinstance(param, Range):
        if param.sign and not limit.signed:
            raise fail("cannot take a random sign")
        lo, hi = param.bounds()
        if not (limit.check_value(lo) and limit.check_value(hi)):
            raise fail(f"range [{param.lo:g}, {param.hi:g}]{' with random sign' if param.sign else ''} is out of range")
    elif not limit.check_value(param.value):
        raise fail(f"= {param.value!r} is out of range")
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


class Domain(Protocol):
    """A representation that several steps edit in turn between one analysis and one synthesis.

    Consecutive steps of a pipeline in the same domain (the WORLD vocoder features, or a PSOLA
    plan) share it, so a chain of pitch and formant steps costs one analysis, not one per step.
    """

    @staticmethod
    def analyze(y: np.ndarray, sr: int) -> Any: ...

    @staticmethod
    def synthesize(state: Any) -> np.ndarray: ...


class Transform:
    """Base of every registered transform.

    Subclasses are frozen dataclasses: each field holds a parameter specification, and
    ``LIMITS`` maps every field name to its :class:`Limit`. Construction validates the fields, so
    ``Pitch(semitones=40)`` fails at once with a message naming the step, parameter and range.
    """

    name: ClassVar[str] = ""
    LIMITS: ClassVar[dict[str, Limit]] = {}

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            raw = getattr(self, field.name)
            object.__setattr__(self, field.name, parse_param(self.name, field.name, raw, self.LIMITS[field.name]))

    def draw(self, rng: np.random.Generator) -> dict[str, Any]:
        """Draw concrete values for every parameter, in field order, from ``rng``."""
        return {f.name: _plain(getattr(self, f.name).draw(rng)) for f in dataclasses.fields(self)}

    def apply(self, y: np.ndarray, sr: int, **drawn: Any) -> np.ndarray:
        """Apply the transform with drawn values to float32 audio of shape ``(n,)``.

        A domain step runs alone in its domain; plain steps override this.
        """
        domain = self.domain(drawn)
        state = domain.analyze(y, sr)
        self.modify(state, **drawn)
        return domain.synthesize(state)

    def domain(self, drawn: Mapping[str, Any]) -> type[Domain] | None:
        """The domain these drawn values work in, or None for a step that works on samples."""
        return None

    def modify(self, state: Any, **drawn: Any) -> None:
        """Edit the domain state in place (only for steps whose ``domain`` is not None)."""
        raise NotImplementedError(f"step '{self.name}' works on samples, not in a domain")

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
    if kind not in REGISTRY:
        known = ", ".join(sorted(REGISTRY))
        raise PresetError(f"unknown step type {kind!r}; known types: {known}")
    cls = REGISTRY[kind]
    allowed = {f.name for f in dataclasses.fields(cls)}
    extra = sorted(set(step) - allowed - {"type"})
    if extra:
        raise PresetError(f"step '{kind}': unknown parameter(s) {', '.join(extra)}; allowed: {', '.join(sorted(allowed))}")
    return cls(**{k: v for k, v in step.items() if k != "type"})
