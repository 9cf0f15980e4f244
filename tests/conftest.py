"""Shared fixtures: real speech from the shared corpus, resampled to the rates under test."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("DEID_CORPUS", REPO.parent / "shared" / "corpus"))
RATES = (8000, 16000, 44100, 48000)


def corpus_rows() -> list[dict[str, str]]:
    with open(CORPUS / "clips.tsv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t"))


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not (CORPUS / "clips.tsv").is_file():
        pytest.skip(f"speech corpus not found at {CORPUS} (set DEID_CORPUS)")
    return CORPUS


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
