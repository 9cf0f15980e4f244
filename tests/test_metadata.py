"""Metadata: not one identifying byte survives, and deid proves it (issue 3).

Each fixture is filled with markers in every container structure deid knows. Outputs are
checked three ways: the marker bytes are absent, exiftool lists no personal tag, and
deid's own walker agrees.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import deid.metadata as metadata
from deid.errors import AudioError, DeidError, MetadataError
from fixtures_metadata import BUILDERS, MARK, SR, Fixture, marker_count, tone

FORMATS = list(BUILDERS)
EXIFTOOL = shutil.which("exiftool")
FFMPEG = shutil.which("ffmpeg")

# Tags exiftool may show on a clean file: format parameters only, never text or dates.
EXIFTOOL_TECHNICAL = {
    "RIFF": {"Encoding", "NumChannels", "SampleRate", "AvgBytesPerSec", "BitsPerSample", "NumberOfSamples"},
    "AIFF": {"CompressionType", "CompressorName", "FormatVersionTime", "NumChannels", "NumSampleFrames",
             "SampleRate", "SampleSize"},
    "FLAC": {"BitsPerSample", "BlockSizeMax", "BlockSizeMin", "Channels", "FrameSizeMax", "FrameSizeMin",
             "MD5Signature", "SampleRate", "TotalSamples"},
    "MPEG": {"AudioBitrate", "AudioLayer", "ChannelMode", "CopyrightFlag", "Emphasis", "Encoder",
             "IntensityStereo", "MPEGAudioVersion", "MSStereo", "OriginalMedia", "SampleRate", "VBRBytes",
             "VBRFrames", "VBRScale"},
    "Opus": {"AudioChannels", "OpusVersion", "OutputGain", "SampleRate"},
    "Vorbis": {"AudioChannels", "NominalBitrate", "SampleRate", "Vendor", "VorbisVersion", "MaximumBitrate",
               "MinimumBitrate"},
    "QuickTime": {"CompatibleBrands", "CreateDate", "CurrentTime", "Duration", "MajorBrand", "MatrixStructure",
                  "MediaData", "MediaDataOffset", "MediaDataSize", "MinorVersion", "ModifyDate", "MovieHeaderVersion",
                  "NextTrackID", "PosterTime", "PreferredRate", "PreferredVolume", "PreviewDuration", "PreviewTime",
                  "SelectionDuration", "SelectionTime", "TimeScale"},
    "Track1": {"AudioBitsPerSample", "AudioChannels", "AudioFormat", "AudioSampleRate", "Balance", "ChunkOffset",
               "HandlerType", "MatrixStructure", "MediaCreateDate", "MediaDuration", "MediaHeaderVersion",
               "MediaLanguageCode", "MediaModifyDate", "MediaTimeScale", "SampleGroupDescription", "SampleSizes",
               "SampleToChunk", "SampleToGroup", "TimeToSampleTable", "TrackCreateDate", "TrackDuration",
               "TrackHeaderVersion", "TrackID", "TrackLayer", "TrackModifyDate", "TrackVolume", "Unknown_edts",
               "Unknown_esds"},
}
_IGNORED_GROUPS = {"System", "ExifTool", "File", "Composite"}
_ZERO_DATE = "0000:00:00 00:00:00"


def exiftool_personal(path: Path) -> list[str]:
    """Tags `exiftool -a -G1 -u` reports beyond format parameters (empty for a clean file)."""
    run = subprocess.run(["exiftool", "-j", "-a", "-G1", "-u", str(path)], capture_output=True, text=True, check=True)
    found = []
    for key, value in json.loads(run.stdout)[0].items():
        group, _, name = key.partition(":")
        if key == "SourceFile" or group in _IGNORED_GROUPS:
            continue
        text = str(value)
        if name not in EXIFTOOL_TECHNICAL.get(group, set()):
            found.append(f"{key}={text[:60]}")
        elif name.endswith("Date") and text != _ZERO_DATE:
            found.append(f"{key}={text}")
        elif name == "Vendor" and text:
            found.append(f"{key}={text}")
        elif name == "Encoder" and text[:9].strip() != "LAME":
            found.append(f"{key}={text}")
    return found


def assert_clean(path: Path, *, written: bool = True) -> None:
    """The three-way check: no marker bytes, nothing personal for exiftool, nor for deid's walker.

    For files deid encodes (`written`), no encoder string may remain anywhere. `strip` keeps
    the coded audio bit for bit, and encoders leave their version inside it (LAME in the bit
    reservoir, FFmpeg's AAC encoder in a data stream element), so there only the container
    level is checked for them, by the walker and exiftool.
    """
    data = path.read_bytes()
    assert marker_count(data) == 0, f"{path.name}: marker or picture bytes survive"
    traces = (b"libsndfile", b"libFLAC", b"Xiph.Org", b"libopus", b"LAME3", b"Lavf", b"Lavc")
    for trace in traces if written else traces[:4]:
        assert trace not in data, f"{path.name}: encoder string {trace!r} survives"
    metadata.verify_clean(path)
    assert not [f for f in metadata.inspect_file(path) if f.personal]
    if EXIFTOOL:
        assert exiftool_personal(path) == []


def decode(path: Path) -> np.ndarray:
    if path.suffix == ".m4a":
        return metadata.read_m4a(path)[0]
    return sf.read(path, dtype="float32", always_2d=True)[0]


def packet_hashes(path: Path) -> list[str]:
    """Per-packet MD5s of the compressed stream, as FFmpeg's demuxer sees it (independent of deid).

    Only the packet's own hash (sixth column) counts: FFmpeg appends side data after it,
    such as the Vorbis comments it read, which strip is meant to change.
    """
    run = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:a:0", "-c", "copy", "-f", "framemd5",
                          "-"], capture_output=True, text=True, check=True)
    return [line.split(",")[5].strip() for line in run.stdout.splitlines() if line and not line.startswith("#")]


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Fixture]:
    folder = tmp_path_factory.mktemp("metadata")
    return {name: build(folder) for name, build in BUILDERS.items()}


@pytest.mark.parametrize("name", FORMATS)
def test_fixture_is_full_of_markers(fixtures: dict[str, Fixture], name: str) -> None:
    fx = fixtures[name]
    assert marker_count(fx.path.read_bytes()) >= 2
    with pytest.raises(MetadataError):
        metadata.verify_clean(fx.path)
    if EXIFTOOL:
        assert exiftool_personal(fx.path)


@pytest.mark.parametrize("name", FORMATS)
def test_inspect_lists_every_planted_field(fixtures: dict[str, Fixture], name: str) -> None:
    fx = fixtures[name]
    fields = metadata.inspect_file(fx.path)
    shown = "\n".join(f"{f.field} {f.value}" for f in fields if f.personal)
    missing = [marker for marker in fx.planted if marker not in shown]
    assert not missing, f"inspect misses {missing}"
    assert any("GPS position" in f.field and f.value.startswith("48.858") for f in fields)
    assert any(f.personal is False for f in fields)


@pytest.mark.parametrize("name", FORMATS)
def test_strip_removes_all_metadata_and_keeps_audio(fixtures: dict[str, Fixture], name: str, tmp_path: Path) -> None:
    fx = fixtures[name]
    before = hashlib.sha256(fx.path.read_bytes()).hexdigest()
    out = tmp_path / fx.path.name
    report = metadata.strip_file(fx.path, out)
    assert hashlib.sha256(fx.path.read_bytes()).hexdigest() == before, "strip modified its input"
    assert report.dropped and report.audio_bytes > 0
    assert_clean(out, written=False)
    ref, got = decode(fx.reference), decode(out)
    assert ref.shape == got.shape and np.array_equal(ref, got)
    if FFMPEG:
        assert packet_hashes(out) == packet_hashes(fx.reference)


@pytest.mark.parametrize("name", FORMATS)
def test_strip_is_deterministic(fixtures: dict[str, Fixture], name: str, tmp_path: Path) -> None:
    a, b = tmp_path / ("a" + fixtures[name].path.suffix), tmp_path / ("b" + fixtures[name].path.suffix)
    metadata.strip_file(fixtures[name].path, a)
    metadata.strip_file(fixtures[name].path, b)
    assert a.read_bytes() == b.read_bytes()


def test_strip_refuses_to_overwrite_its_input(fixtures: dict[str, Fixture]) -> None:
    with pytest.raises(DeidError, match="input"):
        metadata.strip_file(fixtures["flac"].path, fixtures["flac"].path)


@pytest.mark.parametrize("content", [b"", b"not audio at all, just text", b"RIFF\x10\0\0\0WAVEfmt "])
def test_unsupported_input_is_a_one_line_audio_error(tmp_path: Path, content: bytes) -> None:
    src = tmp_path / "in.wav"
    src.write_bytes(content)
    with pytest.raises(AudioError) as caught:
        metadata.strip_file(src, tmp_path / "out.wav")
    assert "\n" not in str(caught.value) and str(src) in str(caught.value)
    assert not (tmp_path / "out.wav").exists()


@pytest.mark.parametrize("name", FORMATS)
def test_truncated_input_never_crashes_the_walker(fixtures: dict[str, Fixture], name: str, tmp_path: Path) -> None:
    data = fixtures[name].path.read_bytes()
    for cut in (7, 40, 200, len(data) // 3, len(data) - 5):
        damaged = tmp_path / f"cut{cut}{fixtures[name].path.suffix}"
        damaged.write_bytes(data[:cut])
        try:
            metadata.inspect_file(damaged)
        except AudioError:
            pass


def test_verify_clean_names_the_field(fixtures: dict[str, Fixture]) -> None:
    with pytest.raises(MetadataError, match="metadata remains after cleaning: RIFF id3/ID3v2.4 TIT2"):
        metadata.verify_clean(fixtures["wav-pcm_16"].path)


WRITTEN = [("WAV", "PCM_16", ".wav"), ("WAV", "PCM_24", ".wav"), ("WAV", "FLOAT", ".wav"), ("WAVEX", "FLOAT", ".wav"),
           ("AIFF", "PCM_16", ".aiff"), ("AIFF", "FLOAT", ".aiff"), ("FLAC", "PCM_16", ".flac"),
           ("FLAC", "PCM_24", ".flac"), ("OGG", "VORBIS", ".ogg"), ("OGG", "OPUS", ".opus"),
           ("MP3", "MPEG_LAYER_III", ".mp3")]


@pytest.mark.parametrize(("fmt", "subtype", "suffix"), WRITTEN)
@pytest.mark.parametrize("sr", [16000, 48000])
def test_finalize_written_cleans_libsndfile_output(tmp_path: Path, fmt: str, subtype: str, suffix: str,
                                                   sr: int) -> None:
    y = tone(sr=sr, channels=2)
    outputs = []
    for run in range(2):
        path = tmp_path / f"run{run}{suffix}"
        sf.write(path, y, sr, format=fmt, subtype=subtype)
        raw = sf.read(path, dtype="float32")[0]
        metadata.finalize_written(path, fmt)
        assert_clean(path)
        assert np.array_equal(sf.read(path, dtype="float32")[0], raw)
        outputs.append(path.read_bytes())
    assert outputs[0] == outputs[1], "same samples must give the same bytes"


def test_finalize_written_refuses_formats_it_cannot_verify(tmp_path: Path) -> None:
    path = tmp_path / "x.caf"
    sf.write(path, tone(), SR, format="CAF")
    with pytest.raises(MetadataError, match="cannot verify"):
        metadata.finalize_written(path, "CAF")


def test_read_m4a_decodes_like_ffmpeg(fixtures: dict[str, Fixture]) -> None:
    y, sr = metadata.read_m4a(fixtures["m4a"].path)
    assert sr == 44100 and y.dtype == np.float32 and y.shape[0] == 2
    assert abs(y.shape[1] - int(1.5 * sr)) < 0.01 * sr
    peak = float(np.abs(y).max())
    assert 0.05 < peak <= 1.0


def _anonymize():
    import deid

    if not hasattr(deid, "anonymize_file"):
        pytest.skip("deid.anonymize_file is not available yet")
    from deid.presets import list_presets

    return deid.anonymize_file, list_presets()


@pytest.mark.parametrize("name", FORMATS)
def test_anonymize_output_is_clean_for_every_preset(fixtures: dict[str, Fixture], name: str, tmp_path: Path) -> None:
    anonymize_file, presets = _anonymize()
    src = fixtures[name].path
    suffix = ".flac" if src.suffix == ".m4a" else src.suffix
    for preset in presets:
        out = tmp_path / f"{preset}{suffix}"
        anonymize_file(src, out, preset=preset, seed=1)
        assert_clean(out)
        again = tmp_path / f"{preset}.again{suffix}"
        anonymize_file(src, again, preset=preset, seed=1)
        if suffix != ".ogg":
            assert out.read_bytes() == again.read_bytes()
