"""Metadata: not one identifying byte survives, and deid proves it (issue 3).

Each fixture is filled with markers in every container structure deid knows. Outputs are
checked three ways: the marker bytes are absent, exiftool lists no personal tag, and
deid's own walker agrees.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import deid.metadata as metadata
from deid.audio import read_info
from deid.errors import AudioError, DeidError, MetadataError
from fixtures_metadata import (BUILDERS, CONCATENATED, HIDDEN_BUILDERS, MARK, SR, Fixture, make_concatenated,
                               make_flac, marker_count, tone)

FORMATS = list(BUILDERS)
EXIFTOOL = shutil.which("exiftool")
FFMPEG = shutil.which("ffmpeg")

# Tags exiftool may show on a clean file: format parameters only, never text or dates.
EXIFTOOL_TECHNICAL = {
    "RIFF": {"Encoding", "NumChannels", "SampleRate", "AvgBytesPerSec", "BitsPerSample", "NumberOfSamples"},
    "AIFF": {"CompressionType", "CompressorName", "FormatVersionTime", "NumChannels", "NumSampleFrames",
             "SampleRate", "SampleSize"},
    "FLAC": {"BitsPerSample", "BlockSizeMax", "BlockSizeMin", "Channels", "FrameSizeMax", "FrameSizeMin",
             "MD5Signature", "SampleRate", "TotalSamples", "SeekTable"},
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


# Issue 14, item 2: what strip keeps must not carry what inspect does not see, and nothing
# after the first audio stream may pass unseen.

def _shown(fields: list[metadata.Field]) -> str:
    return "\n".join(f"{f.container} {f.field} {f.value}" for f in fields if f.personal)


@pytest.mark.parametrize("name", list(HIDDEN_BUILDERS))
def test_hidden_bytes_in_kept_structures_are_shown_and_stripped(tmp_path: Path, name: str) -> None:
    if name.startswith("m4a") and not FFMPEG:
        pytest.skip("needs ffmpeg to build the fixture")
    fx = HIDDEN_BUILDERS[name](tmp_path)
    assert marker_count(fx.path.read_bytes()) >= 1
    assert marker_count(fx.reference.read_bytes()) == 0
    shown = _shown(metadata.inspect_file(fx.path))
    assert all(marker in shown for marker in fx.planted), shown
    with pytest.raises(MetadataError):
        metadata.verify_clean(fx.path)
    out = tmp_path / ("out" + fx.path.suffix)
    metadata.strip_file(fx.path, out)
    assert_clean(out, written=False)
    ref, got = decode(fx.reference), decode(out)
    assert ref.shape == got.shape and np.array_equal(ref, got)


def test_stripped_seektable_keeps_the_points_that_land_on_frames(tmp_path: Path) -> None:
    fx = HIDDEN_BUILDERS["flac-seektable"](tmp_path)
    out = tmp_path / "out.flac"
    report = metadata.strip_file(fx.path, out)
    assert "SEEKTABLE" in report.kept
    data = out.read_bytes()
    assert data[42] & 0x7F == 3 and int.from_bytes(data[43:46], "big") == 18  # one seek point of 18 bytes
    ref, pos = fx.reference.read_bytes(), 4
    while not ref[pos] & 0x80:  # past the reference's metadata blocks, to its first frame
        pos += 4 + int.from_bytes(ref[pos + 1:pos + 4], "big")
    frames = ref[pos + 4 + int.from_bytes(ref[pos + 1:pos + 4], "big"):]
    assert data.endswith(frames), "the frames are copied byte for byte"


@pytest.mark.parametrize("kind", CONCATENATED)
def test_a_second_stream_is_listed_and_strip_refuses_to_drop_it(tmp_path: Path, kind: str) -> None:
    path, parts = make_concatenated(tmp_path, kind)
    fields = metadata.inspect_file(path)
    assert any(f.personal and "stream 2" in f.field for f in fields)

    def marked(found: list[metadata.Field]) -> int:
        return sum(f.personal and MARK in f.value for f in found)

    # Everything each part would show is shown, the second part's tags included.
    assert marked(fields) >= sum(marked(metadata.inspect_file(part)) for part in parts) > 0, _shown(fields)
    trailing = metadata.trailing_data(path)
    assert trailing is not None and trailing.streams and trailing.streams[0][1] >= trailing.offset > 0
    out = tmp_path / ("out" + path.suffix)
    for call in (lambda: metadata.strip_file(path, out), lambda: read_info(path)):
        with pytest.raises(AudioError, match="second audio stream") as caught:
            call()
        assert str(path) in str(caught.value) and "\n" not in str(caught.value)
    assert not out.exists() and not list(tmp_path.glob(".*tmp"))


def test_verification_walks_the_whole_file(tmp_path: Path) -> None:
    tagged = make_flac(tmp_path)
    clean = tmp_path / "clean.flac"
    metadata.strip_file(tagged.path, clean)
    metadata.verify_clean(clean)
    joined = tmp_path / "joined.flac"
    joined.write_bytes(clean.read_bytes() + tagged.path.read_bytes())
    with pytest.raises(MetadataError, match="stream 2"):
        metadata.verify_clean(joined)


@pytest.mark.parametrize("suffix", [".wav", ".mp3", ".flac", ".ogg"])
def test_bytes_after_the_audio_stream_are_reported_and_never_kept(tmp_path: Path, suffix: str) -> None:
    fmt = {".wav": ("WAV", "PCM_16"), ".mp3": ("MP3", "MPEG_LAYER_III"), ".flac": ("FLAC", "PCM_16"),
           ".ogg": ("OGG", "VORBIS")}[suffix]
    clean = tmp_path / f"clean{suffix}"
    sf.write(clean, tone(), SR, format=fmt[0], subtype=fmt[1])
    junk = tmp_path / f"junk{suffix}"
    junk.write_bytes(clean.read_bytes() + f"appended by hand: {MARK}-appended, and more text".encode() * 3)
    fields = metadata.inspect_file(junk)
    assert any(f.personal and f"{MARK}-appended" in f.value for f in fields), _shown(fields)
    trailing = metadata.trailing_data(junk)
    assert trailing is not None and not trailing.streams and trailing.unexplained > 0 or suffix == ".flac"
    out = tmp_path / f"out{suffix}"
    if suffix == ".flac":
        # The last frame's CRC cannot tell junk from a damaged frame: strip will not guess where audio ends.
        with pytest.raises(AudioError, match="last FLAC frame"):
            metadata.strip_file(junk, out)
        return
    report = metadata.strip_file(junk, out)
    assert "bytes after the audio stream" in report.dropped
    assert_clean(out, written=False)
    assert np.array_equal(decode(out), decode(clean))


def test_a_lying_flac_length_is_refused_by_strip(tmp_path: Path) -> None:
    path = tmp_path / "lying.flac"
    sf.write(path, tone(), SR, format="FLAC", subtype="PCM_16")
    data = bytearray(path.read_bytes())
    data[21] |= 0x0F
    data[22:26] = b"\xff\xff\xff\xff"  # STREAMINFO total samples: 2**36 - 1
    path.write_bytes(bytes(data))
    fields = metadata.inspect_file(path)
    assert any("disagrees with the frames" in f.field for f in fields)
    with pytest.raises(AudioError, match="declares 68719476735 samples but its frames hold 9600"):
        metadata.strip_file(path, tmp_path / "out.flac")


def test_truncated_flac_is_refused_by_strip(tmp_path: Path) -> None:
    path = tmp_path / "full.flac"
    sf.write(path, tone(seconds=2.0), SR, format="FLAC", subtype="PCM_16")
    for percent in (10, 50, 90):
        cut = tmp_path / f"cut{percent}.flac"
        cut.write_bytes(path.read_bytes()[:len(path.read_bytes()) * percent // 100])
        with pytest.raises(AudioError, match="FLAC"):
            metadata.strip_file(cut, tmp_path / f"out{percent}.flac")


def _m4a_with_location(folder: Path) -> Path:
    """A phone-style M4A: ffmpeg's ``location`` (a ``loci`` box), plus a named ``loci`` and a QuickTime
    ``©xyz`` in ``udta``, as Apple's and Android's recorders write them."""
    path = folder / "memo.m4a"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "sine=f=300:d=1", "-c:a", "aac",
                    "-metadata", "location=+48.8583+002.2945+035.000/", str(path)], check=True)
    name = "Tour Eiffel".encode() + b"\0"
    loci = (bytes(4) + b"\x15\xc7" + name + b"\x00" + struct.pack(">iii", int(2.2945 * 65536), int(48.8583 * 65536),
                                                                   35 * 65536) + b"earth\0" + b"memo\0")
    xyz = b"+48.8583+002.2945+035.000/"
    box = (struct.pack(">I", 8 + len(loci)) + b"loci" + loci
           + struct.pack(">I", 12 + len(xyz)) + b"\xa9xyz" + struct.pack(">HH", len(xyz), 0x15C7) + xyz)
    data = bytearray(path.read_bytes())
    moov = data.find(b"moov") - 4
    udta = data.find(b"udta", moov) - 4
    assert moov >= 0 and udta > moov, "ffmpeg writes the location into moov.udta"
    for start in (moov, udta):
        data[start:start + 4] = struct.pack(">I", struct.unpack(">I", data[start:start + 4])[0] + len(box))
    udta_end = udta + 8
    path.write_bytes(bytes(data[:udta_end]) + box + bytes(data[udta_end:]))
    return path


@pytest.mark.skipif(not FFMPEG, reason="needs ffmpeg to build the fixture")
def test_inspect_shows_where_an_m4a_was_recorded(tmp_path: Path) -> None:
    path = _m4a_with_location(tmp_path)
    found = [f for f in metadata.inspect_file(path) if f.personal]
    fields = {f.field: f.value for f in found}
    assert fields["moov.udta.©xyz position"] == "48.858300, 2.294500, altitude 35 m", fields
    loci = next(f.value for f in found if f.field.endswith("loci") and "Eiffel" in f.value)
    assert "Tour Eiffel" in loci and "48.858" in loci and "2.294" in loci and "earth" in loci
    out = tmp_path / "out.m4a"
    metadata.strip_file(path, out)
    assert_clean(out, written=False)
    assert b"loci" not in out.read_bytes() and b"Eiffel" not in out.read_bytes()
