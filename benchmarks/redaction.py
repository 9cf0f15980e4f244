"""Spoken-PII redaction on a spoken test set: what is still heard after redaction, what survives, how fast.

    python benchmarks/redaction.py [--seeds 1 2 3] [--personal 24] [--plain 8] [--files N [--repeat R]] [--no-leaks]

For every seed, espeak-ng speaks call-centre and voice-assistant clips (several voices and speeds,
a third band-limited to 8 kHz telephone quality) with made-up names, numbers, e-mails, addresses
and dates planted, spoken as people say them, and clips with only non-personal numbers and words
(timers, quantities, times of day). Each clip is transcribed by the built-in ASR (Whisper tiny.en,
one thread), redacted from that transcript (`deid.find_pii` + `deid.redact`, default options), and
the redacted audio transcribed again.

Per entity type:
- planted: items spoken;
- heard: items of which the ASR heard something in the original (only those can leak);
- leaked: heard items of which something is still heard in the redacted audio;
- uncovered: heard items with a word of the original transcript outside every span (a check
  that does not depend on the second transcription).

Targets (issue 10): 0 leaked, >= 95 % of non-personal content words still heard, every finding
timed, and the ASR >= 10x real time on one core. Speed is CPU time of this process (one
thread), median over clips of the same run.

``--files N`` measures at file level, as users run it: N recordings of corpus speech followed by
spoken personal data (and one long file of them, processed in blocks), each transcribed once
into a sidecar; then what redaction from that transcript adds to `deid.anonymize_file` (standard,
warm, in this process) and to `deid anonymize` as a process (cold start included), interleaved,
and the real-time factor of `anonymize --redact --asr` and `deid redact` on one thread.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import deid  # noqa: E402
from deid.redact import Transcriber, detect, place  # noqa: E402
from deid.redact.spans import word_times  # noqa: E402
from deid.redact.normalise import normalise  # noqa: E402
from tests.spoken_pii import (  # noqa: E402
    LeakResult,
    between_spans,
    espeak_available,
    heard,
    item_heard,
    make_clips,
    render,
)


def uncovered_items(clip, words, spans, *, verbose: bool = False) -> dict[str, int]:
    """Items heard in the original transcript with a word outside every span, per entity type."""
    norm = normalise(words)
    vocabulary, runs = heard([w.text for w in words])
    out: dict[str, int] = {}
    for item in clip.items:
        hit_words: set[int] = set()
        for s in item.strings:
            if not item_heard(s, vocabulary, runs):
                continue
            if s.isdigit():
                for t in norm.tokens:
                    if t.is_number and item_heard(s, set(), [t.text]):
                        hit_words.update(range(t.first, t.last + 1))
            else:
                hit_words.update(i for i, w in enumerate(words) if s in _clean(w.text))
        outside = [i for i in hit_words if not any(sp.start <= words[i].start and words[i].end <= sp.end for sp in spans)]
        if outside:
            out[item.entity] = out.get(item.entity, 0) + 1
            if verbose:
                print(f"  uncovered {item.entity}: " + ", ".join(f"{words[i].text}@{words[i].start:.2f}" for i in sorted(outside)))
    return out


def _clean(text: str) -> set[str]:
    import re

    return {re.sub(r"[^a-z0-9']", "", p) for p in text.lower().split("-")}


def run(seed: int, n_personal: int, n_plain: int, transcriber: Transcriber, *, anonymize_ratio: bool, verbose: bool = False) -> dict:
    clips = [render(c) for c in make_clips(seed, n_personal=n_personal, n_plain=n_plain)]
    result = LeakResult()
    uncovered: dict[str, int] = {}
    asr_speed, detect_ms, overhead = [], [], []
    findings_total = placed = 0
    for clip in clips:
        seconds = clip.y.shape[-1] / clip.sr
        t0 = time.process_time()
        words = transcriber.words(clip.y, clip.sr)
        asr_speed.append(seconds / max(1e-9, time.process_time() - t0))
        t0 = time.process_time()
        findings = detect(words)
        spans = place(findings, words, duration=seconds)  # raises if a finding has no time
        y_red = deid.redact(clip.y, clip.sr, spans)
        redact_cpu = time.process_time() - t0
        detect_ms.append(1000 * redact_cpu)
        findings_total += len(findings)
        placed += sum(any(sp.start <= a and b <= sp.end for sp in spans)
                      for a, b in (word_times(words, f.first, f.last, duration=seconds) for f in findings))
        if anonymize_ratio:
            t0 = time.process_time()
            deid.anonymize(clip.y, clip.sr, preset="standard", seed=1)
            overhead.append(redact_cpu / max(1e-9, time.process_time() - t0))
        for entity, n in uncovered_items(clip, words, spans, verbose=verbose).items():
            uncovered[entity] = uncovered.get(entity, 0) + n
        # The whole redacted clip, and every stretch between spans on its own: a tone can throw
        # Whisper off for the rest of a window, which would hide a leak.
        after = [[w.text for w in transcriber.words(y_red, clip.sr)]]
        after += [[w.text for w in transcriber.words(p, clip.sr)] for p in between_spans(y_red, clip.sr, spans)]
        if verbose:
            print(f"[{clip.voice} {clip.speed} wpm{' phone' if clip.telephone else ''}]")
            print("  said:    " + " ".join(s.text for s in clip.sentences))
            print("  heard:   " + " ".join(w.text for w in words))
            print("  spans:   " + ", ".join(f"{sp.start:.2f}-{sp.end:.2f} {sp.entity}" for sp in spans))
            print("  after:   " + " | ".join(" ".join(a) for a in after))
        result.add_clip(clip, [w.text for w in words], after)
    return {
        "result": result,
        "uncovered": uncovered,
        "asr_speed": statistics.median(asr_speed),
        "detect_ms": statistics.median(detect_ms),
        "overhead": statistics.median(overhead) if overhead else float("nan"),
        "findings": findings_total,
        "placed": placed,
        "audio_s": sum(c.y.shape[-1] / c.sr for c in clips),
        "clips": len(clips),
    }


def make_calls(folder: Path, n: int, seed: int) -> list[Path]:
    """`n` recordings of real speech with personal data spoken after it: a corpus clip of another
    speaker each, then an espeak-ng clip with planted items, at 16 kHz (FLAC), about 20-30 s."""
    import soundfile as sf
    import soxr

    sys.path.insert(0, str(REPO / "benchmarks"))
    from _roots import CORPUS, need_corpus

    need_corpus()
    rows = (CORPUS / "clips.tsv").read_text().splitlines()[1:]
    paths = [CORPUS / r.split("\t")[0] for r in rows[:: max(1, len(rows) // n)]][:n]
    said = [render(c) for c in make_clips(seed, n_personal=n, n_plain=0)]
    out = []
    for k, (path, clip) in enumerate(zip(paths, said)):
        real, sr = sf.read(path, dtype="float32")
        pii = clip.y if clip.sr == sr else soxr.resample(clip.y, clip.sr, sr).astype(np.float32)
        y = np.concatenate([real, np.zeros(sr // 2, np.float32), 0.5 * pii])
        out.append(folder / f"call{k}.flac")
        sf.write(out[-1], y, sr)
    return out


def file_speed(n: int, repeat: int, seed: int, transcriber: Transcriber) -> None:
    """Redaction at file level, through the engine (`deid.anonymize_file`) and the command line:
    what a given transcript adds to `anonymize` (standard), and `--asr` against real time."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="deid-redaction-bench-") as folder:
        _file_speed(Path(folder), n, repeat, seed, transcriber)


def _file_speed(folder: Path, n: int, repeat: int, seed: int, transcriber: Transcriber) -> None:
    import json

    import soundfile as sf

    from deid.api import anonymize_file

    sys.path.insert(0, str(REPO / "benchmarks"))
    from _roots import child_cpu, load

    calls = make_calls(folder, n, seed)
    long = folder / "long.flac"  # a long file, in blocks, its spans across block edges
    sf.write(long, np.concatenate([sf.read(c, dtype="float32")[0] for c in calls * 2]), 16000)
    calls.append(long)
    seconds = {c: sf.info(c).duration for c in calls}
    asr = {}
    for c in calls:
        y, sr = sf.read(c, dtype="float32")
        t0 = time.process_time()
        words = transcriber.words(y, sr)
        asr[c] = seconds[c] / (time.process_time() - t0)
        doc = {"segments": [{"words": [{"word": " " + w.text, "start": w.start, "end": w.end} for w in words]}]}
        c.with_suffix(".json").write_text(json.dumps(doc))

    def cpu(fn) -> float:
        t0 = time.process_time()
        fn()
        return time.process_time() - t0

    out = folder / "out.flac"
    anonymize_file(calls[0], out, "standard", seed=1)  # warm: compiled engines, detectors, names lists
    anonymize_file(calls[0], out, "standard", seed=1, redact=True, transcript=calls[0].with_suffix(".json"))
    engine_ratio, cli_ratio, spans = {}, {}, {}
    for c in calls:
        plain, red = [], []
        for _ in range(repeat):  # interleaved, so that the machine's load hits both alike
            plain.append(cpu(lambda: anonymize_file(c, out, "standard", seed=1)))
            red.append(cpu(lambda: anonymize_file(c, out, "standard", seed=1, redact=True, transcript=c.with_suffix(".json"))))
        engine_ratio[c] = statistics.median(red) / statistics.median(plain) - 1
        spans[c] = len(anonymize_file(c, out, "standard", seed=1, redact=True, transcript=c.with_suffix(".json")).redaction.spans)
        plain, red = [], []
        for _ in range(repeat):
            base = ["-m", "deid", "anonymize", str(c), str(out), "--seed", "1"]
            plain.append(child_cpu(REPO, base))
            red.append(child_cpu(REPO, [*base, "--transcript", str(c.with_suffix(".json"))]))
        cli_ratio[c] = statistics.median(red) / statistics.median(plain) - 1
    asr_cpu = {}
    whole = Transcriber(cpu_threads=1)
    for c in calls:
        asr_cpu[c] = seconds[c] / cpu(lambda: anonymize_file(c, out, "standard", seed=1, redact=True, transcript=whole))
    redact_cli = {c: seconds[c] / child_cpu(REPO, ["-m", "deid", "redact", str(c), str(out), "--transcript",
                                                    str(c.with_suffix(".json"))]) for c in calls}

    print(f"\nfile level: {len(calls)} files (corpus speech, then espeak-ng personal data; the last one "
          f"{seconds[long]:.0f} s, in blocks), CPU time, median of {repeat} interleaved runs; {load()}\n")
    print("| file | seconds | spans | `anonymize_file` + transcript | `deid anonymize --transcript` (process) | "
          "ASR alone (1 thread) | `anonymize --redact --asr` (1 thread) | `deid redact --transcript` |")
    print("|---|---|---|---|---|---|---|---|")
    for c in calls:
        print(f"| {c.name} | {seconds[c]:.1f} | {spans[c]} | +{100 * engine_ratio[c]:.1f} % | +{100 * cli_ratio[c]:.1f} % | "
              f"{asr[c]:.1f}x | {asr_cpu[c]:.1f}x | {redact_cli[c]:.1f}x |")
    med = statistics.median
    print(f"| **median** | | | +{100 * med(engine_ratio.values()):.1f} % | +{100 * med(cli_ratio.values()):.1f} % | "
          f"{med(asr.values()):.1f}x | {med(asr_cpu.values()):.1f}x | {med(redact_cli.values()):.1f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--personal", type=int, default=24, help="clips with planted items per seed (3 sentences each)")
    parser.add_argument("--plain", type=int, default=8, help="clips with only non-personal sentences per seed")
    parser.add_argument("--verbose", action="store_true", help="print what was said, heard and heard after redaction")
    parser.add_argument("--no-anonymize", action="store_true", help="skip the overhead against `anonymize` standard")
    parser.add_argument("--files", type=int, default=0, help="also measure N files at file level (engine and command line)")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved runs per file for --files")
    parser.add_argument("--no-leaks", action="store_true", help="only the file-level speed (--files)")
    args = parser.parse_args()
    if not espeak_available():
        sys.exit("espeak-ng is not installed (apt-get install -y espeak-ng)")
    transcriber = Transcriber(cpu_threads=1)
    if args.files:
        file_speed(args.files, args.repeat, args.seeds[0], transcriber)
    if args.no_leaks:
        return
    runs = {s: run(s, args.personal, args.plain, transcriber, anonymize_ratio=not args.no_anonymize, verbose=args.verbose) for s in args.seeds}

    entities = sorted({e for r in runs.values() for e in r["result"].planted})
    total = {k: {e: sum(getattr(r["result"], k).get(e, 0) for r in runs.values()) for e in entities} for k in ("planted", "heard", "leaked")}
    unc = {e: sum(r["uncovered"].get(e, 0) for r in runs.values()) for e in entities}
    audio = sum(r["audio_s"] for r in runs.values())
    print(f"\nseeds {args.seeds}: {sum(r['clips'] for r in runs.values())} clips, {audio:.0f} s of espeak-ng speech, ASR {transcriber.name}, 1 thread\n")
    print("| entity | planted | heard | leaked | uncovered |")
    print("|---|---|---|---|---|")
    for e in entities:
        print(f"| {e} | {total['planted'][e]} | {total['heard'][e]} | {total['leaked'][e]} | {unc[e]} |")
    print(f"| **all** | {sum(total['planted'].values())} | {sum(total['heard'].values())} | {sum(total['leaked'].values())} | {sum(unc.values())} |")
    print("\n| seed | planted | heard | leaked | uncovered | content kept |")
    print("|---|---|---|---|---|---|")
    for seed, r in runs.items():
        res = r["result"]
        print(f"| {seed} | {sum(res.planted.values())} | {sum(res.heard.values())} | {sum(res.leaked.values())} | "
              f"{sum(r['uncovered'].values())} | {100 * res.content_kept / max(1, res.content_total):.1f} % "
              f"({res.content_kept}/{res.content_total}) |")
    kept = [r["result"].content_kept / max(1, r["result"].content_total) for r in runs.values()]
    ct = sum(r["result"].content_total for r in runs.values())
    ck = sum(r["result"].content_kept for r in runs.values())
    print()
    print("| measure | value |")
    print("|---|---|")
    print(f"| non-personal content words still heard | {100 * ck / max(1, ct):.1f} % ({ck}/{ct}; per seed {', '.join(f'{100 * k:.1f}' for k in kept)} %) |")
    placed, found = (sum(r[k] for r in runs.values()) for k in ("placed", "findings"))
    print(f"| findings inside a span, in time | {placed} of {found} (a finding that cannot be placed would stop the run: it fails its file) |")
    speeds = [r["asr_speed"] for r in runs.values()]
    print(f"| ASR (`--asr`, tiny.en, 1 thread), real-time factor, median per clip | {statistics.median(speeds):.1f}x (per seed {', '.join(f'{s:.1f}' for s in speeds)}) |")
    print(f"| detection + replacement from a transcript, per clip (median) | {statistics.median(r['detect_ms'] for r in runs.values()):.1f} ms |")
    if not args.no_anonymize:
        ratios = [r["overhead"] for r in runs.values()]
        print(f"| ... as a share of `anonymize` standard on the same clip (median) | {100 * statistics.median(ratios):.1f} % (per seed {', '.join(f'{100 * x:.1f}' for x in ratios)} %) |")
    leaks = [leak for r in runs.values() for leak in r["result"].leaks]
    if leaks:
        print("\nleaked: " + "; ".join(leaks))


if __name__ == "__main__":
    main()
