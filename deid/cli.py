"""The ``deid`` command: parses arguments, calls the library, reports. No DSP lives here.

Heavy modules (numpy, librosa, pyworld) are imported inside the commands, so ``deid --help``
answers at once.
"""

from __future__ import annotations

import contextlib
import csv
import sys
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from deid._version import __version__
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
    typer.echo(f"deid: error: {message}", err=True)


@contextlib.contextmanager
def reporting() -> Iterator[None]:
    """Turn a DeidError into one line on stderr and exit code 1 (a traceback only with --debug)."""
    try:
        yield
    except DeidError as exc:
        if _state["debug"]:
            raise
        _err(str(exc))
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        _err("interrupted")
        raise typer.Exit(130) from None


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
    Optional[str], typer.Option("--format", "-f", help="Output format: wav, flac, aiff, ogg, opus or mp3 (default: the input's).")
]


def read_speaker_map(path: Path) -> dict[str, str]:
    """``path,speaker`` rows (a header row is allowed) keyed by resolved path and by file name."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = [r for r in csv.reader(f) if r and not r[0].startswith("#")]
    except OSError as exc:
        raise DeidError(f"cannot read speaker map: {exc.strerror}", path) from None
    if rows and [c.strip().lower() for c in rows[0][:2]] == ["path", "speaker"]:
        rows = rows[1:]
    mapping: dict[str, str] = {}
    for number, row in enumerate(rows, start=1):
        if len(row) < 2 or not row[1].strip():
            raise DeidError(f"row {number} needs two columns, path and speaker", path)
        mapping[str((path.parent / row[0].strip()).resolve())] = row[1].strip()
        mapping[row[0].strip()] = row[1].strip()
    return mapping


def speaker_of(src: Path, mapping: dict[str, str] | None) -> str:
    """The speaker of a file: from the map (by path or name), else its parent folder's name."""
    if mapping is not None:
        for candidate in (str(src.resolve()), str(src), src.name):
            if candidate in mapping:
                return mapping[candidate]
        raise DeidError("not listed in the speaker map", src)
    return src.resolve().parent.name


@app.command()
def anonymize(
    input: Annotated[Path, typer.Argument(help="Audio file to anonymize.", show_default=False)],
    output: Annotated[Path, typer.Argument(help="Where to write the result.", show_default=False)],
    preset: PresetOpt = "standard",
    key_file: KeyFileOpt = None,
    seed: SeedOpt = None,
    link: LinkOpt = Link.file,
    speaker_map: SpeakerMapOpt = None,
    format: FormatOpt = None,
) -> None:
    """Anonymize INPUT into OUTPUT with a chain of voice transformations; metadata is not copied."""
    with reporting():
        from deid.api import anonymize_file
        from deid.keys import resolve_key

        key = resolve_key(key_file=key_file, seed=seed)
        speaker = None
        if link is Link.speaker:
            speaker = speaker_of(input, read_speaker_map(speaker_map) if speaker_map else None)
        result = anonymize_file(
            input, output, preset, key=key, link=link.value, speaker=speaker, format=format
        )
        note = f", scaled by {result.gain:.3f} to avoid clipping" if result.scaled else ""
        typer.echo(f"{result.src} -> {result.dst} ({result.input.seconds:.2f} s, {result.format}/{result.subtype}{note})")
        if not key.reproducible:
            typer.echo("note: no --key-file, $DEID_KEY or --seed: a fresh random key was used; this output cannot be reproduced.", err=True)


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


def main() -> None:
    """Console entry point."""
    app(prog_name="deid")


if __name__ == "__main__":
    sys.exit(main())
