"""Measure how well a preset de-identifies: three attackers, WER, pitch, speed (``deid-audio[eval]``).

>>> from deid.evaluate import Evaluation, clips_from_folder, preset_anonymizer
>>> ev = Evaluation(clips_from_folder("corpus"))               # doctest: +SKIP
>>> report = ev.run(preset_anonymizer("standard"), "standard")  # doctest: +SKIP
"""

from __future__ import annotations

from deid.evaluate.data import Clip, clips_from_folder, clips_from_table, with_references
from deid.evaluate.run import Anonymizer, Evaluation, EvaluationReport, preset_anonymizer, run_key

__all__ = [
    "Anonymizer",
    "Clip",
    "Evaluation",
    "EvaluationReport",
    "clips_from_folder",
    "clips_from_table",
    "preset_anonymizer",
    "run_key",
    "with_references",
]
