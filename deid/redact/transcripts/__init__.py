"""Timed transcripts: read word times from the formats recognisers write, and write them back redacted.

| format | file | what is read |
|---|---|---|
| faster-whisper / openai-whisper / WhisperX JSON | `whisper_json.py` | ``segments[].words[]`` with ``word``, ``start``, ``end`` |
| Amazon Transcribe JSON | `aws_json.py` | ``results.items[]`` (pronunciations; punctuation kept for writing) |
| WebVTT | `webvtt.py` | inline ``<00:00:01.500>`` word tags, one word per cue, or ``<u>`` highlights |
| CSV / TSV | `table.py` | ``start,end,word`` rows, header optional |

Every reader fails closed: a file that does not parse, a time that is not a time, times going
backwards or words past the end of the audio raise `TranscriptError` naming the file and the
line, never the words.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deid.redact.transcripts import _json, aws_json, table, webvtt, whisper_json
from deid.redact.transcripts._common import Replacement
from deid.redact.words import TranscriptError, Word, check_words

FORMATS = ("whisper-json", "aws-json", "webvtt", "csv")
# A transcript is text: anything this large is not one, and would only exhaust memory.
MAX_BYTES = 256 * 1024 * 1024

__all__ = ["FORMATS", "Replacement", "Transcript", "TranscriptError", "read_transcript", "write_transcript"]


@dataclass
class Transcript:
    """The words of one recording, and what its format needs to write them back.

    Attributes
    ----------
    path : Path
        Where it was read from.
    format : str
        One of `FORMATS`.
    words : list of Word
    """

    path: Path
    format: str
    words: list[Word]
    _source: Any = None

    def redacted(self, replacements: list[Replacement]) -> str:
        """The transcript in its own format, each replaced group of words written as its placeholder."""
        if self.format == "whisper-json":
            return json.dumps(whisper_json.write(self._source, self.words, replacements), ensure_ascii=False, indent=1)
        if self.format == "aws-json":
            return json.dumps(aws_json.write(self._source, self.words, replacements), ensure_ascii=False, indent=1)
        if self.format == "webvtt":
            return webvtt.write(self._source, self.words, replacements)
        return table.write(self._source, self.words, replacements)


def read_transcript(path: str | Path, *, duration: float | None = None) -> Transcript:
    """Read the timed words of a transcript, recognising its format from its content.

    Parameters
    ----------
    path : str or Path
    duration : float, optional
        Length of the audio in seconds: a word ending after it fails the file.

    Raises
    ------
    TranscriptError
    """
    path = Path(path)
    try:
        if path.stat().st_size > MAX_BYTES:
            raise TranscriptError(f"larger than {MAX_BYTES // 2**20} MiB: not a transcript", path)
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = path.read_bytes()[: e.start].count(b"\n") + 1
        raise TranscriptError(f"line {line}: not UTF-8 text", path) from None
    except OSError as e:
        raise TranscriptError(f"cannot read transcript ({e.strerror or e})", path) from None
    if not text.strip():
        raise TranscriptError("empty transcript", path)
    if webvtt.looks_like(text):
        fmt, (words, source) = "webvtt", webvtt.read(text, path)
    elif path.suffix.lower() == ".vtt":
        raise TranscriptError("line 1: not WebVTT (it must begin with 'WEBVTT')", path)
    elif text.lstrip()[:1] in ("{", "["):
        doc = _json.load(text, path)
        if aws_json.looks_like(doc):
            fmt, (words, source) = "aws-json", aws_json.read(doc, path)
        elif whisper_json.looks_like(doc):
            fmt, (words, source) = "whisper-json", whisper_json.read(doc, path)
        else:
            raise TranscriptError(
                "line 1: JSON is neither Whisper/WhisperX ('segments') nor Amazon Transcribe ('results.items')", path
            )
    else:
        fmt, (words, source) = "csv", table.read(text, path)
    check_words(words, path=path, duration=duration)
    return Transcript(path, fmt, words, source)


def write_transcript(transcript: Transcript, replacements: list[Replacement], path: str | Path) -> Path:
    """Write `transcript` redacted to `path` atomically; never over the transcript it was read from."""
    from deid.batch.manifest import write_text_atomic

    path = Path(path)
    if path.exists() and os.path.samefile(path, transcript.path):
        raise TranscriptError("the redacted transcript would overwrite its input", path)
    write_text_atomic(path, transcript.redacted(replacements))
    return path
