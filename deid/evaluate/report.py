"""Show an evaluation: rich tables on the terminal, JSON, a PNG of score histograms and DET curves."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from rich.table import Table

from deid.errors import DeidError
from deid.evaluate.run import ATTACKERS, EvaluationReport

_TITLES = {
    "original": "original (enrol orig, test orig)",
    "ignorant": "ignorant (enrol orig, test anon)",
    "lazy": "lazy-informed (enrol anon, other key)",
    "trained": "trained back-end (speaker folds)",
    "retrained": "retrained encoder (speaker folds)",
    "retrained+backend": "retrained encoder + back-end",
}


def _pct(x: float | None) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f} %"


def attack_table(report: EvaluationReport) -> Table:
    """One row per attacker: EER, identification accuracy and its chance level."""
    table = Table(title=f"{report.name}: speaker verification and identification")
    for col in ("attacker", "EER", "ID accuracy", "ID chance", "trials (target / non-target)"):
        table.add_column(col, justify="left" if col == "attacker" else "right")
    for name in _present(report):
        a = report.attacks[name]
        table.add_row(
            _TITLES[name],
            _pct(a.eer),
            _pct(a.id_accuracy),
            _pct(a.id_chance),
            f"{a.target_scores.size} / {a.nontarget_scores.size}",
        )
    return table


def utility_table(report: EvaluationReport) -> Table:
    """WER, pitch and speed of one evaluation."""
    table = Table(title=f"{report.name}: utility and speed")
    table.add_column("measure")
    table.add_column("value", justify="right")
    wer = report.wer
    if wer:
        ref = "given transcripts" if wer["reference"] == "given" else "ASR transcript of the original"
        table.add_row(f"WER anonymized ({wer['asr']}; reference: {ref})", _pct(wer["anonymized"]))
        if wer["reference"] == "given":
            table.add_row("WER original", _pct(wer["original"]))
            table.add_row("WER ratio anonymized / original", f"{wer['ratio']:.2f}×")
    else:
        table.add_row("WER", "not measured (no ASR)")
    table.add_row("F0 correlation (log F0, per-clip mean removed)", f"{report.f0['correlation']:.2f}")
    table.add_row("median F0 shift", f"{report.f0['median_shift_semitones']:+.1f} st")
    for name, q in report.quality.items():
        table.add_row(
            f"DNSMOS {_QUALITY_NAMES[name]}: original → anonymized (mean change per file ± sd)",
            f"{q['original']:.2f} → {q['anonymized']:.2f} ({q['change']:+.2f} ± {q['change_sd']:.2f})",
        )
    table.add_row("speed (audio s per CPU s)", f"{report.speed['x_realtime']:.0f}×")
    return table


_QUALITY_NAMES = {"sig": "SIG", "bak": "BAK", "ovrl": "OVRL", "p808": "P.808"}


def _present(report: EvaluationReport) -> list[str]:
    return [name for name in ATTACKERS if name in report.attacks]


#: Columns of the per-system summary, on the terminal and in Markdown.
SUMMARY_COLUMNS = (
    "system",
    "EER orig",
    "EER ignorant",
    "EER lazy",
    "EER trained",
    "EER retrained / + back-end",
    "ID acc ign / lazy / trained / retrained",
    "WER vs orig",
    "DNSMOS OVRL (change)",
    "SIG / BAK change",
    "F0 corr",
    "F0 shift",
    "speed",
)


def summary_table(reports: Sequence[EvaluationReport]) -> Table:
    """One row per evaluated system: the figures the README compares."""
    table = Table(title="deid evaluate: EER (higher is more private) and utility")
    for col in SUMMARY_COLUMNS:
        table.add_column(col, justify="left" if col == "system" else "right")
    for r in reports:
        table.add_row(*_summary_cells(r))
    return table


def markdown_table(reports: Sequence[EvaluationReport]) -> str:
    """The summary table as GitHub Markdown, for the README."""
    lines = ["| " + " | ".join(SUMMARY_COLUMNS) + " |", "|" + "---|" * len(SUMMARY_COLUMNS)]
    lines += ["| " + " | ".join(_summary_cells(r)) + " |" for r in reports]
    return "\n".join(lines)


def _summary_cells(r: EvaluationReport) -> list[str]:
    a = r.attacks
    wer = r.wer.get("anonymized") if r.wer else None
    ids = " / ".join(
        f"{100 * a[k].id_accuracy:.0f}" if k in a else "–" for k in ("ignorant", "lazy", "trained", "retrained")
    ) + " %"
    retrained = (
        f"{_pct(a['retrained'].eer)} / {_pct(a['retrained+backend'].eer)}" if "retrained" in a else "–"
    )
    q = r.quality
    return [
        r.name,
        _pct(a["original"].eer),
        _pct(a["ignorant"].eer),
        _pct(a["lazy"].eer),
        _pct(a["trained"].eer),
        retrained,
        ids,
        _pct(wer),
        f"{q['ovrl']['anonymized']:.2f} ({q['ovrl']['change']:+.2f})" if q else "–",
        f"{q['sig']['change']:+.2f} / {q['bak']['change']:+.2f}" if q else "–",
        f"{r.f0['correlation']:.2f}",
        f"{r.f0['median_shift_semitones']:+.1f} st",
        f"{r.speed['x_realtime']:.0f}×",
    ]


def write_json(reports: Sequence[EvaluationReport], path: str | Path) -> None:
    """Write the summaries (no raw scores) as JSON; NaN becomes null so any reader accepts it."""

    def clean(x: object) -> object:
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, float) and not math.isfinite(x):
            return None
        return x

    data = [clean(r.to_dict()) for r in reports]
    try:
        Path(path).write_text(json.dumps(data[0] if len(data) == 1 else data, indent=2) + "\n", encoding="utf-8")
    except OSError as error:
        raise DeidError(f"cannot write JSON: {error.strerror}", path) from error


def write_plot(report: EvaluationReport, path: str | Path) -> None:
    """PNG: target/non-target score histograms per attacker, and every attacker's DET curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import DetCurveDisplay

    names = _present(report)
    panels = len(names) + 1 + bool(report.quality)
    fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 3.8))
    for ax, name in zip(axes, names):
        a = report.attacks[name]
        bins = np.linspace(
            min(a.target_scores.min(), a.nontarget_scores.min()),
            max(a.target_scores.max(), a.nontarget_scores.max()),
            40,
        )
        ax.hist(a.nontarget_scores, bins=bins, density=True, alpha=0.6, label="non-target")
        ax.hist(a.target_scores, bins=bins, density=True, alpha=0.6, label="target")
        ax.set_title(f"{name}: EER {100 * a.eer:.1f} %", fontsize=10)
        ax.set_xlabel("score (cosine)")
        ax.legend(fontsize=8)
    det = axes[len(names)]
    for name in names:
        a = report.attacks[name]
        labels = np.r_[np.ones(a.target_scores.size), np.zeros(a.nontarget_scores.size)]
        DetCurveDisplay.from_predictions(
            labels, np.r_[a.target_scores, a.nontarget_scores], ax=det, name=f"{name} ({100 * a.eer:.1f} %)"
        )
    det.set_title("DET", fontsize=10)
    det.set_xlabel("false-alarm rate")
    det.set_ylabel("miss rate")
    det.legend(fontsize=8)
    if report.quality:
        ax = axes[-1]
        keys = list(report.quality)
        x = np.arange(len(keys))
        ax.bar(x - 0.2, [report.quality[k]["original"] for k in keys], 0.4, label="original")
        ax.bar(x + 0.2, [report.quality[k]["anonymized"] for k in keys], 0.4,
               yerr=[report.quality[k]["change_sd"] for k in keys], label="anonymized (± sd of change)")
        ax.set_xticks(x, [_QUALITY_NAMES[k] for k in keys])
        ax.set_ylim(1, 5)
        ax.set_title("DNSMOS (1-5)", fontsize=10)
        ax.legend(fontsize=8)
    fig.suptitle(f"deid evaluate: {report.name}")
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=110)
    except OSError as error:
        raise DeidError(f"cannot write plot: {error.strerror}", path) from error
    finally:
        plt.close(fig)


#: The figures of `spread_markdown`: column title and how to read it from a report (a fraction
#: shown as a percentage, or a plain number with its format).
_SPREAD_FIGURES: tuple[tuple[str, str, str], ...] = (
    ("EER ignorant", "ignorant", "pct"),
    ("EER lazy", "lazy", "pct"),
    ("EER trained", "trained", "pct"),
    ("EER retrained", "retrained", "pct"),
    ("EER retrained + back-end", "retrained+backend", "pct"),
    ("ID acc retrained + back-end", "id:retrained+backend", "pct"),
    ("WER vs orig", "wer", "pct"),
    ("DNSMOS OVRL change", "q:ovrl", "num"),
    ("SIG change", "q:sig", "num"),
    ("BAK change", "q:bak", "num"),
    ("speed", "speed", "x"),
)


def _figure(r: EvaluationReport, what: str) -> float:
    if what == "wer":
        return float(r.wer.get("anonymized", float("nan"))) if r.wer else float("nan")
    if what == "speed":
        return float(r.speed["x_realtime"])
    if what.startswith("q:"):
        return float(r.quality[what[2:]]["change"]) if r.quality else float("nan")
    if what.startswith("id:"):
        a = r.attacks.get(what[3:])
        return float(a.id_accuracy) if a else float("nan")
    a = r.attacks.get(what)
    return float(a.eer) if a else float("nan")


def spread_markdown(groups: dict[str, Sequence[EvaluationReport]]) -> str:
    """One row per system: each figure's mean over repeated runs (other keys and folds), ± its standard deviation.

    Parameters
    ----------
    groups : dict
        System name to its reports, one per base key.
    """
    titles = [t for t, _, _ in _SPREAD_FIGURES]
    lines = ["| system | keys | " + " | ".join(titles) + " |", "|" + "---|" * (len(titles) + 2)]
    for name, reports in groups.items():
        cells = []
        for _, what, kind in _SPREAD_FIGURES:
            values = np.array([_figure(r, what) for r in reports])
            if np.all(np.isnan(values)):
                cells.append("–")
                continue
            mean, sd = float(np.nanmean(values)), float(np.nanstd(values))
            if kind == "pct":
                cells.append(f"{100 * mean:.1f} ± {100 * sd:.1f} %")
            elif kind == "x":
                cells.append(f"{mean:.0f}×")
            else:
                cells.append(f"{mean:+.2f} ± {sd:.2f}")
        lines.append(f"| {name} | {len(reports)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
