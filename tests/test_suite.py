"""The test run itself: in CI a missing corpus fails it, instead of skipping what it was meant to measure."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import REPO


def run_pytest(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_pipeline.py",
                           "-k", "bad_arrays or every_preset"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)


def test_a_missing_corpus_fails_the_run_when_it_is_required(tmp_path):
    env = {**os.environ, "DEID_CORPUS": str(tmp_path)}
    env.pop("DEID_REQUIRE_CORPUS", None)
    relaxed = run_pytest(env)
    # Without the requirement the tests that need speech skip, and say so.
    assert relaxed.returncode == 0 and "skipped" in relaxed.stdout, relaxed.stdout
    required = run_pytest({**env, "DEID_REQUIRE_CORPUS": "1"})
    assert required.returncode != 0, required.stdout
    assert "DEID_REQUIRE_CORPUS is set but the speech corpus is not at" in required.stdout + required.stderr
