"""A chain of transforms, applied with key-derived randomness.

``Pipeline`` is list-like and callable, like pedalboard's ``Pedalboard``::

    Pipeline([Pitch(semitones=(3, 5)), Formant(ratio=1.1), Noise(snr_db=25)])(y, sr, seed=1)

Each run draws every step's parameters from one generator per scope (file, speaker or channel,
see :mod:`deid.keys`), then runs the chain through the engine (:mod:`deid.engine`): an array
is one block; :func:`deid.anonymize_file` runs long files in blocks through the same code.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableSequence, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

import numpy as np

from deid import engine
from deid.defaults import MIN_BLOCK_SECONDS, MIN_SAMPLE_RATE
from deid.engine import MIN_SECONDS, PEAK_CEILING, SpanEdit, ceiling_gain
from deid.errors import DeidError
from deid.keys import Key, content_scope, resolve_key, rng_for
from deid.transforms.base import Transform

LINKS = ("file", "speaker", "channel")
__all__ = ["LINKS", "MIN_SECONDS", "PEAK_CEILING", "AppliedStep", "Pipeline", "Result", "SpanEdit", "as_audio",
           "ceiling_gain", "check_audio", "check_length", "check_options", "check_rate"]


@dataclass(frozen=True)
class AppliedStep:
    """One step as it was applied: its name, the values it drew, and the channel(s) it ran on."""

    step: str
    params: dict[str, Any]
    channel: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"step": self.step, "channel": "all" if self.channel is None else self.channel, **self.params}


@dataclass
class Result:
    """Output of a pipeline run, with everything a script needs to audit it.

    ``gain`` is the scaling applied to keep the peak at or below ``PEAK_CEILING`` (1.0 when none
    was needed).
    """

    audio: np.ndarray
    sr: int
    applied: list[AppliedStep] = field(default_factory=list)
    gain: float = 1.0
    #: What was redacted (a :class:`deid.redact.FilePlan`), when redaction ran.
    redaction: Any = None

    @property
    def scaled(self) -> bool:
        return self.gain < 1.0


def check_length(n: int, sr: int) -> None:
    """Refuse a signal too short to hold speech."""
    if n < MIN_SECONDS * sr:
        raise DeidError(f"too short: {n} sample(s), at least {MIN_SECONDS * 1000:g} ms are needed")


def check_rate(sr: Any) -> int:
    """The sample rate as an int; refuses what is not a whole number of Hz at or above the floor."""
    if isinstance(sr, bool) or not isinstance(sr, (int, np.integer)):
        raise DeidError(f"the sample rate must be an integer number of Hz, not {type(sr).__name__} {sr!r}")
    if sr < MIN_SAMPLE_RATE:
        raise DeidError(f"the sample rate is {sr} Hz; deid processes speech sampled at {MIN_SAMPLE_RATE} Hz "
                        "(telephone quality) or more")
    return int(sr)


def as_audio(y: Any) -> np.ndarray:
    """`y` as float32 audio of shape ``(n,)`` or ``(channels, n)``, or a DeidError saying why it is not.

    Signed integers are scaled to [-1, 1); unsigned ones (8-bit WAV's convention) are centred on
    their midpoint first.
    """
    try:
        y = np.asarray(y)
    except (TypeError, ValueError) as exc:  # a ragged nest of lists
        raise DeidError(f"audio must be an array of numbers: {exc}") from None
    if y.dtype.kind not in "fiu":
        raise DeidError(f"audio must be an array of integers or floats, not of {y.dtype} (dtype kind {y.dtype.kind!r})")
    if y.ndim not in (1, 2) or y.shape[-1] == 0:
        raise DeidError(f"expected audio of shape (n,) or (channels, n) with n > 0, got {y.shape}")
    if y.ndim == 2 and y.shape[0] > y.shape[1]:
        raise DeidError(f"audio of shape {y.shape} looks like (samples, channels): deid takes (channels, samples); "
                        "pass y.T")
    if y.dtype.kind == "u":
        middle = float(2 ** (8 * y.dtype.itemsize - 1))
        return ((y.astype(np.float64) - middle) / middle).astype(np.float32)
    if y.dtype.kind == "i":
        return (y / float(-np.iinfo(y.dtype).min)).astype(np.float32)
    return y.astype(np.float32, copy=False)


def check_audio(y: np.ndarray, sr: int) -> None:
    """Refuse audio that cannot be anonymized meaningfully, with a one-line reason."""
    check_rate(sr)
    if y.ndim not in (1, 2) or y.shape[-1] == 0:
        raise DeidError(f"expected audio of shape (n,) or (channels, n) with n > 0, got {y.shape}")
    check_length(y.shape[-1], sr)
    if not np.all(np.isfinite(y)):
        raise DeidError("contains NaN or infinite samples")
    if not np.any(y):
        raise DeidError("is silent (every sample is zero): there is no voice to anonymize")


def check_options(*, scope: Any = None, link: Any = "file", edits: Any = (), block_seconds: Any = None) -> None:
    """Check the options the public entry points share (:meth:`Pipeline.run`, :func:`deid.anonymize`,
    :func:`deid.anonymize_file`, :func:`deid.batch.run_batch`), before any work: the key scope,
    the link, the span edits and the block length."""
    if block_seconds is not None and (isinstance(block_seconds, bool) or not isinstance(block_seconds, (int, float))
                                      or not MIN_BLOCK_SECONDS <= block_seconds < float("inf")):
        raise DeidError(f"block_seconds must be None (whole files) or a number of seconds, at least "
                        f"{MIN_BLOCK_SECONDS:g}; got {block_seconds!r}")
    if scope is not None and not isinstance(scope, str):
        raise DeidError(f"a scope must be a str (such as 'speaker:alice'), not {type(scope).__name__}")
    if link not in LINKS:
        raise DeidError(f"unknown link {link!r}; use one of {', '.join(LINKS)}")
    if isinstance(edits, (str, bytes)) or not isinstance(edits, Iterable):
        raise DeidError(f"edits must be a sequence of deid.SpanEdit, not {type(edits).__name__}")
    for edit in edits:
        if not isinstance(edit, SpanEdit):
            raise DeidError(f"edits must be deid.SpanEdit objects, not {type(edit).__name__}")
        for name in ("start", "stop", "fade"):
            value = getattr(edit, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise DeidError(f"a span edit's {name} must be an integer sample index, not {type(value).__name__}")


class Pipeline(MutableSequence[Transform]):
    """An ordered, editable chain of transforms.

    Parameters
    ----------
    steps : iterable of Transform
        The chain.
    name : str, optional
        Preset name, when built from a preset.
    description : str
        One line saying what the chain is for.
    redact : deid.redact.RedactOptions, optional
        Spoken personal data to redact by default (a preset's ``[redact]`` table).
    """

    def __init__(self, steps: Iterable[Transform] = (), *, name: str | None = None, description: str = "",
                 redact: Any = None) -> None:
        self._steps: list[Transform] = []
        self.name = name
        self.description = description
        self.redact = redact
        for step in steps:
            self.append(step)

    @overload
    def __getitem__(self, index: int) -> Transform: ...
    @overload
    def __getitem__(self, index: slice) -> Pipeline: ...
    def __getitem__(self, index: int | slice) -> Transform | Pipeline:
        if isinstance(index, slice):
            return Pipeline(self._steps[index], name=self.name, description=self.description, redact=self.redact)
        return self._steps[index]

    def __setitem__(self, index: Any, value: Any) -> None:
        values = list(value) if isinstance(index, slice) else [value]
        for v in values:
            _check_step(v)
        self._steps[index] = value if not isinstance(index, slice) else values

    def __delitem__(self, index: int | slice) -> None:
        del self._steps[index]

    def __len__(self) -> int:
        return len(self._steps)

    def insert(self, index: int, value: Transform) -> None:
        self._steps.insert(index, _check_step(value))

    def __repr__(self) -> str:
        label = f" {self.name!r}" if self.name else ""
        return f"<Pipeline{label} [{', '.join(map(repr, self._steps))}]>"

    def draw(self, rng: np.random.Generator) -> list[dict[str, Any]]:
        """Draw the parameters of every step, in order, from one generator."""
        return [step.draw(rng) for step in self._steps]

    def apply(self, y: np.ndarray, sr: int, drawn: list[dict[str, Any]]) -> np.ndarray:
        """Apply every step with its drawn values to one channel (shape ``(n,)``), without the peak
        ceiling; deterministic given ``drawn``."""
        return engine.apply_steps(self._steps, y, sr, drawn)

    def run(
        self,
        y: np.ndarray,
        sr: int,
        *,
        key: Key | bytes | str | None = None,
        seed: int | None = None,
        scope: str | None = None,
        link: str = "file",
        edits: Sequence[SpanEdit] = (),
    ) -> Result:
        """Anonymize ``y`` and report what was applied.

        Parameters
        ----------
        y : np.ndarray, shape (n,) or (channels, n)
            Audio, any float or integer dtype (integers are scaled to [-1, 1)).
        sr : int
            Sample rate in Hz.
        key, seed
            The secret key (bytes, str or :class:`deid.keys.Key`) or a non-secret seed. With
            neither, ``$DEID_KEY`` or else a fresh random key is used.
        scope : str, optional
            What the draws are tied to. Defaults to a hash of the audio, so each recording gets
            its own voice; pass ``"speaker:NAME"`` to give all of a speaker's clips one voice.
        link : {"file", "speaker", "channel"}
            ``channel`` draws a separate voice for each channel (within ``scope``).
        edits : sequence of SpanEdit
            Spans of the output replaced, after every step and the peak ceiling, by a signal
            that is never transformed (see :class:`deid.engine.SpanEdit`).
        """
        check_options(scope=scope, link=link, edits=edits)
        key = resolve_key(key, seed=seed)
        audio = as_audio(y)
        check_audio(audio, sr)
        channels = audio[None, :] if audio.ndim == 1 else audio
        if scope is None:
            scope = content_scope(np.ascontiguousarray(channels).tobytes())
        sink = engine.ArraySink(*channels.shape)
        applied, gain = self.process(engine.ArrayStream(channels, int(sr)), sink, key=key, scope=scope, link=link,
                                     edits=edits)
        return Result(audio=sink.audio if audio.ndim == 2 else sink.audio[0], sr=sr, applied=applied, gain=gain)

    def process(
        self,
        stream: engine.Stream,
        sink: engine.Sink,
        *,
        key: Key,
        scope: str,
        link: str = "file",
        block_seconds: float | None = None,
        edits: Sequence[SpanEdit] = (),
    ) -> tuple[list[AppliedStep], float]:
        """Draw for ``scope`` and run the chain over ``stream`` into ``sink``: what :meth:`run` and
        :func:`deid.anonymize_file` share. Returns what was applied and the peak-ceiling gain."""
        check_options(scope=scope, link=link, edits=edits)
        draws = self.draw_channels(key, scope, link=link, channels=stream.channels)
        gain = engine.run(self._steps, stream, sink, draws, block_seconds=block_seconds, edits=edits)
        return self.applied(draws, link=link), gain

    def draw_channels(self, key: Key, scope: str, *, link: str, channels: int) -> list[list[dict[str, Any]]]:
        """The drawn values of each channel: one draw for all, or one per channel with ``link="channel"``."""
        if link == "channel":
            return [self.draw(rng_for(key, f"{scope}:channel{c}")) for c in range(channels)]
        return [self.draw(rng_for(key, scope))] * channels

    def applied(self, draws: list[list[dict[str, Any]]], *, link: str) -> list[AppliedStep]:
        """The record of what :meth:`draw_channels` drew, for :class:`Result`."""
        if link == "channel":
            return [AppliedStep(s.name, d, c) for c, drawn in enumerate(draws) for s, d in zip(self._steps, drawn)]
        return [AppliedStep(s.name, d) for s, d in zip(self._steps, draws[0])]

    def __call__(self, y: np.ndarray, sr: int, **kwargs: Any) -> np.ndarray:
        """Anonymize ``y``; keyword arguments as for :meth:`run`. Returns float32 audio."""
        return self.run(y, sr, **kwargs).audio

    def to_toml(self) -> str:
        """The chain as a preset file."""
        lines = [f"description = {_toml_value(self.description)}", ""]
        for step in self._steps:
            lines.append("[[step]]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in step.to_toml().items()]
            lines.append("")
        if self.redact is not None:
            lines.append("[redact]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in self.redact.to_toml().items()]
            lines.append("")
        return "\n".join(lines)


def _check_step(step: Any) -> Transform:
    if not isinstance(step, Transform):
        raise DeidError(f"a Pipeline holds transforms, not {type(step).__name__}")
    return step


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    return repr(value)
