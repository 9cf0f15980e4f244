"""Rebuild data/sample.wav: synthetic speech from eSpeak NG with planted (fictional) metadata.

    espeak-ng -v en-us -s 150 -w /tmp/espeak.wav "<TEXT>"
    python data/make_sample.py /tmp/espeak.wav

The tags are there so that ``deid inspect data/sample.wav`` has something to find and the quick
start shows them gone. Every name, number and place in them is made up.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

TEXT = (
    "The review team will transcribe this recording. My appointment is on Tuesday at ten thirty, "
    "and the reference number is four seven two nine."
)
TAGS = {
    b"INAM": "Voice memo, Jane Example",
    b"IART": "Jane Example",
    b"ICMT": "Fictional caller, phone +1 555 0100, 221B Example Street",
    b"ICRD": "2026-11-26",
    b"ISFT": "ExampleRecorder 1.0 (serial EX-0042)",
}


def list_info(tags: dict[bytes, str]) -> bytes:
    body = b"INFO"
    for cid, text in tags.items():
        data = text.encode("utf-8") + b"\0"
        body += cid + struct.pack("<I", len(data)) + data + b"\0" * (len(data) & 1)
    return b"LIST" + struct.pack("<I", len(body)) + body


def main(src: str) -> None:
    y, sr = sf.read(src, dtype="float32")
    y = soxr.resample(y, sr, 16000)
    y = (0.5 * y / np.max(np.abs(y))).astype(np.float32)
    out = Path(__file__).with_name("sample.wav")
    sf.write(out, y, 16000, subtype="PCM_16")
    raw = out.read_bytes()
    chunk = list_info(TAGS)
    # Append the LIST chunk inside the RIFF and fix the RIFF size.
    raw = raw[:4] + struct.pack("<I", len(raw) - 8 + len(chunk)) + raw[8:] + chunk
    out.write_bytes(raw)


if __name__ == "__main__":
    main(sys.argv[1])
