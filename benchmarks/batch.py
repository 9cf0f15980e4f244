"""Batch throughput (1 vs N workers), per-file overhead, and peak memory of long files.

    python benchmarks/batch.py [--files 60,240] [--workers N] [--repeat R] [--long 0.5,3]
                               [--stereo-hours 1] [--skip-long] [--baseline DIR]

Every input is made in a temporary folder from ``../shared/corpus`` (or ``$DEID_CORPUS``) and
removed at the end; nothing is written into the repository. Every measurement runs in a fresh
process; figures are medians over ``--repeat`` runs, and ratios come from the same run. With
``--baseline DIR`` (another checkout) each measurement is made for both, interleaved.

- throughput: wall seconds to anonymize a folder of corpus clips with 1 and with N worker
  processes (pool start included), and the speed-up;
- work per file: ``anonymize_file`` in one warm process, and what the batch adds per file;
- peak RSS: the process anonymizing one long file (16 kHz mono of ``--long`` hours, and 48 kHz
  stereo of ``--stereo-hours``), read from the process itself.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _roots import load, need_corpus, roots, run_json  # noqa: E402

HERE = str(Path(__file__).resolve())


def make_folder(root: Path, count: int) -> tuple[Path, float]:
    """``count`` corpus clips (repeated under new names when the corpus is smaller), and their seconds."""
    import soundfile as sf

    clips = sorted(need_corpus().glob("*/*.flac"))
    seconds = 0.0
    for i in range(count):
        clip = clips[i % len(clips)]
        target = root / clip.parent.name / f"{i:04d}-{clip.name}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(clip, target)
        seconds += sf.info(clip).duration
    return root, seconds


def make_long(path: Path, hours: float, sr: int, channels: int) -> None:
    """Corpus clips end to end (resampled, channels made from time-reversed copies), written in pieces."""
    import numpy as np
    import soundfile as sf
    import soxr

    clips = sorted(need_corpus().glob("*/*.flac"))
    target = int(hours * 3600 * sr)
    written = 0
    with sf.SoundFile(path, "w", sr, channels, subtype="PCM_16") as out:
        i = 0
        while written < target:
            y = sf.read(clips[i % len(clips)], dtype="float32")[0]
            if sr != 16000:
                y = soxr.resample(y, 16000, sr)
            y = y[: target - written]
            out.write(np.stack([y if c % 2 == 0 else y[::-1] for c in range(channels)], axis=1))
            written += len(y)
            i += 1


# --- what a child process measures, with the deid on its sys.path -----------------------------


def child_throughput(folder: str, workers: int, preset: str, scratch: str) -> dict:
    from deid.batch import run_batch
    from deid.keys import Key
    from deid.presets import load_preset

    out = Path(scratch) / f"out-{os.getpid()}"
    started = time.perf_counter()
    summary = run_batch(folder, out, pipeline=load_preset(preset), key=Key.from_seed(1), workers=workers)
    wall = time.perf_counter() - started
    shutil.rmtree(out)
    return {"wall": wall, "failed": len(summary.failed)}


def child_work(folder: str, preset: str, scratch: str, count: int) -> dict:
    """Median and mean seconds per file of anonymize_file in this process (warm), without batch overhead."""
    from deid.api import anonymize_file
    from deid.keys import Key
    from deid.presets import load_preset

    files = sorted(Path(folder).rglob("*.flac"))[:count]
    pipeline, key = load_preset(preset), Key.from_seed(1)
    anonymize_file(files[0], Path(scratch) / "warm.flac", pipeline, key=key)
    times = []
    for src in files:
        started = time.perf_counter()
        anonymize_file(src, Path(scratch) / "one.flac", pipeline, key=key)
        times.append(time.perf_counter() - started)
    return {"median": statistics.median(times), "mean": sum(times) / len(times)}


def child_rss(path: str, preset: str, scratch: str) -> dict:
    """Peak RSS (MB) of this process anonymizing ``path``: its own peak, not that of any pool worker."""
    import resource

    from deid.api import anonymize_file

    started = time.perf_counter()
    anonymize_file(path, Path(scratch) / f"out-{os.getpid()}{Path(path).suffix}", preset, seed=1)
    return {"rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, "wall": time.perf_counter() - started}


# --- the parent: interleave checkouts, take medians -------------------------------------------


def interleaved(checkouts: dict[str, Path], repeat: int, args: list[str]) -> dict[str, list[dict]]:
    runs: dict[str, list[dict]] = {name: [] for name in checkouts}
    for r in range(repeat):
        for name, root in (list(checkouts.items()) if r % 2 == 0 else list(reversed(checkouts.items()))):
            runs[name].append(run_json(root, [HERE, *args]))
    return runs


def throughput(checkouts: dict[str, Path], folder: Path, workers: int, preset: str, repeat: int, scratch: Path) -> dict:
    """Per checkout: median wall seconds with 1 and with ``workers`` processes, runs interleaved."""
    result: dict[str, dict[str, float]] = {name: {} for name in checkouts}
    for count in (1, workers):
        runs = interleaved(checkouts, repeat, ["--child", "throughput", str(folder), str(count), preset, str(scratch)])
        for name, values in runs.items():
            result[name][str(count)] = statistics.median(v["wall"] for v in values)
            result[name]["failed"] = values[0]["failed"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", default="240", help="folder sizes for the throughput runs, comma separated")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="the N of 1 vs N (default: cores)")
    parser.add_argument("--preset", default="standard")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--long", default="2", help="hours of the long 16 kHz mono files, comma separated")
    parser.add_argument("--stereo-hours", type=float, default=0.0, help="also a 48 kHz stereo file this long")
    parser.add_argument("--skip-long", action="store_true", help="only the throughput figures")
    parser.add_argument("--baseline", metavar="DIR", help="another checkout to measure beside this one")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "throughput":
            print(json.dumps(child_throughput(rest[0], int(rest[1]), rest[2], rest[3])))
        elif kind == "work":
            print(json.dumps(child_work(rest[0], rest[1], rest[2], int(rest[3]))))
        else:
            print(json.dumps(child_rss(rest[0], rest[1], rest[2])))
        return
    need_corpus()
    checkouts = roots(args.baseline)
    names = list(checkouts)
    print(f"# deid batch benchmark: preset {args.preset}, {os.cpu_count()} cores, median of {args.repeat}; {load()}")
    print("| measure | " + " | ".join(names) + (" | after / before |" if len(names) > 1 else " |"))
    print("| --- " + "| ---: " * (len(names) + (len(names) > 1)) + "|")

    def row(label: str, cells: list[str], ratio: float | None = None) -> None:
        print(f"| {label} | " + " | ".join(cells) + (f" | {ratio:.2f} |" if ratio is not None else " |"), flush=True)

    with tempfile.TemporaryDirectory(prefix="deid-bench-") as tmp:
        scratch = Path(tmp)
        for count in (int(c) for c in args.files.split(",")):
            folder, seconds = make_folder(scratch / f"in-{count}", count)
            speeds = throughput(checkouts, folder, args.workers, args.preset, args.repeat, scratch)
            for n in (1, args.workers):
                cells = [f"{speeds[k][str(n)]:.1f} s ({seconds / speeds[k][str(n)]:.0f}x realtime)" for k in names]
                row(f"{count} files ({seconds / 60:.1f} min), {n} worker{'s' if n > 1 else ''}", cells)
            ups = {k: speeds[k]["1"] / speeds[k][str(args.workers)] for k in names}
            row(f"{count} files, speed-up {args.workers} vs 1 workers", [f"{ups[k]:.2f}x" for k in names],
                ups["after"] / ups["before"] if "before" in ups else None)
            work = {k: statistics.median(v["mean"] for v in vals) for k, vals in
                    interleaved(checkouts, args.repeat, ["--child", "work", str(folder), args.preset, str(scratch),
                                                         "40"]).items()}
            row(f"{count} files, work per file in one process (mean)", [f"{work[k] * 1000:.0f} ms" for k in names])
            row(f"{count} files, batch overhead per file (1 worker, pool start, hashing, records)",
                [f"{(speeds[k]['1'] / count - work[k]) * 1000:.0f} ms" for k in names])
            shutil.rmtree(folder)
        if args.skip_long:
            return
        longs = [(float(h), 16000, 1) for h in args.long.split(",")]
        if args.stereo_hours:
            longs.append((args.stereo_hours, 48000, 2))
        for hours, sr, channels in longs:
            path = scratch / f"long-{hours:g}h-{sr}-{channels}.flac"
            make_long(path, hours, sr, channels)
            runs = interleaved(checkouts, 1, ["--child", "rss", str(path), args.preset, str(scratch)])
            cells = [f"{runs[k][0]['rss']:.0f} MB ({hours * 3600 / runs[k][0]['wall']:.0f}x realtime)" for k in names]
            kind = "mono" if channels == 1 else "stereo"
            row(f"{hours:g} h {sr // 1000} kHz {kind}, peak RSS", cells,
                runs["after"][0]["rss"] / runs["before"][0]["rss"] if "before" in runs else None)
            path.unlink()
            for leftover in scratch.glob("out-*"):
                leftover.unlink()


if __name__ == "__main__":
    main()
