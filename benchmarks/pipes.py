"""Pipes against files: peak memory and wall time of one long recording read from a file, from
standard input, and written to standard output (issue 11).

    python benchmarks/pipes.py [--hours 1] [--rate 16000] [--channels 1] [--preset fast] [--repeat 3]

The input (corpus clips end to end, made in a temporary folder from ``../shared/corpus`` or
``$DEID_CORPUS``) is a WAV; each run is a fresh ``deid anonymize`` process, fed by ``cat`` for
the pipe. Peak RSS is the deid process's own (``wait4``); figures are medians over
``--repeat`` runs, interleaved so that a change of load hits every route alike.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _roots import REPO, env_for, load  # noqa: E402
from batch import make_long  # noqa: E402

DEID = [sys.executable, "-m", "deid", "anonymize"]


def measure(args: list[str], *, stdin: Path | None, stdout: Path | None) -> tuple[float, float]:
    """Peak RSS (MB) and wall seconds of one ``deid anonymize ARGS``."""
    feed = subprocess.Popen(["cat", str(stdin)], stdout=subprocess.PIPE) if stdin else None
    sink = stdout.open("wb") if stdout else subprocess.DEVNULL
    started = time.perf_counter()
    proc = subprocess.Popen([*DEID, *args], stdin=feed.stdout if feed else subprocess.DEVNULL, stdout=sink,
                            stderr=subprocess.PIPE, env=env_for(REPO))
    if feed:
        feed.stdout.close()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if feed:
        feed.wait()
    if stdout:
        sink.close()
    if os.waitstatus_to_exitcode(status):
        raise RuntimeError(f"deid anonymize {' '.join(args)} failed: {proc.stderr.read().decode()[-2000:]}")
    proc.stderr.close()
    return usage.ru_maxrss / 1024.0, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--rate", type=int, default=16000)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="deid-bench-") as scratch:
        folder = Path(scratch)
        src = folder / "long.wav"
        make_long(src, args.hours, args.rate, args.channels)
        common = ["--preset", args.preset, "--seed", "1"]
        routes = {
            "file -> file": ([str(src), str(folder / "a.flac"), *common], None, None),
            "stdin -> file": (["-", str(folder / "b.flac"), *common], src, None),
            "file -> stdout": ([str(src), "-", "--format", "flac", *common], None, folder / "c.flac"),
            "stdin -> stdout": (["-", "-", "--format", "flac", *common], src, folder / "d.flac"),
        }
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in routes}
        for r in range(args.repeat):
            for name in (list(routes) if r % 2 == 0 else list(reversed(routes))):
                cmd, stdin, stdout = routes[name]
                runs[name].append(measure(cmd, stdin=stdin, stdout=stdout))
        same = len({(folder / n).read_bytes() for n in ("a.flac", "b.flac", "c.flac", "d.flac")}) == 1
    decoded = args.hours * 3600 * args.rate * args.channels * 4 / 1e6
    print(f"{args.hours:g} h of {args.rate} Hz x {args.channels} ch WAV ({decoded:.0f} MB as float32), preset "
          f"{args.preset}, median of {args.repeat}; {load()}")
    print("| route | peak RSS | wall |")
    print("| --- | --- | --- |")
    base = statistics.median(w for _, w in runs["file -> file"])
    for name, values in runs.items():
        rss, wall = statistics.median(v[0] for v in values), statistics.median(v[1] for v in values)
        print(f"| {name} | {rss:.0f} MB (spread {min(v[0] for v in values):.0f}-{max(v[0] for v in values):.0f}) "
              f"| {wall:.1f} s ({wall / base:.2f}x the file route) |")
    print(f"outputs byte-identical across routes: {same}")


if __name__ == "__main__":
    main()
