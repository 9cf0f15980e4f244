"""Speaker embeddings: Resemblyzer's GE2E voice encoder, whose weights ship inside its wheel.

An utterance is turned into its encoder input once (`SpeakerEncoder.features`: voice-activity
trimming, a mel spectrogram and the 1.6-s partials Resemblyzer embeds), so that the public
encoder and any retrained copy of it (`deid.evaluate.retrain`) embed the very same input.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from deid.evaluate._deps import require

EMBEDDING_DIM = 256
#: Frames of one partial utterance (1.6 s of 10-ms frames), and the partials Resemblyzer takes
#: per second and the share of the last one that must be speech: its `embed_utterance` defaults.
PARTIAL_FRAMES = 160
PARTIAL_RATE = 1.3
MIN_COVERAGE = 0.75
#: Partials forwarded through the network at once.
BATCH = 256


@dataclass(frozen=True)
class Features:
    """The encoder's input for one utterance.

    Attributes
    ----------
    mel : np.ndarray, shape (frames, 40)
        Mel spectrogram (power, as Resemblyzer computes it) of the trimmed utterance, zero-padded
        so that every partial fits.
    starts : np.ndarray of int
        First frame of each `PARTIAL_FRAMES`-frame partial; empty when no speech was left.
    """

    mel: np.ndarray
    starts: np.ndarray

    def partials(self) -> np.ndarray:
        """The partials, shape (n_partials, PARTIAL_FRAMES, 40)."""
        return np.stack([self.mel[s : s + PARTIAL_FRAMES] for s in self.starts]) if self.starts.size else (
            np.zeros((0, PARTIAL_FRAMES, self.mel.shape[1]), dtype=np.float32)
        )


def load_model(device: str = "cpu") -> Any:
    """A fresh copy of Resemblyzer's pretrained `VoiceEncoder` (a torch module) on `device`."""
    require("resemblyzer")
    with warnings.catch_warnings():
        # webrtcvad (imported by resemblyzer) still imports pkg_resources, which warns on every
        # import; the pin setuptools<81 keeps it working, the warning is noise.
        warnings.simplefilter("ignore", UserWarning)
        from resemblyzer import VoiceEncoder

    return VoiceEncoder(device, verbose=False)


def single_thread() -> None:
    """Pin torch to one intra-op thread.

    One short LSTM pass per utterance gains nothing from intra-op threads, and on a busy machine
    (ASR, anonymization, other jobs) torch's spinning OpenMP workers make each embedding 50-100x
    slower: measured 0.15 s alone, 10 s under load, 0.15 s with one thread under the same load.
    Loading CTranslate2 (the ASR) sets the process's OpenMP thread count back to every core, so
    this is called before every use.
    """
    import torch

    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)


def embed_features(model: Any, utterances: Sequence[Features]) -> np.ndarray:
    """Embed utterances with `model` (the public encoder or a retrained copy): shape (n, 256).

    Each utterance's embedding is the length-normalised mean of its partials' embeddings, as
    Resemblyzer's ``embed_utterance`` computes it; an utterance with no speech embeds as the
    zero vector, which scores 0 against everything rather than failing the whole evaluation.
    """
    import torch

    single_thread()
    counts = [u.starts.size for u in utterances]
    out = np.zeros((len(utterances), EMBEDDING_DIM), dtype=np.float32)
    if not sum(counts):
        return out
    partials = np.concatenate([u.partials() for u in utterances if u.starts.size])
    was_training = model.training
    model.eval()
    with torch.no_grad():
        emb = np.concatenate(
            [model(torch.from_numpy(partials[i : i + BATCH])).numpy() for i in range(0, len(partials), BATCH)]
        )
    model.train(was_training)
    owner = np.repeat(np.arange(len(utterances)), counts)
    sums = np.zeros_like(out)
    np.add.at(sums, owner, emb)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return np.where(norms > 0, sums / np.maximum(norms, 1e-12), 0.0).astype(np.float32)


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
            warnings.simplefilter("ignore", UserWarning)
            from resemblyzer import audio, preprocess_wav

        single_thread()
        self._preprocess = preprocess_wav
        self._mel = audio.wav_to_mel_spectrogram
        self.model = load_model(device)
        self._slices = type(self.model).compute_partial_slices

    def features(self, y: np.ndarray, sr: int) -> Features:
        """The encoder input of one mono utterance (`sr` in Hz; Resemblyzer resamples to 16 kHz)."""
        wav = self._preprocess(np.asarray(y, dtype=np.float32), source_sr=sr)
        if wav.size == 0:
            return Features(np.zeros((0, 40), dtype=np.float32), np.zeros(0, dtype=np.int64))
        wav_slices, mel_slices = self._slices(wav.size, PARTIAL_RATE, MIN_COVERAGE)
        wav = np.pad(wav, (0, max(0, wav_slices[-1].stop - wav.size)))
        mel = self._mel(wav)
        return Features(mel, np.array([s.start for s in mel_slices], dtype=np.int64))

    def embed(self, y: np.ndarray, sr: int) -> np.ndarray:
        """Embed one mono utterance.

        Parameters
        ----------
        y : np.ndarray, shape (n,)
            Mono float audio.
        sr : int
            Sample rate in Hz.

        Returns
        -------
        np.ndarray, shape (256,)
            Unit-length embedding, so a dot product is a cosine score (the zero vector when no
            speech is left after voice-activity trimming).
        """
        return embed_features(self.model, [self.features(y, sr)])[0]
