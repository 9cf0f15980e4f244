"""The command line as a user meets it: help, version, presets, anonymize, one-line errors."""

from __future__ import annotations

import subprocess
import sys

import soundfile as sf
from typer.testing import CliRunner

from deid import __version__
from deid.cli import app

runner = CliRunner()


def deid_cmd(*args, env=None):
    return subprocess.run([sys.executable, "-m", "deid", *map(str, args)], capture_output=True, text=True, env=env)


def test_help_and_version():
    assert "anonymize" in runner.invoke(app, ["--help"]).output
    assert runner.invoke(app, ["--version"]).output.strip() == f"deid {__version__}"


def test_presets_list_and_show():
    listing = runner.invoke(app, ["presets"])
    assert listing.exit_code == 0
    for name in ("light", "standard", "strong", "fast", "vpc-mcadams"):
        assert name in listing.output
    shown = runner.invoke(app, ["presets", "show", "vpc-mcadams"])
    assert shown.exit_code == 0 and 'type = "mcadams"' in shown.output and "0.5, 0.9" in shown.output
    missing = runner.invoke(app, ["presets", "show", "nope"])
    assert missing.exit_code == 1


def test_anonymize_writes_output_keeping_format(tmp_path, speech):
    src = tmp_path / "in.wav"
    sf.write(src, speech, 16000, subtype="PCM_24")
    result = runner.invoke(app, ["anonymize", str(src), str(tmp_path / "out.wav"), "--seed", "3", "--preset", "strong"])
    assert result.exit_code == 0, result.output
    info = sf.info(tmp_path / "out.wav")
    assert (info.samplerate, info.subtype, info.frames) == (16000, "PCM_24", len(speech))


def test_errors_are_one_line_without_traceback_and_exit_1(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio")
    cases = [
        ("anonymize", bad, tmp_path / "o.wav"),
        ("anonymize", tmp_path / "missing.wav", tmp_path / "o.wav"),
        ("anonymize", bad, bad),
        ("anonymize", bad, tmp_path / "o.wav", "--preset", "nope"),
    ]
    for args in cases:
        done = deid_cmd(*args, "--seed", "1")
        assert done.returncode == 1, done
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("deid: error:"), done.stderr
        assert "Traceback" not in done.stderr


def test_debug_shows_the_traceback(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio")
    done = subprocess.run(
        [sys.executable, "-m", "deid", "--debug", "anonymize", str(bad), str(tmp_path / "o.wav"), "--seed", "1"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1 and "Traceback" in done.stderr


def test_usage_error_exit_code(tmp_path):
    done = deid_cmd("anonymize", tmp_path / "a.wav", tmp_path / "b.wav", "--link", "galaxy")
    assert done.returncode == 2 and "galaxy" in done.stderr


def test_key_file_and_env_key_never_printed(tmp_path, speech):
    import os

    src = tmp_path / "in.wav"
    sf.write(src, speech, 16000)
    secret = "s3cret-key-value-xyz"
    key_file = tmp_path / "key"
    key_file.write_text(secret + "\n")
    a = deid_cmd("anonymize", src, tmp_path / "a.wav", "--key-file", key_file)
    b = deid_cmd("anonymize", src, tmp_path / "b.wav", env={**os.environ, "DEID_KEY": secret})
    c = deid_cmd("anonymize", tmp_path / "missing.wav", tmp_path / "c.wav", "--key-file", key_file)
    for done in (a, b, c):
        assert secret not in done.stdout + done.stderr
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()


def test_fresh_key_is_announced(tmp_path, speech):
    import os

    src = tmp_path / "in.wav"
    sf.write(src, speech, 16000)
    env = {k: v for k, v in os.environ.items() if k != "DEID_KEY"}
    done = deid_cmd("anonymize", src, tmp_path / "a.wav", env=env)
    assert done.returncode == 0 and "fresh random key" in done.stderr


def test_speaker_link_uses_parent_folder_or_map(tmp_path, voices):
    from conftest import load

    (tmp_path / "alice").mkdir()
    for i in range(2):
        sf.write(tmp_path / "alice" / f"{i}.wav", load(voices[i]), 16000)
    for i in range(2):
        done = deid_cmd("anonymize", tmp_path / "alice" / f"{i}.wav", tmp_path / f"o{i}.wav", "--seed", "1", "--link", "speaker")
        assert done.returncode == 0, done.stderr
    csv = tmp_path / "map.csv"
    csv.write_text("path,speaker\nalice/0.wav,A\n")
    missing = deid_cmd("anonymize", tmp_path / "alice" / "1.wav", tmp_path / "x.wav", "--seed", "1", "--link", "speaker", "--speaker-map", csv)
    assert missing.returncode == 1 and "not listed in the speaker map" in missing.stderr


def test_inspect_lists_planted_fields_and_anonymize_leaves_none(tmp_path):
    import json
    from pathlib import Path

    sample = Path(__file__).resolve().parents[1] / "data" / "sample.wav"
    before = deid_cmd("inspect", sample, "--json")
    assert before.returncode == 2
    fields = {f["field"]: f["value"] for f in json.loads(before.stdout)[str(sample)]}
    assert "Jane Example" in fields["LIST/INFO/IART"] and "EX-0042" in fields["LIST/INFO/ISFT"]
    out = tmp_path / "anon.wav"
    assert deid_cmd("anonymize", sample, out, "--seed", "1").returncode == 0
    after = deid_cmd("inspect", out, "--json")
    assert after.returncode == 0 and json.loads(after.stdout) == {str(out): []}
    raw = out.read_bytes()
    for marker in (b"Jane", b"EX-0042", b"555 0100", b"LIST"):
        assert marker not in raw


def test_single_file_takes_block_seconds(tmp_path, speech, monkeypatch):
    """``--block-seconds`` reaches the engine for one file too (issue 12: the single-file branch dropped it)."""
    import numpy as np

    from deid import engine

    cuts = []
    original = engine.find_cuts
    monkeypatch.setattr(engine, "find_cuts", lambda stream, *, block: cuts.append(original(stream, block=block)) or cuts[-1])
    src = tmp_path / "in.wav"
    y = np.tile(speech, int(np.ceil(25 * 16000 / len(speech))))[: 25 * 16000]
    sf.write(src, y, 16000, subtype="PCM_16")
    for option, blocks in (([], 1), (["--block-seconds", "10"], 3)):
        cuts.clear()
        result = runner.invoke(app, ["anonymize", str(src), str(tmp_path / "out.wav"), "--seed", "3", "--preset", "fast",
                                     *option])
        assert result.exit_code == 0, result.output
        assert (len(cuts[0]) - 1 if cuts else 1) == blocks
        assert sf.info(tmp_path / "out.wav").frames == len(y)
