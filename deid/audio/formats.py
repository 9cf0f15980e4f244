"""Output formats: what each ``--format`` name writes, and which format an output gets."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from deid.errors import AudioError, DeidError

#: ``--format`` names: soundfile format and the subtype they force (None: chosen from the input).
FORMATS: dict[str, tuple[str, str | None]] = {
    "wav": ("WAV", None),
    "flac": ("FLAC", None),
    "aiff": ("AIFF", None),
    "ogg": ("OGG", "VORBIS"),
    "opus": ("OGG", "OPUS"),
    "mp3": ("MP3", "MPEG_LAYER_III"),
}
EXTENSIONS = {"WAV": ".wav", "FLAC": ".flac", "AIFF": ".aiff", "OGG": ".ogg", "MP3": ".mp3"}
#: Extensions of the files deid reads, for picking audio out of a folder.
AUDIO_EXTENSIONS = frozenset({".wav", ".wave", ".flac", ".aif", ".aiff", ".aifc", ".ogg", ".oga", ".opus",
                              ".mp3", ".m4a", ".mp4", ".aac"})
#: The format an output name asks for, by extension, and the containers that already fit it.
_BY_SUFFIX = {".wav": ("wav", ("WAV", "WAVEX")), ".flac": ("flac", ("FLAC",)), ".aiff": ("aiff", ("AIFF",)),
              ".ogg": ("ogg", ("OGG",)), ".opus": ("opus", ("OGG",)), ".mp3": ("mp3", ("MP3",))}
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
_PCM_FOR_FLAC = {"PCM_S8", "PCM_16", "PCM_24"}
#: Sample formats another container may take over from the input; a codec (MP3, Vorbis, Opus)
#: belongs to its own container.
_SAMPLES = {"PCM_S8", "PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"}


@dataclass(frozen=True)
class AudioInfo:
    """What a file holds: container, sample format, rate, channels and length."""

    format: str
    subtype: str
    samplerate: int
    channels: int
    frames: int
    #: What decodes it: libsndfile, or FFmpeg (PyAV) for M4A.
    decoder: str = "libsndfile"

    @property
    def seconds(self) -> float:
        return self.frames / self.samplerate


def output_format(info: AudioInfo, name: str | None = None, *, suffix: str | None = None) -> tuple[str, str]:
    """The (format, subtype) to write: ``--format`` ``name``, else what the output's ``suffix``
    asks for when the input's container does not fit it (a FLAC input written to ``x.wav``), else
    the input's own.

    M4A input, which soundfile cannot write, becomes 16-bit FLAC unless another format is asked.
    """
    import soundfile as sf

    if name is None and suffix is not None and suffix.lower() in _BY_SUFFIX:
        wanted, fits = _BY_SUFFIX[suffix.lower()]
        if info.format not in fits:
            name = wanted
    if name is None:
        if info.format == "MP4":
            return "FLAC", "PCM_16"
        return info.format, info.subtype
    key = name.lower()
    if key not in FORMATS:
        raise DeidError(f"unknown output format {name!r}; use one of {', '.join(FORMATS)}")
    fmt, subtype = FORMATS[key]
    if subtype is None:
        if (info.subtype in _SAMPLES and sf.check_format(fmt, info.subtype)
                and (fmt != "FLAC" or info.subtype in _PCM_FOR_FLAC)):
            subtype = info.subtype
        elif fmt == "FLAC":
            subtype = "PCM_24" if info.subtype in ("PCM_32", "FLOAT", "DOUBLE") else "PCM_16"
        else:
            subtype = "FLOAT" if info.subtype in ("FLOAT", "DOUBLE") else "PCM_16"
    return fmt, subtype


def extension(fmt: str, subtype: str) -> str:
    """File extension for a soundfile format (``.opus`` for Ogg Opus)."""
    return ".opus" if subtype == "OPUS" else EXTENSIONS.get(fmt, "." + fmt.lower())


def check_format(path: Path, sr: int, *, format: str, subtype: str) -> None:
    """Refuse a format that cannot hold this audio (e.g. Opus at 44.1 kHz)."""
    import soundfile as sf

    if subtype == "OPUS" and sr not in OPUS_RATES:
        raise AudioError(f"Opus cannot store {sr} Hz audio (only {', '.join(str(r) for r in OPUS_RATES)} Hz)", path)
    if not sf.check_format(format, subtype):
        raise AudioError(f"{format} cannot store {subtype} samples", path)
