"""Amazon Transcribe JSON: ``results.items``, pronunciations with times and punctuation without."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deid.redact.transcripts import _json
from deid.redact.transcripts._common import Replacement, by_first, placeholder_text
from deid.redact.words import TranscriptError, Word

# Written back: items and speaker turns (times and labels only). Dropped: "jobName" (often the
# file's name), "accountId", "channel_labels" and "audio_segments" (they repeat the words).
_TOP_KEYS = ("status",)
_RESULT_KEYS = ("speaker_labels", "language_code")


def looks_like(doc: Any) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("results"), dict) and "items" in doc["results"]


def read(doc: Any, path: str | Path) -> tuple[list[Word], Any]:
    items = doc["results"]["items"]
    if not isinstance(items, list):
        raise TranscriptError(f"line {doc['results'].line}: 'results.items' is not a list", path)
    words = []
    for item in items:
        if not isinstance(item, dict):
            raise TranscriptError(f"line {doc['results'].line}: an item is not an object", path)
        alternatives = item.get("alternatives")
        if not (isinstance(alternatives, list) and alternatives and isinstance(alternatives[0], dict)):
            raise TranscriptError(f"line {item.line}: item has no alternatives", path)
        content = alternatives[0].get("content")
        if not isinstance(content, str):
            raise TranscriptError(f"line {item.line}: item has no content", path)
        if item.get("type") == "punctuation":
            continue
        start = _json.number(item.get("start_time"), "start_time", item, path)
        end = _json.number(item.get("end_time"), "end_time", item, path)
        if start is None or end is None:
            raise TranscriptError(f"line {item.line}: pronunciation item has no start_time or end_time", path)
        words.append(Word(content, start, end, item.line))
    return words, doc


def write(doc: Any, words: list[Word], replacements: list[Replacement]) -> Any:
    first, swallowed = by_first(replacements)
    items_out: list[dict[str, Any]] = []
    i = 0
    for item in doc["results"]["items"]:
        content = item["alternatives"][0]["content"]
        if item.get("type") == "punctuation":
            if i in swallowed:  # between two words of one redacted group
                continue
            items_out.append({"type": "punctuation", "alternatives": [{"confidence": "0.0", "content": content}]})
            continue
        if i in swallowed:
            i += 1
            continue
        new: dict[str, Any] = {"type": "pronunciation"}
        if i in first:
            r = first[i]
            new["start_time"] = item["start_time"]
            new["end_time"] = f"{words[r.last].end:.3f}"
            new["alternatives"] = [{"confidence": "0.0", "content": placeholder_text("", r.placeholder)}]
        else:
            new["start_time"], new["end_time"] = item["start_time"], item["end_time"]
            new["alternatives"] = [{"confidence": item["alternatives"][0].get("confidence", "0.0"), "content": content}]
        if "speaker_label" in item:
            new["speaker_label"] = item["speaker_label"]
        items_out.append(new)
        i += 1
    if any("id" in item for item in doc["results"]["items"]):
        for n, item in enumerate(items_out):
            item["id"] = n
    transcript = ""
    for item in items_out:
        text = item["alternatives"][0]["content"]
        transcript += text if item["type"] == "punctuation" or not transcript else " " + text
    results: dict[str, Any] = {"transcripts": [{"transcript": transcript}], "items": items_out}
    results.update({k: doc["results"][k] for k in _RESULT_KEYS if k in doc["results"]})
    return {**{k: doc[k] for k in _TOP_KEYS if k in doc}, "results": results}
