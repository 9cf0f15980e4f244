"""Shared fixtures: real speech from the shared corpus, resampled to the rates under test.

The corpus is found at ``../shared/corpus`` or ``$DEID_CORPUS``. Without it the tests that need
it are skipped, and the summary says so; in CI (``.ci/run`` sets ``DEID_REQUIRE_CORPUS=1``) a
missing corpus fails the run instead, since a run that measured nothing must not look green.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("DEID_CORPUS", REPO.parent / "shared" / "corpus"))
RATES = (8000, 16000, 44100, 48000)
REQUIRE_CORPUS = os.environ.get("DEID_REQUIRE_CORPUS", "") not in ("", "0")


def have_corpus() -> bool:
    return (CORPUS / "clips.tsv").is_file()


def pytest_sessionstart(session: pytest.Session) -> None:
    if REQUIRE_CORPUS and not have_corpus():
        raise pytest.UsageError(f"DEID_REQUIRE_CORPUS is set but the speech corpus is not at {CORPUS} "
                                "(set DEID_CORPUS): the tests would measure nothing")


def need_corpus() -> Path:
    """The corpus folder; skips the calling test without it (outside CI)."""
    if not have_corpus():
        pytest.skip(f"speech corpus not found at {CORPUS} (set DEID_CORPUS)")
    return CORPUS


#: For modules whose every test reads the corpus.
needs_corpus = pytest.mark.skipif(not have_corpus(), reason=f"speech corpus not found at {CORPUS} (set DEID_CORPUS)")


def corpus_rows() -> list[dict[str, str]]:
    with open(need_corpus() / "clips.tsv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def corpus_clips(count: int) -> list[Path]:
    """``count`` clips, every k-th of the sorted corpus, so that they come from many speakers."""
    clips = sorted(need_corpus().glob("*/*.flac"))
    if len(clips) < count:
        pytest.skip(f"the corpus at {CORPUS} has fewer than {count} clips")
    return clips[:: len(clips) // count][:count]


@pytest.fixture(scope="session")
def corpus() -> Path:
    return need_corpus()


@pytest.fixture(scope="session")
def voices(corpus: Path) -> list[Path]:
    """Eight clips of at least 4 s from eight speakers, four female and four male, spread over the corpus."""
    rows = [r for r in corpus_rows() if float(r["seconds"]) >= 4.0]
    picked: list[Path] = []
    for gender in ("F", "M"):
        speakers = sorted({r["speaker"] for r in rows if r["gender"] == gender})
        for speaker in speakers[:: max(1, len(speakers) // 4)][:4]:
            picked.append(corpus / next(r["path"] for r in rows if r["speaker"] == speaker))
    return picked


def load(path: Path, sr: int = 16000) -> np.ndarray:
    """A corpus clip as float32 mono at ``sr``."""
    import soundfile as sf
    import soxr

    y, native = sf.read(path, dtype="float32")
    return y if sr == native else soxr.resample(y, native, sr).astype(np.float32)


@pytest.fixture(scope="session")
def speech(voices: list[Path]) -> np.ndarray:
    """One 16 kHz clip of real speech."""
    return load(voices[0])


@pytest.fixture(scope="session")
def long_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 3 minutes of speech at 16 kHz: 40 corpus clips end to end (made in a temp folder, never committed)."""
    import soundfile as sf

    clips = sorted(need_corpus().glob("*/*.flac"))[:40]
    path = tmp_path_factory.mktemp("long") / "long.flac"
    sf.write(path, np.concatenate([sf.read(c, dtype="float32")[0] for c in clips]), 16000, subtype="PCM_16")
    return path


def ffmpeg_loudness(y: np.ndarray, sr: int, tmp: Path) -> float:
    """Integrated loudness (LUFS) by FFmpeg's own ebur128 filter: another meter than deid's libebur128."""
    import re
    import subprocess

    import soundfile as sf

    path = tmp / "loudness.wav"
    sf.write(path, np.asarray(y, dtype=np.float32).T, sr, subtype="FLOAT")
    done = subprocess.run(["ffmpeg", "-nostats", "-i", str(path), "-af", "ebur128", "-f", "null", "-"],
                          capture_output=True, text=True, check=True)
    return float(re.findall(r"I:\s+(-?[\d.]+) LUFS", done.stderr)[-1])
