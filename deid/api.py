"""The public entry points: anonymize an array or one file (``deid.anonymize``, ``deid.anonymize_file``)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deid.audio import AudioInfo, open_input, open_output, output_format
from deid.engine import BLOCK_SECONDS, ArrayStream, SpanEdit, one_block
from deid.errors import AudioError, DeidError
from deid.keys import Key, resolve_key
from deid.paths import as_path
from deid.pipeline import AppliedStep, Pipeline, Result, as_audio, check_audio, check_length, check_options
from deid.presets import DEFAULT, load_preset, preset_path

__all__ = ["BLOCK_SECONDS", "FileResult", "SpanEdit", "anonymize", "anonymize_file", "speaker_scope"]


def anonymize(
    y: np.ndarray,
    sr: int,
    preset: str | Path | Pipeline = DEFAULT,
    *,
    key: Key | bytes | str | None = None,
    seed: int | None = None,
    scope: str | None = None,
    link: str = "file",
    report: bool = False,
    edits: Sequence[SpanEdit] = (),
    redact: Any = None,
    transcript: Any = None,
) -> np.ndarray | tuple[np.ndarray, Result]:
    """Anonymize audio with a preset (name, path or :class:`Pipeline`).

    Parameters
    ----------
    y : np.ndarray, shape (n,) or (channels, n)
        Audio; floats in [-1, 1] or integers.
    sr : int
        Sample rate in Hz.
    preset : str, Path or Pipeline
        ``"standard"`` by default; see ``deid presets``.
    key, seed
        Secret key or non-secret seed (see :func:`deid.keys.resolve_key`).
    scope : str, optional
        What the drawn voice is tied to; by default the audio content. Equal scopes under one
        key give equal parameters (``"speaker:alice"`` links all of alice's clips).
    link : {"file", "speaker", "channel"}
        ``channel`` gives each channel its own voice.
    report : bool
        Also return the :class:`deid.pipeline.Result` with the drawn values of every step.
    edits : sequence of SpanEdit
        Spans of the output replaced after every step (see :class:`deid.engine.SpanEdit`).
    redact : bool, RedactOptions or mapping, optional
        Also replace spoken personal data (names, numbers, addresses...) with a tone: found in
        the original audio, replaced in the output after the voice chain, duration unchanged.
        True uses the preset's ``[redact]`` options or the defaults, a mapping changes some of
        them, False never redacts; None (the default) follows the preset.
    transcript : str, Path, list of Word or deid.redact.Transcriber, optional
        Where the words to search come from when redacting: a timed transcript file, its words,
        or a recogniser; by default the built-in ASR (extra ``[asr]``).

    Returns
    -------
    np.ndarray
        float32 audio of the input's shape (and the Result when ``report`` is true; its
        ``redaction`` says what was redacted).
    """
    pipeline = load_preset(preset)
    options = _redaction(redact, pipeline)
    plan = None
    if options is not None:
        from deid.redact.plan import plan_stream

        audio = as_audio(y)
        check_audio(audio, sr)
        plan = plan_stream(options, ArrayStream(np.atleast_2d(audio), sr), transcript=transcript)
        edits = [*edits, *plan.edits(sr, audio.shape[-1])]
    result = pipeline.run(y, sr, key=key, seed=seed, scope=scope, link=link, edits=edits)
    result.redaction = plan
    return (result.audio, result) if report else result.audio


def _files(transcript: Any) -> tuple[Path, ...]:
    """A transcript file that the output must not overwrite."""
    return (Path(transcript),) if isinstance(transcript, (str, Path)) else ()


def _redaction(redact: Any, pipeline: Pipeline) -> Any:
    """The redaction options of a run (None: no redaction)."""
    if redact is None and pipeline.redact is None:
        return None
    from deid.redact.plan import redact_options

    return redact_options(redact, pipeline.redact)


@dataclass
class FileResult:
    """What :func:`anonymize_file` did; ``size`` and ``sha256`` are those of the output written."""

    src: Path
    dst: Path
    input: AudioInfo
    format: str
    subtype: str
    applied: list[AppliedStep] = field(default_factory=list)
    gain: float = 1.0
    size: int = 0
    sha256: str = ""
    #: What was redacted (a :class:`deid.redact.FilePlan`), when redaction ran.
    redaction: Any = None

    @property
    def scaled(self) -> bool:
        return self.gain < 1.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "src": str(self.src),
            "dst": str(self.dst),
            "seconds": self.input.seconds,
            "format": self.format,
            "subtype": self.subtype,
            "gain": self.gain,
            "applied": [a.as_dict() for a in self.applied],
        }


def speaker_scope(speaker: str | None, src: str | Path | None = None) -> str:
    """The key scope of a speaker's files (``link="speaker"``)."""
    if not speaker:
        raise DeidError("--link speaker needs a speaker for the file (a speaker map or its parent folder)", src)
    return f"speaker:{speaker}"


def anonymize_file(
    src: str | Path,
    dst: str | Path,
    preset: str | Path | Pipeline = DEFAULT,
    *,
    key: Key | bytes | str | None = None,
    seed: int | None = None,
    link: str = "file",
    speaker: str | None = None,
    scope: str | None = None,
    format: str | None = None,
    block_seconds: float | None = BLOCK_SECONDS,
    edits: Sequence[SpanEdit] = (),
    redact: Any = None,
    transcript: Any = None,
) -> FileResult:
    """Anonymize one file into ``dst``, keeping rate, channels and sample format by default.

    The input is opened once and checked, the output checked, both before any processing; a
    file longer than ``block_seconds`` is processed in blocks, in bounded memory.

    Parameters
    ----------
    src, dst : str or Path
        Input and output. ``src`` passes the input check of every command
        (:func:`deid.audio.open_input`); ``dst`` the write rule of every command
        (:func:`deid.paths.check_writes`): it is never the input, the key file or the preset
        file, a folder, or an existing read-only file. The input is never modified.
    preset, key, seed, link
        As for :func:`anonymize`.
    speaker : str, optional
        The speaker of the file, needed with ``link="speaker"``.
    scope : str, optional
        The key scope, when the caller has it already (a batch hashes every input before deciding
        whether it needs doing): ``"file:" + SHA-256 of the file``, or ``"speaker:NAME"``. By
        default it is computed while the file is read.
    format : str, optional
        Output format name (``wav``, ``flac``, ``aiff``, ``ogg``, ``opus``, ``mp3``); by default
        the one ``dst``'s extension names when the input's container does not fit it, else the
        input's own (FLAC for M4A input).
    block_seconds : float, optional
        Files longer than this are processed in blocks of about this length, in bounded memory
        (:mod:`deid.engine`); None processes every file whole.
    edits : sequence of SpanEdit
        Spans of the output replaced after every step (see :class:`deid.engine.SpanEdit`).
    redact, transcript
        As for :func:`anonymize`: the words are found in the input (a recogniser reads it once,
        whole, before the chain runs), the spans replaced in the output after the chain. A file
        whose words cannot be had or placed in time fails; it is never written unredacted.
    """
    src, dst = as_path(src, "the input"), as_path(dst, "the output")
    check_options(scope=scope, link=link, edits=edits, block_seconds=block_seconds)
    for name, value in (("speaker", speaker), ("format", format)):
        if value is not None and not isinstance(value, str):
            raise DeidError(f"{name} must be a str, not {type(value).__name__}")
    pipeline = load_preset(preset)
    options = _redaction(redact, pipeline)
    plan = None
    key = resolve_key(key, seed=seed)
    if scope is None and link == "speaker":
        scope = speaker_scope(speaker, src)
    reads = {"the input": src, "the key file": key.path,
             "the preset": preset_path(preset) if isinstance(preset, (str, os.PathLike)) else None}
    try:
        with open_input(src, hash=scope is None) as source:
            fmt, subtype = output_format(source.info, format, suffix=dst.suffix)
            with open_output(dst, sr=source.sr, channels=source.channels, format=fmt, subtype=subtype,
                             reads={**reads, **{"the transcript": t for t in _files(transcript)}}) as sink:
                if one_block(source.frames, source.sr, block_seconds):
                    samples = source.load()
                    check_audio(samples, source.sr)
                    stream: Any = ArrayStream(samples, source.sr)
                else:
                    if scope is None or not source.exact:
                        source.scan()
                    check_length(source.frames, source.sr)
                    stream = source
                if options is not None:
                    from deid.redact.plan import plan_stream

                    plan = plan_stream(options, stream, transcript=transcript)
                    edits = [*edits, *plan.edits(source.sr, source.frames)]
                applied, gain = pipeline.process(stream, sink, key=key, scope=scope or f"file:{source.sha256}",
                                                 link=link, block_seconds=block_seconds, edits=edits)
                if source.peak == 0.0:
                    raise AudioError("is silent (every sample is zero): there is no voice to anonymize", src)
                sink.commit()
    except DeidError as exc:
        if exc.path is None:
            raise type(exc)(exc.reason, src) from None
        raise
    return FileResult(src, dst, source.info, fmt, subtype, applied, gain, sink.size, sink.sha256, plan)
