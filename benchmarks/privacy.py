"""Run the full privacy evaluation of every preset on the shared corpus and print the table.

    python benchmarks/privacy.py                       # every preset, ../shared/corpus
    python benchmarks/privacy.py standard strong --json results.json --markdown results.md

The originals are embedded, tracked and transcribed once; each preset is then anonymized with
independent keys, attacked by the ignorant, lazy-informed and trained attackers (5 speaker
folds), transcribed against the original's transcript, and timed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from rich.console import Console

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from deid.evaluate import Evaluation, clips_from_table, preset_anonymizer  # noqa: E402
from deid.evaluate.report import markdown_table, summary_table, write_json  # noqa: E402
from deid.presets import list_presets  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("presets", nargs="*", help="preset names or TOML paths (default: every preset)")
    parser.add_argument(
        "--corpus", type=Path, default=Path(os.environ.get("DEID_CORPUS", REPO.parent / "shared" / "corpus"))
    )
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=1, help="extra training runs for the trained attacker")
    parser.add_argument("--no-asr", action="store_true", help="skip the WER (the slowest part)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()

    console = Console(stderr=True)
    start = time.perf_counter()
    evaluation = Evaluation(
        clips_from_table(args.corpus / "clips.tsv"),
        asr=None if args.no_asr else "auto",
        folds=args.folds,
        runs=args.runs,
        console=console,
    )
    console.log(f"originals ready in {time.perf_counter() - start:.0f} s ({evaluation.seconds:.0f} s of speech)")
    reports = []
    for preset in args.presets or list_presets():
        start = time.perf_counter()
        reports.append(evaluation.run(preset_anonymizer(preset), Path(preset).stem))
        console.log(f"{preset}: {time.perf_counter() - start:.0f} s")
        console.print(summary_table(reports))
    Console(width=200).print(summary_table(reports))
    if args.json:
        write_json(reports, args.json)
    if args.markdown:
        args.markdown.write_text(markdown_table(reports) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
