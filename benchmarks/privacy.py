"""Run the privacy evaluation of presets and search variants on the shared corpus and print the tables.

    python benchmarks/privacy.py                        # every preset, ../shared/corpus, 3 keys
    python benchmarks/privacy.py standard variant:drift --keys 2 --folds 3 --retrain-minutes 3
    python benchmarks/privacy.py light fast --keys 1 --first-key 1   # a second key for an earlier run
    python benchmarks/privacy.py --list-variants

Names are presets (a name or a TOML path) or ``variant:NAME`` from `benchmarks/variants.py`, the
search's candidate anonymizers. The originals are embedded, rated, tracked and transcribed once;
each system is then run with `--keys` independent base keys. Each key gives other anonymization
runs, other speaker folds and another retraining, so the ± columns are the run-to-run spread
that a change must beat. Every finished system is appended to `--markdown` at once, so a long
search can be polled.

Protocols used in the README (60 speakers, 180 clips, 866 s):
- full: ``--keys 3 --folds 5 --runs 2 --retrain-minutes 5``;
- screening: ``--keys 2 --folds 3 --runs 1 --retrain-minutes 2``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path

from rich.console import Console

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from deid.evaluate import Evaluation, clips_from_table, preset_anonymizer  # noqa: E402
from deid.evaluate.report import spread_markdown, write_json  # noqa: E402
from deid.evaluate.retrain import LOSSES, RetrainSettings  # noqa: E402
from deid.presets import list_presets  # noqa: E402


def anonymizer_for(name: str):
    """A preset's anonymizer, or a search variant's (``variant:NAME``)."""
    if name.startswith("variant:"):
        import variants

        return variants.VARIANTS[name.split(":", 1)[1]]()
    return preset_anonymizer(name)


def subset(clips, n_speakers: int | None):
    """Every k-th speaker of the corpus, so a subset spans it (both genders) instead of its first rows."""
    if not n_speakers:
        return clips
    speakers = sorted({c.speaker for c in clips})
    chosen = set(speakers[:: max(1, len(speakers) // n_speakers)][:n_speakers])
    return [c for c in clips if c.speaker in chosen]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("systems", nargs="*", help="preset names, TOML paths or variant:NAME (default: every preset)")
    parser.add_argument(
        "--corpus", type=Path, default=Path(os.environ.get("DEID_CORPUS", REPO.parent / "shared" / "corpus"))
    )
    parser.add_argument("--speakers", type=int, help="evaluate on this many speakers spread over the corpus")
    parser.add_argument("--keys", type=int, default=3, help="independent base keys per system (the spread)")
    parser.add_argument(
        "--first-key", type=int, default=0, help="index of the first base key, to add keys to an earlier run"
    )
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=2, help="extra training runs for the trained attackers")
    parser.add_argument("--retrain-minutes", type=float, default=10.0, help="time cap per system and key, over all folds")
    parser.add_argument("--retrain-steps", type=int, default=100, help="fine-tuning steps per fold")
    parser.add_argument("--retrain-loss", choices=LOSSES, default="aam")
    parser.add_argument("--no-asr", action="store_true", help="skip the WER")
    parser.add_argument("--no-quality", action="store_true", help="skip DNSMOS")
    parser.add_argument("--json", type=Path, help="every report, one per system and key")
    parser.add_argument("--markdown", type=Path, help="the spread table, rewritten after every system")
    parser.add_argument("--cache", type=Path, help="keep the originals' measurements here and reuse them")
    parser.add_argument("--list-variants", action="store_true")
    args = parser.parse_args()

    if args.list_variants:
        import variants

        for name, make in variants.VARIANTS.items():
            print(f"variant:{name:24s} {(make.__doc__ or '').strip().splitlines()[0]}")
        return
    console = Console(stderr=True)
    start = time.perf_counter()
    evaluation = Evaluation(
        subset(clips_from_table(args.corpus / "clips.tsv"), args.speakers),
        asr=None if args.no_asr else "auto",
        folds=args.folds,
        runs=args.runs,
        retrain_minutes=args.retrain_minutes,
        retrain=RetrainSettings(loss=args.retrain_loss, steps=args.retrain_steps),
        quality=not args.no_quality,
        cache=args.cache,
        console=console,
    )
    console.log(f"originals ready in {time.perf_counter() - start:.0f} s ({evaluation.seconds:.0f} s of speech)")
    groups: dict[str, list] = {}
    for name in args.systems or list_presets():
        anonymizer = anonymizer_for(name)
        label = Path(name).stem if not name.startswith("variant:") else name
        for k in range(args.first_key, args.first_key + args.keys):
            start = time.perf_counter()
            key = hashlib.blake2b(f"privacy-benchmark-{k}".encode(), digest_size=32).digest()
            report = evaluation.run(anonymizer, label, key=key)
            groups.setdefault(label, []).append(report)
            console.log(f"{label} key {k}: {time.perf_counter() - start:.0f} s")
            console.print(spread_markdown({label: [report]}))
            if report.settings.get("retrain"):
                console.print(report.settings["retrain"])
        if args.markdown:
            args.markdown.write_text(spread_markdown(groups) + "\n", encoding="utf-8")
        if args.json:
            write_json([r for reports in groups.values() for r in reports], args.json)
    Console(width=250).print(spread_markdown(groups))


if __name__ == "__main__":
    main()
