"""Files in and out: every format round-trips with rate, channels, subtype and length kept;
bad inputs get one clear error; inputs are never touched; writes are atomic and deterministic."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile

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
        deid.anonymize_file(src, tmp_path / f"o{i}{ext}", "standard", key=b"the same secret key")
        digests.add(hashlib.sha256((tmp_path / f"o{i}{ext}").read_bytes()).hexdigest())
    deid.anonymize_file(src, tmp_path / f"other{ext}", "standard", key=b"another secret key")
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
        with pytest.raises(DeidError, match="is the input; deid never writes over a file it reads"):
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


# --- one input, one output -------------------------------------------------------------------


def _m4a(tmp_path, voices, seconds=3.0):
    import shutil
    import subprocess

    if not shutil.which("ffmpeg"):
        pytest.skip("ffmpeg is needed to build the M4A fixture")
    wav = tmp_path / "for-m4a.wav"
    _write(wav, _clip(voices[0], 44100, 2, seconds=seconds), 44100, "WAV", "PCM_16")
    m4a = tmp_path / "memo.m4a"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(wav), "-c:a", "aac", "-b:a", "96k", str(m4a)], check=True)
    return m4a


def test_header_comes_without_decoding(tmp_path, voices, monkeypatch):
    """read_info and open_input never decode a sample, M4A included."""
    from deid.audio import read_info, source

    def refuse(*args, **kwargs):
        raise AssertionError("decoded")

    for cls in (source.SndfileSource, source.ForwardSource):
        for name in ("read", "load", "scan", "_blocks"):
            monkeypatch.setattr(cls, name, refuse)
    flac = tmp_path / "in.flac"
    _write(flac, _clip(voices[0], 48000, 2), 48000, "FLAC", "PCM_24")
    info = read_info(flac)
    assert (info.format, info.subtype, info.samplerate, info.channels, info.frames) == ("FLAC", "PCM_24", 48000, 2, 72000)
    info = read_info(_m4a(tmp_path, voices))
    assert (info.format, info.samplerate, info.channels, info.decoder) == ("MP4", 44100, 2, "ffmpeg")
    assert abs(info.seconds - 3.0) < 0.05


@pytest.mark.parametrize(("fmt", "subtype", "ext"), [("WAV", "PCM_16", ".wav"), ("FLAC", "PCM_16", ".flac"),
                                                     ("OGG", "VORBIS", ".ogg"), ("MP3", "MPEG_LAYER_III", ".mp3")])
def test_content_hash_is_made_while_reading(tmp_path, voices, fmt, subtype, ext):
    """The scope hash comes from the one read of the file: the SHA-256 of every byte, tags included."""
    from deid.audio import open_input

    src = tmp_path / f"in{ext}"
    _write(src, _clip(voices[1], 16000, 1), 16000, fmt, subtype)
    with open(src, "ab") as f:
        f.write(b"TAG" + b"trailing bytes no decoder reads".ljust(125, b"\0"))
    with open_input(src) as source:
        source.load()
        assert source.sha256 == hashlib.sha256(src.read_bytes()).hexdigest()
    with open_input(src) as source:
        source.scan()
        assert source.sha256 == hashlib.sha256(src.read_bytes()).hexdigest()


def test_flac_behind_id3v2_tags_is_read_in_place(tmp_path, voices):
    """Taggers put ID3v2 before FLAC's marker: read from the marker on, without a copy anywhere."""
    from mutagen.id3 import ID3, TIT2

    from deid.audio import open_input

    flac = tmp_path / "in.flac"
    y = _clip(voices[1], 16000, 1)
    _write(flac, y, 16000, "FLAC", "PCM_16")
    tags = ID3()
    tags.add(TIT2(encoding=3, text="Jane Example"))
    tagged = tmp_path / "tagged.flac"
    buffer = io.BytesIO()
    tags.save(buffer)
    tagged.write_bytes(buffer.getvalue() + flac.read_bytes())
    with open_input(tagged) as source:
        assert np.array_equal(source.load(), sf.read(flac, dtype="float32", always_2d=True)[0].T)
        assert source.sha256 == hashlib.sha256(tagged.read_bytes()).hexdigest()


def test_truncated_wav_is_refused_from_its_header(tmp_path, speech, monkeypatch):
    from deid.audio import open_input, source

    wav = tmp_path / "cut.wav"
    sf.write(wav, speech, 16000, subtype="PCM_16")
    wav.write_bytes(wav.read_bytes()[:20000])
    monkeypatch.setattr(source.SndfileSource, "_blocks", lambda self: (_ for _ in ()).throw(AssertionError("decoded")))
    with pytest.raises(AudioError, match="truncated: the header declares"):
        open_input(wav)


def test_output_is_checked_before_any_processing(tmp_path, voices, monkeypatch):
    from deid import engine

    monkeypatch.setattr(engine, "run", lambda *a, **k: (_ for _ in ()).throw(AssertionError("processed")))
    src = tmp_path / "in.wav"
    _write(src, _clip(voices[0], 44100, 1), 44100, "WAV", "PCM_16")
    (tmp_path / "folder.wav").mkdir()
    for dst, reason in ((tmp_path / "missing" / "out.wav", "output folder does not exist"),
                        (tmp_path / "out.opus", "Opus cannot store 44100 Hz"),
                        (tmp_path / "folder.wav", "is a folder")):
        with pytest.raises(DeidError, match=reason):
            deid.anonymize_file(src, dst, "fast", seed=1)


@pytest.mark.parametrize(("fmt", "subtype", "ext"), FORMATS)
def test_output_hash_comes_from_its_writing(tmp_path, voices, fmt, subtype, ext):
    src = tmp_path / f"in{ext}"
    _write(src, _clip(voices[2], 16000 if subtype != "OPUS" else 48000, 1), 16000 if subtype != "OPUS" else 48000,
           fmt, subtype)
    result = deid.anonymize_file(src, tmp_path / f"out{ext}", "fast", seed=1)
    data = (tmp_path / f"out{ext}").read_bytes()
    assert (result.size, result.sha256) == (len(data), hashlib.sha256(data).hexdigest())


def test_output_name_decides_its_format(tmp_path, voices):
    """A FLAC input written to out.wav is a WAV: names never lie about contents."""
    src = tmp_path / "in.flac"
    _write(src, _clip(voices[0], 16000, 1), 16000, "FLAC", "PCM_24")
    result = deid.anonymize_file(src, tmp_path / "out.wav", "fast", seed=1)
    assert (result.format, result.subtype) == ("WAV", "PCM_24") and sf.info(tmp_path / "out.wav").format == "WAV"
    assert deid.anonymize_file(src, tmp_path / "same.flac", "fast", seed=1).format == "FLAC"


@pytest.mark.slow
def test_long_m4a_is_spilled_to_an_anonymous_file_and_run_in_blocks(tmp_path, voices):
    """A long M4A is decoded once, into an unlinked temporary file, and processed in blocks."""
    m4a = _m4a(tmp_path, voices, seconds=3.0)
    long = tmp_path / "long.m4a"
    import subprocess

    subprocess.run(["ffmpeg", "-v", "error", "-stream_loop", "7", "-i", str(m4a), "-c", "copy", str(long)], check=True)
    whole = deid.anonymize_file(long, tmp_path / "whole.flac", "standard", seed=1, block_seconds=None)
    blocks = deid.anonymize_file(long, tmp_path / "blocks.flac", "standard", seed=1, block_seconds=10.0)
    from deid.audio import open_input
    from deid.metadata import read_m4a

    # Every copy of the loop keeps its encoder priming: 24 s and a little more.
    assert whole.input.frames == blocks.input.frames == sf.info(tmp_path / "blocks.flac").frames
    assert blocks.input.frames == read_m4a(long)[0].shape[1] and abs(blocks.input.seconds - 24.0) < 0.25
    w, b = (sf.read(tmp_path / f"{n}.flac")[0] for n in ("whole", "blocks"))
    assert abs(10 * np.log10(np.mean(b**2) / np.mean(w**2))) < 0.2
    with open_input(long) as source:
        source.scan()
        spill = os.readlink(f"/proc/self/fd/{source._spill.fileno()}")
        assert spill.startswith(tempfile.gettempdir()) and spill.endswith("(deleted)")


def test_each_input_is_decoded_once(tmp_path, voices, monkeypatch):
    """One file, one decode: a short input is loaded once and never scanned or re-read; a long one in
    a batch (scope and hash handed down) is never scanned, and its blocks are read where they lie."""
    from deid.audio import source

    decodes: list[str] = []

    def counted(cls, name):
        original = getattr(cls, name)

        def wrapper(self, *args, **kwargs):
            decodes.append(f"{cls.__name__}.{name}")
            return original(self, *args, **kwargs)

        monkeypatch.setattr(cls, name, wrapper)

    for name in ("load", "scan", "_blocks", "read"):
        counted(source.SndfileSource, name)
    counted(source.ForwardSource, "_blocks")
    flac = tmp_path / "in.flac"
    _write(flac, _clip(voices[0], 16000, 1, seconds=4.0), 16000, "FLAC", "PCM_16")
    deid.anonymize_file(flac, tmp_path / "out.flac", "standard", seed=1)
    assert decodes == ["SndfileSource.load"]
    decodes.clear()
    deid.anonymize_file(_m4a(tmp_path, voices), tmp_path / "memo.flac", "standard", seed=1)
    assert decodes == ["ForwardSource._blocks"]
    decodes.clear()
    deid.anonymize_file(flac, tmp_path / "blocks.flac", "fast", seed=1, scope="file:0", block_seconds=1.0)
    assert set(decodes) == {"SndfileSource.read"} and len(decodes) > 1
