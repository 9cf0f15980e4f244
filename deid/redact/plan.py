"""Redaction of one file, decided before any audio is written: where its words come from (a
transcript sidecar or the built-in ASR), what was found, and the edit to apply to the output.

This is what a command, a batch worker or the engine carries: `plan_file` gives a `FilePlan`;
its `edit` (a `SpanEdit`) is applied to every output block with the block's absolute start,
after the voice chain, so the replacement is never transformed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deid.errors import DeidError
from deid.redact.detectors.base import Finding
from deid.redact.find import detect, replacements
from deid.redact.options import RedactOptions
from deid.redact.replace import SpanEdit
from deid.redact.report import report_lines
from deid.redact.spans import Span, place
from deid.redact.transcriber import Transcriber, shared_transcriber
from deid.redact.transcripts import Transcript, read_transcript
from deid.redact.words import Word, check_words

# Sidecar transcripts are looked for in this order when several sit beside a recording.
SIDECAR_SUFFIXES = (".json", ".vtt", ".tsv", ".csv")


@dataclass(frozen=True)
class FilePlan:
    """What redaction found in one file.

    Attributes
    ----------
    words : list of Word
    findings : list of Finding
    spans : list of Span
        Padded and merged, in seconds.
    transcript : Transcript
        The transcript the words came from (for ASR words, one in Whisper JSON form), to write
        back redacted.
    options : RedactOptions
    """

    words: list[Word]
    findings: list[Finding]
    spans: list[Span]
    transcript: Transcript
    options: RedactOptions

    def edit(self, sr: int) -> SpanEdit:
        """The sample edit for an output at `sr` Hz."""
        o = self.options
        return SpanEdit.from_spans(self.spans, sr, signal=o.signal, level_db=o.level_db, seed=o.seed)

    def redacted_transcript(self) -> str:
        """The transcript in its own format with placeholders (``[NAME]``, ``[PHONE]``)."""
        return self.transcript.redacted(replacements(self.findings))

    def report_lines(self, file: str | Path) -> list[str]:
        """One JSON line per span; no text."""
        return report_lines(self.spans, file)


def plan_file(
    options: RedactOptions | None = None,
    *,
    duration: float,
    transcript: str | Path | None = None,
    audio: np.ndarray | Iterable[np.ndarray] | None = None,
    sr: int | None = None,
    transcriber: Transcriber | None = None,
) -> FilePlan:
    """Find what to redact in one recording.

    Parameters
    ----------
    options : RedactOptions, optional
    duration : float
        Length of the recording in seconds: words past it fail the file, spans are clipped to it.
    transcript : str or Path, optional
        A timed transcript (Whisper/WhisperX JSON, Amazon Transcribe JSON, WebVTT, CSV/TSV).
    audio : np.ndarray or iterable of blocks, optional
        Without a transcript: the original audio (the whole array, or its consecutive blocks),
        transcribed by `transcriber` (by default the shared Whisper of ``options.asr_model``).
    sr : int, optional
        Rate of `audio`.

    Raises
    ------
    deid.DeidError
        A transcript that cannot be trusted, a finding that cannot be placed in time, or neither a
        transcript nor audio: a file is never passed through unredacted.
    """
    options = options or RedactOptions()
    if transcript is not None:
        source = read_transcript(transcript, duration=duration)
        words = source.words
    elif audio is not None and sr is not None:
        transcriber = transcriber or shared_transcriber(options.asr_model, None)
        words = transcriber.words(audio, sr) if isinstance(audio, np.ndarray) else list(transcriber.stream(audio, sr))
        check_words(words, duration=duration)
        source = asr_transcript(words)
    else:
        raise DeidError("nothing to find personal data in: give a transcript or audio to transcribe")
    findings = detect(words, options)
    spans = place(findings, words, padding=options.padding, merge_gap=options.merge_gap, duration=duration)
    return FilePlan(words, findings, spans, source, options)


def asr_transcript(words: Sequence[Word], path: str | Path = "<asr>") -> Transcript:
    """ASR words as a Whisper JSON transcript, so `--transcript-out` has a format to write."""
    from deid.redact.transcripts._json import LineDict

    doc = LineDict(segments=[LineDict(words=[LineDict(word=" " + w.text, start=w.start, end=w.end) for w in words])])
    return Transcript(Path(path), "whisper-json", list(words), doc)


def sidecar_for(audio: str | Path, *, in_root: str | Path | None = None, transcripts: str | Path | None = None) -> Path:
    """The transcript of a recording: ``STEM.json|.vtt|.tsv|.csv`` beside it, or at the same
    relative place under `transcripts` (a folder mirroring `in_root`).

    Raises
    ------
    DeidError
        When there is none: a folder run never passes a file through unredacted.
    """
    audio = Path(audio)
    folder = audio.parent
    if transcripts is not None:
        rel = audio.parent.relative_to(in_root) if in_root is not None else Path()
        folder = Path(transcripts) / rel
    for suffix in SIDECAR_SUFFIXES:
        candidate = folder / (audio.stem + suffix)
        if candidate.is_file():
            return candidate
    names = "|".join(s.lstrip(".") for s in SIDECAR_SUFFIXES)
    raise DeidError(f"no transcript sidecar ({audio.stem}.{{{names}}} in {folder})", audio)
