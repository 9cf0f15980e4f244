"""Long files in bounded memory: a pipeline run over blocks, stitched without seams.

A two-hour call does not fit comfortably in memory with the analysis buffers of every step, so
:func:`anonymize_blocks` streams it:

1. **Cuts.** One read of the input finds the quietest 20 ms frame within ±2 s of every multiple
   of the block length, and checks every sample is finite. Blocks meet there, in a pause, so
   the two versions of the audio that meet at a cut are near-silent.
2. **Local steps** (pitch, formant, VTLN, band limit, McAdams: anything working frame by frame)
   run on each block with :data:`CONTEXT` seconds of extra input on each side, thrown away
   afterwards, and neighbouring blocks are crossfaded linearly over :data:`FADE` around the cut.
   Every block uses the same drawn parameters: they are drawn once per file (or per channel),
   from the file's key scope, exactly as for whole-file processing. ``pseudovoice`` normalises
   the voice by statistics of its whole input (F0 median and spread, long-term envelope): a light
   first pass measures them over every block of that input and each block gets the total, so
   the blocks of a file are moved alike (per-block statistics would move each block by its
   own, leaving jumps in pitch and timbre at the cuts).
3. **Level steps** read a statistic of the whole signal that enters them; it is measured while
   the previous stage is written, and applied in a further pass:

   - ``noise`` is added at the SNR drawn for the file, relative to the power of the whole
     channel. Its samples come from one generator per block, seeded from (the drawn seed,
     block index), crossfaded with equal power (independent noises add in power).
   - ``loudness`` is measured over the whole channel with libebur128 (pyebur128), which
     gates 400 ms blocks as pyloudnorm does for whole files (the two agree within 0.2 LU).
4. **Peak ceiling.** The peak of the last stage gives the one gain (``Result.gain``) that keeps
   the file under :data:`deid.pipeline.PEAK_CEILING`, applied while the output is written.

Intermediate stages are raw float32 files beside the output (hidden, removed at the end, and
cleaned by the next batch run after a kill), read back in blocks; memory holds one block and its
analysis at a time. Compared with whole-file processing, the output differs only in the
crossfades at the cuts and in the noise samples (same level and colour, other realisation);
``tests/test_blocks.py`` states the measured tolerance.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deid.audio import atomic_output, check_writable
from deid.errors import AudioError
from deid.keys import Key
from deid.pipeline import AppliedStep, Pipeline, ceiling_gain
from deid.transforms.loudness import Loudness
from deid.transforms.noise import Noise, colored_noise
from deid.transforms.pseudovoice import PseudoVoice, VoiceStats, measure_voice

#: Input beyond each cut that a block is processed with and then discards, in seconds: enough
#: for F0 analysis windows and PSOLA grains at the block's edges to see real signal.
CONTEXT = 1.0
#: Crossfade length at each cut, in seconds.
FADE = 0.05
#: How far from the nominal block boundary the quietest frame is looked for, in seconds.
SEARCH = 2.0
#: Frame length of the energy track that places the cuts, in seconds.
FRAME = 0.02


def anonymize_blocks(
    src: Path,
    dst: Path,
    pipeline: Pipeline,
    *,
    key: Key,
    scope: str,
    link: str,
    format: str,
    subtype: str,
    block_seconds: float,
) -> tuple[list[AppliedStep], float]:
    """Anonymize the file ``src`` into ``dst`` block by block; see the module docstring.

    Parameters
    ----------
    src, dst : Path
        Input file (any format soundfile can seek in) and output file.
    pipeline, key, scope, link
        As for :meth:`deid.pipeline.Pipeline.run`.
    format, subtype : str
        soundfile format and subtype of the output.
    block_seconds : float
        Nominal block length; blocks meet at the quietest frame near each multiple of it.

    Returns
    -------
    applied : list of AppliedStep
        The drawn values, the same for every block.
    gain : float
        The peak-ceiling gain applied to the whole file.
    """
    import soundfile as sf

    try:
        handle = sf.SoundFile(str(src))
    except (sf.LibsndfileError, RuntimeError):
        raise AudioError("not a recognised audio file (unsupported format or corrupt header)", src) from None
    with handle:
        sr, channels, n = handle.samplerate, handle.channels, handle.frames
        check_writable(dst, sr, format=format, subtype=subtype)
        cuts = find_cuts(handle, src, block=int(block_seconds * sr))
        draws = pipeline.draw_channels(key, scope, link=link, channels=channels)
        geometry = _Geometry(sr, n, cuts)
        source: _Source = _FileSource(handle, src)
        stages = _stages(pipeline)
        if stages[0][0] != "local":
            # A level step first needs the input's own statistics: copy it through once.
            stages.insert(0, ("copy", 0, 0))
        buffers: list[_Buffer] = []
        previous = _Stats(channels, sr, loudness=False)
        try:
            for number, (kind, lo, hi) in enumerate(stages):
                wants_loudness = number + 1 < len(stages) and stages[number + 1][0] == "loudness"
                sink = _Buffer(dst, channels, _Stats(channels, sr, loudness=wants_loudness))
                buffers.append(sink)
                if kind == "local":
                    sub = pipeline[lo:hi]
                    values = [d[lo:hi] for d in draws]
                    if isinstance(pipeline[lo], PseudoVoice):
                        # Measured, not drawn: the whole stage input's voice, the same for every block.
                        methods = [v[0]["method"] for v in values]
                        values = [[v[0] | {"stats": st}, *v[1:]] for v, st in
                                  zip(values, _voice_stats(geometry, source, methods))]
                    _stitch(geometry, sink, lambda a, b, c, s=sub, v=values: s.apply(source.read(a, b)[c], sr, v[c]),
                            fade="linear", silent=lambda a, b: not np.any(source.read(a, b)))
                elif kind == "noise":
                    _add_noise(geometry, source, sink, [d[lo] for d in draws], power=previous.sumsq / n)
                elif kind == "loudness":
                    _apply_gain(geometry, source, sink, _loudness_gains(previous, [d[lo] for d in draws]))
                else:
                    _apply_gain(geometry, source, sink, np.ones(channels, dtype=np.float32))
                sink.finish()
                if len(buffers) > 1:
                    buffers.pop(0).close()
                source, previous = sink, sink.stats
            gain = ceiling_gain(previous.peak)
            _write(geometry, source, dst, gain, format=format, subtype=subtype)
        finally:
            for buffer in buffers:
                buffer.close()
    return pipeline.applied(draws, link=link), gain


def find_cuts(handle: Any, path: Path, *, block: int) -> list[int]:
    """Sample positions where blocks meet: 0, the quietest frame near each ``block``, the end.

    Also checks, in the same read, that the file holds finite, non-silent, complete audio.
    """
    sr, n = handle.samplerate, handle.frames
    frame = max(1, int(FRAME * sr))
    energy: list[np.ndarray] = []
    peak = 0.0
    read = 0
    handle.seek(0)
    for chunk in handle.blocks(blocksize=frame * 1000, dtype="float32", always_2d=True):
        if not np.all(np.isfinite(chunk)):
            raise AudioError("contains NaN or infinite samples", path)
        peak = max(peak, float(np.max(np.abs(chunk))))
        mono = chunk.mean(axis=1)
        whole = len(mono) // frame * frame
        energy.append(np.square(mono[:whole]).reshape(-1, frame).mean(axis=1))
        read += len(chunk)
    if read < 0.99 * n:
        raise AudioError(f"truncated: the header declares {n} frames, only {read} could be decoded", path)
    if peak == 0.0:
        raise AudioError("is silent (every sample is zero): there is no voice to anonymize", path)
    track = np.concatenate(energy)
    search = min(int(SEARCH * sr), block // 4)
    cuts = [0]
    # A last block shorter than a quarter block is joined to the one before it.
    while n - cuts[-1] > block + block // 4:
        lo = (cuts[-1] + block - search) // frame
        hi = (cuts[-1] + block + search) // frame
        quietest = lo + int(np.argmin(track[lo:hi]))
        cuts.append(quietest * frame + frame // 2)
    cuts.append(n)
    return cuts


@dataclass(frozen=True)
class _Geometry:
    """Where blocks start and end, and how far their context and crossfades reach."""

    sr: int
    n: int
    cuts: list[int]

    @property
    def fade(self) -> int:
        return 2 * (int(FADE * self.sr) // 2)

    @property
    def context(self) -> int:
        return int(CONTEXT * self.sr)

    def blocks(self) -> Iterator[tuple[int, int, int]]:
        """Per block: its index and the span it contributes, crossfade halves included."""
        half = self.fade // 2
        last = len(self.cuts) - 2
        for k in range(last + 1):
            start = self.cuts[k] - (half if k > 0 else 0)
            stop = self.cuts[k + 1] + (half if k < last else 0)
            yield k, start, stop

    def chunks(self) -> Iterator[tuple[int, int]]:
        """Consecutive spans covering the file, one per block, for pointwise passes."""
        yield from zip(self.cuts[:-1], self.cuts[1:])


class _Stats:
    """What a later stage needs to know of a whole stage: power, peak, loudness per channel."""

    def __init__(self, channels: int, sr: int, *, loudness: bool) -> None:
        self.sumsq = np.zeros(channels)
        self.peak = 0.0
        self.meters: list[Any] = []
        if loudness:
            import pyebur128

            self.meters = [pyebur128.R128State(1, sr, pyebur128.MeasurementMode.MODE_I) for _ in range(channels)]

    def add(self, piece: np.ndarray) -> None:
        wide = piece.astype(np.float64)
        self.sumsq += np.sum(np.square(wide), axis=1)
        self.peak = max(self.peak, float(np.max(np.abs(piece))) if piece.size else 0.0)
        for meter, channel in zip(self.meters, wide):
            meter.add_frames(np.ascontiguousarray(channel), len(channel))

    def loudness(self, channel: int) -> float:
        import pyebur128

        return float(pyebur128.get_loudness_global(self.meters[channel]))


class _Source:
    def read(self, a: int, b: int) -> np.ndarray: ...


class _FileSource(_Source):
    """The input file, read at any span as float32 ``(channels, b - a)``."""

    def __init__(self, handle: Any, path: Path) -> None:
        self._handle, self._path = handle, path

    def read(self, a: int, b: int) -> np.ndarray:
        self._handle.seek(a)
        data = self._handle.read(b - a, dtype="float32", always_2d=True)
        if len(data) < b - a:
            raise AudioError(f"truncated: audio ends at frame {a + len(data)} of {self._handle.frames}", self._path)
        return np.ascontiguousarray(data.T)


class _Buffer(_Source):
    """An intermediate stage: raw interleaved float32 in a hidden temporary file beside the output."""

    def __init__(self, dst: Path, channels: int, stats: _Stats) -> None:
        fd, self._path = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".deid-tmp")
        self._file = os.fdopen(fd, "w+b")
        self.channels = channels
        self.stats = stats

    def write(self, piece: np.ndarray) -> None:
        self.stats.add(piece)
        self._file.write(np.ascontiguousarray(piece.T, dtype=np.float32).tobytes())

    def finish(self) -> None:
        self._file.flush()

    def read(self, a: int, b: int) -> np.ndarray:
        self._file.seek(a * self.channels * 4)
        data = np.fromfile(self._file, dtype=np.float32, count=(b - a) * self.channels)
        return np.ascontiguousarray(data.reshape(-1, self.channels).T)

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
            os.unlink(self._path)


def _stages(pipeline: Pipeline) -> list[tuple[str, int, int]]:
    """The chain as passes: runs of local steps, and each level step on its own."""
    stages: list[tuple[str, int, int]] = []
    for i, step in enumerate(pipeline):
        kind = "noise" if isinstance(step, Noise) else "loudness" if isinstance(step, Loudness) else "local"
        # pseudovoice normalises by statistics of its whole input, so its input must be a stage of its own.
        if kind == "local" and stages and stages[-1][0] == "local" and not isinstance(step, PseudoVoice):
            stages[-1] = ("local", stages[-1][1], i + 1)
        else:
            stages.append((kind, i, i + 1))
    return stages


def _voice_stats(geometry: _Geometry, source: _Source, methods: list[str]) -> list[VoiceStats]:
    """Per channel, the `VoiceStats` of the whole of ``source`` as that channel's engine measures
    them (``methods``), measured block by block and summed."""
    stats = [VoiceStats() for _ in methods]
    for a, b in geometry.chunks():
        piece = source.read(a, b)
        for c, method in enumerate(methods):
            if np.any(piece[c]):
                stats[c] = stats[c] + measure_voice(piece[c], sr=geometry.sr, method=method)
    return stats


def _ramps(length: int, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Fade-out and fade-in weights: linear (sum 1, for the same signal twice) or equal power."""
    t = (np.arange(length, dtype=np.float64) + 0.5) / length
    if kind == "linear":
        return (1.0 - t).astype(np.float32), t.astype(np.float32)
    return np.cos(0.5 * np.pi * t).astype(np.float32), np.sin(0.5 * np.pi * t).astype(np.float32)


def _stitch(
    geometry: _Geometry,
    sink: _Buffer,
    render: Callable[[int, int, int], np.ndarray],
    *,
    fade: str,
    silent: Callable[[int, int], bool] | None = None,
) -> None:
    """Render every block with context, crossfade at the cuts, and write the result in order.

    ``render(a, b, channel)`` returns the channel's samples for input span ``[a, b)``.
    """
    out_ramp, in_ramp = _ramps(geometry.fade, fade)
    held: np.ndarray | None = None
    channels = sink.channels
    for _, start, stop in geometry.blocks():
        a, b = max(start - geometry.context, 0), min(stop + geometry.context, geometry.n)
        if silent is not None and silent(a, b):
            # A block of digital silence stays silent; the steps refuse silent input.
            rendered = np.zeros((channels, b - a), dtype=np.float32)
        else:
            rendered = np.stack([render(a, b, c) for c in range(channels)])
        piece = rendered[:, start - a: stop - a]
        if held is not None:
            piece[:, : geometry.fade] = held * out_ramp + piece[:, : geometry.fade] * in_ramp
        if stop < geometry.n:
            held = piece[:, -geometry.fade:].copy()
            piece = piece[:, : -geometry.fade]
        sink.write(piece)


def _add_noise(geometry: _Geometry, source: _Source, sink: _Buffer, values: list[dict[str, Any]], *,
               power: np.ndarray) -> None:
    """The noise step over the whole file: level from the whole channel's power, one noise per block."""
    position = 0
    for piece in _NoiseStream(geometry, values, power).pieces():
        sink.write(source.read(position, position + piece.shape[1]) + piece)
        position += piece.shape[1]


class _NoiseStream:
    """Per-block noise at the file's level, crossfaded with equal power at the cuts."""

    def __init__(self, geometry: _Geometry, values: list[dict[str, Any]], power: np.ndarray) -> None:
        self._geometry, self._values, self._power = geometry, values, power

    def pieces(self) -> Iterator[np.ndarray]:
        out_ramp, in_ramp = _ramps(self._geometry.fade, "power")
        held: np.ndarray | None = None
        for k, start, stop in self._geometry.blocks():
            piece = np.stack([self._render(k, stop - start, c) for c in range(len(self._values))])
            if held is not None:
                piece[:, : self._geometry.fade] = held * out_ramp + piece[:, : self._geometry.fade] * in_ramp
            if stop < self._geometry.n:
                held = piece[:, -self._geometry.fade:].copy()
                piece = piece[:, : -self._geometry.fade]
            yield piece

    def _render(self, k: int, length: int, channel: int) -> np.ndarray:
        values = self._values[channel]
        rng = np.random.default_rng([values["seed"], k])
        level = np.sqrt(self._power[channel] / 10.0 ** (values["snr_db"] / 10.0))
        return (colored_noise(length, color=values["color"], rng=rng) * level).astype(np.float32)


def _loudness_gains(stats: _Stats, values: list[dict[str, Any]]) -> np.ndarray:
    """Per-channel gain to each channel's target loudness (1 where too quiet to measure)."""
    gains = np.ones(len(values), dtype=np.float32)
    for c, value in enumerate(values):
        measured = stats.loudness(c)
        if np.isfinite(measured):
            gains[c] = 10.0 ** ((value["target_lufs"] - measured) / 20.0)
    return gains


def _apply_gain(geometry: _Geometry, source: _Source, sink: _Buffer, gains: np.ndarray) -> None:
    for a, b in geometry.chunks():
        sink.write(source.read(a, b) * gains[:, None])


def _write(geometry: _Geometry, source: _Source, dst: Path, gain: float, *, format: str, subtype: str) -> None:
    """Encode the last stage into ``dst`` atomically, with the peak-ceiling gain."""
    import soundfile as sf

    with atomic_output(dst, format) as handle:
        try:
            with sf.SoundFile(handle, "w", geometry.sr, source.read(0, 1).shape[0], subtype=subtype,
                              format=format) as out:
                for a, b in geometry.chunks():
                    out.write((source.read(a, b) * np.float32(gain)).T)
        except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
            raise AudioError(f"cannot write {format}/{subtype} at {geometry.sr} Hz: {exc}", dst) from None
