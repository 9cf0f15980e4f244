"""Waveform-similarity overlap-add (WSOLA) time stretching.

Hann frames are laid down at a fixed output hop; each is read from the input near where the
stretched time axis puts it, at the offset (within a tolerance) whose overlap region best matches
the natural continuation of the frame before it. Periodic stretches then join in phase without any
F0 estimate, which makes WSOLA the cheapest way to restore the duration of resampled speech
(Verhelst and Roelands, ICASSP 1993).

No maintained Python package does this fast enough for deid's real-time targets (audiotsm and
pytsmod loop over frames in Python; Rubber Band is GPL), so the frame loop is compiled with numba.
The offset search runs on a 2 kHz copy and is refined at full rate around the best coarse offset.
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: Output hop in seconds; frames are twice as long and overlap by half.
HOP = 0.010
#: How far (in seconds) a frame may be read from its nominal position: half the longest pitch
#: period (50 Hz), so that a frame can always be aligned with the previous one.
TOLERANCE = 0.010
#: Rate of the copy the coarse offset search runs on.
SEARCH_RATE = 2000
#: Rate whose sample spacing the full-rate refinement correlates at (every sr // REFINE_RATE-th sample).
REFINE_RATE = 8000


@njit(cache=True, fastmath=True)
def _best_offset(x, template, lo, hi, length, stride):  # pragma: no cover - compiled
    """Start in [lo, hi] whose ``length`` samples best match those at ``template``.

    The match is the correlation normalised by the candidate's energy (the template's is common to
    every candidate), so loud and quiet stretches compete fairly. Every ``stride``-th sample of the
    overlap enters the sums: at high rates the offset stays sample-exact while the cost stays that
    of an 8 kHz signal. The template sample is the outer loop, so the inner loop over candidates
    vectorises.
    """
    n = hi - lo + 1
    dot = np.zeros(n, dtype=np.float32)
    energy = np.full(n, np.float32(1e-9))
    for j in range(0, length, stride):
        t = x[template + j]
        for c in range(n):
            v = x[lo + c + j]
            dot[c] += t * v
            energy[c] += v * v
    best = 0
    best_score = dot[0] / np.sqrt(energy[0])
    for c in range(1, n):
        score = dot[c] / np.sqrt(energy[c])
        if score > best_score:
            best_score = score
            best = c
    return lo + best


@njit(cache=True)
def _wsola(xp, cp, pad, cpad, scale, n_out, hop, tol, stretch, stride):  # pragma: no cover - compiled
    """Overlap-add frames of the padded input ``xp`` (coarse copy ``cp``, ``scale`` = coarse/full rate)."""
    size = 2 * hop
    window = np.empty(size, dtype=np.float32)
    for j in range(size):
        window[j] = 0.5 - 0.5 * np.cos(2.0 * np.pi * j / size)
    out = np.zeros(n_out, dtype=np.float32)
    coarse_hop = max(1, int(hop * scale + 0.5))
    coarse_tol = max(1, int(tol * scale + 0.5))
    # The coarse optimum lies within half a coarse sample of the full-rate one (plus rounding).
    refine = int(0.5 / scale) + 2
    prev = -1
    k = 0
    while True:
        o = (k - 1) * hop  # the first frame starts one hop early so that every sample has two frames
        if o >= n_out:
            break
        nominal = int(o / stretch + 0.5) + pad
        if prev < 0:
            start = nominal
        else:
            # Match the overlap region against what naturally followed the previous frame.
            template = prev + hop
            c_nominal = int((nominal - pad) * scale + 0.5) + cpad
            c_template = int((template - pad) * scale + 0.5) + cpad
            c_best = _best_offset(cp, c_template, c_nominal - coarse_tol, c_nominal + coarse_tol, coarse_hop, 1)
            guess = int((c_best - cpad) / scale + 0.5) + pad
            lo = max(guess - refine, nominal - tol)
            hi = min(guess + refine, nominal + tol)
            if lo > hi:
                lo, hi = nominal - tol, nominal + tol
            start = _best_offset(xp, template, lo, hi, hop, stride)
        for j in range(size):
            d = o + j
            if 0 <= d < n_out:
                out[d] += window[j] * xp[start + j]
        prev = start
        k += 1
    return out


def wsola(x: np.ndarray, n_out: int, *, sr: int) -> np.ndarray:
    """Stretch ``x`` in time to ``n_out`` samples without changing its pitch.

    Parameters
    ----------
    x : np.ndarray, shape (n,)
        float32 audio.
    n_out : int
        Output length; ``n_out / len(x)`` is the stretch factor (0.5 to 2 is the useful range).
    sr : int
        Sample rate in Hz.
    """
    import soxr

    x = np.ascontiguousarray(x, dtype=np.float32)
    if len(x) == 0 or n_out == 0:
        return np.zeros(n_out, dtype=np.float32)
    hop = max(1, int(round(HOP * sr)))
    tol = max(1, int(round(TOLERANCE * sr)))
    stretch = n_out / len(x)
    # Frames read up to one hop before 0 and (hop / stretch + tol + frame) past the end: pad with
    # silence so that no read needs a bounds check.
    pad = int(2 * hop / min(stretch, 1.0)) + 2 * hop + tol + sr // SEARCH_RATE + 8
    xp = np.zeros(len(x) + 2 * pad, dtype=np.float32)
    xp[pad : pad + len(x)] = x
    # The search copy only has to place offsets: soxr's quickest (cubic) quality serves.
    coarse = soxr.resample(x, sr, SEARCH_RATE, quality="QQ").astype(np.float32) if sr > SEARCH_RATE else x
    scale = SEARCH_RATE / sr if sr > SEARCH_RATE else 1.0
    cpad = int(pad * scale) + 8
    cp = np.zeros(len(coarse) + 2 * cpad, dtype=np.float32)
    cp[cpad : cpad + len(coarse)] = coarse
    return _wsola(xp, cp, pad, cpad, scale, n_out, hop, tol, stretch, max(1, sr // REFINE_RATE))
