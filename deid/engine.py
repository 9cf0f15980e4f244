"""The engine: one signal through a chain of transforms, whole or in blocks, in bounded memory.

A short signal is one block; a long file is cut into blocks of about :data:`BLOCK_SECONDS`, and
both run through the same code. What a step needs is declared by the step itself (see
:mod:`deid.transforms.base`); the engine knows no transform by name.

1. **Units.** Consecutive steps in one domain (WORLD features, a PSOLA plan) become one unit with
   one analysis and one synthesis; every other step is a unit of its own. A non-empty chain ends
   with the peak ceiling, the engine's own unit: one gain for the whole signal that keeps its
   peak at or below :data:`PEAK_CEILING`.
2. **Cuts.** Blocks meet at the quietest 20 ms within ±2 s of every multiple of the block length
   (:func:`find_cuts`), in a pause, so the two versions of the audio that meet there are
   near-silent. Each block is processed with the context its units declare on both sides, thrown
   away afterwards, and neighbours are crossfaded over :data:`FADE` around the cut. A block of
   digital silence stays silent through every unit that needs context.
3. **Statistics passes**, only for units that ask: before a unit that measures, every block of
   its input goes through its ``measure`` in order, and the total is handed to every block.
   What a statistics pass leaves in a block's ``keep`` (an F0 contour) is reused by the
   processing pass of the same block.
4. **Segments.** A unit's input is the source read again and put through the units before it,
   unless it is cheaper to keep that input: then the units before it write their output once to a
   buffer, in memory for a one-block signal, otherwise in an anonymous temporary file in the
   system temp folder (unlinked at creation: never visible, gone when the process ends). Such a
   file only ever holds audio that a voice-changing step has already transformed; audio that
   still carries the input voice is recomputed instead.
5. **Output.** The last segment is written to the sink, after the span edits (:class:`SpanEdit`):
   the last stage in absolute time, after every transform and the peak ceiling, so that a span
   crossing a block edge is replaced whole and its replacement is never transformed.

Every block a step processes knows the absolute position of its first sample (``Block.start``),
so position-seeded noise and parameters tied to absolute time come out the same whole or in
blocks.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from deid.defaults import BLOCK_SECONDS
from deid.errors import DeidError
from deid.transforms.base import Block, Domain, Transform

#: Crossfade length at each cut, in seconds.
FADE = 0.05
#: How far from the nominal block boundary the quietest frame is looked for, in seconds.
SEARCH = 2.0
#: Frame length of the energy track that places the cuts, in seconds.
FRAME = 0.02
#: Output peak ceiling: -0.09 dBFS, so that integer formats never clip.
PEAK_CEILING = 0.99
#: Shorter signals hold less than two analysis frames of speech.
MIN_SECONDS = 0.05

Drawn = dict[str, Any]
__all__ = ["BLOCK_SECONDS", "ArraySink", "ArrayStream", "Sink", "SpanEdit", "Stream", "apply_steps",
           "ceiling_gain", "find_cuts", "one_block", "run"]


class Stream(Protocol):
    """Audio the engine reads: ``read(a, b)`` gives float32 ``(channels, b - a)`` for any span."""

    sr: int
    channels: int
    frames: int

    def read(self, a: int, b: int) -> np.ndarray: ...


class Sink(Protocol):
    """Where the engine writes its output, in order: float32 pieces of shape ``(channels, n)``."""

    def write(self, piece: np.ndarray) -> None: ...


@dataclass(frozen=True)
class SpanEdit:
    """Replace the output's samples ``[start, stop)`` by ``signal``, after every transform.

    Parameters
    ----------
    start, stop : int
        Absolute sample positions in the output (the input's, since steps keep the length).
    signal : np.ndarray or callable, optional
        ``(stop - start,)`` samples for every channel, or ``(channels, stop - start)``; None is
        silence; or a function of absolute positions, ``signal(lo, hi)`` giving the samples of
        ``[lo, hi)`` (a long span is then never held whole: redaction's tone and noise). It is
        written as it is: never transformed, never scaled.
    fade : int
        Samples at each end of the span, inside it, over which the output crossfades linearly
        from the transformed audio to the replacement and back. Beyond them, inside the span, the
        output is the replacement alone.
    """

    start: int
    stop: int
    signal: np.ndarray | None = None
    fade: int = 0

    def check(self, n: int, channels: int) -> None:
        if not 0 <= self.start < self.stop <= n:
            raise DeidError(f"span edit [{self.start}, {self.stop}) is not inside the signal's {n} samples")
        if self.fade < 0 or 2 * self.fade > self.stop - self.start:
            raise DeidError(f"span edit [{self.start}, {self.stop}): fade of {self.fade} samples does not fit")
        if self.signal is not None and not callable(self.signal):
            shape = np.shape(self.signal)
            if shape[-1] != self.stop - self.start or (len(shape) == 2 and shape[0] != channels) or len(shape) > 2:
                raise DeidError(f"span edit [{self.start}, {self.stop}): signal of shape {shape} does not fit "
                                f"{channels} channel(s) of {self.stop - self.start} samples")

    def apply(self, piece: np.ndarray, pos: int) -> None:
        """Replace, in place, what of the span falls in ``piece`` (``(channels, n)``, whose first
        sample is at absolute position ``pos``)."""
        lo, hi = max(pos, self.start), min(pos + piece.shape[-1], self.stop)
        if lo >= hi:
            return
        if self.signal is None:
            replacement: Any = np.float32(0.0)
        elif callable(self.signal):
            replacement = self.signal(lo, hi)
        else:
            replacement = np.asarray(self.signal, dtype=np.float32)[..., lo - self.start: hi - self.start]
        w = self.weight(lo, hi)
        piece[..., lo - pos: hi - pos] = piece[..., lo - pos: hi - pos] * (1.0 - w) + replacement * w

    def weight(self, lo: int, hi: int) -> np.ndarray:
        """How much of the replacement the output holds at ``[lo, hi)``: 1 beyond the fades."""
        w = np.ones(hi - lo, dtype=np.float32)
        if self.fade == 0:
            return w
        # Only the two fades are below 1: the ramp is worked out there alone (beyond them it is
        # clipped to 1), so a long span costs no more than a short one.
        for a, b in ((lo, min(hi, self.start + self.fade)), (max(lo, self.stop - self.fade), hi)):
            if a < b:
                t = np.arange(a, b, dtype=np.float64) + 0.5
                ramp = np.minimum(t - self.start, self.stop - t) / self.fade
                w[a - lo: b - lo] = np.clip(ramp, 0.0, 1.0)
        return w


def one_block(n: int, sr: int, block_seconds: float | None) -> bool:
    """Whether a signal of ``n`` samples runs as one block (a last block shorter than a quarter
    block is joined to the one before it, so up to 1.25 blocks are one)."""
    if block_seconds is None:
        return True
    block = int(block_seconds * sr)
    return n <= block + block // 4


def ceiling_gain(peak: float) -> float:
    """The gain that brings a peak down to :data:`PEAK_CEILING` (1.0 when it is already below)."""
    return PEAK_CEILING / peak if peak > PEAK_CEILING else 1.0


# --- units: what the engine runs ---------------------------------------------------------------


class _Unit:
    """Steps ``[lo, hi)`` of a chain as one thing to run: its context, passes and voice change."""

    context = 0.0
    changes_voice = False
    passes = 0
    #: Statistics shared by every channel (the peak ceiling): merged after the pass.
    joint = False

    def __init__(self, lo: int, hi: int) -> None:
        self.lo, self.hi = lo, hi

    def measure(self, block: Block, number: int, stats: list[Any], running: Any, drawn: list[Drawn]) -> Any:
        raise NotImplementedError

    def process(self, block: Block, stats: list[Any], drawn: list[Drawn]) -> np.ndarray:
        raise NotImplementedError


class _Step(_Unit):
    """One step on samples."""

    def __init__(self, step: Transform, index: int) -> None:
        super().__init__(index, index + 1)
        self.step = step
        self.context, self.changes_voice, self.passes = step.context, step.changes_voice, int(step.measures)

    def measure(self, block: Block, number: int, stats: list[Any], running: Any, drawn: list[Drawn]) -> Any:
        return self.step.measure(block, running, **drawn[0])

    def process(self, block: Block, stats: list[Any], drawn: list[Drawn]) -> np.ndarray:
        return self.step.process(block, stats[0] if stats else None, **drawn[0])


class _Group(_Unit):
    """Consecutive steps in one domain: one analysis, each step edits the state, one synthesis.

    Its passes: the domain's own statistics (if it measures), then those of its steps, measured
    on the domain's analysis of the group's input.
    """

    def __init__(self, domain: type[Domain], steps: list[Transform], lo: int) -> None:
        super().__init__(lo, lo + len(steps))
        self.domain, self.steps = domain, steps
        self.context = domain.context
        self.changes_voice = any(s.changes_voice for s in steps)
        self._own = int(domain.measures)
        self.passes = self._own + int(any(s.measures for s in steps))

    def _domain_stats(self, stats: list[Any]) -> Any:
        return stats[0] if self._own else None

    def measure(self, block: Block, number: int, stats: list[Any], running: Any, drawn: list[Drawn]) -> Any:
        if number < self._own:
            return self.domain.measure(block, running)
        state = self.domain.analyze(block, self._domain_stats(stats), synthesis=False)
        running = running or [None] * len(self.steps)
        return [s.measure(state, r, **d) if s.measures else None for s, r, d in zip(self.steps, running, drawn)]

    def process(self, block: Block, stats: list[Any], drawn: list[Drawn]) -> np.ndarray:
        state = self.domain.analyze(block, self._domain_stats(stats))
        own = stats[self._own] if len(stats) > self._own else [None] * len(self.steps)
        for step, st, d in zip(self.steps, own, drawn):
            step.modify(state, st, **d)
        return self.domain.synthesize(state)


class _Ceiling(_Unit):
    """The peak ceiling: one gain for the whole signal, every channel alike."""

    passes = 1
    joint = True

    def measure(self, block: Block, number: int, stats: list[Any], running: Any, drawn: list[Drawn]) -> Any:
        own = block.samples[block.owned]
        return max(running or 0.0, float(np.max(np.abs(own))) if own.size else 0.0)

    def process(self, block: Block, stats: list[Any], drawn: list[Drawn]) -> np.ndarray:
        gain = ceiling_gain(stats[0])
        return block.samples * np.float32(gain) if gain < 1.0 else block.samples


def _units(steps: Sequence[Transform]) -> list[_Unit]:
    units: list[_Unit] = []
    i = 0
    while i < len(steps):
        domain = steps[i].domain()
        if domain is None:
            units.append(_Step(steps[i], i))
            i += 1
            continue
        j = i
        while j < len(steps) and steps[j].domain() is domain:
            j += 1
        units.append(_Group(domain, list(steps[i:j]), i))
        i = j
    return units


def _segments(units: list[_Unit], *, memory: bool) -> list[tuple[int, int]]:
    """Runs of units rendered from one input; each later one reads the buffer the one before wrote.

    A buffer goes before a unit that measures its input when recomputing that input would cost
    analysis (a unit with context). On disk it may only hold transformed voice: after a buffer
    (which already does), or after a voice-changing unit.
    """
    segments: list[tuple[int, int]] = []
    start = 0
    for i, unit in enumerate(units):
        if not unit.passes or i == start:
            continue
        prefix = units[start:i]
        costly = any(u.context > 0 for u in prefix)
        transformed = start > 0 or any(u.changes_voice for u in prefix)
        if memory or (costly and transformed):
            segments.append((start, i))
            start = i
    segments.append((start, len(units)))
    return segments


# --- geometry: where blocks are --------------------------------------------------------------


def find_cuts(stream: Stream, *, block: int) -> list[int]:
    """Sample positions where blocks meet: 0, the quietest frame near each ``block``, the end.

    Only the 4 s around each nominal boundary are read.
    """
    sr, n = stream.sr, stream.frames
    frame = max(1, int(FRAME * sr))
    search = min(int(SEARCH * sr), block // 4)
    cuts = [0]
    # A last block shorter than a quarter block is joined to the one before it.
    while n - cuts[-1] > block + block // 4:
        lo = (cuts[-1] + block - search) // frame
        hi = (cuts[-1] + block + search) // frame
        mono = stream.read(lo * frame, hi * frame).mean(axis=0)
        energy = np.square(mono).reshape(-1, frame).mean(axis=1)
        cuts.append((lo + int(np.argmin(energy))) * frame + frame // 2)
    cuts.append(n)
    return cuts


@dataclass(frozen=True)
class _Span:
    """One block: its index, what it owns, what it contributes (crossfade halves included), what it reads."""

    index: int
    own: tuple[int, int]
    out: tuple[int, int]
    read: tuple[int, int]


@dataclass(frozen=True)
class _Geometry:
    sr: int
    n: int
    cuts: list[int]
    context: float

    @property
    def fade(self) -> int:
        # Blocks of pointwise units agree sample for sample: nothing to crossfade.
        return 2 * (int(FADE * self.sr) // 2) if self.context > 0 and len(self.cuts) > 2 else 0

    def spans(self) -> Iterator[_Span]:
        half, ctx = self.fade // 2, int(round(self.context * self.sr))
        last = len(self.cuts) - 2
        for k in range(last + 1):
            own = (self.cuts[k], self.cuts[k + 1])
            out = (own[0] - (half if k > 0 else 0), own[1] + (half if k < last else 0))
            yield _Span(k, own, out, (max(out[0] - ctx, 0), min(out[1] + ctx, self.n)))


@functools.cache
def _malloc_trim() -> Any:
    """glibc's malloc_trim, or None elsewhere."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def _release_memory() -> None:
    """Give the memory freed by the last block back to the system.

    Blocks differ in length (each cut sits in a pause near its nominal place), so the buffers of
    one seldom fit the holes the last left in the heap; without this a worker grows by tens of
    megabytes over an hour of 48 kHz stereo, though it holds only one block at a time.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def _ramps(length: int) -> tuple[np.ndarray, np.ndarray]:
    """Linear fade-out and fade-in weights (they sum to 1: the same signal rendered twice)."""
    t = (np.arange(length, dtype=np.float64) + 0.5) / length
    return (1.0 - t).astype(np.float32), t.astype(np.float32)


# --- buffers ---------------------------------------------------------------------------------


class _FileBuffer:
    """A stage of a long file: raw float32 in an anonymous temporary file in the system temp folder.

    ``tempfile.TemporaryFile`` opens it unlinked (O_TMPFILE on Linux): no name ever appears in any
    folder, and the space is freed when the file is closed or the process ends, even by a kill.
    Each channel is one contiguous run of the file, so that pieces go in and out without copies.
    """

    def __init__(self, channels: int, n: int, sr: int) -> None:
        self.sr, self.channels, self.frames = sr, channels, n
        self._file = tempfile.TemporaryFile(prefix="deid-")  # noqa: SIM115 - closed by close()
        self._pos = 0

    def write(self, piece: np.ndarray) -> None:
        fd = self._file.fileno()
        for c in range(self.channels):
            data = np.ascontiguousarray(piece[c], dtype=np.float32)
            if os.pwrite(fd, data, 4 * (c * self.frames + self._pos)) != data.nbytes:
                raise OSError("short write to a temporary buffer (disk full?)")
        self._pos += piece.shape[1]

    def read(self, a: int, b: int) -> np.ndarray:
        out = np.empty((self.channels, b - a), dtype=np.float32)
        for c in range(self.channels):
            if os.preadv(self._file.fileno(), [out[c]], 4 * (c * self.frames + a)) != out[c].nbytes:
                raise OSError("short read from a temporary buffer")
        return out

    def close(self) -> None:
        self._file.close()


class _Edited:
    """The sink, with the span edits applied to each piece at its absolute position."""

    def __init__(self, sink: Sink, edits: Sequence[SpanEdit]) -> None:
        self._sink, self._edits, self._pos = sink, sorted(edits, key=lambda e: e.start), 0

    def write(self, piece: np.ndarray) -> None:
        for edit in self._edits:
            edit.apply(piece, self._pos)
        self._pos += piece.shape[1]
        self._sink.write(piece)


# --- the run ---------------------------------------------------------------------------------


class _Run:
    """One run of a chain over a stream; see the module docstring."""

    def __init__(self, units: list[_Unit], stream: Stream, draws: list[list[Drawn]], cuts: list[int]) -> None:
        self.units, self.stream, self.draws, self.cuts = units, stream, draws, cuts
        self.channels, self.sr, self.n = stream.channels, stream.sr, stream.frames
        self.stats: dict[int, list[list[Any]]] = {}
        self.keeps: dict[tuple[int, int, int], dict[str, Any]] = {}

    def _stats(self, u: int, channel: int) -> list[Any]:
        return [per_channel[channel] for per_channel in self.stats.get(u, [])]

    def _drawn(self, u: int, channel: int) -> list[Drawn]:
        unit = self.units[u]
        return self.draws[channel][unit.lo: unit.hi]

    def _block(self, samples: np.ndarray, span: _Span, u: int, channel: int) -> Block:
        keep = self.keeps.setdefault((span.index, channel, u), {})
        return Block(samples, self.sr, span.read[0], own=span.own, total=self.n, keep=keep)

    def _render(self, x: np.ndarray, span: _Span, lo: int, hi: int, channel: int) -> np.ndarray:
        """Channel ``channel`` of the input ``x`` over ``span.read``, through units ``[lo, hi)``."""
        y = x
        for u in range(lo, hi):
            unit = self.units[u]
            if unit.context > 0 and not np.any(y):
                continue
            y = unit.process(self._block(y, span, u, channel), self._stats(u, channel), self._drawn(u, channel))
            if len(y) != len(x):
                raise AssertionError(f"unit {u} changed the length from {len(x)} to {len(y)}")
        return np.asarray(y, dtype=np.float32)

    def measure(self, source: Stream, start: int, u: int, geometry: _Geometry) -> None:
        """Every statistics pass of unit ``u``, whose input is ``source`` through units ``[start, u)``."""
        unit = self.units[u]
        self.stats[u] = []
        for number in range(unit.passes):
            totals: list[Any] = [None] * self.channels
            for span in geometry.spans():
                x = source.read(*span.read)
                for c in range(self.channels):
                    y = self._render(x[c], span, start, u, c)
                    if unit.context > 0 and not np.any(y):
                        continue
                    totals[c] = unit.measure(self._block(y, span, u, c), number, self._stats(u, c), totals[c],
                                             self._drawn(u, c))
                if len(self.cuts) > 2:
                    _release_memory()
            if unit.joint:
                totals = [max((t for t in totals if t is not None), default=0.0)] * self.channels
            self.stats[u].append(totals)

    def render(self, source: Stream, start: int, stop: int, geometry: _Geometry, target: Sink) -> None:
        """Units ``[start, stop)`` over ``source``, blocks crossfaded at the cuts, written to ``target``."""
        fade = geometry.fade
        out_ramp, in_ramp = _ramps(fade) if fade else (None, None)
        held: np.ndarray | None = None
        for span in geometry.spans():
            x = source.read(*span.read)
            rendered = np.empty_like(x)
            for c in range(self.channels):
                rendered[c] = self._render(x[c], span, start, stop, c)
            del x
            piece = rendered[:, span.out[0] - span.read[0]: span.out[1] - span.read[0]]
            if held is not None:
                piece[:, :fade] = held * out_ramp + piece[:, :fade] * in_ramp
            if fade and span.out[1] < self.n:
                held = piece[:, -fade:].copy()
                piece = piece[:, :-fade]
            target.write(piece)
            if len(self.cuts) > 2:
                del rendered, piece
                _release_memory()


def run(
    steps: Sequence[Transform],
    stream: Stream,
    sink: Sink,
    draws: list[list[Drawn]],
    *,
    block_seconds: float | None = None,
    edits: Sequence[SpanEdit] = (),
    ceiling: bool = True,
) -> float:
    """Run ``steps`` over ``stream`` into ``sink``; returns the peak-ceiling gain (1.0 when none).

    Parameters
    ----------
    steps : sequence of Transform
        The chain; may be empty (only the span edits then change the audio).
    stream : Stream
        The input.
    sink : Sink
        Receives the output in order.
    draws : list of list of dict
        Per channel, the drawn values of every step.
    block_seconds : float, optional
        Nominal block length; None (or a signal shorter than 1.25 blocks) runs as one block.
    edits : sequence of SpanEdit
        Replacements applied to the output in absolute time.
    ceiling : bool
        End a non-empty chain with the peak ceiling.
    """
    n, sr = stream.frames, stream.sr
    for edit in edits:
        edit.check(n, stream.channels)
    units = _units(steps)
    if ceiling and units:
        units.append(_Ceiling(len(steps), len(steps)))
    cuts = [0, n] if one_block(n, sr, block_seconds) else find_cuts(stream, block=int(block_seconds * sr))
    memory = len(cuts) == 2
    job = _Run(units, stream, draws, cuts)
    segments = _segments(units, memory=memory)
    buffers: list[Any] = []
    try:
        for number, (start, stop) in enumerate(segments):
            source = buffers[-1] if buffers else stream
            geometry = _Geometry(sr, n, cuts, sum(u.context for u in units[start:stop]))
            for u in range(start, stop):
                if units[u].passes:
                    job.measure(source, start, u, geometry)
            if number == len(segments) - 1:
                job.render(source, start, stop, geometry, _Edited(sink, edits))
                break
            buffers.append((ArraySink if memory else _FileBuffer)(stream.channels, n, sr))
            job.render(source, start, stop, geometry, buffers[-1])
            if len(buffers) > 1:
                buffers.pop(0).close()
    finally:
        for buffer in buffers:
            buffer.close()
    if units and isinstance(units[-1], _Ceiling):
        return ceiling_gain(job.stats[len(units) - 1][0][0])
    return 1.0


class ArrayStream:
    """An in-memory signal as a :class:`Stream`: float32 ``(channels, n)``."""

    def __init__(self, samples: np.ndarray, sr: int) -> None:
        self.samples, self.sr = samples, sr
        self.channels, self.frames = samples.shape

    def read(self, a: int, b: int) -> np.ndarray:
        return self.samples[:, a:b]


class ArraySink:
    """Collects the output in memory (and serves as the buffer between the stages of a one-block signal)."""

    def __init__(self, channels: int, n: int, sr: int = 0) -> None:
        self.sr, self.channels, self.frames = sr, channels, n
        self.audio = np.empty((channels, n), dtype=np.float32)
        self._pos = 0

    def write(self, piece: np.ndarray) -> None:
        self.audio[:, self._pos: self._pos + piece.shape[1]] = piece
        self._pos += piece.shape[1]

    def read(self, a: int, b: int) -> np.ndarray:
        return self.audio[:, a:b]

    def close(self) -> None:
        self.audio = np.empty((self.channels, 0), dtype=np.float32)


def apply_steps(steps: Sequence[Transform], y: np.ndarray, sr: int, drawn: list[Drawn]) -> np.ndarray:
    """``steps`` with their drawn values on one whole channel ``y``, as one block, without the ceiling."""
    x = np.ascontiguousarray(np.asarray(y, dtype=np.float32))[None, :]
    sink = ArraySink(1, x.shape[1])
    run(steps, ArrayStream(x, sr), sink, [list(drawn)], ceiling=False)
    return sink.audio[0]
