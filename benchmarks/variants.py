"""Candidate anonymizers of the preset search, run by `benchmarks/privacy.py` as ``variant:NAME``.

Each entry of `VARIANTS` makes an `Anonymizer` (``(y, sr, key) -> y``). Variants built from
presets are chains of registered deid steps; `pseudo` prototypes what the PSOLA pseudo-voice
could become (a continuous voice space, a target spectrum of its own per file, F0 moving within
the file) by driving its pieces directly, until a variant earns a place in `deid/transforms/`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import partial

import numpy as np

from deid.evaluate import Anonymizer, preset_anonymizer
from deid.pipeline import Pipeline, ceiling_gain
from deid.transforms import create
from deid.transforms.base import Block
from deid.transforms.drift import _shape_bands, drift, trajectory
from deid.transforms.noise import add_noise
from deid.transforms.pseudovoice import BANK, VoiceStats, normalise_plan
from deid.transforms.psola import PsolaDomain, equalise, psola


def chain(*steps: dict) -> Anonymizer:
    """An anonymizer from preset-style step tables."""
    return preset_anonymizer(Pipeline([create(s) for s in steps]))


PV_STANDARD = {"type": "pseudovoice", "method": "psola", "scale_norm": 2.0}
NOISE_STANDARD = {"type": "noise", "snr_db": [28.0, 34.0], "color": "pink"}


REGISTER_SPLIT_HZ = 160.0


def _rng(key: bytes, y: np.ndarray) -> np.random.Generator:
    """The file's generator: key and content, as a preset run scopes its draws to the content."""
    digest = hashlib.blake2b(np.ascontiguousarray(y, dtype=np.float32).tobytes(), key=key[:64], digest_size=16).digest()
    return np.random.default_rng(int.from_bytes(digest, "little"))


def pseudo(
    y: np.ndarray,
    sr: int,
    key: bytes,
    *,
    voices: str = "bank",
    ratio_jitter: float = 0.0,
    target_shape_db: float = 0.0,
    f0_drift_st: float = 0.0,
    drift_period: float = 1.5,
    scale_norm: float = 2.0,
    strength: float = 1.0,
    snr_db: tuple[float, float] | None = (28.0, 34.0),
    drift_args: dict | None = None,
    pause_db: float | None = None,
    copy_unvoiced: str | None = None,
    rhythm_ms: float = 0.0,
    rhythm_period: float = 0.5,
) -> np.ndarray:
    """The PSOLA pseudo-voice with the search's options.

    voices : "bank" (the 8 voices of `BANK`), "same-register" (one of the 4 bank voices of the
        speaker's own register, split at `REGISTER_SPLIT_HZ`) or "continuous" (median F0
        log-uniform over a low 95-125 Hz or a high 185-245 Hz range, formant ratio on the bank's
        F0-ratio line).
    ratio_jitter : extra log formant ratio, uniform within ±ratio_jitter.
    target_shape_db : a smooth random curve (8 log-frequency bands, ±dB) added to the target
        long-term spectrum, so that the target itself differs from file to file.
    f0_drift_st : the F0 target wanders within ±f0_drift_st semitones over absolute time.
    drift_args : parameters of `deid.transforms.drift.drift` applied after the PSOLA pass.
    pause_db : pauses (10-ms frames this far below the loud frames) keep the input as it was,
        without PSOLA grains or equaliser (see `pause_gate`).
    copy_unvoiced : "all" lays the grains of every frame the tracker calls unvoiced at their own
        spacing (no new period: no buzz over noise and fricatives), "quiet" only those 30 dB or more
        below the loudest frames (pauses); None re-periods everything (standard: a voiced frame the
        tracker misses then cannot keep the speaker's own F0).
    rhythm_ms : local tempo changes in the PSOLA pass (`rhythm_map`): every moment of the output
        is within ±rhythm_ms of where it was, the duration is kept, and the tempo wanders over
        absolute time with anchors every `rhythm_period` seconds.
    """
    rng = _rng(key, y)
    # The engine's order for a whole file: the hum statistics, then the plan that keeps their F0 copy.
    block = Block(np.asarray(y, dtype=np.float32), sr)
    plan = PsolaDomain.analyze(block, PsolaDomain.measure(block, None))
    stats = VoiceStats.of_samples(plan.y, sr, plan.contour())
    if voices == "bank":
        f0_mean, ratio = BANK[int(rng.integers(len(BANK)))]
    elif voices == "same-register":
        # A voice of the speaker's own register: the smallest PSOLA shifts, at the cost of keeping it.
        high = 2.0 ** (stats.median_semitones / 12) > REGISTER_SPLIT_HZ
        f0_mean, ratio = BANK[int(rng.integers(4)) + (4 if high else 0)]
    else:
        high = rng.random() < 0.5
        f0_mean = float(np.exp(rng.uniform(*np.log([185.0, 245.0] if high else [95.0, 125.0]))))
        ratio = 0.80 * (f0_mean / 95.0) ** 0.48
    ratio *= float(np.exp(rng.uniform(-ratio_jitter, ratio_jitter)))
    f0_spread = float(rng.uniform(1.5, 2.5))
    tilt = float(rng.uniform(-9.0, -5.0))
    seed = int(rng.integers(2**63 - 1))
    normalise_plan(plan, f0_mean=f0_mean, f0_spread=f0_spread, strength=strength, tilt=tilt, ratio=ratio,
                   scale_norm=scale_norm, stats=stats)
    if target_shape_db > 0 and plan.eq is not None:
        freqs, gain = plan.eq
        amplitudes = rng.uniform(-1.0, 1.0, 8) * target_shape_db * np.log(10.0) / 20.0
        plan.eq = (freqs, gain + amplitudes @ _shape_bands(freqs, 8))
    if copy_unvoiced is not None:
        f0 = plan.contour()
        factor = np.array(np.broadcast_to(np.asarray(plan.factor, dtype=np.float64), f0.shape))
        copy = f0 <= 0
        if copy_unvoiced == "quiet":
            hop = sr // 100
            level = np.full(len(f0), -120.0)
            n = min(len(f0), len(y) // hop)
            level[:n] = 10 * np.log10(np.mean(np.asarray(y[: n * hop], dtype=np.float64).reshape(n, hop) ** 2, axis=1) + 1e-12)
            copy &= level < np.percentile(level[:n], 95) - 30.0
        # PSOLA lays grains at the analysis period over the new one by factor / ratio: 1 copies.
        factor[copy] = plan.ratio
        plan.factor = factor
    if f0_drift_st > 0:
        f0 = plan.contour()
        times = (np.arange(len(f0)) + 0.5) / 100.0
        move = trajectory(seed, times, period=drift_period, dims=1)[:, 0]
        plan.factor = np.broadcast_to(np.asarray(plan.factor, dtype=np.float64), f0.shape) * 2.0 ** (f0_drift_st * move / 12)
    if rhythm_ms > 0:
        timing = rhythm_map(seed + 2, len(y), sr, rhythm_ms / 1000.0, rhythm_period)
        x = plan.y if plan.eq is None else equalise(plan.y, sr=sr, freqs=plan.eq[0], log_gain=plan.eq[1])
        out = psola(x, sr=sr, factor=plan.factor, ratio=plan.ratio, f0=plan.contour(), timing=timing)
    else:
        out = PsolaDomain.synthesize(plan)
    if pause_db is not None:
        out = pause_gate(np.asarray(y, dtype=np.float32), out, sr, pause_db)
    if drift_args:
        out = drift(out, sr=sr, seed=seed + 1, **drift_args)
    if snr_db is not None:
        out = add_noise(out, snr_db=float(rng.uniform(*snr_db)), color="pink", seed=int(rng.integers(2**63 - 1)))
    return (out * ceiling_gain(float(np.max(np.abs(out))) if out.size else 0.0)).astype(np.float32)


#: Seconds at each end of a file over which the rhythm map's displacement fades in and out.
RHYTHM_EDGE = 0.25


def rhythm_map(seed: int, n: int, sr: int, bound: float, period: float) -> np.ndarray:
    """A time map for `deid.transforms.psola.psola`: where in the input each 10 ms of output is read.

    The output at time t reads the input at t + d(t), with d a smooth random function of absolute
    time (`trajectory`) within ±`bound` seconds, faded to 0 over `RHYTHM_EDGE` at both ends so
    that the file starts and ends where it did. The local tempo is 1 + d'(t): with anchors every
    `period` seconds it stays within 1 ± pi * bound / period, increasing as long as that is below 1.
    """
    hop = sr // 100
    times = np.arange(n // hop + 2) * hop / sr
    seconds = n / sr
    edge = np.clip(np.minimum(times, seconds - times) / RHYTHM_EDGE, 0.0, 1.0)
    fade = 0.5 - 0.5 * np.cos(np.pi * edge)
    shift = bound * fade * trajectory(seed, times, period=period, dims=1)[:, 0]
    return np.maximum.accumulate(np.clip((times + shift) * sr, 0.0, float(n)))


def pause_gate(original: np.ndarray, processed: np.ndarray, sr: int, floor_db: float) -> np.ndarray:
    """`processed` in speech, `original` in pauses: 10-ms frames `floor_db` below the 95th-percentile
    frame, in runs of at least 50 ms, joined by 20-ms raised-cosine fades.

    PSOLA carries F0 through every stretch, so grains are laid at the voice's period over room noise
    too (a buzz), and the equaliser lifts background noise where it boosts; in a pause neither buys
    privacy: it holds no voice.
    """
    hop = sr // 100
    n = len(original) // hop
    if n < 5:
        return processed
    level = 10 * np.log10(np.mean(original[: n * hop].reshape(n, hop) ** 2, axis=1) + 1e-12)
    pause = level < np.percentile(level, 95) - floor_db
    # Only runs of 5 frames or more count as pauses.
    runs = np.convolve(pause, np.ones(5), mode="same") >= 5
    pause = np.convolve(runs, np.ones(5), mode="same") > 0
    weight = np.repeat(pause.astype(np.float32), hop)
    weight = np.pad(weight, (0, len(original) - len(weight)), mode="edge")
    ramp = int(0.02 * sr)
    kernel = np.hanning(2 * ramp + 1).astype(np.float32)
    weight = np.convolve(weight, kernel / kernel.sum(), mode="same")
    return weight * original + (1.0 - weight) * processed


def variant(**options) -> Callable[[], Anonymizer]:
    def make() -> Anonymizer:
        return partial(pseudo, **options)

    make.__doc__ = "pseudo-voice: " + (", ".join(f"{k}={v}" for k, v in options.items()) or "as standard")
    return make


def mcadams_fixed() -> Anonymizer:
    """McAdams with alpha = 0.8 for every file: a fixed transform an attacker can learn."""
    return chain({"type": "mcadams", "alpha": 0.8})


def identity() -> Anonymizer:
    """No change at all: the attackers' floor."""
    return lambda y, sr, key: np.asarray(y, dtype=np.float32)


DRIFT = {"warp": 0.06, "shape_db": 3.0}
VARIANTS: dict[str, Callable[[], Anonymizer]] = {
    "mcadams-0.8": mcadams_fixed,
    "identity": identity,
    # standard re-made by `pseudo`: the search's reference point.
    "pv": variant(),
    "pv-quiet": variant(snr_db=None),
    "pv-continuous": variant(voices="continuous"),
    "pv-continuous-jitter": variant(voices="continuous", ratio_jitter=0.06),
    "pv-target-shape": variant(target_shape_db=3.0),
    "pv-f0-drift": variant(f0_drift_st=2.0),
    "pv-drift": variant(drift_args=DRIFT),
    "pv-drift-strong": variant(drift_args={"warp": 0.10, "shape_db": 5.0}),
    "pv-tiltnorm": variant(drift_args={"warp": 0.0, "shape_db": 0.0, "tilt_norm": 0.7}),
    "pv-drift-tiltnorm": variant(drift_args=DRIFT | {"tilt_norm": 0.7}),
    "pv-all": variant(voices="continuous", ratio_jitter=0.06, target_shape_db=3.0, f0_drift_st=2.0,
                      drift_args=DRIFT | {"tilt_norm": 0.7}),
    "pv-gated": variant(pause_db=35.0),
    "pv-copy-unvoiced": variant(copy_unvoiced="all"),
    "pv-copy-quiet": variant(copy_unvoiced="quiet"),
    "pv-quiet-copy-unvoiced": variant(copy_unvoiced="all", snr_db=None),
    "pv-same-register": variant(voices="same-register"),
    "pv-same-register-drift": variant(voices="same-register", drift_args=DRIFT | {"tilt_norm": 0.7}),
    "pv-rhythm": variant(rhythm_ms=60.0),
    "pv-quiet-gated": variant(snr_db=None, pause_db=35.0),
    "pv-all-quiet": variant(voices="continuous", ratio_jitter=0.06, target_shape_db=3.0, f0_drift_st=2.0,
                            drift_args=DRIFT | {"tilt_norm": 0.7}, snr_db=None),
}
