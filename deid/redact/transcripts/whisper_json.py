"""faster-whisper, openai-whisper and WhisperX JSON: segments, each with its timed words."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from deid.redact.transcripts import _json
from deid.redact.transcripts._common import Replacement, by_first, placeholder_text
from deid.redact.words import TranscriptError, Word

# Only fields that cannot hold what was said are written back: "tokens" are the text's token ids,
# and anything unknown may be text.
_SEGMENT_KEYS = ("id", "seek", "start", "end", "speaker", "temperature", "avg_logprob", "compression_ratio", "no_speech_prob")
_WORD_KEYS = ("start", "end", "probability", "score", "speaker")
_TOP_KEYS = ("language", "language_probability", "duration")


def looks_like(doc: Any) -> bool:
    return isinstance(doc, list) or (isinstance(doc, dict) and "segments" in doc)


def read(doc: Any, path: str | Path) -> tuple[list[Word], Any]:
    segments = doc if isinstance(doc, list) else doc["segments"]
    if not isinstance(segments, list):
        raise TranscriptError(f"line {getattr(doc, 'line', 1)}: 'segments' is not a list", path)
    words: list[Word] = []
    for seg in segments:
        if not isinstance(seg, dict):
            raise TranscriptError(f"line {getattr(doc, 'line', 1)}: a segment is not an object", path)
        seg_words = seg.get("words")
        if seg_words is None:
            if str(seg.get("text", "")).strip():
                raise TranscriptError(
                    f"line {seg.line}: segment has no word times (transcribe with word_timestamps=True)", path
                )
            continue
        if not isinstance(seg_words, list):
            raise TranscriptError(f"line {seg.line}: 'words' is not a list", path)
        first = len(words)
        for w in seg_words:
            if not isinstance(w, dict):
                raise TranscriptError(f"line {seg.line}: a word is not an object", path)
            text = w.get("word", w.get("text"))
            if not isinstance(text, str):
                raise TranscriptError(f"line {w.line}: word has no text", path)
            start = _json.number(w.get("start"), "start", w, path)
            end = _json.number(w.get("end"), "end", w, path)
            if (start is None) != (end is None):
                raise TranscriptError(f"line {w.line}: word has a start or an end but not both", path)
            words.append(Word(text, start, end, w.line))
        if len(words) > first:
            words[-1] = replace(words[-1], ends_segment=True)
    return words, doc


def write(doc: Any, words: list[Word], replacements: list[Replacement]) -> Any:
    first, swallowed = by_first(replacements)
    segments = doc if isinstance(doc, list) else doc["segments"]
    out_segments = []
    all_words = []
    i = 0
    for seg in segments:
        out_words = []
        for w in seg.get("words") or []:
            if i in swallowed:
                i += 1
                continue
            key = "word" if "word" in w else "text"
            if i in first:
                r = first[i]
                group = words[r.first : r.last + 1]
                lead = " " if w[key].startswith(" ") else ""
                new = {key: lead + placeholder_text(group[-1].text, r.placeholder)}
                starts = [g.start for g in group if g.start is not None]
                ends = [g.end for g in group if g.end is not None]
                if starts:
                    new["start"], new["end"] = starts[0], ends[-1]
            else:
                new = {key: w[key], **{k: w[k] for k in _WORD_KEYS if k in w}}
            out_words.append(new)
            i += 1
        out = {k: seg[k] for k in _SEGMENT_KEYS if k in seg}
        out["text"] = _join([next(iter(w.values())) for w in out_words])
        out["words"] = out_words
        out_segments.append(out)
        all_words += out_words
    if isinstance(doc, list):
        return out_segments
    top: dict[str, Any] = {k: doc[k] for k in _TOP_KEYS if k in doc}
    if "text" in doc:
        top["text"] = _join([s["text"] for s in out_segments])
    top["segments"] = out_segments
    if "word_segments" in doc:
        top["word_segments"] = all_words
    return top


def _join(texts: list[str]) -> str:
    """Whisper words carry their leading space; WhisperX words and segment texts do not."""
    if texts and all(t.startswith(" ") for t in texts):
        return "".join(texts)
    return " ".join(t.strip() for t in texts)
