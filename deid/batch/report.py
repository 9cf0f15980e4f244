"""What the command line shows of a batch: a live progress bar, then a summary table."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from deid.audio import AUDIO_EXTENSIONS
from deid.batch.run import Summary
from deid.batch.work import CURRENT, FAILED, OK, Outcome
from deid.paths import printable

#: Skipped entries listed one per line; beyond this only their number is given.
SHOWN_SKIPPED = 20


class BatchProgress:
    """Files done of total, audio hours processed, speed and ETA, on stderr.

    Pass :meth:`start` and :meth:`update` to :func:`deid.batch.run_batch` as ``on_start`` and
    ``on_outcome``.
    """

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task: TaskID | None = None
        self._seconds = 0.0
        self._started = time.perf_counter()

    def start(self, total: int) -> None:
        self._started = time.perf_counter()
        self._task = self._progress.add_task("deid", total=total, hours=0.0, speed="")

    def update(self, outcome: Outcome) -> None:
        self._seconds += outcome.seconds
        elapsed = max(time.perf_counter() - self._started, 1e-9)
        speed = f"{self._seconds / elapsed:.1f}x realtime" if self._seconds else ""
        if self._task is not None:
            self._progress.update(self._task, advance=1, hours=self._seconds / 3600.0, speed=speed)


@contextmanager
def progress_bar(enabled: bool = True) -> Iterator[BatchProgress]:
    """A live progress display (quiet when ``enabled`` is false or stderr is not a terminal)."""
    console = Console(stderr=True)
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("files"),
        TextColumn("{task.fields[hours]:.2f} h audio"),
        TextColumn("{task.fields[speed]}"),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, disable=not enabled, transient=False) as progress:
        yield BatchProgress(progress)


def print_summary(summary: Summary, *, verb: str = "anonymized") -> None:
    """The table of counts, then one line per failed file and per skipped entry."""
    console = Console(highlight=False, soft_wrap=True)
    table = Table(title=None, show_header=True)
    table.add_column("result")
    table.add_column("files", justify="right")
    table.add_row(verb, str(summary.count(OK)))
    table.add_row("already done", str(summary.count(CURRENT)))
    table.add_row("skipped", str(len(summary.skipped)))
    table.add_row("failed", str(summary.count(FAILED)))
    console.print(table)
    console.print(Text(f"{_clock(summary.audio_seconds)} of audio processed in {_clock(summary.wall_seconds)}"))
    spans = sum(len(o.report) for o in summary.outcomes)
    if spans:
        files = sum(bool(o.report) for o in summary.outcomes)
        console.print(Text(f"{spans} span{'s' * (spans != 1)} of spoken personal data redacted in {files} file{'s' * (files != 1)}"))
    if not summary.outcomes:
        among = f" among its {len(summary.skipped)} entries" if summary.skipped else ""
        kinds = ", ".join(sorted(e.lstrip(".") for e in AUDIO_EXTENSIONS))
        console.print(Text(f"no audio file found in {printable(summary.root)}{among} (deid reads {kinds})"))
    for outcome in sorted(summary.failed, key=lambda o: o.rel):
        console.print(Text(printable(f"failed: {outcome.rel}: {outcome.reason}")))
    for skipped in summary.skipped[:SHOWN_SKIPPED]:
        console.print(Text(printable(f"skipped: {skipped.rel}: {skipped.reason}")))
    if len(summary.skipped) > SHOWN_SKIPPED:
        console.print(Text(f"skipped: ... and {len(summary.skipped) - SHOWN_SKIPPED} more"))


def _clock(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"
