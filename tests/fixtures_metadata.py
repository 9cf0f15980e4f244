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
