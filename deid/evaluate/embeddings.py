"""Speaker embeddings: Resemblyzer's GE2E voice encoder, whose weights ship inside its wheel."""

from __future__ import annotations

import warnings

import numpy as np

from deid.evaluate._deps import require

EMBEDDING_DIM = 256


class SpeakerEncoder:
    """Map an utterance to a unit-length 256-d speaker embedding.

    The model is loaded once per instance; an evaluation keeps one and reuses it for
    every condition, so the originals are embedded once however many presets are run.

    Parameters
    ----------
    device : str
        Torch device name. Evaluation runs on ``"cpu"``; nothing here needs a GPU.
    """

    def __init__(self, device: str = "cpu") -> None:
        require("resemblyzer")
        with warnings.catch_warnings():
            # webrtcvad (imported by resemblyzer) still imports pkg_resources, which warns
            # on every import; the pin setuptools<81 keeps it working, the warning is noise.
            warnings.simplefilter("ignore", UserWarning)
            from resemblyzer import VoiceEncoder, preprocess_wav
        import torch

        # One short LSTM pass per utterance gains nothing from intra-op threads, and on a
        # busy machine (ASR, anonymization, other jobs) torch's spinning OpenMP workers make
        # each embedding 50-100x slower: measured 0.15 s alone, 10 s under load, 0.15 s
        # with one thread under the same load. Loading CTranslate2 (the ASR) afterwards sets
        # the process's OpenMP thread count back to every core, so `embed` pins it again.
        self._torch = torch
        torch.set_num_threads(1)
        self._preprocess = preprocess_wav
        self._encoder = VoiceEncoder(device, verbose=False)

    def embed(self, y: np.ndarray, sr: int) -> np.ndarray:
        """Embed one mono utterance.

        Parameters
        ----------
        y : np.ndarray, shape (n,)
            Mono float audio.
        sr : int
            Sample rate in Hz; Resemblyzer resamples to 16 kHz itself.

        Returns
        -------
        np.ndarray, shape (256,)
            Unit-length embedding, so a dot product is a cosine score. An utterance with
            no speech left after voice-activity trimming embeds as the zero vector, which
            scores 0 against everything rather than failing the whole evaluation.
        """
        if self._torch.get_num_threads() != 1:
            self._torch.set_num_threads(1)
        wav = self._preprocess(np.asarray(y, dtype=np.float32), source_sr=sr)
        if wav.size == 0:
            return np.zeros(EMBEDDING_DIM, dtype=np.float32)
        return self._encoder.embed_utterance(wav).astype(np.float32)
