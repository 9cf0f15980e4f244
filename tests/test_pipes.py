"""Pipes (issue 11): ``-`` reads standard input and writes standard output, with real ffmpeg
pipes; a stream gives the same bytes as the same bytes in a file; messages go to standard error;
a long stream runs in bounded memory and leaves nothing behind."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import load

import deid
from deid.errors import AudioError, DeidError

FFMPEG = shutil.which("ffmpeg") and shutil.which("ffprobe")
pytestmark = pytest.mark.skipif(not FFMPEG, reason="needs ffmpeg and ffprobe for the pipes")
DEID = [sys.executable, "-m", "deid"]
SR = 16000


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory, voices: list[Path]) -> dict[str, Path]:
    """Speech as a WAV file, a phone-style M4A, and what ``ffmpeg -f wav -`` writes to a pipe."""
    folder = tmp_path_factory.mktemp("pipes")
    wav = folder / "speech.wav"
    sf.write(wav, load(voices[2], SR)[: int(2.5 * SR)], SR, subtype="PCM_16")
    m4a = folder / "memo.m4a"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(wav), "-c:a", "aac", "-metadata", "title=Jane Example",
                    "-metadata", "location=+48.8583+002.2945/", str(m4a)], check=True)
    piped = folder / "piped.wav"
    with piped.open("wb") as out:
        subprocess.run(["ffmpeg", "-v", "error", "-i", str(m4a), "-f", "wav", "-"], stdout=out, check=True)
    assert piped.read_bytes()[4:8] == b"\xff\xff\xff\xff", "ffmpeg leaves a pipe's WAV length open"
    return {"wav": wav, "m4a": m4a, "piped": piped}


def _private_tmp(tmp_path: Path) -> dict[str, str]:
    folder = tmp_path / "tmp"
    folder.mkdir()
    return {**os.environ, "TMPDIR": str(folder)}


def test_ffmpeg_to_deid_to_ffprobe(clips: dict[str, Path], tmp_path: Path) -> None:
    """``ffmpeg -i x.m4a -f wav - | deid anonymize - - --format flac | ffprobe -``: only audio on
    stdout, one line on stderr, and the same bytes as the pipe's bytes given as a file."""
    env = _private_tmp(tmp_path)
    ffmpeg = subprocess.Popen(["ffmpeg", "-v", "error", "-i", str(clips["m4a"]), "-f", "wav", "-"],
                              stdout=subprocess.PIPE)
    run = subprocess.run([*DEID, "anonymize", "-", "-", "--format", "flac", "--seed", "1"], stdin=ffmpeg.stdout,
                         capture_output=True, env=env)
    ffmpeg.stdout.close()
    assert ffmpeg.wait() == 0 and run.returncode == 0, run.stderr
    assert run.stdout[:4] == b"fLaC"
    lines = run.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("<stdin> -> <stdout> (")
    assert "FLAC/PCM_16 from WAV/PCM_16" in lines[0]
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name,sample_rate,channels",
                            "-of", "csv=p=0", "-"], input=run.stdout, capture_output=True, check=True)
    assert probe.stdout.decode().strip() == f"flac,{SR},1"
    deid.anonymize_file(clips["piped"], tmp_path / "file.flac", seed=1)
    assert (tmp_path / "file.flac").read_bytes() == run.stdout
    assert not list(Path(env["TMPDIR"]).iterdir()), "the cleaned output is never left behind"


@pytest.mark.parametrize(("codec", "ext"), [(["-c:a", "pcm_s16le"], "wav"), (["-c:a", "pcm_s24le"], "wav"),
                                            (["-c:a", "pcm_f32le"], "wav"), (["-c:a", "flac"], "flac"),
                                            (["-c:a", "flac", "-sample_fmt", "s32"], "flac"),
                                            (["-c:a", "pcm_s16be"], "aiff")])
def test_lossless_stream_gives_the_bytes_its_file_gives(clips: dict[str, Path], tmp_path: Path, codec: list[str],
                                                        ext: str) -> None:
    """Read from a pipe or from a file, the same bytes give the same output, sample format kept."""
    made = tmp_path / f"in.{ext}"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(clips["wav"]), *codec, str(made)], check=True)
    streamed, filed = io.BytesIO(), tmp_path / f"out.{ext}"
    with made.open("rb") as stream:
        result = deid.anonymize_file(stream, streamed, "fast", seed=1, format=ext)
    expected = deid.anonymize_file(made, filed, "fast", seed=1)
    assert (result.input.format, result.input.subtype) == (expected.input.format, expected.input.subtype)
    assert (result.format, result.subtype) == (expected.format, expected.subtype)
    assert streamed.getvalue() == filed.read_bytes()
    assert result.input.frames == expected.input.frames == sf.info(filed).frames


@pytest.mark.parametrize(("codec", "subtype"), [("libvorbis", "VORBIS"), ("libopus", "OPUS"),
                                                ("libmp3lame", "MPEG_LAYER_III")])
def test_coded_streams_are_recognised_by_content(clips: dict[str, Path], tmp_path: Path, codec: str,
                                                 subtype: str) -> None:
    rate = 48000 if codec == "libopus" else SR
    data = subprocess.run(["ffmpeg", "-v", "error", "-i", str(clips["wav"]), "-ar", str(rate), "-c:a", codec, "-f",
                           "mp3" if codec == "libmp3lame" else "ogg", "-"], capture_output=True, check=True).stdout
    result = deid.anonymize_file(io.BytesIO(data), tmp_path / "out.wav", "fast", seed=1)
    assert result.input.subtype == subtype and (result.format, result.subtype) == ("WAV", "PCM_16")
    info = sf.info(tmp_path / "out.wav")
    assert info.samplerate == rate
    # MP3 in a pipe carries no gapless header: the decoder's padding (under one frame) stays.
    assert 0 <= info.frames - 2.5 * rate <= (1152 + 529 if codec == "libmp3lame" else 0)


@pytest.mark.parametrize("rate", [16000, 44100])  # MPEG-2 (576 samples a frame) and MPEG-1 (1152)
def test_an_mp3_file_piped_keeps_its_gapless_length(clips: dict[str, Path], tmp_path: Path, rate: int) -> None:
    """``cat call.mp3 | deid ...``: the LAME header's delay and padding hold, as for the file (FFmpeg
    alone drops the delay but plays the padding out)."""
    mp3 = tmp_path / "call.mp3"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(clips["wav"]), "-ar", str(rate), "-c:a", "libmp3lame",
                    str(mp3)], check=True)
    filed = deid.anonymize_file(mp3, tmp_path / "file.wav", "fast", seed=1)
    piped = deid.anonymize_file(io.BytesIO(mp3.read_bytes()), tmp_path / "pipe.wav", "fast", seed=1)
    played = len(subprocess.run(["ffmpeg", "-v", "error", "-f", "mp3", "-i", "-", "-f", "f32le", "-"],
                                input=mp3.read_bytes(), capture_output=True, check=True).stdout) // 4
    assert piped.input.frames == filed.input.frames == sf.info(mp3).frames == round(2.5 * rate) < played
    assert sf.info(tmp_path / "pipe.wav").frames == sf.info(tmp_path / "file.wav").frames
    a, b = (sf.read(tmp_path / f"{n}.wav", dtype="float32")[0] for n in ("file", "pipe"))
    assert np.max(np.abs(a - b)) < 1e-3  # two decoders (mpg123, FFmpeg), the same samples


def test_a_wav_stream_whose_header_says_zero_length(clips: dict[str, Path], tmp_path: Path) -> None:
    data = bytearray(clips["piped"].read_bytes())
    data[4:8] = bytes(4)
    at = data.find(b"data")
    data[at + 4:at + 8] = bytes(4)
    result = deid.anonymize_file(io.BytesIO(bytes(data)), tmp_path / "out.flac", "fast", seed=1)
    assert result.input.frames == sf.info(tmp_path / "out.flac").frames == sf.info(clips["piped"]).frames


@pytest.mark.parametrize(("data", "reason"), [(b"", "empty input (0 bytes)"),
                                              (b"not audio at all " * 100, "not a recognised audio stream"),
                                              ("m4a", "M4A cannot be read from a pipe")])
def test_streams_that_cannot_be_read_are_one_line_errors(clips: dict[str, Path], tmp_path: Path, data: bytes | str,
                                                         reason: str) -> None:
    stream = io.BytesIO(clips["m4a"].read_bytes() if data == "m4a" else data)
    with pytest.raises(AudioError) as caught:
        deid.anonymize_file(stream, tmp_path / "out.wav", "fast", seed=1)
    assert str(caught.value).startswith("<stdin>: ") and reason in str(caught.value)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("ext", ["wav", "aiff"])
def test_a_stream_cut_short_of_its_header_is_refused_as_a_file_is(clips: dict[str, Path], tmp_path: Path,
                                                                  ext: str) -> None:
    """``head -c N call.wav | deid anonymize - ...``: the header says how long the file is."""
    whole = tmp_path / f"whole.{ext}"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(clips["wav"]), str(whole)], check=True)
    data = whole.read_bytes()
    cut = data[: int(0.6 * len(data))]
    with pytest.raises(AudioError) as caught:
        deid.anonymize_file(io.BytesIO(cut), tmp_path / "out.flac", "fast", seed=1)
    assert str(caught.value) == (f"<stdin>: truncated: the header declares {len(data)} bytes, the stream held "
                                 f"{len(cut)}")
    (tmp_path / f"cut.{ext}").write_bytes(cut)
    with pytest.raises(AudioError, match="truncated"):
        deid.anonymize_file(tmp_path / f"cut.{ext}", tmp_path / "out.flac", "fast", seed=1)
    assert not (tmp_path / "out.flac").exists()
    result = deid.anonymize_file(io.BytesIO(data), tmp_path / "out.flac", "fast", seed=1)  # the whole file is fine
    assert result.input.frames == sf.info(whole).frames


def test_a_flac_stream_cut_short_of_its_streaminfo_is_refused_as_truncated(clips: dict[str, Path],
                                                                           tmp_path: Path) -> None:
    """STREAMINFO declares the samples: a FLAC stream cut anywhere, even inside a frame, is truncated."""
    flac = tmp_path / "whole.flac"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(clips["wav"]), str(flac)], check=True)
    data, total = flac.read_bytes(), sf.info(flac).frames
    for cut in (0.3, 0.6, 0.9):
        with pytest.raises(AudioError, match=f"^<stdin>: truncated: the header declares {total} frames, only "):
            deid.anonymize_file(io.BytesIO(data[: int(cut * len(data))]), tmp_path / "out.wav", "fast", seed=1)
    assert not (tmp_path / "out.wav").exists()
    assert deid.anonymize_file(io.BytesIO(data), tmp_path / "out.wav", "fast", seed=1).input.frames == total


def test_command_line_refusals(clips: dict[str, Path], tmp_path: Path) -> None:
    cases = [
        (["anonymize", clips["wav"], "-", "--seed", "1"], "writing to standard output needs --format"),
        (["strip", "-", tmp_path / "o.wav"], "strip rewrites a file's container and needs file names"),
        (["anonymize", clips["wav"].parent, "-", "--format", "flac", "--seed", "1"], "standard output (-) takes one"),
        (["strip", clips["wav"].parent, "-"], "a folder is written into a folder"),
        (["anonymize", clips["wav"], tmp_path / "o.wav", "--bitrate", "64"], "--bitrate applies to M4A (AAC) output"),
        (["anonymize", clips["wav"], tmp_path / "o.m4a", "--bitrate", "fast"], "--bitrate 'fast' is not a bitrate"),
        (["anonymize", clips["wav"], tmp_path / "o.m4a", "--bitrate", "2000"], "outside what AAC codes"),
    ]
    for args, reason in cases:
        done = subprocess.run([*DEID, *map(str, args)], capture_output=True, text=True, cwd=tmp_path)
        assert done.returncode == 1 and done.stdout == "", done
        assert done.stderr.count("\n") == 1 and reason in done.stderr, done.stderr
    assert not list(tmp_path.iterdir())  # no folder named "-" either


@pytest.mark.parametrize("end", ["stdin", "stdout"])
def test_a_terminal_at_either_end_is_refused(clips: dict[str, Path], tmp_path: Path, end: str) -> None:
    """Audio written to a terminal would garble it; audio read from one would wait forever."""
    import pty

    leader, follower = pty.openpty()
    args = ["-", str(tmp_path / "out.wav")] if end == "stdin" else [str(clips["wav"]), "-", "--format", "wav"]
    try:
        done = subprocess.run([*DEID, "anonymize", *args, "--seed", "1"], stderr=subprocess.PIPE, text=True,
                              timeout=60, **{end: follower})
    finally:
        os.close(follower)
        os.close(leader)
    assert done.returncode == 1 and f"standard {end[3:]}put is a terminal" in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1 and not (tmp_path / "out.wav").exists()


def test_a_reader_that_goes_away_gets_one_line(clips: dict[str, Path], tmp_path: Path) -> None:
    """``deid anonymize x.wav - --format wav | head -c 100``: one line, no traceback."""
    y, sr = sf.read(clips["wav"], dtype="float32")
    sf.write(tmp_path / "long.wav", np.tile(y, 8), sr)  # 20 s: more than a pipe's buffer holds
    deid_run = subprocess.Popen([*DEID, "anonymize", str(tmp_path / "long.wav"), "-", "--format", "wav", "--seed", "1"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_private_tmp(tmp_path))
    deid_run.stdout.read(100)
    deid_run.stdout.close()
    stderr = deid_run.stderr.read().decode()
    assert deid_run.wait() == 1
    assert stderr.strip() == "deid: error: <stdout>: standard output was closed before the whole output was written"
    assert not list((tmp_path / "tmp").iterdir())
    assert not list(tmp_path.glob("*.deid-tmp")) and not list(tmp_path.glob(".*"))


def test_m4a_to_standard_output(clips: dict[str, Path], tmp_path: Path) -> None:
    out = io.BytesIO()
    result = deid.anonymize_file(clips["wav"], out, "fast", seed=1, format="m4a", bitrate=48_000)
    assert out.getvalue()[4:12] == b"ftypM4A " and result.bitrate == 48_000
    (tmp_path / "out.m4a").write_bytes(out.getvalue())
    deid.metadata.verify_clean(tmp_path / "out.m4a")


def test_stream_output_needs_a_format(clips: dict[str, Path]) -> None:
    with pytest.raises(DeidError, match="needs --format"):
        deid.anonymize_file(clips["wav"], io.BytesIO(), "fast", seed=1)


def _piped_peak_mb(source: Path, seconds: int, out: Path, env: dict[str, str]) -> float:
    """Peak RSS of ``ffmpeg -f wav - | deid anonymize - OUT`` on `seconds` of `source` looped."""
    ffmpeg = subprocess.Popen(["ffmpeg", "-v", "error", "-stream_loop", "-1", "-i", str(source), "-t", str(seconds),
                               "-ar", str(SR), "-f", "wav", "-"], stdout=subprocess.PIPE)
    run = subprocess.Popen([*DEID, "anonymize", "-", str(out), "--preset", "fast", "--seed", "1"],
                           stdin=ffmpeg.stdout, stderr=subprocess.PIPE, env=env)
    ffmpeg.stdout.close()
    _, status, usage = os.wait4(run.pid, 0)
    assert ffmpeg.wait() == 0 and os.waitstatus_to_exitcode(status) == 0, run.stderr.read()
    run.stderr.close()
    assert sf.info(out).frames == seconds * SR
    return usage.ru_maxrss / 1024


@pytest.mark.slow
def test_a_long_stream_runs_in_bounded_memory(voices: list[Path], tmp_path: Path) -> None:
    """20 minutes of 16 kHz speech through a pipe (77 MB decoded as float32) peak within half of
    that above what a 5-second stream peaks at: held whole, the decoded stream alone would cost
    all of it. The spill of the decoded stream is unlinked and the temp folder is left empty.
    (12 s on the shared machine at a load average of 11; ``benchmarks/pipes.py`` measures an hour.)"""
    env = _private_tmp(tmp_path)
    seconds = 20 * 60
    decoded_mb = seconds * SR * 4 / 2**20
    short = _piped_peak_mb(voices[0], 5, tmp_path / "short.flac", env)
    long = _piped_peak_mb(voices[0], seconds, tmp_path / "long.flac", env)
    assert long - short < decoded_mb / 2, f"peak RSS {long:.0f} MB against {short:.0f} MB for 5 s"
    assert not list(Path(env["TMPDIR"]).iterdir())


def test_files_joined_in_a_pipe_are_refused_as_in_a_file(clips: dict[str, Path], tmp_path: Path) -> None:
    """``cat a.wav b.wav | deid anonymize - ...``: FFmpeg would play the first alone."""
    one = clips["wav"].read_bytes()
    with pytest.raises(AudioError, match="holds a second audio stream \\(WAV, from byte"):
        deid.anonymize_file(io.BytesIO(one + one), tmp_path / "out.wav", "fast", seed=1)
    tagged = one + b"TAG" + b"an ID3v1 tag after the audio".ljust(125, b"\0")
    result = deid.anonymize_file(io.BytesIO(tagged), tmp_path / "out.wav", "fast", seed=1)
    assert result.input.frames == sf.info(clips["wav"]).frames


def test_a_stream_shorter_than_a_frame_of_padding(tmp_path: Path, speech: np.ndarray) -> None:
    """A stream declares no length: nothing is cut from a short one."""
    data = io.BytesIO()
    sf.write(data, speech[8000:9500], SR, format="WAV", subtype="PCM_16")
    result = deid.anonymize_file(io.BytesIO(data.getvalue()), tmp_path / "out.wav", "fast", seed=1)
    assert result.input.frames == sf.info(tmp_path / "out.wav").frames == 1500
