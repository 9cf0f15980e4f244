"""A whole folder: plan the outputs, run the files on an executor, keep the audit trail.

The output folder mirrors the input tree (or, with ``--rename hashed``, holds flat names derived
from HMAC(key, relative path)). Files already complete and current are skipped, so a rerun after
a crash or a kill finishes the job; see :mod:`deid.batch.manifest`. Either folder may be local
or a prefix in an object store (:mod:`deid.batch.storage`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import os
import time
from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from deid.batch.manifest import Held, keyed_id, records_key, remove_leftovers, writer_lock
from deid.batch.scan import Skipped, check_folders, scan
from deid.batch.storage import (Folder, LocalFolder, is_url, local_path, open_folder, sweep_staging,
                                write_text_atomic)
from deid.batch.work import CURRENT, FAILED, OK, Config, Outcome, Redaction, Task
from deid.defaults import BLOCK_SECONDS
from deid.errors import DeidError
from deid.keys import Key
from deid.paths import Identity, check_writes, identity, read_only
from deid.pipeline import Pipeline, check_options

__all__ = ["Summary", "is_url", "local_path", "output_name", "run_batch"]

MODES = ("anonymize", "strip", "redact")
EXECUTORS = ("local", "dask")
RENAMES = ("keep", "hashed")
#: Output extension of each input extension when the output keeps the input's format. M4A
#: becomes FLAC (soundfile cannot write MP4); variant spellings get the usual one.
_OUTPUT_EXTENSION = {".wave": ".wav", ".aif": ".aiff", ".aifc": ".aiff", ".oga": ".ogg", ".m4a": ".flac",
                     ".mp4": ".flac", ".aac": ".flac"}


@dataclass
class Summary:
    """What a batch did: one outcome per audio file, and the entries skipped.

    ``exit_code`` is 0 when every audio file is done (now or before), 2 when some failed and
    others are done, and 1 when none is done (no audio found, or every file failed).
    """

    outcomes: list[Outcome] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    wall_seconds: float = 0.0
    leftovers_removed: int = 0
    root: str = ""

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == FAILED]

    @property
    def audio_seconds(self) -> float:
        return sum(o.seconds for o in self.outcomes)

    @property
    def exit_code(self) -> int:
        done = self.count(OK) + self.count(CURRENT)
        if done == 0:
            return 1
        return 2 if self.failed else 0


def output_name(rel: str, *, mode: str, format: str | None, rename_key: Key | None) -> str:
    """The output path of the input at ``rel`` (POSIX, relative to the output folder).

    The extension is that of the output format: ``--format``'s, else the input's own. With a
    ``rename_key`` the name is HMAC(key, relative path) and folders are not kept, since folder
    names (speakers, dates, sites) identify as much as file names do.
    """
    from deid.audio import FORMATS, extension

    suffix = PurePosixPath(rel).suffix
    if mode == "strip":
        ext = suffix
    elif format is not None:
        fmt, subtype = FORMATS[format.lower()]
        ext = extension(fmt, subtype or "")
    else:
        ext = _OUTPUT_EXTENSION.get(suffix.lower(), suffix.lower())
    if rename_key is not None:
        return rename_key.digest(f"deid-rename:{rel}").hex()[:32] + ext
    return str(PurePosixPath(rel).with_suffix(ext))


def run_batch(
    in_dir: str | Path,
    out_dir: str | Path,
    *,
    mode: str = "anonymize",
    pipeline: Pipeline | None = None,
    key: Key | None = None,
    link: str = "file",
    speaker_for: Callable[[Path | str], str] | None = None,
    format: str | None = None,
    pattern: str | None = None,
    follow_links: bool = False,
    workers: int | None = None,
    executor: str = "local",
    scheduler: str | None = None,
    force: bool = False,
    rename: str = "keep",
    rename_map: str | Path | None = None,
    neutral_mtime: bool | None = None,
    audit: str | Path | None = None,
    block_seconds: float | None = BLOCK_SECONDS,
    protected: Mapping[str, str | Path | None] | None = None,
    redaction: Redaction | bool | None = None,
    report: str | Path | None = None,
    on_start: Callable[[int], None] | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> Summary:
    """Anonymize, strip or redact every audio file under ``in_dir`` into ``out_dir``.

    Parameters
    ----------
    in_dir, out_dir : str or Path
        Folders: paths, ``file://`` URLs, or fsspec URLs of a prefix in an object store
        (``s3://bucket/in``, ``gs://``, ``az://``, ``memory://``). ``out_dir`` must not be
        inside ``in_dir``; a local one is created.
    mode : {"anonymize", "strip", "redact"}
        Transform voices with ``pipeline``, only strip metadata (audio kept bit-identical), or
        only redact spoken personal data (audio otherwise passed through).
    pipeline, key, link
        As for :func:`deid.anonymize_file`. ``key`` is required (resolve it with
        :func:`deid.keys.resolve_key`); ``strip`` uses it only for ``rename="hashed"``.
    speaker_for : callable, optional
        The speaker of an input (its path, or its URL in a store), for ``link="speaker"``.
    format : str, optional
        Output format of every file; by default each keeps its input's.
    pattern : str, optional
        Only relative paths matching this glob are considered.
    follow_links : bool
        Follow symbolic links that lead outside ``in_dir`` (a folder of links into an
        archive); by default they are skipped. A loop is still visited once.
    workers : int, optional
        Local worker processes; the number of cores by default.
    executor, scheduler
        ``"local"``, or ``"dask"`` with the address of a Dask scheduler (``tcp://host:8786``).
    force : bool
        Redo outputs that are already complete and current.
    rename : {"keep", "hashed"}
        Mirror the input names, or name outputs by HMAC(key, relative path).
    rename_map : str or Path, optional
        CSV file (outside ``out_dir``) to write ``input,output`` pairs to.
    neutral_mtime : bool, optional
        Give outputs a fixed modification time (2000-01-01 UTC); on by default with ``hashed``.
        A store dates objects itself: True is refused there.
    audit : str or Path, optional
        Local JSON-lines file (outside ``out_dir``) to append input hashes and drawn parameters to.
    block_seconds : float, optional
        Process files longer than this in blocks of about this length, in bounded memory
        (:mod:`deid.engine`); None processes every file whole.
    protected : mapping of label to path, optional
        Other files the run reads (``{"the preset": ..., "the speaker map": ...}``): nothing
        the run writes may be one of them. The key file (``key.path``) is always protected.
    redaction : Redaction or bool, optional
        Spoken personal data to redact, and where each file's words come from (its ``in_root``
        is set to ``in_dir``); None follows the preset's ``[redact]`` table (sidecars beside each
        file), False never redacts. ``redact`` mode always redacts (the defaults if None).
    report : str or Path, optional
        JSON-lines file (outside ``out_dir``) to append one line per redacted span to.
    on_start, on_outcome : callable, optional
        Called with the number of audio files, then with each outcome as it comes.

    Raises
    ------
    DeidError
        For wrong settings, before any file is touched: a written path that is an input, the
        key file or a protected file, or lies inside ``in_dir``; ``--rename hashed`` without a
        lasting key; another run writing into ``out_dir`` at the same time; a store that
        cannot be reached (the reason never holds a credential).
    """
    if mode not in MODES:
        raise DeidError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
    if executor not in EXECUTORS:
        raise DeidError(f"unknown executor {executor!r}; use one of {', '.join(EXECUTORS)}")
    if rename not in RENAMES:
        raise DeidError(f"unknown rename {rename!r}; use one of {', '.join(RENAMES)}")
    if executor == "dask" and not scheduler:
        raise DeidError("--executor dask needs --scheduler tcp://HOST:PORT")
    if mode == "anonymize" and pipeline is None:
        raise DeidError("anonymize needs a preset")
    redaction = _redaction(redaction, mode=mode, pipeline=pipeline, in_dir=in_dir)
    if key is None:
        raise DeidError("a batch needs a key (see deid.keys.resolve_key)")
    if format is not None:
        from deid.audio import FORMATS

        if format.lower() not in FORMATS:
            raise DeidError(f"unknown output format {format!r}; use one of {', '.join(FORMATS)}")
        if mode == "strip":
            raise DeidError("strip keeps each file's format; --format applies to anonymize")
    if rename == "hashed" and not key.reproducible:
        raise DeidError("--rename hashed needs a key that lasts from run to run: give --key-file, $DEID_KEY or "
                        "--seed (with a fresh random key every run would name the outputs anew, and a rerun would "
                        "leave a second copy of every file)")
    inp, out = open_folder(in_dir), open_folder(out_dir)
    check_folders(inp, out)
    if not out.local and neutral_mtime:
        raise DeidError("--neutral-mtime cannot date objects: a store dates each object when it is uploaded "
                        "(with --rename hashed the objects are uploaded in the order of their hashed names)", out)
    if not (inp.shared and out.shared) and executor == "dask" and not (scheduler or "").startswith("inproc://"):
        raise DeidError("memory:// exists only inside this process, and Dask workers in other processes cannot "
                        "reach it; use a bucket (s3://, gs://, az://), a shared folder, or an in-process cluster")
    if report is not None and redaction is None:
        raise DeidError("--report lists what was redacted: it needs redaction (--redact, or a preset's [redact])")
    audit_path = None if audit is None else local_path(audit, what="--audit")
    map_path = None if rename_map is None else local_path(rename_map, what="--rename-map")
    report_path = None if report is None else local_path(report, what="--report")
    if isinstance(out, LocalFolder):
        for name, path in (("--rename-map", map_path), ("--audit", audit_path), ("--report", report_path)):
            if path is not None and _inside(path, out.path):
                raise DeidError(f"{name} must be kept away from the outputs reviewers see, not inside {out.path}", path)
    reads = {"the key file": key.path, **(protected or {})}
    writes = {"--rename-map": map_path, "--audit": audit_path, "--report": report_path}
    folders = {"the input folder": inp.path} if isinstance(inp, LocalFolder) else {}
    if redaction is not None and redaction.transcripts is not None:
        transcripts = Path(redaction.transcripts)
        if not transcripts.is_dir():
            raise DeidError("--transcripts is not a folder", transcripts)
        if isinstance(out, LocalFolder) and (_inside(transcripts, out.path) or _inside(out.path, transcripts)):
            raise DeidError(f"--transcripts and the output folder {out.path} must not hold one another", transcripts)
        folders["the --transcripts folder"] = transcripts
    check_writes(writes, reads=reads, folders=folders)
    if link == "speaker" and mode == "anonymize" and speaker_for is None:
        raise DeidError("--link speaker needs a speaker for each file (a speaker map or parent folders)")
    check_options(link=link, block_seconds=block_seconds)

    if isinstance(out, LocalFolder):
        try:
            out.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DeidError(f"cannot make the output folder: {exc.strerror or exc}", out.path) from None
    with writer_lock(out) as held:
        return _run_locked(
            inp, out, held, mode=mode, pipeline=pipeline, key=key, link=link, speaker_for=speaker_for,
            format=format, pattern=pattern, follow_links=follow_links, workers=workers, executor=executor,
            scheduler=scheduler, force=force, rename=rename, rename_map=map_path, neutral_mtime=neutral_mtime,
            audit=audit_path, block_seconds=block_seconds, protected={**reads, **writes}, redaction=redaction,
            report=report_path, on_start=on_start, on_outcome=on_outcome,
        )


def _redaction(redaction: Redaction | bool | None, *, mode: str, pipeline: Pipeline | None,
               in_dir: str | Path) -> Redaction | None:
    """The run's redaction, its input folder filled in; the ASR's extra checked before any work."""
    from dataclasses import replace

    if mode == "strip" or redaction is False:
        if redaction:
            raise DeidError("strip keeps the audio bit-identical; redact with 'deid redact' or 'anonymize --redact'")
        return None
    if redaction is None or redaction is True:
        from deid.redact import RedactOptions

        preset = pipeline.redact if pipeline is not None and mode == "anonymize" else None
        if preset is None and redaction is None and mode == "anonymize":
            return None
        redaction = Redaction(preset or RedactOptions(), in_root="")
    if redaction.asr:
        from deid.asr import check_whisper

        check_whisper(redaction.options.asr_model)
    # Sidecars are read beside the inputs (or in --transcripts): a local input folder.
    return replace(redaction, in_root=str(local_path(in_dir, what="a folder to redact")))


def _run_locked(
    inp: Folder,
    out: Folder,
    held: Held,
    *,
    mode: str,
    pipeline: Pipeline | None,
    key: Key,
    link: str,
    speaker_for: Callable[[Path | str], str] | None,
    format: str | None,
    pattern: str | None,
    follow_links: bool,
    workers: int | None,
    executor: str,
    scheduler: str | None,
    force: bool,
    rename: str,
    rename_map: Path | None,
    neutral_mtime: bool | None,
    audit: Path | None,
    block_seconds: float | None,
    protected: Mapping[str, str | Path | None],
    redaction: Redaction | None,
    report: str | Path | None,
    on_start: Callable[[int], None] | None,
    on_outcome: Callable[[Outcome], None] | None,
) -> Summary:
    """The batch, once this run holds the output folder's lock."""
    started = time.perf_counter()
    sweep_staging(force=True)
    found = scan(inp, pattern=pattern, follow_links=follow_links, out=out)
    skipped = found.skipped
    if redaction is not None and not redaction.asr and redaction.transcripts is None:
        # The transcripts beside the recordings are read, not skipped.
        from deid.redact.plan import SIDECAR_SUFFIXES

        stems = {str(PurePosixPath(rel).with_suffix("")) for rel in found.files}
        skipped = [e for e in skipped if not (PurePosixPath(e.rel).suffix.lower() in SIDECAR_SUFFIXES
                                              and str(PurePosixPath(e.rel).with_suffix("")) in stems)]
    summary = Summary(skipped=skipped, leftovers_removed=remove_leftovers(out), root=str(inp))
    tasks, early = _plan(found.files, inp, out, mode=mode, format=format,
                         rename_key=key if rename == "hashed" else None,
                         speaker_for=speaker_for if link == "speaker" and mode == "anonymize" else None,
                         protected={label: identity(p) for label, p in protected.items() if p is not None},
                         transcript_out=redaction is not None and redaction.transcript_out)
    early = [Outcome(r.rel, "", FAILED, r.reason) for r in found.refused] + early
    if rename_map is not None:
        _write_rename_map(rename_map, tasks)
    # Records beside the outputs are keyed: under the run's key, or (strip without a lasting key)
    # under a random key kept in OUT_DIR/.deid, so that they cannot be matched across folders.
    record_key = key if key.reproducible or mode == "anonymize" else records_key(out)
    config = Config(
        mode=mode,
        out_root=str(out.path.resolve()) if isinstance(out, LocalFolder) else out.location,
        pipeline=pipeline if mode == "anonymize" else None,
        preset_id=keyed_id(record_key, "preset", pipeline.to_toml()) if mode == "anonymize" else "",
        key=key if mode == "anonymize" else record_key,
        link=link,
        format=format.lower() if format else None,
        force=force,
        neutral_mtime=rename == "hashed" if neutral_mtime is None else neutral_mtime,
        block_seconds=block_seconds,
        audit=audit is not None,
        redaction=redaction,
    )
    preset_sha = hashlib.sha256(pipeline.to_toml().encode()).hexdigest() if pipeline is not None else ""
    if on_start is not None:
        on_start(len(tasks) + len(early))
    audit_file = open(audit, "a", encoding="utf-8") if audit is not None else None  # noqa: SIM115
    report_file = open(report, "a", encoding="utf-8") if report is not None else None  # noqa: SIM115
    inline = not (inp.shared and out.shared) and executor == "local"
    try:
        for outcome in itertools.chain(early, _execute(tasks, config, executor="inline" if inline else executor,
                                                       workers=workers, scheduler=scheduler)):
            summary.outcomes.append(outcome)
            if audit_file is not None and outcome.audit is not None:
                audit_file.write(json.dumps(outcome.audit | {"preset": pipeline.name if pipeline else None,
                                                             "preset_sha256": preset_sha}) + "\n")
                audit_file.flush()
            if report_file is not None and outcome.report:
                report_file.write("".join(line + "\n" for line in outcome.report))
                report_file.flush()
            if on_outcome is not None:
                on_outcome(outcome)
            held.check()
    finally:
        for log in (audit_file, report_file):
            if log is not None:
                os.fsync(log.fileno())
                log.close()
    summary.wall_seconds = time.perf_counter() - started
    return summary


def _execute(
    tasks: list[Task], config: Config, *, executor: str, workers: int | None, scheduler: str | None
) -> Iterator[Outcome]:
    from deid.batch import executors

    if not tasks:
        return iter(())
    if executor == "inline":  # a store that lives in this process (memory://): its files are done here
        return executors.run_inline(tasks, config)
    if executor == "dask":
        return executors.run_dask(tasks, config, scheduler=scheduler or "")
    return executors.run_local(tasks, config, workers=max(1, min(workers or os.cpu_count() or 1, len(tasks))))


def _inside(path: Path, folder: Path) -> bool:
    path, folder = path.resolve(), folder.resolve()
    return path == folder or folder in path.parents


def _plan(
    files: list[str],
    inp: Folder,
    out: Folder,
    *,
    mode: str,
    format: str | None,
    rename_key: Key | None,
    speaker_for: Callable[[Path | str], str] | None,
    protected: Mapping[str, Identity],
    transcript_out: bool = False,
) -> tuple[list[Task], list[Outcome]]:
    """Tasks for the files, and failed outcomes for files that cannot be planned.

    Refused: two inputs whose outputs would have the same name (``a.wav`` and ``a.flac`` with
    ``--format flac``), an output that is an input (a hard link, or the same object) or a
    protected file (the key file placed where an output goes), an existing output that is
    read-only, and, with ``--transcript-out``, two outputs whose transcripts would share a name.
    With hashed names the tasks run in the order of their names, so that neither the outputs'
    times nor their inode numbers tell the order of the original paths (which groups them by folder).
    """
    tasks: list[Task] = []
    early: list[Outcome] = []
    owner: dict[str, str] = {}
    stems: dict[str, str] = {}
    inputs: dict[Hashable, str] = {}
    for rel in files:
        ident = inp.ident(rel)
        if ident is not None:  # else the worker reports an unreadable input
            inputs[ident] = rel
    for rel in files:
        output = output_name(rel, mode=mode, format=format, rename_key=rename_key)
        if output.lower() in owner:
            early.append(Outcome(rel, output, FAILED, f"its output name is also that of {owner[output.lower()]}; "
                                                      "rename one or choose another --format"))
            continue
        owner[output.lower()] = rel
        stem = str(PurePosixPath(output).with_suffix("")).lower()
        if transcript_out and stem in stems:
            early.append(Outcome(rel, output, FAILED, f"its redacted transcript would have the name of that of "
                                                      f"{stems[stem]}; rename one or choose another --format"))
            continue
        stems[stem] = rel
        try:
            reason = _refusal(out, output, inputs, protected)
        except DeidError as exc:  # the output's name is a loop of links
            reason = f"its output {output} {exc.reason}"
        if reason:
            early.append(Outcome(rel, output, FAILED, reason))
            continue
        try:
            speaker = speaker_for(inp.member(rel)) if speaker_for is not None else None
        except DeidError as exc:
            early.append(Outcome(rel, output, FAILED, exc.reason))
            continue
        tasks.append(Task(rel, inp.source(rel), output, speaker))
    if rename_key is not None:
        tasks.sort(key=lambda t: t.output)
    return tasks, early


def _refusal(out: Folder, output: str, inputs: Mapping[Hashable, str], protected: Mapping[str, Identity]) -> str:
    """Why the output ``output`` may not be written ("" if it may): it is an input, a protected or a read-only file."""
    if not isinstance(out, LocalFolder):
        clash = inputs.get(out.ident(output))
        return f"its output {output} is the input {clash}; deid never writes over a file it reads" if clash else ""
    target = identity(out.member(output))
    clash = inputs.get(target.inode) if target.inode is not None else None
    clash = f"the input {clash}" if clash else next((label for label, other in protected.items()
                                                      if target.same(other)), None)
    if clash:
        return f"its output {output} is {clash}; deid never writes over a file it reads"
    if read_only(target):
        return f"its output {output} exists and is read-only; deid does not replace it"
    return ""


def _write_rename_map(path: Path, tasks: list[Task]) -> None:
    """``input,output`` rows; this file links outputs back to originals."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["input", "output"])
    writer.writerows((t.rel, t.output) for t in tasks)
    # File names that are not valid UTF-8 are written back as the bytes they were.
    write_text_atomic(path, buffer.getvalue(), errors="surrogateescape")
