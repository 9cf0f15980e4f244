"""Hostile input files for tests/test_hostile.py, each built here, and a driver that runs deid on them.

Every file is small (under 1 MB): what makes it hostile is what its headers claim. The driver
runs each command in a process forked from one that has already imported deid, so a case costs
milliseconds, and reports for each its exit code, output, the signal that ended it (a hang is
ended by SIGALRM) and its peak memory above the parent's.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 16000


def tone(seconds: float = 1.0, sr: int = SR, channels: int = 1) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    y = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * np.sin(2 * np.pi * 1330 * t)
    return np.stack([y] * channels, axis=1).astype(np.float32)


def write(path: Path, fmt: str, subtype: str, *, seconds: float = 1.0, sr: int = SR, channels: int = 1) -> Path:
    sf.write(path, tone(seconds, sr, channels), sr, format=fmt, subtype=subtype)
    return path


def wav_bytes(*, tag: int = 1, channels: int = 1, rate: int = SR, bits: int = 16, frames: int = SR) -> bytes:
    """A PCM WAV built by hand, with any header values (also impossible ones)."""
    align = channels * ((bits + 7) // 8)
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * align, align, bits)
    data = (np.clip(tone(frames / SR), -1, 1) * 32767).astype("<i2").tobytes()[:frames * max(align, 1)]
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", 8 + len(body)) + kind + body


def m4a(folder: Path) -> Path:
    path = folder / "plain.m4a"
    if not path.exists():
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "sine=f=300:d=1", "-ar", "16000", "-c:a",
                        "aac", "-b:a", "32k", "-map_metadata", "-1", str(path)], check=True)
    return path


def m4a_with_table_count(folder: Path, table: bytes, *, uniform: bool = False) -> bytes:
    """An AAC M4A whose sample table `table` declares 0xFFFFFFF0 entries (the bytes hold a few)."""
    data = bytearray(m4a(folder).read_bytes())
    pos = data.find(table) - 4
    count_at = pos + 12 + (4 if table == b"stsz" else 0)  # stsz has a uniform sample size first
    data[count_at:count_at + 4] = struct.pack(">I", 0xFFFFFFF0)
    if uniform:
        data[pos + 12:pos + 16] = struct.pack(">I", 1)  # every sample 1 byte: no table to read
    return bytes(data)


def nested_m4a(depth: int = 2000) -> bytes:
    """An ``ftyp`` and then `depth` ``moov``/``trak`` atoms inside each other."""
    inner = _box(b"free", b"")
    for level in range(depth):
        inner = _box(b"trak" if level % 2 else b"moov", inner)
    return _box(b"ftyp", b"M4A \0\0\0\0isom") + inner


def stacked_id3_mp3(folder: Path, count: int = 5000) -> bytes:
    tag = b"ID3\x03\x00\x00\x00\x00\x00\x0b" + b"TIT2\x00\x00\x00\x01\x00\x00\x00"
    return tag * count + write(folder / "plain.mp3", "MP3", "MPEG_LAYER_III").read_bytes()


def lying_flac(folder: Path) -> bytes:
    data = bytearray(write(folder / "plain.flac", "FLAC", "PCM_16").read_bytes())
    data[21] |= 0x0F
    data[22:26] = b"\xff\xff\xff\xff"
    return bytes(data)


def corrupt_mp3_frames(path: Path) -> bytes:
    """The MP3 at `path` with 20 payload bytes of every frame after the first flipped; every
    frame header is intact, so the file parses, and libmpg123 complains of each frame."""
    import mmap

    from deid.metadata.layout import regions

    data = bytearray(path.read_bytes())
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        frames = regions(buf)[0].parsed.frames
    rng = np.random.default_rng(0)
    for start, stop in frames[1:]:
        for at in rng.integers(start + 6, stop, 20):
            data[int(at)] ^= 0xFF
    return bytes(data)


def _cut(path: Path, fraction: float) -> bytes:
    data = path.read_bytes()
    return data[:int(len(data) * fraction)]


def cases(folder: Path) -> dict[str, Path]:
    """Every hostile input, by name; files are written under `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    flac = write(folder / "ref.flac", "FLAC", "PCM_16", seconds=2.0)
    ogg = write(folder / "ref.ogg", "OGG", "VORBIS")
    mp3 = write(folder / "ref.mp3", "MP3", "MPEG_LAYER_III")
    wav = write(folder / "ref.wav", "WAV", "PCM_16")
    nan = tone()
    nan[100] = np.nan
    builders: dict[str, tuple[str, Callable[[], bytes]]] = {
        "empty": (".wav", lambda: b""),
        "random": (".flac", lambda: np.random.default_rng(1).bytes(20000)),
        "text": (".wav", lambda: b"not audio at all\n" * 40),
        "wav-header-only": (".wav", lambda: wav.read_bytes()[:44]),
        "wav-0-channels": (".wav", lambda: wav_bytes(channels=0)),
        "wav-0-hz": (".wav", lambda: wav_bytes(rate=0)),
        "wav-0-bits": (".wav", lambda: wav_bytes(bits=0)),
        "wav-unknown-codec": (".wav", lambda: wav_bytes(tag=0x7777)),
        "wav-empty-data": (".wav", lambda: wav_bytes(frames=0)),
        "wav-1-hz": (".wav", lambda: wav_bytes(rate=1, frames=4000)),
        "wav-100-hz": (".wav", lambda: wav_bytes(rate=100, frames=4000)),
        "wav-4-khz": (".wav", lambda: wav_bytes(rate=4000, frames=4000)),
        "wav-lying-size": (".wav", lambda: wav.read_bytes()[:40] + b"\xff\xff\xff\x7f" + wav.read_bytes()[44:]),
        "wav-nan": (".wav", lambda: _float_wav(nan)),
        "flac-cut-10": (".flac", lambda: _cut(flac, 0.1)),
        "flac-cut-50": (".flac", lambda: _cut(flac, 0.5)),
        "flac-cut-90": (".flac", lambda: _cut(flac, 0.9)),
        "flac-2^36-samples": (".flac", lambda: lying_flac(folder)),
        "flac-junk-after": (".flac", lambda: flac.read_bytes() + b"junk appended after the frames " * 30),
        "flac-cat": (".flac", lambda: flac.read_bytes() * 2),
        "ogg-cat": (".ogg", lambda: ogg.read_bytes() * 2),
        "ogg-chained": (".ogg", lambda: ogg.read_bytes() + write(folder / "b.ogg", "OGG", "VORBIS").read_bytes()),
        "ogg-random-pages": (".ogg", lambda: b"".join(b"OggS" + np.random.default_rng(i).bytes(300) for i in range(30))),
        "mp3-cat": (".mp3", lambda: mp3.read_bytes() * 2),
        "mp3-stacked-id3": (".mp3", lambda: stacked_id3_mp3(folder)),
        "mp3-corrupt-frames": (".mp3", lambda: corrupt_mp3_frames(mp3)),
        "mp3-junk-between": (".mp3", lambda: mp3.read_bytes()[:2000] + b"\0junk\xff\xfb" * 200 + mp3.read_bytes()[2000:]),
        "aiff-lying-comm": (".aiff", lambda: _lying_aiff(folder)),
        "m4a-stsc-bomb": (".m4a", lambda: m4a_with_table_count(folder, b"stsc")),
        "m4a-stsz-bomb": (".m4a", lambda: m4a_with_table_count(folder, b"stsz")),
        "m4a-stsz-uniform-bomb": (".m4a", lambda: m4a_with_table_count(folder, b"stsz", uniform=True)),
        "m4a-stco-bomb": (".m4a", lambda: m4a_with_table_count(folder, b"stco")),
        "m4a-nested-2000": (".m4a", lambda: nested_m4a()),
        "m4a-cut": (".m4a", lambda: _cut(m4a(folder), 0.6)),
    }
    made = {}
    for name, (suffix, build) in builders.items():
        path = folder / f"{name}{suffix}"
        path.write_bytes(build())
        made[name] = path
    loop = folder / "loop.wav"
    loop.symlink_to(folder / "loop-back.wav")
    (folder / "loop-back.wav").symlink_to(loop)
    made["symlink-loop"] = loop
    return made


def _float_wav(y: np.ndarray) -> bytes:
    out = io.BytesIO()
    sf.write(out, y, SR, format="WAV", subtype="FLOAT")
    return out.getvalue()


def _lying_aiff(folder: Path) -> bytes:
    data = bytearray(write(folder / "ref.aiff", "AIFF", "PCM_16").read_bytes())
    comm = data.find(b"COMM")
    data[comm + 10:comm + 14] = struct.pack(">I", 0xFFFFFFFF)  # frames
    return bytes(data)


DRIVER = r'''
import json, os, resource, signal, sys, time, traceback
import deid.batch.preload  # numpy, soundfile, the transforms and their compiled engines, loaded once
import deid.cli, deid.metadata.mp4
import av

def status(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


timeout, headroom = float(sys.argv[1]), int(sys.argv[2])
results = []
for args, out_dir in json.load(sys.stdin):
    out_path, err_path = os.path.join(out_dir, "stdout"), os.path.join(out_dir, "stderr")
    memory_path = os.path.join(out_dir, "memory")
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        start_rss = status("VmRSS")
        # A safety net for the machine: a memory bomb fails here rather than filling it.
        limit = (status("VmSize") << 10) + (headroom << 20)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        signal.alarm(int(timeout))
        fd_out, fd_err = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(fd_out, 1); os.dup2(fd_err, 2)
        sys.stdout = open(1, "w", closefd=False); sys.stderr = open(2, "w", closefd=False)
        code = 0
        try:
            deid.cli.app(args, prog_name="deid", standalone_mode=True)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            traceback.print_exc()
            code = 99
        sys.stdout.flush(); sys.stderr.flush()
        with open(memory_path, "w") as f:
            f.write(str((status("VmHWM") - start_rss) / 1024))
        os._exit(code)
    _, wait_status = os.waitpid(pid, 0)
    try:
        growth = float(open(memory_path).read())
        os.unlink(memory_path)
    except OSError:
        growth = None
    results.append({
        "args": args,
        "code": os.waitstatus_to_exitcode(wait_status),
        "seconds": time.monotonic() - started,
        "growth_mb": growth,
        "stdout": open(out_path, errors="replace").read(),
        "stderr": open(err_path, errors="replace").read(),
    })
json.dump(results, sys.stdout)
'''


def run_forked(commands: list[tuple[list[str], Path]], *, timeout: float = 30.0, headroom_mb: int = 3072) -> list[dict]:
    """Run each ``deid`` argument list in a forked child of one warmed-up process; see the module docstring.

    Each child may use `headroom_mb` of address space beyond what it starts with, and
    `timeout` seconds; ``growth_mb`` is its peak resident memory above its start (None if it
    was killed).
    """
    for _args, folder in commands:
        folder.mkdir(parents=True, exist_ok=True)
    payload = json.dumps([(args, str(folder)) for args, folder in commands])
    done = subprocess.run([sys.executable, "-c", DRIVER, str(timeout), str(headroom_mb)], input=payload,
                          capture_output=True, text=True, timeout=timeout * len(commands) + 120)
    if done.returncode != 0:
        raise RuntimeError(f"the driver failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout)


def corpus_speech(corpus: Path, seconds: float) -> np.ndarray | None:
    """Real speech of at least `seconds` (mono float32 at 16 kHz): corpus clips end to end, or None if it holds less."""
    clips = sorted(corpus.glob("*/*.flac"))
    pieces, total = [], 0
    for clip in clips:
        y, sr = sf.read(clip, dtype="float32")
        if sr != SR or y.ndim != 1:
            continue
        pieces.append(y)
        total += len(y)
        if total >= seconds * SR:
            return np.concatenate(pieces)[:int(seconds * SR)]
    return None


#: Correlation above which a file is taken to hold the original voice: a copy, scaled or not,
#: correlates at 1.0; anonymized outputs of these presets stay below 0.5 (the test checks both).
ORIGINAL_VOICE = 0.9


def original_voice_in(path: Path, reference: np.ndarray, *, windows: int = 4, seconds: float = 0.5) -> float:
    """How much of the original voice `reference` (mono float) the file at `path` holds.

    The largest normalised correlation, at any lag, of the loudest half-second windows of the
    reference with the file's content read every way it could hold samples: decoded as audio
    (every channel), and as raw float32 or int16 at each byte alignment (a spill, a buffer, a
    half-written temporary file). A scaled copy gives 1.0.
    """
    from scipy.signal import fftconvolve

    width = int(seconds * SR)
    starts = np.arange(0, len(reference) - width, width)
    loudest = starts[np.argsort([-np.sum(reference[s:s + width] ** 2) for s in starts])[:windows]]
    data = path.read_bytes()
    candidates: list[np.ndarray] = []
    try:
        decoded, _sr = sf.read(io.BytesIO(data), dtype="float64", always_2d=True)
        candidates += list(decoded.T)
    except Exception:  # noqa: BLE001 - not a file soundfile reads: raw bytes are tried below
        pass
    for dtype, size, scale in ((np.float32, 4, 1.0), (np.int16, 2, 1 / 32768)):
        for offset in range(size):
            usable = (len(data) - offset) // size * size
            with np.errstate(invalid="ignore", over="ignore"):
                raw = np.frombuffer(data[offset:offset + usable], dtype=dtype).astype(np.float64) * scale
            candidates.append(np.nan_to_num(raw, nan=0.0, posinf=0.0, neginf=0.0))
    best = 0.0
    for x in candidates:
        if len(x) < width:
            continue
        # Bytes that are not samples read as huge floats: bounded, so that FFT round-off from
        # them cannot pass for a correlation elsewhere; windows below -60 dBFS are not judged.
        x = np.clip(x, -4.0, 4.0)
        energy = fftconvolve(x * x, np.ones(width), mode="valid")
        judged = energy > width * 1e-6
        for s in loudest:
            w = reference[s:s + width].astype(np.float64)
            corr = fftconvolve(x, w[::-1], mode="valid") / (np.linalg.norm(w) * np.sqrt(np.maximum(energy, 1e-12)))
            if judged.any():
                best = max(best, float(np.max(np.abs(corr[judged]))))
    return best
