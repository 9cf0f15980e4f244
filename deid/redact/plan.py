"""Redaction of one file, decided before any audio is written: where its words come from (a
transcript sidecar or the built-in ASR), what was found, and the edits to apply to the output.

This is what a command, a batch worker or the engine carries: `plan_stream` (or `plan_file`)
gives a `FilePlan`; its `edits` (the engine's `SpanEdit`s) are applied to every output block in
absolute time, after the voice chain, so the replacement is never transformed. The words come
from the original audio, read once before the chain runs: the recogniser hears the speaker,
not the pseudo-voice, and whole words, never a block's edge.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deid.engine import SpanEdit, Stream
from deid.errors import DeidError
from deid.redact.detectors.base import Finding
from deid.redact.find import detect, replacements
from deid.redact.options import RedactOptions
from deid.redact.replace import span_edits
from deid.redact.report import report_lines
from deid.redact.spans import Span, place
from deid.redact.transcriber import Transcriber, shared_transcriber
from deid.redact.transcripts import Transcript, read_transcript
from deid.redact.words import Word, check_words

# Sidecar transcripts are looked for in this order when several sit beside a recording.
SIDECAR_SUFFIXES = (".json", ".vtt", ".tsv", ".csv")
# The original audio goes to the recogniser in pieces of this length (it windows them itself).
_ASR_PIECE_SECONDS = 30.0
# Where a file's words come from: a transcript file, words already timed, or a recogniser.
WordSource = str | Path | Transcript | Sequence[Word] | Transcriber | None


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

    def edits(self, sr: int, frames: int | None = None) -> list[SpanEdit]:
        """The engine edits for an output of `frames` samples at `sr` Hz."""
        o = self.options
        return span_edits(self.spans, sr, frames=frames, signal=o.signal, level_db=o.level_db, seed=o.seed)

    @property
    def suffix(self) -> str:
        """The file extension of the redacted transcript (see `transcript_suffix`)."""
        return transcript_suffix(self.transcript.path)

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
    transcript: str | Path | Transcript | Sequence[Word] | None = None,
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
    transcript : str, Path, Transcript or sequence of Word, optional
        A timed transcript (Whisper/WhisperX JSON, Amazon Transcribe JSON, WebVTT, CSV/TSV), or
        its words.
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
    if isinstance(transcript, (str, Path)):
        source = read_transcript(transcript, duration=duration)
        words = source.words
    elif isinstance(transcript, Transcript):
        check_words(transcript.words, path=transcript.path, duration=duration)
        source, words = transcript, transcript.words
    elif transcript is not None:
        words = list(transcript)
        check_words(words, duration=duration)
        source = asr_transcript(words, "<words>")
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


def plan_stream(options: RedactOptions, stream: Stream, *, transcript: WordSource = None) -> FilePlan:
    """The plan of the original audio `stream` (checked, before the chain runs).

    Parameters
    ----------
    options : RedactOptions
    stream : deid.engine.Stream
        The input as the engine reads it (an array or a file source).
    transcript : path, Transcript, words or Transcriber, optional
        Where the words come from; a `Transcriber` (or None: the shared built-in ASR of
        ``options.asr_model``) listens to `stream`, read once from start to end.
    """
    duration = stream.frames / stream.sr
    if transcript is None or isinstance(transcript, Transcriber):
        return plan_file(options, duration=duration, audio=_pieces(stream), sr=stream.sr, transcriber=transcript)
    return plan_file(options, duration=duration, transcript=transcript)


def _pieces(stream: Stream) -> Iterator[np.ndarray]:
    step = int(_ASR_PIECE_SECONDS * stream.sr)
    for a in range(0, stream.frames, step):
        yield stream.read(a, min(stream.frames, a + step))


def redact_options(redact: bool | RedactOptions | Mapping[str, Any] | None, preset: RedactOptions | None) -> RedactOptions | None:
    """What a run redacts: `redact` as given to `deid.anonymize` and the preset's ``[redact]`` table.

    None follows the preset (no table: no redaction); False never redacts; True redacts with the
    preset's options or the defaults; a mapping changes single options of those; `RedactOptions`
    are used as they are.
    """
    if redact is False:
        return None
    if redact is None:
        return preset
    if redact is True:
        return preset or RedactOptions()
    if isinstance(redact, RedactOptions):
        return redact
    if isinstance(redact, Mapping):
        return RedactOptions.from_mapping({**(preset.as_mapping() if preset else {}), **redact})
    raise DeidError(f"redact must be True, False, RedactOptions or a mapping of options, not {type(redact).__name__}")


def transcript_suffix(path: str | Path | None) -> str:
    """The extension a redacted transcript is written with: its input's own, or ``.json`` (Whisper
    JSON) for words that came from the ASR or from a script (`path` None or ``<asr>``)."""
    if path is None or Path(path).name.startswith("<"):
        return ".json"
    return Path(path).suffix.lower() or ".txt"


def asr_transcript(words: Sequence[Word], path: str | Path = "<asr>") -> Transcript:
    """ASR words as a Whisper JSON transcript, so `--transcript-out` has a format to write: one
    segment per Whisper segment, so that the transcript read back gives the same findings."""
    from deid.redact.transcripts._json import LineDict

    segments: list[list[Word]] = [[]]
    for w in words:
        segments[-1].append(w)
        if w.ends_segment:
            segments.append([])
    doc = LineDict(segments=[LineDict(words=[LineDict(word=" " + w.text, start=w.start, end=w.end) for w in seg])
                             for seg in segments if seg])
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
