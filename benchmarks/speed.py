"""Real-time factor of every transform and every preset at 16 kHz and 48 kHz, and the cold start.

    python benchmarks/speed.py [--clips N] [--repeat R] [--only LABEL ...] [--cold] [--baseline DIR]

Real-time factor = seconds of audio processed per second of CPU time (one process, warm: every
row runs once over every clip before timing, so imports and loading compiled code are not counted). Each cell is
the median over R runs of the total over N corpus clips; every run is a fresh process. With
``--baseline DIR`` (another checkout, e.g. ``git archive main | tar -x -C /tmp/base``) each row
is measured for both, interleaved, and the table gives before, after and their ratio.

``--cold`` adds the cold start: CPU seconds (user + system) of ``deid anonymize`` of one 5-s
corpus clip with the default preset, from process start to exit, and of ``import deid.api``.
Run it on a quiet machine; compare runs by the ratio between rows, which noise affects less.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _roots import CORPUS, child_cpu, load, need_corpus, roots, run_json  # noqa: E402

RATES = (16000, 48000)
#: Steps by row label, as constructor calls every deid version understands.
STEPS = {
    "pitch (psola)": "Pitch(semitones=4.0, method='psola')",
    "pitch (world)": "Pitch(semitones=4.0, method='world')",
    "formant (psola)": "Formant(ratio=1.15, method='psola')",
    "formant (stft)": "Formant(ratio=1.15, method='stft')",
    "formant (world)": "Formant(ratio=1.15, method='world')",
    "shift (wsola)": "Shift(semitones=4.0)",
    "pseudovoice (psola)": "PseudoVoice(method='psola', scale_norm=2.0)",
    "pseudovoice (world)": "PseudoVoice(method='world', scale_norm=1.0)",
    "vtln (stft)": "Vtln(alpha=0.1)",
    "mcadams": "McAdams(alpha=0.8)",
    "noise": "Noise(snr_db=20.0)",
    "bandlimit": "Bandlimit()",
    "loudness": "Loudness()",
}
PRESETS = ("fast", "light", "standard", "strong", "vpc-mcadams")


def labels() -> list[str]:
    return [f"step: {name}" for name in STEPS] + [f"preset: {name}" for name in PRESETS]


def clips(n: int, sr: int) -> list:
    """``n`` corpus clips spread over the corpus, as float32 at ``sr``."""
    import numpy as np
    import soundfile as sf
    import soxr

    with open(CORPUS / "clips.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    out = []
    for row in rows[:: max(1, len(rows) // n)][:n]:
        y, native = sf.read(CORPUS / row["path"], dtype="float32")
        out.append(y if sr == native else soxr.resample(y, native, sr).astype(np.float32))
    return out


def child(names: list[str], n: int) -> dict[str, dict[str, float]]:
    """In this process (the deid on sys.path): one timed pass of each row at each rate, after a warm-up."""
    import deid
    from deid import transforms
    from deid.keys import Key, rng_for
    from deid.pipeline import Pipeline

    result: dict[str, dict[str, float]] = {}
    for sr in RATES:
        audio = clips(n, sr)
        seconds = sum(len(y) for y in audio) / sr
        for label in names:
            kind, name = label.split(": ", 1)
            pipe = deid.load_preset(name) if kind == "preset" else Pipeline([eval(STEPS[name], vars(transforms))])  # noqa: S307
            drawn = [pipe.draw(rng_for(Key.from_seed(i), "bench")) for i in range(len(audio))]
            # Warm: every clip once, so that whatever a clip needs first (the hum notch) is loaded.
            for y, d in zip(audio, drawn):
                pipe.apply(y, sr, d)
            start = time.process_time()
            for y, d in zip(audio, drawn):
                pipe.apply(y, sr, d)
            result.setdefault(label, {})[str(sr)] = seconds / (time.process_time() - start)
    return result


def rtf_table(names: list[str], n: int, repeat: int, baseline: str | None) -> dict[str, dict[str, dict[str, float]]]:
    """Median real-time factor per checkout, row and rate, the checkouts interleaved run by run."""
    checkouts = roots(baseline)
    runs: dict[str, list[dict]] = {name: [] for name in checkouts}
    for r in range(repeat):
        order = list(checkouts.items()) if r % 2 == 0 else list(reversed(checkouts.items()))
        for name, root in order:
            runs[name].append(run_json(root, [str(Path(__file__).resolve()), "--child", "--clips", str(n),
                                              "--only", *names]))
    return {name: {label: {sr: statistics.median(run[label][sr] for run in results) for sr in map(str, RATES)}
                   for label in names}
            for name, results in runs.items()}


def cold_start(repeat: int, baseline: str | None) -> dict[str, dict[str, float]]:
    """Median CPU seconds of a cold ``deid anonymize`` of one 5-s clip, and of ``import deid.api``."""
    import soundfile as sf

    checkouts = roots(baseline)
    with tempfile.TemporaryDirectory(prefix="deid-cold-") as tmp:
        clip = Path(tmp) / "clip.wav"
        y, sr = sf.read(need_corpus() / "1334" / "1334-135589-0000_seg1.flac", dtype="float32")
        sf.write(clip, y[: 5 * sr], sr, subtype="PCM_16")
        cpu: dict[str, dict[str, list[float]]] = {name: {"anonymize": [], "import": []} for name in checkouts}
        for r in range(repeat):
            for name, root in (list(checkouts.items()) if r % 2 == 0 else list(reversed(checkouts.items()))):
                out = Path(tmp) / f"out-{name}.wav"
                cpu[name]["anonymize"].append(child_cpu(root, ["-m", "deid", "anonymize", str(clip), str(out), "--seed", "1"]))
                cpu[name]["import"].append(child_cpu(root, ["-c", "import deid.api"]))
    return {name: {k: statistics.median(v) for k, v in values.items()} for name, values in cpu.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", nargs="+", metavar="LABEL", help="rows to measure, e.g. 'preset: standard'")
    parser.add_argument("--cold", action="store_true", help="also the cold start of one 5-s clip")
    parser.add_argument("--baseline", metavar="DIR", help="another checkout to measure beside this one")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    need_corpus()
    names = args.only or labels()
    if args.child:
        print(json.dumps(child(names, args.clips)))
        return
    print(f"# {args.clips} corpus clips; real-time factor (x), median of {args.repeat} runs; {load()}")
    table = rtf_table(names, args.clips, args.repeat, args.baseline)
    compare = "before" in table
    head = "".join(f" | {sr // 1000} kHz before | {sr // 1000} kHz after | ratio" if compare else f" | {sr // 1000} kHz"
                   for sr in RATES)
    print(f"| row{head} |")
    print("| --- " + "| ---: " * (len(RATES) * (3 if compare else 1)) + "|")
    for label in names:
        cells = []
        for sr in map(str, RATES):
            after = table["after"][label][sr]
            if compare:
                before = table["before"][label][sr]
                cells += [f"{before:.0f}x", f"{after:.0f}x", f"{after / before:.2f}"]
            else:
                cells.append(f"{after:.0f}x")
        print(f"| {label} | " + " | ".join(cells) + " |", flush=True)
    if args.cold:
        cold = cold_start(max(args.repeat, 5), args.baseline)
        print(f"\n# cold start, CPU seconds (user + system), median of {max(args.repeat, 5)}; {load()}")
        print("| measure | " + " | ".join(cold) + (" | ratio |" if compare else " |"))
        print("| --- " + "| ---: " * (len(cold) + compare) + "|")
        for what, text in (("anonymize", "deid anonymize, one 5-s clip"), ("import", "import deid.api")):
            cells = [f"{cold[name][what]:.2f} s" for name in cold]
            if compare:
                cells.append(f"{cold['after'][what] / cold['before'][what]:.2f}")
            print(f"| {text} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
