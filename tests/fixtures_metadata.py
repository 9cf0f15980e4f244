"""Build audio files stuffed with identifying metadata, for the metadata tests.

Every file is made here, from a synthetic tone, with soundfile, ffmpeg, mutagen and chunks
written by hand; nothing is checked in. Each planted value starts with `MARK`, in ASCII,
UTF-8, UTF-16LE or UTF-16BE, and the cover picture is a JPEG whose EXIF holds an Artist and
a GPS position.
"""

from __future__ import annotations

import base64
import io
import shutil
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

MARK = "DEIDMARK"
MARKER_BYTES = (MARK.encode("ascii"), MARK.encode("utf-16-le"), MARK.encode("utf-16-be"))
# Any embedded picture or EXIF block surviving would show these, whatever it says.
PICTURE_BYTES = (b"Exif\0\0", b"JFIF")
SR = 16000


@dataclass
class Fixture:
    """A tagged file, the untagged file it was made from, and the markers planted in it."""

    name: str
    path: Path
    reference: Path
    planted: list[str] = field(default_factory=list)


def tone(sr: int = SR, seconds: float = 0.6, channels: int = 1) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    y = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * np.sin(2 * np.pi * 1330 * t)
    return np.stack([y * (1 - 0.2 * c) for c in range(channels)], axis=1).astype(np.float32)


def jpeg_with_exif() -> bytes:
    """A small JPEG whose EXIF has an Artist marker and a GPS position (Paris)."""
    from PIL import ExifTags, Image

    image = Image.new("RGB", (16, 12), (200, 30, 30))
    exif = Image.Exif()
    exif[ExifTags.Base.Artist] = f"{MARK}-exif-artist"
    exif.get_ifd(ExifTags.IFD.GPSInfo).update({1: "N", 2: (48.0, 51.0, 29.5), 3: "E", 4: (2.0, 17.0, 40.2)})
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


def _flac_picture(jpeg: bytes, desc: str) -> bytes:
    from mutagen.flac import Picture

    pic = Picture()
    pic.type, pic.mime, pic.desc, pic.data, pic.width, pic.height, pic.depth = 3, "image/jpeg", desc, jpeg, 16, 12, 24
    return pic


def _chunk(cid: bytes, payload: bytes, big_endian: bool = False) -> bytes:
    size = struct.pack(">I" if big_endian else "<I", len(payload))
    return cid + size + payload + b"\0" * (len(payload) & 1)


def _id3(frames_version: int = 4):
    from mutagen import id3

    tags = id3.ID3()
    tags.add(id3.TIT2(encoding=1, text=f"{MARK}-id3-title-utf16"))
    tags.add(id3.TPE1(encoding=0, text=f"{MARK}-id3-artist"))
    tags.add(id3.COMM(encoding=3, lang="eng", desc="note", text=f"{MARK}-id3-comment"))
    tags.add(id3.TXXX(encoding=1, desc="device", text=f"{MARK}-id3-txxx"))
    tags.add(id3.PRIV(owner="com.example", data=f"{MARK}-id3-priv".encode()))
    tags.add(id3.APIC(encoding=0, mime="image/jpeg", type=3, desc="cover", data=jpeg_with_exif()))
    return tags, [f"{MARK}-id3-title-utf16", f"{MARK}-id3-artist", f"{MARK}-id3-comment", f"{MARK}-id3-txxx",
                  f"{MARK}-id3-priv", f"{MARK}-exif-artist"]


def _write_tone(path: Path, fmt: str, subtype: str | None = None, channels: int = 1) -> Path:
    sf.write(path, tone(channels=channels), SR, format=fmt, subtype=subtype)
    return path


def _reference(path: Path) -> Path:
    ref = path.with_name(path.stem + ".ref" + path.suffix)
    shutil.copyfile(path, ref)
    return ref


def make_wav(folder: Path, subtype: str) -> Fixture:
    from mutagen.wave import WAVE

    path = _write_tone(folder / f"tagged-{subtype.lower()}.wav", "WAV", subtype, channels=2)
    fx = Fixture(f"wav-{subtype.lower()}", path, _reference(path))
    audio = WAVE(path)
    tags, planted = _id3()
    audio.add_tags()
    for frame in tags.values():
        audio.tags.add(frame)
    audio.save()
    fx.planted += planted
    info = (b"INFO" + _chunk(b"INAM", f"{MARK}-wav-INAM\0".encode())
            + _chunk(b"ICMT", f"{MARK}-wav-ICMT-utf16".encode("utf-16-le"))
            + _chunk(b"ICRD", b"2024-05-01\0"))
    cue = struct.pack("<I", 1) + struct.pack("<II4sIII", 1, 0, b"data", 0, 0, 4000)
    adtl = b"adtl" + _chunk(b"labl", struct.pack("<I", 1) + f"{MARK}-wav-labl\0".encode())
    bext = bytearray(602)
    bext[0:32] = f"{MARK}-wav-bext-desc".encode().ljust(32, b"\0")
    bext[256:288] = f"{MARK}-wav-bext-orig".encode().ljust(32, b"\0")
    bext[320:338] = b"2024-05-0110:00:00"
    bext = bytes(bext) + f"A=PCM,F=16000,W=16,T={MARK}-wav-history\r\n".encode()
    cart = b"0101" + f"{MARK}-wav-cart".encode().ljust(64, b"\0")
    extra = (_chunk(b"LIST", info) + _chunk(b"cue ", cue) + _chunk(b"LIST", adtl) + _chunk(b"bext", bext)
             + _chunk(b"iXML", f"<BWFXML><PROJECT>{MARK}-wav-ixml</PROJECT></BWFXML>".encode())
             + _chunk(b"_PMX", f"<x:xmpmeta><dc:creator>{MARK}-wav-xmp</dc:creator></x:xmpmeta>".encode())
             + _chunk(b"cart", cart)
             + _chunk(b"zzzz", f"{MARK}-wav-unknown-utf16be".encode("utf-16-be"))
             + _chunk(b"JUNK", f"{MARK}-wav-junk".encode().ljust(28, b"\0")))
    data = path.read_bytes()
    body = data[12:] + extra
    path.write_bytes(b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body + f"{MARK}-wav-trailing".encode())
    fx.planted += [f"{MARK}-wav-INAM", f"{MARK}-wav-ICMT-utf16", f"{MARK}-wav-labl", f"{MARK}-wav-bext-desc",
                   f"{MARK}-wav-bext-orig", f"{MARK}-wav-history", f"{MARK}-wav-ixml", f"{MARK}-wav-xmp",
                   f"{MARK}-wav-cart", f"{MARK}-wav-unknown-utf16be", f"{MARK}-wav-junk", f"{MARK}-wav-trailing"]
    return fx


def make_aiff(folder: Path) -> Fixture:
    from mutagen.aiff import AIFF

    path = _write_tone(folder / "tagged.aiff", "AIFF", "PCM_16")
    fx = Fixture("aiff", path, _reference(path))
    audio = AIFF(path)
    tags, planted = _id3()
    audio.add_tags()
    for frame in tags.values():
        audio.tags.add(frame)
    audio.save()
    fx.planted += planted
    name = f"{MARK}-aiff-MARK".encode()
    comment = f"{MARK}-aiff-COMT".encode()
    extra = (_chunk(b"NAME", f"{MARK}-aiff-NAME".encode(), True)
             + _chunk(b"AUTH", f"{MARK}-aiff-AUTH".encode(), True)
             + _chunk(b"(c) ", f"{MARK}-aiff-copyright".encode(), True)
             + _chunk(b"ANNO", f"{MARK}-aiff-ANNO-utf16".encode("utf-16-be"), True)
             + _chunk(b"COMT", struct.pack(">HIhH", 1, 3000000000, 0, len(comment)) + comment, True)
             + _chunk(b"MARK", struct.pack(">HhI", 1, 1, 100) + bytes([len(name)]) + name, True)
             + _chunk(b"APPL", b"pdos" + f"{MARK}-aiff-APPL".encode(), True))
    data = path.read_bytes()
    body = data[12:] + extra
    path.write_bytes(b"FORM" + struct.pack(">I", 4 + len(body)) + data[8:12] + body)
    fx.planted += [f"{MARK}-aiff-NAME", f"{MARK}-aiff-AUTH", f"{MARK}-aiff-copyright", f"{MARK}-aiff-ANNO-utf16",
                   f"{MARK}-aiff-COMT", f"{MARK}-aiff-MARK", f"{MARK}-aiff-APPL"]
    return fx


def _flac_block(kind: int, payload: bytes) -> bytes:
    return bytes([kind]) + len(payload).to_bytes(3, "big") + payload


def make_flac(folder: Path) -> Fixture:
    from mutagen import id3
    from mutagen.apev2 import APEv2
    from mutagen.flac import FLAC

    path = _write_tone(folder / "tagged.flac", "FLAC", "PCM_16", channels=2)
    fx = Fixture("flac", path, _reference(path))
    audio = FLAC(path)
    audio["TITLE"] = f"{MARK}-flac-title"
    audio["ARTIST"] = f"{MARK}-flac-ärtist"
    audio.add_picture(_flac_picture(jpeg_with_exif(), f"{MARK}-flac-picdesc"))
    audio.save()
    data = path.read_bytes()
    wav_header = b"RIFF\0\0\0\0WAVE" + _chunk(b"LIST", b"INFO" + _chunk(b"IART", f"{MARK}-flac-riff".encode()))
    catalog = f"{MARK}-flac-cue".encode().ljust(128, b"\0")
    cuesheet = catalog + struct.pack(">Q", 0) + b"\0" * 259 + b"\x01" + struct.pack(">QB", 0, 170) + b"\0" * 12 \
        + b"\0" * 14
    extra = (_flac_block(2, b"riff" + wav_header) + _flac_block(5, cuesheet)
             + _flac_block(1, f"{MARK}-flac-padding".encode().ljust(64, b"\0")))
    path.write_bytes(data[:42] + extra + data[42:])
    tags = id3.ID3()
    tags.add(id3.TIT2(encoding=1, text=f"{MARK}-flac-id3"))
    tags.save(path, v1=2)
    ape = APEv2()
    ape["Title"] = f"{MARK}-flac-ape"
    ape.save(path)
    fx.planted += [f"{MARK}-flac-title", f"{MARK}-flac-ärtist", f"{MARK}-flac-picdesc", f"{MARK}-exif-artist",
                   f"{MARK}-flac-riff", f"{MARK}-flac-cue", f"{MARK}-flac-padding", f"{MARK}-flac-id3",
                   f"{MARK}-flac-ape"]
    return fx


def make_ogg(folder: Path, codec: str) -> Fixture:
    from mutagen.oggopus import OggOpus
    from mutagen.oggvorbis import OggVorbis

    subtype = "VORBIS" if codec == "vorbis" else "OPUS"
    path = _write_tone(folder / f"tagged-{codec}.ogg", "OGG", subtype, channels=2)
    fx = Fixture(f"ogg-{codec}", path, _reference(path))
    audio = (OggVorbis if codec == "vorbis" else OggOpus)(path)
    audio["TITLE"] = f"{MARK}-{codec}-title"
    audio["LOCATION"] = f"{MARK}-{codec}-location"
    picture = _flac_picture(jpeg_with_exif(), f"{MARK}-{codec}-picdesc")
    audio["METADATA_BLOCK_PICTURE"] = base64.b64encode(picture.write()).decode("ascii")
    audio.save()
    fx.planted += [f"{MARK}-{codec}-title", f"{MARK}-{codec}-location", f"{MARK}-{codec}-picdesc",
                   f"{MARK}-exif-artist"]
    return fx


def make_mp3(folder: Path) -> Fixture:
    from mutagen.apev2 import APEv2, APEValue, BINARY

    path = _write_tone(folder / "tagged.mp3", "MP3", "MPEG_LAYER_III", channels=2)
    fx = Fixture("mp3", path, _reference(path))
    tags, planted = _id3()
    tags.save(path, v1=2, v2_version=3)
    ape = APEv2()
    ape["Title"] = f"{MARK}-mp3-ape"
    ape["Cover Art (Front)"] = APEValue(b"cover.jpg\0" + jpeg_with_exif(), BINARY)
    ape.save(path)
    fx.planted += planted + [f"{MARK}-mp3-ape"]
    return fx


def make_m4a(folder: Path) -> Fixture:
    from mutagen.mp4 import MP4, MP4Cover, MP4FreeForm

    ref = folder / "tagged.ref.m4a"
    path = folder / "tagged.m4a"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "sine=f=300:d=1.5", "-ac", "2", "-ar", "44100",
                    "-c:a", "aac", "-b:a", "96k", "-map_metadata", "-1", str(ref)], check=True)
    # Tagging remuxes without re-encoding, so the AAC packets of `ref` and `path` are the same.
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(ref), "-c", "copy",
                    "-metadata", f"title={MARK}-m4a-title", "-metadata", "creation_time=2024-05-01T10:00:00Z",
                    "-metadata", f"com.apple.quicktime.location.ISO6709=+48.8583+002.2945+{MARK}/",
                    "-metadata", f"com.android.model={MARK}-m4a-model", "-movflags", "+use_metadata_tags",
                    str(path)], check=True)
    fx = Fixture("m4a", path, ref)
    audio = MP4(path)
    audio["\xa9ART"] = [f"{MARK}-m4a-artist"]
    audio["covr"] = [MP4Cover(jpeg_with_exif(), MP4Cover.FORMAT_JPEG)]
    audio["----:com.apple.iTunes:NOTE"] = [MP4FreeForm(f"{MARK}-m4a-freeform-utf16".encode("utf-16-le"))]
    audio.save()
    xmp = f"<x:xmpmeta><dc:creator>{MARK}-m4a-xmp</dc:creator></x:xmpmeta>".encode()
    uuid = bytes.fromhex("BE7ACFCB97A942E89C71999491E3AFAC")
    with path.open("ab") as handle:  # top-level atoms after mdat move no sample offsets
        handle.write(struct.pack(">I", 8 + 16 + len(xmp)) + b"uuid" + uuid + xmp)
        handle.write(struct.pack(">I", 8 + 32) + b"free" + f"{MARK}-m4a-free".encode().ljust(32, b"\0"))
    fx.planted += [f"{MARK}-m4a-title", f"{MARK}-m4a-model", "+48.8583+002.2945", f"{MARK}-m4a-artist",
                   f"{MARK}-exif-artist", f"{MARK}-m4a-freeform-utf16", f"{MARK}-m4a-xmp", f"{MARK}-m4a-free",
                   "2024-05-01T10:00:00"]
    return fx


BUILDERS = {
    "wav-pcm_16": lambda d: make_wav(d, "PCM_16"),
    "wav-float": lambda d: make_wav(d, "FLOAT"),
    "aiff": make_aiff,
    "flac": make_flac,
    "ogg-vorbis": lambda d: make_ogg(d, "vorbis"),
    "ogg-opus": lambda d: make_ogg(d, "opus"),
    "mp3": make_mp3,
    "m4a": make_m4a,
}


def marker_count(data: bytes) -> int:
    """How many times any marker encoding, or any trace of a JPEG/EXIF block, occurs in `data`."""
    return sum(data.count(m) for m in MARKER_BYTES + PICTURE_BYTES)


# Hidden bytes in the structures strip keeps (issue 14, item 2): each fixture is a clean file
# whose kept structure carries a marker where no field explains it.

def _riff(chunks: list[tuple[bytes, bytes]]) -> bytes:
    body = b"WAVE" + b"".join(_chunk(cid, payload) for cid, payload in chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _riff_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks, pos = [], 12
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        chunks.append((cid, data[pos + 8:pos + 8 + size]))
        pos += 8 + size + (size & 1)
    return chunks


def make_wav_fmt_extension(folder: Path) -> Fixture:
    """A PCM WAV whose ``fmt `` carries an extension (cbSize 22) that holds a marker."""
    ref = _write_tone(folder / "fmt-ext.ref.wav", "WAV", "PCM_16", channels=2)
    chunks = _riff_chunks(ref.read_bytes())
    hidden = f"{MARK}-fmt-extension".encode().ljust(22, b"\0")
    chunks = [(cid, payload + struct.pack("<H", 22) + hidden if cid == b"fmt " else payload) for cid, payload in chunks]
    path = folder / "fmt-ext.wav"
    path.write_bytes(_riff(chunks))
    return Fixture("wav-fmt-extension", path, ref, [f"{MARK}-fmt-extension"])


def make_wav_extensible_tail(folder: Path) -> Fixture:
    """A WAVE_FORMAT_EXTENSIBLE WAV with bytes after its fields in ``fmt `` and after the count in ``fact``."""
    ref = _write_tone(folder / "wavex.ref.wav", "WAVEX", "PCM_24", channels=2)
    chunks = []
    for cid, payload in _riff_chunks(ref.read_bytes()):
        if cid == b"fmt ":
            payload += f"{MARK}-fmt-tail".encode()
        if cid == b"fact":
            payload += f"{MARK}-fact-tail".encode()
        chunks.append((cid, payload))
    path = folder / "wavex.wav"
    path.write_bytes(_riff(chunks))
    return Fixture("wav-extensible", path, ref, [f"{MARK}-fmt-tail", f"{MARK}-fact-tail"])


def make_flac_seektable(folder: Path) -> Fixture:
    """A FLAC whose SEEKTABLE holds one true seek point, one made of marker bytes, and a marker after them."""
    ref = _write_tone(folder / "seek.ref.flac", "FLAC", "PCM_16", channels=2)
    data = ref.read_bytes()
    block = int.from_bytes(data[8:10], "big")  # STREAMINFO's minimum block size: the first frame's
    table = struct.pack(">QQH", 0, 0, block) + MARK.encode() * 2 + b"SK" + f"{MARK}-seek".encode()
    last = data[4] & 0x80
    path = folder / "seek.flac"
    path.write_bytes(data[:4] + bytes([data[4] & 0x7F]) + data[5:42] + bytes([3 | last])
                     + len(table).to_bytes(3, "big") + table + data[42:])
    return Fixture("flac-seektable", path, ref, [MARK, f"{MARK}-seek"])


def _crc16_arc(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def make_mp3_info_spare(folder: Path) -> Fixture:
    """An MP3 whose Info frame holds markers in its side information (with the LAME checksum made
    to match again) and in the spare bytes after the LAME tag."""
    ref = _write_tone(folder / "info.ref.mp3", "MP3", "MPEG_LAYER_III", channels=1)
    data = bytearray(ref.read_bytes())
    info = data.find(b"Info") if data.find(b"Info") >= 0 else data.find(b"Xing")
    lame = data.find(b"LAME", info)
    assert info > 4 and lame > info, "libsndfile writes an Info frame with a LAME tag"
    side = MARK.encode()
    data[info - len(side):info] = side
    data[lame + 34:lame + 36] = struct.pack(">H", _crc16_arc(bytes(data[:lame + 34])))
    tail = f"{MARK}-info".encode()
    data[lame + 36:lame + 36 + len(tail)] = tail
    path = folder / "info.mp3"
    path.write_bytes(bytes(data))
    return Fixture("mp3-info-spare", path, ref, [MARK, f"{MARK}-info"])


def _boxes(data: bytes, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """(type, start, end) of the MP4 boxes in data[start:end] (32-bit sizes only, as ffmpeg writes)."""
    found, pos = [], start
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        found.append((kind, pos, pos + size))
        pos += size
    return found


def make_m4a_stsd_box(folder: Path) -> Fixture:
    """An AAC M4A whose ``mp4a`` sample entry holds an extra box after ``esds`` with a marker."""
    ref = folder / "stsd.ref.m4a"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "sine=f=300:d=1", "-ar", "16000", "-c:a", "aac",
                    "-b:a", "48k", "-map_metadata", "-1", "-fflags", "+bitexact", str(ref)], check=True)
    data = bytearray(ref.read_bytes())
    chain, start, end = [], 0, len(data)
    for kind, header in ((b"moov", 8), (b"trak", 8), (b"mdia", 8), (b"minf", 8), (b"stbl", 8), (b"stsd", 16),
                         (b"mp4a", 36)):
        box = next(b for b in _boxes(data, start, end) if b[0] == kind)
        chain.append(box)
        start, end = box[1] + header, box[2]
    assert _boxes(data, 0, len(data))[-1][0] == b"moov", "ffmpeg puts moov last: growing it moves no sample"
    hidden = f"{MARK}-stsd-box".encode()
    extra = struct.pack(">I", 8 + len(hidden)) + b"zzzz" + hidden
    for _kind, box_start, _box_end in chain:
        size = struct.unpack(">I", data[box_start:box_start + 4])[0]
        data[box_start:box_start + 4] = struct.pack(">I", size + len(extra))
    mp4a_end = chain[-1][2]
    path = folder / "stsd.m4a"
    path.write_bytes(bytes(data[:mp4a_end]) + extra + bytes(data[mp4a_end:]))
    return Fixture("m4a-stsd-box", path, ref, [f"{MARK}-stsd-box"])


HIDDEN_BUILDERS = {
    "wav-fmt-extension": make_wav_fmt_extension,
    "wav-extensible": make_wav_extensible_tail,
    "flac-seektable": make_flac_seektable,
    "mp3-info-spare": make_mp3_info_spare,
    "m4a-stsd-box": make_m4a_stsd_box,
}


# Files that hold more than one audio stream (items 2 and 7): decoders play only the first.

def _joined(folder: Path, name: str, first: Path, second: Path) -> Path:
    path = folder / name
    path.write_bytes(first.read_bytes() + second.read_bytes())
    return path


def make_concatenated(folder: Path, kind: str) -> tuple[Path, tuple[Path, Path]]:
    """Two copies of a tagged file joined with ``cat`` (or, for ``ogg-chained``, two different
    streams, the second tagged); returns the joined file and its two parts."""
    sub = folder / kind
    sub.mkdir(exist_ok=True)
    if kind == "ogg-chained":
        plain = _write_tone(sub / "plain.ogg", "OGG", "VORBIS", channels=2)
        tagged = make_ogg(sub, "vorbis").path
        return _joined(folder, "chained.ogg", plain, tagged), (plain, tagged)
    builder = {"flac-cat": make_flac, "ogg-cat": lambda d: make_ogg(d, "vorbis"), "mp3-cat": make_mp3,
               "wav-cat": lambda d: make_wav(d, "PCM_16")}[kind]
    tagged = builder(sub).path
    return _joined(folder, f"{kind}{tagged.suffix}", tagged, tagged), (tagged, tagged)


CONCATENATED = ("flac-cat", "ogg-cat", "ogg-chained", "mp3-cat", "wav-cat")
