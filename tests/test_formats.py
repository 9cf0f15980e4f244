"""The output's name decides its format (issue 11): every pair of input and output extension,
checked on the bytes (magic), by ffprobe and soundfile, for rate, channels, length and metadata
(markers, encoder strings, deid's walker and ``exiftool -a -G1 -u``).

Inputs are made by ffmpeg from real speech, tagged with markers; each is anonymized into every
output extension with the ``fast`` preset (0.8 s clips, module-scoped inputs): the 64 pairs took
53 s on the shared 2-core machine at a load average of 12, about 0.8 s a pair with its ffprobe
and exiftool runs.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import load
from fixtures_metadata import MARK, exiftool_personal, marker_count

import deid
import deid.metadata as metadata
from deid.audio import read_audio, read_info
from deid.audio.formats import AudioInfo, output_format
from deid.errors import DeidError

TOOLS = shutil.which("ffmpeg") and shutil.which("ffprobe") and shutil.which("exiftool")
pytestmark = pytest.mark.skipif(not TOOLS, reason="needs ffmpeg, ffprobe and exiftool to make, probe and read files")

SR, CHANNELS, SECONDS = 48000, 2, 0.8
#: ffmpeg's encoder for each input extension.
MAKE = {".wav": ["-c:a", "pcm_s16le"], ".flac": ["-c:a", "flac"], ".aif": ["-c:a", "pcm_s16be"],
        ".aiff": ["-c:a", "pcm_s24be"], ".ogg": ["-c:a", "libvorbis"], ".opus": ["-c:a", "libopus"],
        ".mp3": ["-c:a", "libmp3lame"], ".m4a": ["-c:a", "aac"]}
EXTENSIONS = list(MAKE)
#: What an output of each extension must be: (magic test, ffprobe format, ffprobe codecs).
EXPECTED = {
    "wav": (lambda d: d[:4] == b"RIFF" and d[8:12] == b"WAVE", "wav", ("pcm_s16le", "pcm_s24le")),
    "flac": (lambda d: d[:4] == b"fLaC", "flac", ("flac",)),
    "aiff": (lambda d: d[:4] == b"FORM" and d[8:12] in (b"AIFF", b"AIFC"), "aiff", ("pcm_s16be", "pcm_s24be")),
    "vorbis": (lambda d: d[:4] == b"OggS" and d[28:35] == b"\x01vorbis", "ogg", ("vorbis",)),
    "opus": (lambda d: d[:4] == b"OggS" and d[28:36] == b"OpusHead", "ogg", ("opus",)),
    "mp3": (lambda d: d[0] == 0xFF and d[1] & 0xE0 == 0xE0, "mp3", ("mp3",)),
    "m4a": (lambda d: d[4:12] == b"ftypM4A ", "mov,mp4,m4a,3gp,3g2,mj2", ("aac",)),
}
#: The container an output extension gives; ``.ogg`` keeps an Opus input Opus.
BY_EXTENSION = {".wav": "wav", ".flac": "flac", ".aif": "aiff", ".aiff": "aiff", ".ogg": "vorbis", ".opus": "opus",
                ".mp3": "mp3", ".m4a": "m4a"}


def ffprobe(path: Path) -> dict:
    entries = "format=format_name:stream=codec_name,sample_rate,channels,duration_ts,time_base"
    done = subprocess.run(["ffprobe", "-v", "error", "-show_entries", entries, "-of", "json", str(path)],
                          capture_output=True, text=True, check=True)
    found = json.loads(done.stdout)
    return {"format": found["format"]["format_name"], **found["streams"][0]}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory, voices: list[Path]) -> dict[str, Path]:
    """One tagged file per input extension, made by ffmpeg from the same stereo speech."""
    folder = tmp_path_factory.mktemp("formats")
    y = load(voices[1], SR)[: int(SECONDS * SR)]
    wav = folder / "speech.wav"
    sf.write(wav, np.stack([y, 0.6 * np.roll(y, 480)]).T, SR, subtype="PCM_16")
    made = {}
    for ext, codec in MAKE.items():
        made[ext] = folder / f"in{ext}"
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(wav), *codec, "-metadata", f"title={MARK}-title",
                        "-metadata", f"artist={MARK}-artist", "-metadata", "date=2024-05-01", str(made[ext])],
                       check=True)
    return made


@pytest.mark.parametrize("out_ext", EXTENSIONS)
@pytest.mark.parametrize("in_ext", EXTENSIONS)
def test_every_input_into_every_output_extension(inputs: dict[str, Path], tmp_path: Path, in_ext: str,
                                                 out_ext: str) -> None:
    src = inputs[in_ext]
    before = src.read_bytes()
    dst = tmp_path / f"out{out_ext}"
    result = deid.anonymize_file(src, dst, "fast", seed=1)
    kind = "opus" if out_ext == ".ogg" and in_ext == ".opus" else BY_EXTENSION[out_ext]
    magic, probe_format, codecs = EXPECTED[kind]
    data = dst.read_bytes()
    assert magic(data), f"{dst.name} is not {kind}: {data[:40]!r}"
    probe = ffprobe(dst)
    assert probe["format"] == probe_format and probe["codec_name"] in codecs, probe
    assert (int(probe["sample_rate"]), probe["channels"]) == (SR, CHANNELS)
    wanted = read_info(src).frames if in_ext != ".mp3" else read_audio(src).samples.shape[1]
    assert result.input.frames == wanted
    # Kept to the sample by every container: MP3 through its gapless header, Ogg through its
    # granule positions, M4A through its edit list; deid's reader, soundfile's header and
    # ffprobe's stream duration (where its time base is the sample rate: not MP3's) agree.
    assert read_audio(dst).samples.shape[1] == wanted
    if kind != "m4a":
        info = sf.info(dst)
        assert (info.format, info.subtype) == (result.format, result.subtype)
        assert (info.samplerate, info.channels, info.frames) == (SR, CHANNELS, wanted)
    if probe["time_base"] == f"1/{SR}":
        # ffprobe counts an Opus stream's pre-skip (OpusHead bytes 10-11) in its duration.
        pre_skip = int.from_bytes(data[38:40], "little") if kind == "opus" else 0
        assert int(probe["duration_ts"]) == wanted + pre_skip, probe
    assert marker_count(data) == 0 and MARK.encode() not in data
    for trace in (b"Lavf", b"Lavc", b"LAME3", b"libsndfile", b"Xiph.Org", b"libopus", b"libFLAC"):
        assert trace not in data, trace
    metadata.verify_clean(dst)
    assert exiftool_personal(dst) == []
    assert src.read_bytes() == before


def _info(fmt: str, subtype: str) -> AudioInfo:
    return AudioInfo(fmt, subtype, 48000, 1, 48000)


@pytest.mark.parametrize(("info", "name", "suffix", "wanted"), [
    (_info("WAV", "PCM_24"), None, ".flac", ("FLAC", "PCM_24")),       # kept where the container holds it
    (_info("WAV", "FLOAT"), None, ".flac", ("FLAC", "PCM_16")),        # FLAC's usual one
    (_info("WAV", "PCM_32"), None, ".flac", ("FLAC", "PCM_16")),
    (_info("WAV", "FLOAT"), None, ".aiff", ("AIFF", "FLOAT")),
    (_info("WAVEX", "FLOAT"), None, ".wave", ("WAVEX", "FLOAT")),
    (_info("FLAC", "PCM_24"), None, ".wav", ("WAV", "PCM_24")),
    (_info("MP3", "MPEG_LAYER_III"), None, ".wav", ("WAV", "PCM_16")),
    (_info("OGG", "OPUS"), None, ".ogg", ("OGG", "OPUS")),             # .ogg names no codec: Opus stays
    (_info("OGG", "OPUS"), "ogg", ".ogg", ("OGG", "VORBIS")),          # --format ogg is Vorbis
    (_info("OGG", "VORBIS"), None, ".opus", ("OGG", "OPUS")),
    (_info("OGG", "VORBIS"), "opus", ".oga", ("OGG", "OPUS")),
    (_info("MP4", "AAC"), None, "", ("MP4", "AAC")),                  # M4A stays M4A
    (_info("MP4", "AAC"), None, ".mp4", ("MP4", "AAC")),
    (_info("MP4", "ALAC"), None, ".m4a", ("MP4", "AAC")),             # deid writes AAC only
    (_info("WAV", "PCM_16"), "m4a", ".m4a", ("MP4", "AAC")),
    (_info("WAV", "PCM_16"), "MP3", None, ("MP3", "MPEG_LAYER_III")),
    (_info("AIFF", "PCM_S8"), None, ".aif", ("AIFF", "PCM_S8")),
    (_info("AIFF", "PCM_S8"), None, ".wav", ("WAV", "PCM_16")),     # 8-bit WAV is unsigned
    (_info("WAV", "PCM_U8"), None, ".aiff", ("AIFF", "PCM_16")),      # 8-bit AIFF is signed
    (_info("WAV", "ULAW"), None, ".aif", ("AIFF", "ULAW")),           # telephony companding kept
    (_info("WAV", "ALAW"), None, "", ("WAV", "ALAW")),
    (_info("WAV", "IMA_ADPCM"), None, ".wav", ("WAV", "PCM_16")),     # ADPCM is not re-encoded
    (_info("WAV", "MPEG_LAYER_III"), None, ".wav", ("WAV", "PCM_16")),
    (_info("FLAC", "PCM_16"), None, ".WAV", ("WAV", "PCM_16")),
])
def test_output_format_follows_name_and_extension(info: AudioInfo, name: str | None, suffix: str | None,
                                                  wanted: tuple[str, str]) -> None:
    assert output_format(info, name, suffix=suffix) == wanted


@pytest.mark.parametrize(("name", "suffix", "reason"), [
    ("mp3", ".ogg", "--format mp3 (MP3) contradicts the output name's extension .ogg (Ogg Vorbis)"),
    ("ogg", ".opus", "--format ogg (Ogg Vorbis) contradicts the output name's extension .opus"),
    ("flac", ".m4a", "name the output .flac"),
    (None, ".xyz", "unknown output extension '.xyz': deid writes .wav, .flac, .aiff/.aif, .ogg, .opus, .mp3, .m4a"),
    ("flac", ".wav.part", "unknown output extension '.part'"),
    (None, ".aac", ".aac names a raw ADTS stream"),
    ("aac", ".m4a", "unknown output format 'aac'; use one of wav, flac, aiff, ogg, opus, mp3, m4a"),
])
def test_contradictions_and_unknown_names_are_errors(name: str | None, suffix: str, reason: str) -> None:
    with pytest.raises(DeidError) as caught:
        output_format(_info("WAV", "PCM_16"), name, suffix=Path(f"out{suffix}").suffix)
    assert reason in str(caught.value)


def test_an_input_format_deid_does_not_write_needs_a_name() -> None:
    caf = AudioInfo("CAF", "PCM_16", 16000, 1, 16000)
    with pytest.raises(DeidError, match="deid does not write CAF files; give --format"):
        output_format(caf, None, suffix="")
    assert output_format(caf, None, suffix=".flac") == ("FLAC", "PCM_16")


def test_a_refused_name_writes_nothing(inputs: dict[str, Path], tmp_path: Path) -> None:
    for dst, fmt in ((tmp_path / "out.ogg", "mp3"), (tmp_path / "out.xyz", None), (tmp_path / "out.aac", None)):
        with pytest.raises(DeidError):
            deid.anonymize_file(inputs[".wav"], dst, "fast", seed=1, format=fmt)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("spelling", [".mp4", ".m4a"])
def test_strip_of_m4a_stays_lossless_under_either_spelling(inputs: dict[str, Path], tmp_path: Path,
                                                           spelling: str) -> None:
    out = tmp_path / f"out{spelling}"
    metadata.strip_file(inputs[".m4a"], out)
    assert out.read_bytes()[4:8] == b"ftyp" and MARK.encode() not in out.read_bytes()
    assert np.array_equal(metadata.read_m4a(out)[0], metadata.read_m4a(inputs[".m4a"])[0])


@pytest.mark.parametrize(("in_ext", "out_name", "reason"), [
    (".m4a", "out.aac", ".aac names a raw ADTS stream"),
    (".wav", "out.flac", "strip is lossless and keeps the container: the input is WAV, so name the output "
                         ".wav or .wave, not .flac (FLAC); deid anonymize converts"),
    (".ogg", "out.opus", "the input is Ogg Vorbis"),
    (".m4a", "out.mp3", "the input is M4A (AAC in MP4)"),
    (".flac", "out.xyz", "unknown output extension"),
])
def test_strip_refuses_a_name_of_another_container(inputs: dict[str, Path], tmp_path: Path, in_ext: str,
                                                   out_name: str, reason: str) -> None:
    with pytest.raises(DeidError) as caught:
        metadata.strip_file(inputs[in_ext], tmp_path / out_name)
    assert reason in str(caught.value) and out_name in str(caught.value)
    assert not list(tmp_path.iterdir())


def test_strip_keeps_opus_in_ogg_and_an_unnamed_output(inputs: dict[str, Path], tmp_path: Path) -> None:
    metadata.strip_file(inputs[".opus"], tmp_path / "out.ogg")
    metadata.strip_file(inputs[".wav"], tmp_path / "noname")
    assert (tmp_path / "noname").read_bytes()[:4] == b"RIFF"


def _cli(*args: object) -> subprocess.CompletedProcess:
    import sys

    return subprocess.run([sys.executable, "-m", "deid", *map(str, args)], capture_output=True, text=True)


def test_command_line_says_what_it_wrote_and_refuses_a_lying_name(inputs: dict[str, Path], tmp_path: Path) -> None:
    done = _cli("anonymize", inputs[".wav"], tmp_path / "call.mp3", "--preset", "fast", "--seed", "1")
    assert done.returncode == 0 and "(0.80 s, MP3/MPEG_LAYER_III from WAV/PCM_16)" in done.stdout, done
    assert sf.info(tmp_path / "call.mp3").format == "MP3"
    done = _cli("anonymize", inputs[".m4a"], tmp_path / "memo.m4a", "--preset", "fast", "--seed", "1", "-b", "64k")
    assert done.returncode == 0 and done.stdout.endswith("(0.80 s, MP4/AAC 64 kbit/s)\n"), done
    for args, reason in (((tmp_path / "out.ogg", "--format", "mp3"), "--format mp3 (MP3) contradicts"),
                         ((tmp_path / "out.xyz",), "unknown output extension '.xyz'")):
        done = _cli("anonymize", inputs[".wav"], *args, "--seed", "1")
        assert done.returncode == 1 and done.stderr.count("\n") == 1 and reason in done.stderr, done
        assert done.stderr.startswith(f"deid: error: {args[0]}: "), done.stderr  # the name to change
    assert not (tmp_path / "out.ogg").exists() and not (tmp_path / "out.xyz").exists()


def test_folder_outputs_are_named_by_what_they_are(inputs: dict[str, Path], tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for name, ext in (("memo.mp4", ".m4a"), ("call.wave", ".wav"), ("voice.opus", ".opus"), ("tape.aif", ".aif")):
        shutil.copyfile(inputs[ext], folder / name)
    done = _cli("anonymize", folder, tmp_path / "out", "--preset", "fast", "--seed", "1", "--bitrate", "48")
    assert done.returncode == 0, done
    names = sorted(p.name for p in (tmp_path / "out").iterdir() if not p.name.startswith("."))
    assert names == ["call.wav", "memo.m4a", "tape.aiff", "voice.opus"]
    assert metadata.read_m4a(tmp_path / "out" / "memo.m4a")[0].shape[0] == CHANNELS
    # 48 kbit/s in all is 4.8 kB of AAC for 0.8 s (the default, 192 kbit/s for stereo, would be four times that).
    assert (tmp_path / "out" / "memo.m4a").stat().st_size < 1.5 * SECONDS * 48_000 / 8 + 1500
    done = _cli("anonymize", folder, tmp_path / "flac", "--seed", "1", "--format", "flac", "--bitrate", "48")
    assert done.returncode == 1 and "--bitrate applies to M4A (AAC) output" in done.stderr
    done = _cli("strip", folder, tmp_path / "stripped")
    assert done.returncode == 0, done
    assert sorted(p.name for p in (tmp_path / "stripped").iterdir() if not p.name.startswith(".")) == sorted(
        p.name for p in folder.iterdir())


def test_a_rerun_at_another_bitrate_redoes_the_m4a_outputs_only(inputs: dict[str, Path], tmp_path: Path) -> None:
    """The bitrate is part of an M4A output's record: the same one is up to date, another is redone."""
    from deid.batch import run_batch
    from deid.batch.work import CURRENT, OK
    from deid.keys import resolve_key

    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copyfile(inputs[".m4a"], folder / "memo.m4a")
    shutil.copyfile(inputs[".wav"], folder / "call.wav")
    out, key = tmp_path / "out", resolve_key(None, seed=1)

    def run(kbit: int) -> dict[str, tuple[str, int]]:
        summary = run_batch(folder, out, mode="anonymize", pipeline=deid.load_preset("fast"), key=key,
                            bitrate=kbit * 1000, workers=1)
        return {Path(o.output).name: (o.status, (out / o.output).stat().st_size) for o in summary.outcomes}

    first = run(48)
    assert {name: status for name, (status, _) in first.items()} == {"memo.m4a": OK, "call.wav": OK}
    assert {name: status for name, (status, _) in run(48).items()} == {"memo.m4a": CURRENT, "call.wav": CURRENT}
    again = run(128)
    assert again["memo.m4a"][0] == OK and again["call.wav"] == (CURRENT, first["call.wav"][1])
    assert again["memo.m4a"][1] > 2 * first["memo.m4a"][1]  # 128 kbit/s really replaced 48


def test_m4a_is_the_same_bytes_in_another_process_and_another_key_differs(inputs: dict[str, Path],
                                                                          tmp_path: Path) -> None:
    for name, seed in (("a", "1"), ("b", "1"), ("c", "2")):
        done = _cli("anonymize", inputs[".m4a"], tmp_path / f"{name}.m4a", "--seed", seed)
        assert done.returncode == 0, done
    a, b, c = ((tmp_path / f"{n}.m4a").read_bytes() for n in "abc")
    assert a == b and a != c


@pytest.mark.parametrize(("rate", "channels"), [(8000, 1), (22050, 1), (44100, 2), (16000, 8)])
def test_m4a_keeps_rate_channels_and_length_to_the_sample(tmp_path: Path, speech: np.ndarray, rate: int,
                                                          channels: int) -> None:
    """The edit list ends on the last sample: deid reads back exactly what it wrote, and ffprobe
    agrees; FFmpeg's decoder adds the last frame's padding only (under 1024 samples)."""
    import soxr

    y = soxr.resample(speech[:40000], 16000, rate).astype(np.float32)
    n = len(y) - 7  # not a multiple of an AAC frame
    src = tmp_path / "in.wav"
    sf.write(src, np.stack([np.roll(y, 37 * c) for c in range(channels)])[:, :n].T, rate, subtype="PCM_24")
    dst = tmp_path / "out.m4a"
    result = deid.anonymize_file(src, dst, "fast", seed=1)
    assert (result.format, result.subtype, result.bitrate) == ("MP4", "AAC", 96_000 * channels)
    back = read_audio(dst)
    assert back.samples.shape == (channels, n) and back.sr == rate
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=duration_ts,sample_rate,channels", "-of",
                            "csv=p=0", str(dst)], capture_output=True, text=True, check=True).stdout.split(",")
    assert [int(v) for v in probe] == [rate, channels, n]
    decoded = len(subprocess.run(["ffmpeg", "-v", "error", "-i", str(dst), "-f", "f32le", "-"], capture_output=True,
                                 check=True).stdout) // (4 * channels)
    assert 0 <= decoded - n < 1024
    # The audio is there: the anonymized signal and what came back match in level within 1 dB.
    written = deid.anonymize_file(src, tmp_path / "out.wav", "fast", seed=1)
    assert written.format == "WAV"
    ref = read_audio(tmp_path / "out.wav").samples
    assert abs(10 * np.log10(np.mean(back.samples ** 2) / np.mean(ref ** 2))) < 1.0


def test_aac_refuses_rates_it_cannot_code(tmp_path: Path, speech: np.ndarray) -> None:
    src = tmp_path / "in.wav"
    sf.write(src, speech[:16000], 22000)
    with pytest.raises(deid.AudioError, match="AAC cannot store 22000 Hz audio .* write FLAC or WAV, or resample"):
        deid.anonymize_file(src, tmp_path / "out.m4a", "fast", seed=1)
    assert not (tmp_path / "out.m4a").exists()


def test_alac_input_is_read_and_written_as_aac(inputs: dict[str, Path], tmp_path: Path) -> None:
    alac = tmp_path / "lossless.m4a"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(inputs[".wav"]), "-c:a", "alac", str(alac)], check=True)
    result = deid.anonymize_file(alac, tmp_path / "out.m4a", "fast", seed=1)
    assert (result.input.subtype, result.subtype) == ("ALAC", "AAC")
    assert result.input.frames == sf.info(inputs[".wav"]).frames == read_audio(tmp_path / "out.m4a").samples.shape[1]
