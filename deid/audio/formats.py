"""Output formats: one table of the containers deid writes, and which one an output gets.

The output's name decides its container, as with sox and ffmpeg: ``out.mp3`` is MP3 whatever the
input was. ``--format`` names one too; a name and an extension that disagree are an error, never
a mislabelled file. The samples keep the input's format where the container can hold it (a
24-bit WAV stays 24-bit in FLAC, an Opus stays Opus in ``.ogg``), else they get the container's
usual one (16-bit PCM, or the container's codec).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from deid.errors import AudioError, DeidError


@dataclass(frozen=True)
class Container:
    """One output container.

    Attributes
    ----------
    name : str
        Its ``--format`` name.
    title : str
        How messages call it.
    format : str
        The soundfile format it is written as (``MP4``: FFmpeg's AAC encoder, through PyAV).
    codec : str or None
        The coded subtype it always uses; None for PCM, whose sample format follows the input.
    extensions : tuple of str
        Output names it answers to; deid names outputs with the first.
    holds : tuple of (str, str or None)
        Input (format, subtype) it takes over unchanged (subtype None: any PCM it can store).
    samples : tuple of str
        The sample formats a PCM container stores and keeps from any input (an input in another
        one gets 16-bit PCM, an ADPCM or GSM WAV too). No compressed codec is among them: MP3,
        Vorbis, Opus and AAC belong to their own containers (libsndfile claims WAV can hold MPEG
        layer III, not that it writes it).
    reads : tuple of str
        Input extensions read as this container but never written (``.aac`` names raw ADTS).
    """

    name: str
    title: str
    format: str
    codec: str | None
    extensions: tuple[str, ...]
    holds: tuple[tuple[str, str | None], ...]
    samples: tuple[str, ...] = ()
    reads: tuple[str, ...] = ()


#: Sample formats both WAV and AIFF store; 8-bit PCM is unsigned in WAV and signed in AIFF.
_PCM = ("PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE", "ULAW", "ALAW")
#: Every container deid writes. Order matters where an extension is shared: ``.ogg`` is Vorbis
#: unless the input is Ogg Opus already, or ``--format opus`` asks for Opus.
CONTAINERS: tuple[Container, ...] = (
    Container("wav", "WAV", "WAV", None, (".wav", ".wave"), (("WAV", None), ("WAVEX", None)),
              samples=("PCM_U8", *_PCM)),
    Container("flac", "FLAC", "FLAC", None, (".flac",), (("FLAC", None),), samples=("PCM_S8", "PCM_16", "PCM_24")),
    Container("aiff", "AIFF", "AIFF", None, (".aiff", ".aif", ".aifc"), (("AIFF", None),),
              samples=("PCM_S8", *_PCM)),
    Container("ogg", "Ogg Vorbis", "OGG", "VORBIS", (".ogg", ".oga"), (("OGG", "VORBIS"), ("OGG", "OPUS"))),
    Container("opus", "Ogg Opus", "OGG", "OPUS", (".opus", ".ogg", ".oga"), (("OGG", "OPUS"),)),
    Container("mp3", "MP3", "MP3", "MPEG_LAYER_III", (".mp3",), (("MP3", "MPEG_LAYER_III"),)),
    Container("m4a", "M4A (AAC in MP4)", "MP4", "AAC", (".m4a", ".mp4"), (("MP4", "AAC"),), reads=(".aac",)),
)
_BY_NAME = {c.name: c for c in CONTAINERS}

#: ``--format`` names: (format, subtype); subtype None is chosen from the input.
FORMATS: dict[str, tuple[str, str | None]] = {c.name: (c.format, c.codec) for c in CONTAINERS}
EXTENSIONS = {c.format: c.extensions[0] for c in CONTAINERS if c.codec != "OPUS"}
#: Extensions of the files deid reads, for picking audio out of a folder.
AUDIO_EXTENSIONS = frozenset(e for c in CONTAINERS for e in c.extensions + c.reads)
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
#: What FFmpeg's AAC encoder accepts (the MPEG-4 sampling frequency table).
AAC_RATES = (7350, 8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000)
#: Channels FFmpeg's AAC encoder codes (mono to 7.1).
AAC_CHANNELS = 8
#: AAC bitrate when none is asked, per channel; and what ``--bitrate`` may ask, per channel.
AAC_BITRATE = 96_000
AAC_BITRATE_RANGE = (8_000, 320_000)


@dataclass(frozen=True)
class AudioInfo:
    """What a file holds: container, sample format, rate, channels and length."""

    format: str
    subtype: str
    samplerate: int
    channels: int
    frames: int
    #: What decodes it: libsndfile, or FFmpeg (PyAV) for M4A and for standard input.
    decoder: str = "libsndfile"

    @property
    def seconds(self) -> float:
        return self.frames / self.samplerate


def _choices() -> str:
    return ", ".join("/".join(c.extensions[:2] if c.name == "aiff" else c.extensions[:1]) for c in CONTAINERS)


def container(name: str) -> Container:
    """The container a ``--format`` name means.

    Raises
    ------
    DeidError
        For an unknown name, listing the known ones.
    """
    found = _BY_NAME.get(name.lower())
    if found is None:
        raise DeidError(f"unknown output format {name!r}; use one of {', '.join(_BY_NAME)}")
    return found


def container_for_suffix(suffix: str) -> Container:
    """The container an output extension asks for (``.ogg``: Vorbis, unless the input decides).

    Raises
    ------
    DeidError
        For an extension deid does not write, listing those it does.
    """
    key = suffix.lower()
    for found in CONTAINERS:
        if key in found.extensions:
            return found
    if key == ".aac":
        raise DeidError("the extension .aac names a raw ADTS stream, which deid does not write; "
                        "name the output .m4a (AAC in MP4)")
    raise DeidError(f"unknown output extension {suffix!r}: deid writes {_choices()} (or give --format)")


def container_of(info: AudioInfo) -> Container | None:
    """The container an input already is, or None for one deid does not write (CAF, W64...)."""
    return next((c for c in CONTAINERS if _holds(c, info)), None)


def _holds(found: Container, info: AudioInfo) -> bool:
    return any(fmt == info.format and subtype in (None, info.subtype) for fmt, subtype in found.holds)


def _pcm(found: Container, info: AudioInfo) -> str:
    """The input's sample format where the container stores it, else 16-bit."""
    return info.subtype if info.subtype in found.samples else "PCM_16"


def output_format(info: AudioInfo, name: str | None = None, *, suffix: str | None = None) -> tuple[str, str]:
    """The (format, subtype) to write for an input: ``--format`` ``name``, the output's ``suffix``,
    or, with neither, the input's own.

    Parameters
    ----------
    info : AudioInfo
        The input.
    name : str, optional
        ``--format``: wav, flac, aiff, ogg, opus, mp3 or m4a.
    suffix : str, optional
        The output's extension (``".mp3"``); empty or None when it has none (standard output).

    Raises
    ------
    DeidError
        For an unknown name or extension, a name and an extension that disagree, or an input
        whose own format deid does not write when neither is given.
    """
    asked = container(name) if name else None
    named = container_for_suffix(suffix) if suffix else None
    if asked is not None and named is not None and suffix.lower() not in asked.extensions:
        raise DeidError(f"--format {asked.name} ({asked.title}) contradicts the output name's extension {suffix} "
                        f"({named.title}); drop --format or name the output {asked.extensions[0]}")
    chosen = asked or named or container_of(info)
    if chosen is None:
        raise DeidError(f"deid does not write {info.format} files; give --format or name the output {_choices()}")
    if _holds(chosen, info) and (asked is None or asked.codec in (None, info.subtype)):
        return info.format, (info.subtype if chosen.codec else _pcm(chosen, info))
    return chosen.format, chosen.codec or _pcm(chosen, info)


#: The container of each kind of file deid's metadata walkers know.
_WALKED = {"riff": "wav", "aiff": "aiff", "flac": "flac", "ogg": "ogg", "mp3": "mp3", "mp4": "m4a"}


def check_strip_name(kind: str, dst: Path, *, opus: bool = False) -> None:
    """Refuse a ``strip`` output named as another container than its input's: strip is lossless.

    Parameters
    ----------
    kind : str
        The input's container, as the metadata walkers name it (``"riff"``, ``"mp4"``...).
    dst : Path
        The output; one without an extension is named nothing wrong.
    opus : bool
        The input is Ogg Opus (which ``.opus`` names, as well as ``.ogg``).

    Raises
    ------
    DeidError
        Naming `dst`, for an unknown extension or one of another container.
    """
    suffix = dst.suffix
    if not suffix:
        return
    try:
        named = container_for_suffix(suffix)
    except DeidError as exc:
        raise DeidError(exc.reason, dst) from None
    own = _BY_NAME["opus" if opus and kind == "ogg" else _WALKED[kind]]
    if suffix.lower() not in own.extensions:
        raise DeidError(f"strip is lossless and keeps the container: the input is {own.title}, so name the output "
                        f"{' or '.join(own.extensions)}, not {suffix} ({named.title}); deid anonymize converts", dst)


def extension(fmt: str, subtype: str) -> str:
    """The extension deid names a file of this format with (``.opus`` for Ogg Opus)."""
    for found in CONTAINERS:
        if found.format == fmt and found.codec in (None, subtype):
            return found.extensions[0]
    return "." + fmt.lower()


def output_extension(input_suffix: str, name: str | None = None, *, keep: bool = False) -> str:
    """The extension of a folder run's output: ``--format``'s, else the usual spelling of the
    input's container (``.wave`` gives ``.wav``, ``.mp4`` gives ``.m4a``, ``.opus`` stays), or
    with `keep` (strip) the input's own wherever deid writes it (``.aac``, which names raw ADTS
    streams, still gives ``.m4a``)."""
    if name:
        return container(name).extensions[0]
    key = input_suffix.lower()
    found = next((c for c in CONTAINERS if key in c.extensions + c.reads), None)
    if found is None or (keep and key in found.extensions):
        return input_suffix if keep else key
    return found.extensions[0]


def title(fmt: str, subtype: str) -> str:
    """How messages call a format: ``WAV`` for WAVEX too, ``Ogg Opus``, ``M4A (AAC in MP4)``."""
    found = next((c for c in CONTAINERS if _holds(c, AudioInfo(fmt, subtype, 0, 0, 0))), None)
    return found.title if found is not None else fmt


def describe(fmt: str, subtype: str, bitrate: int | None = None) -> str:
    """``FLAC/PCM_16``, or ``MP4/AAC 96 kbit/s`` for a coded format with a chosen bitrate."""
    return f"{fmt}/{subtype}" + (f" {bitrate // 1000} kbit/s" if bitrate else "")


def aac_bitrate(channels: int, bitrate: int | None = None) -> int:
    """The AAC bitrate in bit/s: the one asked (checked), else 96 kbit/s per channel.

    Raises
    ------
    DeidError
        When the bitrate asked is outside 8 to 320 kbit/s per channel.
    """
    if bitrate is None:
        return AAC_BITRATE * channels
    low, high = (limit * channels for limit in AAC_BITRATE_RANGE)
    if not low <= bitrate <= high:
        raise DeidError(f"--bitrate {bitrate // 1000} kbit/s is outside what AAC codes for {channels} channel(s): "
                        f"{low // 1000} to {high // 1000} kbit/s")
    return bitrate


def check_format(path: Path, sr: int, *, format: str, subtype: str, channels: int = 1) -> None:
    """Refuse a format that cannot hold this audio (Opus at 44.1 kHz, AAC at 22 kHz).

    deid keeps the rate and channel count, so a rate the codec cannot code is an error naming the
    rates it can, never a silent resampling.
    """
    import soundfile as sf

    if subtype == "OPUS" and sr not in OPUS_RATES:
        raise AudioError(f"Opus cannot store {sr} Hz audio (only {', '.join(str(r) for r in OPUS_RATES)} Hz)", path)
    if format == "MP4":
        if sr not in AAC_RATES:
            raise AudioError(f"AAC cannot store {sr} Hz audio (only {', '.join(str(r) for r in AAC_RATES)} Hz); "
                             "write FLAC or WAV, or resample first", path)
        if channels > AAC_CHANNELS:
            raise AudioError(f"AAC cannot store {channels} channels (at most {AAC_CHANNELS})", path)
        return
    if not sf.check_format(format, subtype):
        raise AudioError(f"{format} cannot store {subtype} samples", path)
