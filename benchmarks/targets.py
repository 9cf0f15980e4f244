"""The targets of issue 12, before and after, in one table from one run.

    python benchmarks/targets.py --baseline DIR [--repeat R] [--quick | --rss-only]

``DIR`` is the checkout to compare with (``git archive main | tar -x -C /tmp/base``). Every figure
is a median over ``--repeat`` fresh processes (peak RSS: one run each, it hardly varies), the
two checkouts interleaved so that the machine's load hits both alike; the machine's load is
printed before and after. ``--quick`` shortens the long files (3 min, 18 min, 6 min) for a
try; ``--rss-only`` runs only the peak-RSS rows (the only ones ``--quick`` changes).

| what | target |
|---|---|
| peak RSS, ``standard``, 30 min 16 kHz mono | <= 250 MB |
| peak RSS, 3 h 16 kHz mono | <= 250 MB, and <= 1.15 x the 30-min figure |
| peak RSS, 1 h 48 kHz stereo | <= 350 MB |
| CPU of ``deid anonymize`` of one 5-s clip (cold start) | <= 0.8 s |
| 60 short clips, 2 workers vs 1 (wall) | >= 1.7 x |
| 240 clips, 2 workers vs 1 | >= 1.85 x |
| ``standard``, one process, warm, 16 kHz / 48 kHz | >= 250 x / >= 180 x |
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import batch  # noqa: E402
import speed  # noqa: E402
from _roots import load, need_corpus, roots  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", metavar="DIR", help="the checkout to compare with")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="short long files, for a try")
    parser.add_argument("--rss-only", action="store_true", help="only the peak-RSS rows (the only ones --quick changes)")
    args = parser.parse_args()
    need_corpus()
    checkouts = roots(args.baseline)
    names = list(checkouts)
    rows: list[tuple[str, dict[str, str], str, str]] = []
    print(f"# issue 12 targets; median of {args.repeat}; start: {load()}", flush=True)

    def fmt(values: dict[str, float], unit: str, digits: int = 0) -> dict[str, str]:
        return {k: f"{v:.{digits}f}{unit}" for k, v in values.items()}

    def ratio(values: dict[str, float]) -> str:
        return f"{values['after'] / values['before']:.2f}" if "before" in values else ""

    def meets(ok: bool) -> str:
        return "met" if ok else "not met"

    with tempfile.TemporaryDirectory(prefix="deid-targets-") as tmp:
        scratch = Path(tmp)
        # Peak RSS of one long file.
        scale = 0.1 if args.quick else 1.0
        rss: dict[str, dict[str, float]] = {}
        for label, hours, sr, channels in (("30 min 16 kHz mono", 0.5, 16000, 1), ("3 h 16 kHz mono", 3.0, 16000, 1),
                                           ("1 h 48 kHz stereo", 1.0, 48000, 2)):
            path = scratch / f"long-{sr}-{channels}.flac"
            batch.make_long(path, hours * scale, sr, channels)
            runs = batch.interleaved(checkouts, 1, ["--child", "rss", str(path), "standard", str(scratch)])
            rss[label] = {k: v[0]["rss"] for k, v in runs.items()}
            path.unlink()
            for leftover in scratch.glob("out-*"):
                leftover.unlink()
        flat = rss["3 h 16 kHz mono"]["after"] / rss["30 min 16 kHz mono"]["after"]
        rows.append(("peak RSS, standard, 30 min 16 kHz mono", fmt(rss["30 min 16 kHz mono"], " MB"),
                     ratio(rss["30 min 16 kHz mono"]), f"<= 250 MB: {meets(rss['30 min 16 kHz mono']['after'] <= 250)}"))
        rows.append(("peak RSS, 3 h 16 kHz mono", fmt(rss["3 h 16 kHz mono"], " MB"), ratio(rss["3 h 16 kHz mono"]),
                     f"<= 250 MB and <= 1.15 x 30 min ({flat:.2f} x): "
                     f"{meets(rss['3 h 16 kHz mono']['after'] <= 250 and flat <= 1.15)}"))
        rows.append(("peak RSS, 1 h 48 kHz stereo", fmt(rss["1 h 48 kHz stereo"], " MB"), ratio(rss["1 h 48 kHz stereo"]),
                     f"<= 350 MB: {meets(rss['1 h 48 kHz stereo']['after'] <= 350)}"))
        if args.rss_only:
            _table(names, rows, load())
            return
        # Cold start.
        cold = speed.cold_start(max(args.repeat, 5), args.baseline)
        anonymize = {k: v["anonymize"] for k, v in cold.items()}
        rows.append(("CPU of deid anonymize, one 5-s clip, cold", fmt(anonymize, " s", 2), ratio(anonymize),
                     f"<= 0.8 s: {meets(anonymize['after'] <= 0.8)}"))
        rows.append(("CPU of import deid.api", fmt({k: v["import"] for k, v in cold.items()}, " s", 2),
                     ratio({k: v["import"] for k, v in cold.items()}), ""))
        # Batch speed-up.
        for count, target in ((60, 1.7), (240, 1.85)):
            folder, _ = batch.make_folder(scratch / f"in-{count}", count)
            speeds = batch.throughput(checkouts, folder, 2, "standard", args.repeat, scratch)
            ups = {k: speeds[k]["1"] / speeds[k]["2"] for k in names}
            rows.append((f"{count} clips, 2 workers vs 1 (wall; 1 worker {speeds['after']['1']:.1f} s)",
                         fmt(ups, " x", 2), ratio(ups), f">= {target} x: {meets(ups['after'] >= target)}"))
        # Warm real-time factor.
        table = speed.rtf_table(["preset: standard"], 12, max(args.repeat, 5), args.baseline)
        for sr, target in (("16000", 250), ("48000", 180)):
            values = {k: table[k]["preset: standard"][sr] for k in names}
            rows.append((f"standard, one process, warm, {int(sr) // 1000} kHz", fmt(values, " x"), ratio(values),
                         f">= {target} x: {meets(values['after'] >= target)}"))
    _table(names, rows, load())


def _table(names: list[str], rows: list[tuple[str, dict[str, str], str, str]], end: str) -> None:
    print(f"# end: {end}")
    print("| what | " + " | ".join(names) + (" | after / before" if len(names) > 1 else "") + " | target |")
    print("| --- " + "| ---: " * (len(names) + (len(names) > 1)) + "| --- |")
    for label, cells, change, verdict in rows:
        print(f"| {label} | " + " | ".join(cells[k] for k in names) + (f" | {change}" if len(names) > 1 else "")
              + f" | {verdict} |")


if __name__ == "__main__":
    main()
