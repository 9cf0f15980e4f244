"""deid anonymize / strip on folders: mirrored outputs, failures, exit codes, resume, kills, Dask."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import corpus_clips
from typer.testing import CliRunner

from deid.batch import NEUTRAL_MTIME
from deid.cli import app

SEED = ["--seed", "7"]


def link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link corpus clips into a test tree (a copy across filesystems); never into the repo."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        dst.write_bytes(src.read_bytes())


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """Nested folders: good clips, an empty file, a truncated FLAC, text named .wav, NaNs, a link loop."""
    root = tmp_path / "in"
    clips = corpus_clips(3)
    link_or_copy(clips[0], root / "alice" / "one.flac")
    link_or_copy(clips[1], root / "alice" / "deep" / "two.flac")
    link_or_copy(clips[2], root / "three.flac")
    (root / "empty.wav").write_bytes(b"")
    (root / "alice" / "cut.flac").write_bytes(clips[0].read_bytes()[:20000])
    (root / "alice" / "text.wav").write_text("not audio at all\n")
    (root / "notes.txt").write_text("a note\n")
    y = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    y[500] = np.nan
    sf.write(root / "nan.wav", y, 16000, subtype="FLOAT")
    (root / "alice" / "deep" / "loop").symlink_to("..", target_is_directory=True)
    return root


GOOD = {"alice/one.flac", "alice/deep/two.flac", "three.flac"}
BAD = {
    "empty.wav": "empty file",
    "alice/cut.flac": "truncated",
    "alice/text.wav": "not a recognised audio file",
    "nan.wav": "NaN",
}


def test_folder_mirrors_tree_and_reports_each_failure(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, text = run("anonymize", tree, out, *SEED, "--workers", "2")
    assert code == 2, text
    outputs = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and ".deid" not in p.parts}
    assert outputs == GOOD
    for rel in GOOD:
        y, sr = sf.read(out / rel)
        assert sr == 16000 and len(y) == sf.info(tree / rel).frames
    lines = text.splitlines()
    for rel, why in BAD.items():
        [line] = [ln for ln in lines if ln.startswith(f"failed: {rel}:")]
        assert why in line
    assert any(ln.startswith("skipped: notes.txt: not an audio file") for ln in lines)
    assert any(ln.startswith("skipped: alice/deep/loop:") and "loop" in ln for ln in lines)
    assert "Traceback" not in text
    assert not [p for p in out.rglob("*tmp")], "no temporary file may be left"


def test_rerun_skips_complete_outputs_and_force_redoes_them(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run("anonymize", tree, out, *SEED, "--glob", "*.flac")
    before = {p: (p.stat().st_mtime_ns, digest(p)) for p in out.rglob("*.flac")}
    code, text = run("anonymize", tree, out, *SEED, "--glob", "*.flac")
    assert code == 2  # the truncated FLAC still fails
    assert {p: (p.stat().st_mtime_ns, digest(p)) for p in out.rglob("*.flac")} == before
    assert "already done │     3" in text

    code, text = run("anonymize", tree, out, *SEED, "--glob", "*.flac", "--force")
    assert "anonymized   │     3" in text
    assert {p: digest(p) for p in out.rglob("*.flac")} == {p: d for p, (_, d) in before.items()}


def test_resume_redoes_stale_or_damaged_outputs(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run("anonymize", tree, out, *SEED, "--glob", "*.flac")
    damaged = out / "three.flac"
    damaged.write_bytes(damaged.read_bytes()[:1000])
    _, text = run("anonymize", tree, out, *SEED, "--glob", "*.flac")
    assert "anonymized   │     1" in text and sf.info(damaged).frames > 0
    # Another preset, another key or another link scope makes every output stale.
    for options in (["--preset", "fast"], ["--seed", "8"], ["--link", "channel"]):
        seed = [] if "--seed" in options else SEED
        _, text = run("anonymize", tree, out, *seed, *options, "--glob", "*.flac")
        assert "anonymized   │     3" in text, options


def test_exit_codes_for_nothing_done_and_usage_errors(tmp_path: Path, tree: Path) -> None:
    only_text = tmp_path / "text"
    only_text.mkdir()
    (only_text / "a.txt").write_text("x")
    assert run("anonymize", only_text, tmp_path / "o1", *SEED)[0] == 1
    code, text = run("anonymize", tree, tree / "out", *SEED)
    assert code == 1 and "inside the input folder" in text
    code, _ = run("anonymize", tree, tmp_path / "o2", *SEED, "--glob", "alice/deep/*.flac")
    assert code == 0


def test_manifest_holds_no_key_parameters_or_names(tree: Path, tmp_path: Path) -> None:
    out, audit, names = tmp_path / "out", tmp_path / "private" / "audit.jsonl", tmp_path / "private" / "names.csv"
    key_file = tmp_path / "key"
    key_file.write_text("correct horse battery staple")
    code, _ = run("anonymize", tree, out, "--key-file", key_file, "--glob", "*.flac", "--rename", "hashed",
                  "--rename-map", names, "--audit", audit)
    assert code == 2
    outputs = sorted(p for p in out.rglob("*.flac"))
    assert len(outputs) == 3 and all(p.parent == out and len(p.stem) == 32 for p in outputs)
    assert all(p.stat().st_mtime == NEUTRAL_MTIME for p in outputs)

    records = [json.loads(p.read_text()) for p in (out / ".deid").rglob("*.json")]
    assert len(records) == 3
    everything = b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())
    for secret in (b"correct horse", b"alice", b"three", b"one.flac", b"f0_spread", b"scale_norm", b"tilt", b"snr_db"):
        assert secret not in everything, secret

    # The map is written before the work starts, so it names every planned output.
    rows = {r["input"]: r["output"] for r in csv.DictReader(names.open())}
    assert set(rows) == GOOD | {"alice/cut.flac"} and {rows[rel] for rel in GOOD} == {p.name for p in outputs}
    logged = [json.loads(line) for line in audit.read_text().splitlines()]
    assert {entry["input"] for entry in logged} == GOOD
    assert all(entry["applied"][0]["step"] == "pseudovoice" and len(entry["input_sha256"]) == 64 for entry in logged)

    code, text = run("anonymize", tree, out, "--key-file", key_file, "--audit", out / "audit.jsonl")
    assert code == 1 and "away from the outputs" in text


def test_strip_folder_keeps_audio_and_drops_metadata(tree: Path, tmp_path: Path) -> None:
    tagged = tmp_path / "tagged"
    clip = corpus_clips(1)[0]
    tagged.mkdir()
    with sf.SoundFile(tagged / "tagged.flac", "w", 16000, 1, "PCM_16") as f:
        f.title = "Interview with Jane Doe"
        f.write(sf.read(clip)[0])
    code, text = run("strip", tagged, tmp_path / "clean")
    assert code == 0, text
    assert b"Jane Doe" in (tagged / "tagged.flac").read_bytes()
    assert b"Jane Doe" not in (tmp_path / "clean" / "tagged.flac").read_bytes()
    np.testing.assert_array_equal(sf.read(tmp_path / "clean" / "tagged.flac")[0], sf.read(tagged / "tagged.flac")[0])
    assert "already done │     1" in run("strip", tagged, tmp_path / "clean")[1]


@pytest.mark.slow
def test_sigkill_mid_run_then_rerun_finishes_every_output(tmp_path: Path) -> None:
    """Kill the run at two moments, all its processes and then only the main one; a rerun finishes."""
    root = tmp_path / "in"
    for i, clip in enumerate(corpus_clips(24)):
        link_or_copy(clip, root / f"d{i % 3}" / clip.name)
    # vpc-mcadams (about 40x real time) keeps the run long enough to be killed in the middle:
    # standard does 24 clips in well under a second once the workers are up.
    slow = ("--preset", "vpc-mcadams")
    reference = tmp_path / "reference"
    assert run("anonymize", root, reference, *SEED, *slow, "--workers", "2")[0] == 0

    out = tmp_path / "out"
    command = [sys.executable, "-m", "deid.cli", "anonymize", str(root), str(out), *SEED, *slow, "--workers", "2"]
    for delay, whole_group in ((1.5, True), (3.0, False)):
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + delay + 30
        # Wait until some outputs exist, so the kill lands mid-run rather than during start-up.
        while time.monotonic() < deadline and len(list(out.rglob("*.flac"))) < 2 and proc.poll() is None:
            time.sleep(0.05)
        time.sleep(delay / 3)
        if whole_group:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            # Orphaned workers notice their parent is gone and exit.
            proc.kill()
        proc.wait()
        if whole_group:
            assert 0 < len(list(out.rglob("*.flac"))) < 24, "the kill must land mid-run"
        # Whatever is visible under a final name is complete: it decodes and matches the reference.
        for path in out.rglob("*.flac"):
            assert digest(path) == digest(reference / path.relative_to(out)), path

    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    produced = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file() and ".deid" not in p.parts)
    assert produced == sorted(p.relative_to(reference) for p in reference.rglob("*.flac"))
    assert all(digest(out / rel) == digest(reference / rel) for rel in produced)


def test_dask_cluster_run_matches_local_run(tree: Path, tmp_path: Path) -> None:
    """A real LocalCluster (scheduler and two worker processes): same outputs, summary and exit code."""
    distributed = pytest.importorskip("distributed", reason="needs the dask extra: pip install 'deid-audio[dask]'")
    local = tmp_path / "local"
    assert run("anonymize", tree, local, *SEED)[0] == 2
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        out = tmp_path / "dask"
        code, text = run("anonymize", tree, out.as_uri(), *SEED, "--executor", "dask", "--scheduler", cluster.scheduler_address)
        assert code == 2, text
        assert "anonymized   │     3" in text and "failed       │     4" in text
        for rel, why in BAD.items():
            assert any(ln.startswith(f"failed: {rel}:") and why in ln for ln in text.splitlines())
        for rel in GOOD:
            assert digest(out / rel) == digest(local / rel)
        code, text = run("anonymize", tree, out, *SEED, "--executor", "dask", "--scheduler", cluster.scheduler_address)
        assert code == 2 and "already done │     3" in text


def test_dask_executor_reports_an_unreachable_scheduler(tree: Path, tmp_path: Path) -> None:
    pytest.importorskip("distributed", reason="needs the dask extra: pip install 'deid-audio[dask]'")
    code, text = run("anonymize", tree, tmp_path / "out", *SEED, "--executor", "dask", "--scheduler", "tcp://127.0.0.1:1")
    assert code == 1 and "cannot reach the Dask scheduler" in text and "Traceback" not in text
