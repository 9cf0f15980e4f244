"""Listening quality without a reference: DNSMOS P.835 (SIG, BAK, OVRL) and P.808, from ``speechmos``.

The ONNX models ship inside the ``speechmos`` wheel and onnxruntime runs them. DNSMOS was
trained on human ratings of noisy and processed speech: SIG rates the speech itself (buzz,
robotic timbre), BAK the background (hiss, added noise), OVRL the whole; P.808 is a single
overall rating from another model. Scores run from 1 (bad) to 5 (excellent).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from deid.evaluate._deps import require

DNSMOS_SR = 16000
#: The figures reported, in the order of the tables.
SCORES = ("sig", "bak", "ovrl", "p808")


class QualityMeter:
    """DNSMOS on one CPU thread; build once and call `score` for each clip.

    speechmos scores with its own `DNSMOS` class (9-s windows, the published polynomial
    calibration); only the ONNX sessions are made here, pinned to one thread, because
    onnxruntime's default spins one thread per core, which slows every other job on a shared
    machine and gains nothing on 9-s inputs.
    """

    def __init__(self) -> None:
        require("speechmos", "onnxruntime")
        import onnxruntime as ort
        from speechmos import dnsmos

        folder = os.path.join(os.path.dirname(os.path.abspath(dnsmos.__file__)), "dnsmos_models")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        meter = dnsmos.DNSMOS.__new__(dnsmos.DNSMOS)
        meter.primary_model_path = os.path.join(folder, "sig_bak_ovr.onnx")
        meter.onnx_sess = ort.InferenceSession(meter.primary_model_path, options, providers=["CPUExecutionProvider"])
        meter.p808_onnx_sess = ort.InferenceSession(
            os.path.join(folder, "model_v8.onnx"), options, providers=["CPUExecutionProvider"]
        )
        self._meter = meter

    def score(self, y: np.ndarray, sr: int) -> dict[str, float]:
        """SIG, BAK, OVRL and P.808 of one mono clip (any rate; scored at 16 kHz, clipped to ±1).

        DNSMOS rates 9-s windows; a shorter clip is repeated to fill one, as its authors' scorer does.
        """
        import soxr

        x = np.asarray(y, dtype=np.float32)
        if sr != DNSMOS_SR:
            x = soxr.resample(x, sr, DNSMOS_SR).astype(np.float32)
        x = np.clip(x, -1.0, 1.0)
        if not np.any(x):
            return {name: float("nan") for name in SCORES}
        raw = self._meter(x, DNSMOS_SR, False)
        return {"sig": float(raw["sig_mos"]), "bak": float(raw["bak_mos"]), "ovrl": float(raw["ovrl_mos"]),
                "p808": float(raw["p808_mos"])}

    def score_all(self, clips: Sequence[tuple[np.ndarray, int]]) -> np.ndarray:
        """Scores of many clips, shape (n_clips, 4) in the order of `SCORES`."""
        return np.array([[s[name] for name in SCORES] for s in (self.score(y, sr) for y, sr in clips)])


def summarise(original: np.ndarray, anonymized: np.ndarray) -> dict[str, dict[str, float]]:
    """Means of the original and anonymized scores, and the mean and spread of the per-file change.

    Parameters
    ----------
    original, anonymized : np.ndarray, shape (n_clips, 4)
        From `QualityMeter.score_all`, row i of both from clip i.

    Returns
    -------
    dict
        For each of `SCORES`: ``original``, ``anonymized``, ``change`` (mean per-file
        anonymized minus original) and ``change_sd`` (its standard deviation over files).
    """
    change = anonymized - original
    return {
        name: {
            "original": float(np.nanmean(original[:, k])),
            "anonymized": float(np.nanmean(anonymized[:, k])),
            "change": float(np.nanmean(change[:, k])),
            "change_sd": float(np.nanstd(change[:, k])),
        }
        for k, name in enumerate(SCORES)
    }
