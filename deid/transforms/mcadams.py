"""McAdams: the VoicePrivacy Challenge B2 baseline, pole angles raised to a power alpha.

Written from the published algorithm (Patino et al., "Speaker anonymisation using the McAdams
coefficient", Interspeech 2021): LPC of order 20 on 20 ms frames with a 10 ms hop; each complex
pole's angle phi becomes phi**alpha; the frame's LPC residual is filtered by the new all-pole
filter, and the frames are overlap-added.

Sample rate. Raising an angle in radians to a power has a fixed point at phi = 1 rad, i.e. at
fs / (2 pi) Hz: 2546 Hz at 16 kHz but 7639 Hz at 48 kHz, so the same alpha would move formants
differently at each rate. deid applies the power to the angle the pole would have at 16 kHz (the
rate the baseline was designed and tuned at), ``(phi * fs / 16000) ** alpha * 16000 / fs``. The
fixed point stays at 2546 Hz at every rate, so formants below it move up for alpha < 1 whatever
the rate. How far they move still depends on the rate, because the LPC order stays 20 and fewer
poles describe the speech band of a 48 kHz signal. Poles that this would push past Nyquist are held just below it.

Level. Each resynthesised frame is scaled to the energy of its input frame (see ``mcadams``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from deid.transforms.base import Block, Limit, Param, Transform, register

ORDER = 20
FRAME_SECONDS = 0.020
HOP_SECONDS = 0.010
REFERENCE_SR = 16000


def _lpc(frames: np.ndarray, order: int) -> np.ndarray:
    import librosa

    # A silent frame has no LPC solution; a deterministic dither far below any recording's noise
    # floor gives it a flat one instead of an error.
    dither = 1e-9 * np.where(np.arange(frames.shape[-1]) % 2 == 0, 1.0, -1.0)
    return librosa.lpc(frames + dither, order=order, axis=-1)


def _roots(a: np.ndarray) -> np.ndarray:
    """Roots of each row's polynomial ``a[:, 0] z^p + ... + a[:, p]`` via companion eigenvalues."""
    p = a.shape[1] - 1
    companion = np.zeros((a.shape[0], p, p))
    companion[:, 0, :] = -a[:, 1:] / a[:, :1]
    companion[:, np.arange(1, p), np.arange(p - 1)] = 1.0
    return np.linalg.eigvals(companion)


def _poly(roots: np.ndarray) -> np.ndarray:
    """Monic polynomial coefficients of each row of roots (a batched ``np.poly``)."""
    coeffs = np.zeros((roots.shape[0], roots.shape[1] + 1), dtype=complex)
    coeffs[:, 0] = 1.0
    for j in range(roots.shape[1]):
        coeffs[:, 1 : j + 2] = coeffs[:, 1 : j + 2] - roots[:, j : j + 1] * coeffs[:, : j + 1]
    return coeffs.real


def mcadams(y: np.ndarray, *, sr: int, alpha: float) -> np.ndarray:
    """Move formants by raising LPC pole angles to the power ``alpha`` (McAdams coefficient).

    Parameters
    ----------
    y : np.ndarray, shape (n,)
        float32 audio.
    sr : int
        Sample rate in Hz; alpha acts on 16 kHz-equivalent angles (see the module docstring).
    alpha : float
        McAdams coefficient; 1 is the identity, the VoicePrivacy baseline draws it from [0.5, 0.9].
    """
    from scipy import signal

    n_frame = int(round(FRAME_SECONDS * sr))
    hop = int(round(HOP_SECONDS * sr))
    n_frame += n_frame % 2
    # sqrt-Hann for analysis and synthesis: their product, a periodic Hann, overlap-adds to 1 at
    # a 50 % hop, so alpha = 1 gives the input back.
    window = np.sqrt(np.hanning(n_frame + 1)[:-1])
    x = np.pad(y.astype(np.float64), (n_frame, n_frame + hop))
    frames = np.lib.stride_tricks.sliding_window_view(x, n_frame)[::hop] * window

    a = _lpc(frames * window, ORDER)
    poles = _roots(a)
    scale = sr / REFERENCE_SR
    angle = np.abs(np.angle(poles))
    complex_pole = np.abs(poles.imag) > 1e-12
    new_angle = np.where(complex_pole, np.minimum((angle * scale) ** alpha / scale, np.pi - 1e-3), angle)
    new_poles = np.abs(poles) * np.exp(1j * np.sign(np.angle(poles)) * new_angle)
    new_poles = np.where(complex_pole, new_poles, poles)
    a_new = _poly(new_poles)

    residual = np.zeros_like(frames)
    for k in range(ORDER + 1):
        residual[:, k:] += a[:, k : k + 1] * frames[:, : n_frame - k]
    out = np.zeros(len(x))
    for i in range(frames.shape[0]):
        with np.errstate(over="ignore", invalid="ignore"):
            rec = signal.lfilter([1.0], a_new[i], residual[i])
            energy = np.sum(rec**2)
        if not np.isfinite(energy):
            # Rounding in the rebuilt polynomial can leave a pole on or past the unit circle in
            # a near-degenerate frame; that frame then passes through unchanged.
            rec, energy = frames[i].copy(), np.sum(frames[i] ** 2)
        # Small alphas crowd the poles together near the fixed point, and their resonances add up
        # to gains of 40 dB and more in some frames. The baseline divides the whole output by its
        # peak, which leaves the rest of the file near silence; matching each frame's energy to
        # the input frame keeps the level contour instead.
        rec *= np.sqrt(np.sum(frames[i] ** 2) / max(energy, 1e-20))
        out[i * hop : i * hop + n_frame] += rec * window
    return out[n_frame : n_frame + len(y)].astype(np.float32)


@register("mcadams")
@dataclass(frozen=True, repr=False)
class McAdams(Transform):
    """McAdams-coefficient anonymisation with ``alpha`` drawn per file."""

    alpha: Param = (0.5, 0.9)

    LIMITS = {"alpha": Limit(0.4, 1.6)}
    changes_voice = True
    #: 20-ms frames, padded by one frame on each side.
    context = 0.1

    def process(self, block: Block, stats: Any, *, alpha: float) -> np.ndarray:
        return mcadams(block.samples, sr=block.sr, alpha=alpha)
