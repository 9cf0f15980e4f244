"""Files in and out: every format round-trips with rate, channels, subtype and length kept;
bad inputs get one clear error; inputs are never touched; writes are atomic and deterministic."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import soundfile as sf
from conftest import RATES, load

import deid
from deid.audio import read_audio
from deid.errors import AudioError, DeidError

FORMATS = [
    ("WAV", "PCM_16", ".wav"),
    ("WAV", "PCM_24", ".wav"),
    ("WAV", "PCM_32", ".wav"),
    ("WAV", "PCM_U8", ".wav"),
    ("WAV", "FLOAT", ".wav"),
    ("FLAC", "PCM_16", ".flac"),
    ("FLAC", "PCM_24", ".flac"),
    ("AIFF", "PCM_16", ".aiff"),
    ("OGG", "VORBIS", ".ogg"),
    ("OGG", "OPUS", ".opus"),
    ("MP3", "MPEG_LAYER_III", ".mp3"),
]


def _clip(speech_path, sr, channels, seconds=1.5):
    y = load(speech_path, sr)[: int(seconds * sr)]
    if channels == 2:
        y = np.stack([y, 0.7 * np.roll(y, sr // 100)])
    return y


def _write(path, y, sr, fmt, subtype):
    sf.write(path, y.T if y.ndim == 2 else y, sr, format=fmt, subtype=subtype)


@pytest.mark.parametrize("sr", RATES)
@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize(("fmt", "subtype", "ext"), FORMATS)
def test_format_round_trip_keeps_rate_channels_subtype_and_length(tmp_path, voices, sr, channels, fmt, subtype, ext):
    if subtype == "OPUS" and sr == 44100:
        pytest.skip("Opus does not store 44.1 kHz")
    src = tmp_path / f"in{ext}"
    _write(src, _clip(voices[3], sr, channels), sr, fmt, subtype)
    before = src.read_bytes()
    dst = tmp_path / f"out{ext}"
    result = deid.anonymize_file(src, dst, "fast", seed=1)
    info_in, info_out = sf.info(src), sf.info(dst)
    assert (info_out.samplerate, info_out.channels, info_out.format, info_out.subtype) == (
        info_in.samplerate,
        info_in.channels,
        info_in.format,
        info_in.subtype,
    )
    assert abs(info_out.frames - info_in.frames) <= 0.010 * sr
    assert result.format == fmt and result.subtype == subtype
    assert src.read_bytes() == before
    assert not list(tmp_path.glob(".*deid-tmp"))


def test_opus_at_44k_is_refused_clearly(tmp_path, voices):
    src = tmp_path / "in.wav"
    _write(src, _clip(voices[0], 44100, 1), 44100, "WAV", "PCM_16")
    with pytest.raises(AudioError, match="Opus cannot store 44100 Hz"):
        deid.anonymize_file(src, tmp_path / "out.opus", "fast", seed=1, format="opus")
    assert not list(tmp_path.glob("out*")) and not list(tmp_path.glob(".*"))


@pytest.mark.parametrize(("name", "fmt", "subtype"), [("flac", "FLAC", "PCM_24"), ("wav", "WAV", "PCM_24"), ("mp3", "MP3", "MPEG_LAYER_III"), ("ogg", "OGG", "VORBIS")])
def test_format_option_converts(tmp_path, voices, name, fmt, subtype):
    src = tmp_path / "in.wav"
    _write(src, _clip(voices[0], 48000, 2), 48000, "WAV", "PCM_24")
    dst = tmp_path / f"out.{name}"
    deid.anonymize_file(src, dst, "fast", seed=1, format=name)
    info = sf.info(dst)
    assert (info.format, info.subtype, info.samplerate, info.channels) == (fmt, subtype, 48000, 2)


@pytest.mark.parametrize(("fmt", "subtype", "ext"), [f for f in FORMATS if f[0] in ("WAV", "FLAC", "AIFF", "MP3")])
def test_same_key_gives_identical_bytes(tmp_path, voices, fmt, subtype, ext):
    src = tmp_path / f"in{ext}"
    _write(src, _clip(voices[2], 16000, 1), 16000, fmt, subtype)
    digests = set()
    for i in range(2):
        deid.anonymize_file(src, tmp_path / f"o{i}{ext}", "standard", key=b"same key")
        digests.add(hashlib.sha256((tmp_path / f"o{i}{ext}").read_bytes()).hexdigest())
    deid.anonymize_file(src, tmp_path / f"other{ext}", "standard", key=b"other key")
    assert len(digests) == 1
    assert hashlib.sha256((tmp_path / f"other{ext}").read_bytes()).hexdigest() not in digests


def test_key_bytes_never_reach_the_output(tmp_path, voices):
    src = tmp_path / "in.wav"
    _write(src, _clip(voices[0], 16000, 1), 16000, "WAV", "PCM_16")
    secret = b"my-very-secret-key-0123456789"
    deid.anonymize_file(src, tmp_path / "out.wav", key=secret)
    assert secret not in (tmp_path / "out.wav").read_bytes()


def test_input_is_never_the_output(tmp_path, voices):
    src = tmp_path / "in.wav"
    _write(src, _clip(voices[0], 16000, 1), 16000, "WAV", "PCM_16")
    before = src.read_bytes()
    (tmp_path / "link.wav").symlink_to(src)
    for dst in (src, tmp_path / "." / "in.wav", tmp_path / "link.wav"):
        with pytest.raises(DeidError, match="never overwrites an input"):
            deid.anonymize_file(src, dst, seed=1)
    assert src.read_bytes() == before


def _bad_files(tmp_path, speech):
    good = tmp_path / "good.flac"
    sf.write(good, speech, 16000)
    raw = good.read_bytes()
    wav = tmp_path / "good.wav"
    sf.write(wav, speech, 16000, subtype="PCM_16")
    cases = {
        "empty.wav": (b"", "empty file"),
        "notaudio.wav": (b"This is a text file, not a recording.\n" * 20, "not a recognised audio file"),
        "truncated.flac": (raw[: len(raw) // 2], "truncated"),
        "truncated.wav": (wav.read_bytes()[: 30000], "truncated"),
        "random.mp3": (bytes(range(256)) * 40, "not a recognised audio file"),
    }
    out = {}
    for name, (data, reason) in cases.items():
        (tmp_path / name).write_bytes(data)
        out[name] = reason
    sf.write(tmp_path / "zeros.wav", np.zeros(16000, np.float32), 16000)
    out["zeros.wav"] = "silent"
    sf.write(tmp_path / "nan.wav", np.r_[speech[:8000], np.nan, speech[8000:16000]].astype(np.float32), 16000, subtype="FLOAT")
    out["nan.wav"] = "NaN"
    sf.write(tmp_path / "one.wav", speech[:1], 16000)
    out["one.wav"] = "too short"
    return out


def test_bad_inputs_get_one_clear_error_naming_the_file(tmp_path, speech):
    for name, reason in _bad_files(tmp_path, speech).items():
        src = tmp_path / name
        with pytest.raises(DeidError) as info:
            deid.anonymize_file(src, tmp_path / f"out-{name}", seed=1)
        message = str(info.value)
        assert reason in message and str(src) in message and "\n" not in message, message
        assert not (tmp_path / f"out-{name}").exists()


def test_m4a_input_is_decoded_and_written_as_flac(tmp_path, voices):
    import shutil
    import subprocess

    if not shutil.which("ffmpeg"):
        pytest.skip("ffmpeg is needed to build the M4A fixture")
    wav = tmp_path / "in.wav"
    _write(wav, _clip(voices[0], 44100, 1, seconds=3.0), 44100, "WAV", "PCM_16")
    m4a = tmp_path / "memo.m4a"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(wav), "-c:a", "aac", "-b:a", "96k", str(m4a)], check=True)
    result = deid.anonymize_file(m4a, tmp_path / "memo.flac", seed=1)
    info = sf.info(tmp_path / "memo.flac")
    assert (info.format, info.samplerate, info.channels) == ("FLAC", 44100, 1)
    assert abs(info.frames - read_audio(wav).samples.shape[1]) <= 0.05 * 44100
    assert result.input.format == "MP4"
