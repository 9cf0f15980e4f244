"""Batch throughput (1 vs N workers), per-file overhead, and peak memory of a 2-hour file.

Run from the repository: ``python benchmarks/batch.py`` (``--help`` for options). Every input
is made in a temporary folder from ``../shared/corpus`` (or ``$DEID_CORPUS``) and removed at the
end; nothing is written into the repository. Figures are medians over ``--repeat`` runs, and
ratios come from the same run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
CORPUS = Path(os.environ.get("DEID_CORPUS", REPO.parent / "shared" / "corpus"))

from deid.api import anonymize_file  # noqa: E402
from deid.batch import run_batch  # noqa: E402
from deid.keys import Key  # noqa: E402
from deid.presets import load_preset  # noqa: E402


def make_folder(root: Path, count: int) -> tuple[Path, float]:
    """``count`` corpus clips (repeated under new names when the corpus is smaller), and their seconds."""
    clips = sorted(CORPUS.glob("*/*.flac"))
    if not clips:
        sys.exit(f"speech corpus not found at {CORPUS} (set DEID_CORPUS)")
    seconds = 0.0
    for i in range(count):
        clip = clips[i % len(clips)]
        target = root / clip.parent.name / f"{i:04d}-{clip.name}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(clip, target)
        seconds += sf.info(clip).duration
    return root, seconds


def throughput(folder: Path, workers: int, preset: str, repeat: int, scratch: Path) -> tuple[float, int]:
    """Median wall seconds to anonymize the folder with ``workers`` processes (pool start included),
    and how many files failed (a failure still costs its time, so it stays in the figure)."""
    times = []
    for r in range(repeat):
        out = scratch / f"out-{workers}-{r}"
        started = time.perf_counter()
        summary = run_batch(folder, out, pipeline=load_preset(preset), key=Key.from_seed(1), workers=workers)
        times.append(time.perf_counter() - started)
        failed = len(summary.failed)
        shutil.rmtree(out)
    return statistics.median(times), failed


def in_process(folder: Path, preset: str, scratch: Path, count: int) -> tuple[float, float]:
    """Median seconds per file for anonymize_file in this process (warm), the work without batch overhead."""
    files = sorted(folder.rglob("*.flac"))[:count]
    pipeline, key = load_preset(preset), Key.from_seed(1)
    anonymize_file(files[0], scratch / "warm.flac", pipeline, key=key)
    times = []
    for src in files:
        started = time.perf_counter()
        anonymize_file(src, scratch / "one.flac", pipeline, key=key)
        times.append(time.perf_counter() - started)
    return statistics.median(times), sum(times) / len(times)


def make_long(path: Path, hours: float, sr: int, channels: int) -> None:
    """Corpus clips end to end (resampled, channels made from time-reversed copies), written in pieces."""
    import soxr

    clips = sorted(CORPUS.glob("*/*.flac"))
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


def peak_rss(path: Path, preset: str, scratch: Path) -> tuple[float, float]:
    """Peak RSS (MB) and wall seconds of anonymizing ``path`` in a fresh process.

    The child reports its own peak: RUSAGE_CHILDREN would also count the pool workers of the
    throughput runs.
    """
    code = (
        "import resource, sys; from deid.api import anonymize_file; "
        f"anonymize_file(sys.argv[1], sys.argv[2], {preset!r}, seed=1); "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, str(path), str(scratch / f"out{path.suffix}")], check=True,
                          cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True)
    wall = time.perf_counter() - started
    return int(done.stdout.split()[-1]) / 1024.0, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=240, help="files in the throughput folder (default 240)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="the N of 1 vs N (default: cores)")
    parser.add_argument("--preset", default="standard")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--hours", type=float, default=2.0, help="length of the long mono file (default 2)")
    parser.add_argument("--stereo-hours", type=float, default=0.0, help="also a 48 kHz stereo file this long")
    parser.add_argument("--skip-long", action="store_true", help="only the throughput figures")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="deid-bench-") as tmp:
        scratch = Path(tmp)
        folder, seconds = make_folder(scratch / "in", args.files)
        per_file, mean_file = in_process(folder, args.preset, scratch, 40)
        one, failed = throughput(folder, 1, args.preset, args.repeat, scratch)
        many, _ = throughput(folder, args.workers, args.preset, args.repeat, scratch)
        overhead = one / args.files - mean_file
        print(f"# deid batch benchmark: {args.files} files, {seconds / 60:.1f} min of 16 kHz speech, preset {args.preset}, "
              f"{os.cpu_count()} cores, median of {args.repeat}")
        if failed:
            print(f"# {failed} file(s) failed in each run (see 'deid anonymize' on the folder for the reasons)")
        print("| measure | value |")
        print("| --- | --- |")
        print(f"| 1 worker | {one:.1f} s, {args.files / one:.1f} files/s, {seconds / one:.0f}x realtime |")
        print(f"| {args.workers} workers | {many:.1f} s, {args.files / many:.1f} files/s, {seconds / many:.0f}x realtime |")
        print(f"| speed-up {args.workers} vs 1 workers | {one / many:.2f}x |")
        print(f"| work per file in one process (median / mean) | {per_file * 1000:.0f} / {mean_file * 1000:.0f} ms |")
        print(f"| batch overhead per file (1 worker, pool start, hashing, manifest) | {overhead * 1000:.0f} ms |")
        if not args.skip_long:
            long_mono = scratch / "long-mono.flac"
            make_long(long_mono, args.hours, 16000, 1)
            rss, wall = peak_rss(long_mono, args.preset, scratch)
            print(f"| {args.hours:g} h 16 kHz mono, peak RSS | {rss:.0f} MB ({wall:.0f} s, {args.hours * 3600 / wall:.0f}x realtime) |")
            long_mono.unlink()
            if args.stereo_hours:
                long_stereo = scratch / "long-stereo.flac"
                make_long(long_stereo, args.stereo_hours, 48000, 2)
                rss, wall = peak_rss(long_stereo, args.preset, scratch)
                print(f"| {args.stereo_hours:g} h 48 kHz stereo, peak RSS | {rss:.0f} MB ({wall:.0f} s, {args.stereo_hours * 3600 / wall:.0f}x realtime) |")


if __name__ == "__main__":
    main()
