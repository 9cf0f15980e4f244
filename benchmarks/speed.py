"""Real-time factor of every transform and every preset at 16 kHz and 48 kHz.

    python benchmarks/speed.py [--clips N] [--repeat R]

Real-time factor = seconds of audio processed per second of CPU time (one process, warm: every
step runs once before timing, so numba compilation and imports are not counted). Each cell is
the median over R repeats of the total over N corpus clips. Targets: standard >= 100x, fast >= 500x.
Run it on a quiet machine; compare runs by the ratio between rows, which noise affects less.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

import deid
from deid.keys import Key, rng_for
from deid.pipeline import Pipeline
from deid.transforms import Bandlimit, Formant, Loudness, McAdams, Noise, Pitch, PseudoVoice, Shift, Vtln

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("DEID_CORPUS", REPO.parent / "shared" / "corpus"))

STEPS = {
    "pitch (psola)": Pitch(semitones=4.0, method="psola"),
    "pitch (world)": Pitch(semitones=4.0, method="world"),
    "formant (psola)": Formant(ratio=1.15, method="psola"),
    "formant (stft)": Formant(ratio=1.15, method="stft"),
    "formant (world)": Formant(ratio=1.15, method="world"),
    "shift (wsola)": Shift(semitones=4.0),
    "pseudovoice (psola)": PseudoVoice(method="psola", scale_norm=2.0),
    "pseudovoice (world)": PseudoVoice(method="world", scale_norm=1.0),
    "vtln (stft)": Vtln(alpha=0.1),
    "mcadams": McAdams(alpha=0.8),
    "noise": Noise(snr_db=20.0),
    "bandlimit": Bandlimit(),
    "loudness": Loudness(),
}


def clips(n: int, sr: int) -> list[np.ndarray]:
    with open(CORPUS / "clips.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    out = []
    for row in rows[:: max(1, len(rows) // n)][:n]:
        y, native = sf.read(CORPUS / row["path"], dtype="float32")
        out.append(y if sr == native else soxr.resample(y, native, sr).astype(np.float32))
    return out


def rtf(pipe: Pipeline, audio: list[np.ndarray], sr: int, repeat: int) -> float:
    drawn = [pipe.draw(rng_for(Key.from_seed(i), "bench")) for i in range(len(audio))]
    pipe.apply(audio[0], sr, drawn[0])
    seconds = sum(len(y) for y in audio) / sr
    times = []
    for _ in range(repeat):
        start = time.process_time()
        for y, d in zip(audio, drawn):
            pipe.apply(y, sr, d)
        times.append(time.process_time() - start)
    return seconds / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not (CORPUS / "clips.tsv").is_file():
        sys.exit(f"corpus not found at {CORPUS} (set DEID_CORPUS)")
    rates = (16000, 48000)
    audio = {sr: clips(args.clips, sr) for sr in rates}
    total = sum(len(y) for y in audio[16000]) / 16000
    print(f"{args.clips} corpus clips, {total:.1f} s of speech; real-time factor (x), median of {args.repeat}")
    print(f"{'':24s}" + "".join(f"{sr // 1000:>8d} kHz" for sr in rates))
    rows = [(f"step: {name}", Pipeline([step])) for name, step in STEPS.items()]
    rows += [(f"preset: {name}", deid.load_preset(name)) for name in deid.list_presets()]
    for label, pipe in rows:
        print(f"{label:24s}" + "".join(f"{rtf(pipe, audio[sr], sr, args.repeat):11.0f}x" for sr in rates), flush=True)


if __name__ == "__main__":
    main()
