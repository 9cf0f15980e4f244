"""Voice transformations: one module per family, each a pure function plus a registered class.

=========== ===========================================================================
pitch       F0 shift in semitones (PSOLA or WORLD), formants and duration kept
formant     spectral-envelope scaling by a ratio (PSOLA, STFT or WORLD), F0 kept
vtln        bilinear frequency warping of the envelope
mcadams     VoicePrivacy B2 baseline: LPC pole angles raised to a power
noise       white, pink or brown noise at a target SNR
bandlimit   telephone-like pass band
loudness    integrated loudness normalisation (LUFS)
pseudovoice F0 statistics and long-term envelope normalised to a keyed pseudo-voice (WORLD or PSOLA)
shift       pitch and formants together (resampling, duration restored by WSOLA)
drift       formant ratio, envelope shape and per-frame tilt moving slowly over absolute time
=========== ===========================================================================
"""

from __future__ import annotations

from deid.transforms import bandlimit, drift, formant, loudness, mcadams, noise, pitch, pseudovoice, shift, vtln
from deid.transforms.bandlimit import Bandlimit
from deid.transforms.base import REGISTRY, Transform, create, register
from deid.transforms.drift import Drift
from deid.transforms.formant import Formant
from deid.transforms.loudness import Loudness
from deid.transforms.mcadams import McAdams
from deid.transforms.noise import Noise
from deid.transforms.pitch import Pitch
from deid.transforms.pseudovoice import PseudoVoice
from deid.transforms.shift import Shift
from deid.transforms.vtln import Vtln

__all__ = [
    "REGISTRY",
    "Bandlimit",
    "Drift",
    "Formant",
    "Loudness",
    "McAdams",
    "Noise",
    "Pitch",
    "PseudoVoice",
    "Shift",
    "Transform",
    "Vtln",
    "bandlimit",
    "create",
    "drift",
    "formant",
    "loudness",
    "mcadams",
    "noise",
    "pitch",
    "pseudovoice",
    "shift",
    "register",
    "vtln",
]
