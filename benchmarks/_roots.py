"""Running a measurement against another checkout of deid, for before/after tables from one run.

``--baseline DIR`` in the benchmarks names a checkout (``git worktree add /tmp/base main``, or
``git archive main | tar -x -C /tmp/base``). Each measurement runs in a child process whose
``PYTHONPATH`` puts that checkout (or this one) first; the two are interleaved, so that a change
in the machine's load hits both alike, and the ratios come from the same run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("DEID_CORPUS", REPO.parent / "shared" / "corpus"))


def need_corpus() -> Path:
    if not (CORPUS / "clips.tsv").is_file():
        sys.exit(f"speech corpus not found at {CORPUS} (set DEID_CORPUS)")
    return CORPUS


def env_for(root: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(root), "PYTHONWARNINGS": "ignore"}


def run_json(root: Path, args: list[str]) -> dict:
    """``python ARGS`` with deid from ``root``; the JSON on the last line of its output."""
    done = subprocess.run([sys.executable, *args], cwd=root, env=env_for(root), capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(args)} failed under {root}:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def child_cpu(root: Path, args: list[str]) -> float:
    """CPU seconds (user + system) of ``python ARGS`` with deid from ``root``, start to exit."""
    proc = subprocess.Popen([sys.executable, *args], cwd=root, env=env_for(root), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status):
        raise RuntimeError(f"{' '.join(args)} failed under {root}: {proc.stderr.read().decode()[-2000:]}")
    proc.stderr.close()
    return usage.ru_utime + usage.ru_stime


def roots(baseline: str | None) -> dict[str, Path]:
    """The checkouts to measure: ``{"after": this one}``, and ``"before"`` with a baseline."""
    out = {"after": REPO}
    if baseline:
        base = Path(baseline).resolve()
        if not (base / "deid" / "__init__.py").is_file():
            sys.exit(f"--baseline {base}: not a deid checkout")
        out = {"before": base, **out}
    return out


def load() -> str:
    """The machine's load averages, to print beside figures taken on a shared machine."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.1f} / {five:.1f} / {fifteen:.1f} on {os.cpu_count()} cores"
