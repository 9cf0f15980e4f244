"""Opening an input: one function, :func:`open_input`, for every command and mode.

It does every check of an input, reads its header without decoding, hashes the file's bytes
while they are read, and then gives its audio as float32 ``(channels, n)`` at any span:

- :class:`SndfileSource`: every container libsndfile reads (WAV, AIFF, FLAC, Ogg, MP3), opened
  once on one file descriptor; blocks are read where they lie;
- :class:`ForwardSource`: a decoder that only goes forward (M4A through PyAV; a pipe would be
  another). A short input is decoded into memory; a long one spills its decoded samples to an
  anonymous temporary file in the system temp folder (unlinked at creation, so never visible and
  gone when the process ends, even by a kill) and is read back from there.

Checks, and where they happen: the file itself (missing, a folder, empty, unreadable) and its
header and layout (not audio, unsupported, a second audio stream after the first, which decoders
would drop without a word, a rate below 4 kHz, no samples, a WAV or AIFF whose audio chunk is
shorter than it declares) in :func:`open_input`, before anything is decoded; the samples (NaN or infinite, audio that ends before the header
says) whenever they are read. Every command runs them (``strip`` too). Hostile-input checks
belong in :func:`_check_file`, :func:`_layout` and :func:`_check_header`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import mmap
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from deid.audio.formats import AudioInfo
from deid.errors import AudioError, DeidError

#: Bytes read at once when the hash has to catch up with a reader that jumped ahead.
_CHUNK = 1 << 20
#: Frames decoded at a time by a sequential read.
_BLOCK_FRAMES = 1 << 16
#: The lowest sample rate deid handles: below it there is no speech band to anonymize (and the
#: analyses' filters cannot be built).
MIN_RATE = 4000


class _Reader:
    """Reads of the input file at any position, hashing every byte of the file in order.

    Decoders read sequentially but also jump (to the end and back, for a length). Bytes are
    hashed when the reading first passes them; a jump ahead first hashes what it skipped, so
    :meth:`hexdigest` is the SHA-256 of the whole file whatever the order of the reads.
    """

    def __init__(self, fd: int, size: int, *, digest: Any = None) -> None:
        self.fd, self.size, self._digest, self._hashed = fd, size, digest, 0

    def read_at(self, at: int, buffer: Any) -> int:
        count = os.preadv(self.fd, [buffer], at)
        self._hash_to(at, memoryview(buffer)[:count])
        return count

    def _hash_to(self, at: int, data: memoryview) -> None:
        if self._digest is None or at + len(data) <= self._hashed:
            return
        while self._hashed < at:
            gap = os.pread(self.fd, min(_CHUNK, at - self._hashed), self._hashed)
            if not gap:
                return
            self._digest.update(gap)
            self._hashed += len(gap)
        self._digest.update(data[self._hashed - at:])
        self._hashed = at + len(data)

    def hexdigest(self) -> str:
        """SHA-256 of the whole file (the bytes no decoder read are hashed now)."""
        self._hash_to(self.size, memoryview(b""))
        return self._digest.hexdigest()


class _View(io.RawIOBase):
    """The file a decoder is given: pieces of the input (spans of it, or bytes in their place) end to end.

    Usually one span, the whole file; for a file whose tags the decoder refuses, the pieces of its
    allow-listed structures (:func:`deid.metadata.rebuilt_pieces`), read in place.
    """

    def __init__(self, reader: _Reader, pieces: list[Any] | None = None) -> None:
        from deid.metadata import Span

        super().__init__()
        self._reader = reader
        self._pieces = pieces if pieces is not None else [Span(0, reader.size)]
        self._starts = np.cumsum([0] + [_length(p) for p in self._pieces])
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, pos: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: int(self._starts[-1])}[whence]
        self._pos = max(0, base + pos)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, buffer: Any) -> int:
        out = memoryview(buffer).cast("B")
        done = 0
        while done < len(out) and self._pos < self._starts[-1]:
            k = int(np.searchsorted(self._starts, self._pos, side="right")) - 1
            piece, inside = self._pieces[k], self._pos - int(self._starts[k])
            want = min(len(out) - done, _length(piece) - inside)
            if isinstance(piece, bytes):
                out[done: done + want] = piece[inside: inside + want]
                count = want
            else:
                count = self._reader.read_at(piece.start + inside, out[done: done + want])
                if count == 0:
                    break
            done += count
            self._pos += count
        return done


def _length(piece: Any) -> int:
    return len(piece) if isinstance(piece, bytes) else piece.stop - piece.start


class Source:
    """An opened input: its header (``info``), and its audio at any span.

    Attributes
    ----------
    path : Path
    info : AudioInfo
        From the header; ``info.frames`` becomes exact once the whole file has been decoded
        (:meth:`load` or :meth:`scan`).
    peak : float
        Largest absolute sample read so far.
    """

    def __init__(self, path: Path, info: AudioInfo, reader: _Reader) -> None:
        self.path, self.info, self._reader = path, info, reader
        self.peak = 0.0
        self._exact = False

    @property
    def sr(self) -> int:
        return self.info.samplerate

    @property
    def channels(self) -> int:
        return self.info.channels

    @property
    def frames(self) -> int:
        return self.info.frames

    @property
    def exact(self) -> bool:
        """Whether ``frames`` is known to be what decoding gives (else :meth:`scan` first)."""
        return self._exact

    @property
    def sha256(self) -> str:
        """SHA-256 of the file's bytes, as the decoder read them (and the rest)."""
        if self._reader._digest is None:
            raise DeidError("the input was opened without hashing", self.path)
        return self._reader.hexdigest()

    def read(self, a: int, b: int) -> np.ndarray:
        """float32 ``(channels, b - a)`` of frames ``[a, b)``."""
        raise NotImplementedError

    def load(self) -> np.ndarray:
        """Decode the whole file in one sequential read and keep it: float32 ``(channels, n)``."""
        raise NotImplementedError

    def scan(self) -> None:
        """Decode the whole file once, in order: exact length, every sample checked, the hash complete."""
        raise NotImplementedError

    def close(self) -> None:
        os.close(self._reader.fd)

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _checked(self, x: np.ndarray) -> np.ndarray:
        if x.size:
            peak = float(np.max(np.abs(x)))
            if not np.isfinite(peak):
                raise AudioError("contains NaN or infinite samples", self.path)
            self.peak = max(self.peak, peak)
        return x

    def _decoded(self, count: int) -> None:
        """Record the length a complete decode found; refuse one that ends before the header says."""
        declared = self.info.frames
        if declared and count < 0.99 * declared:
            raise AudioError(f"truncated: the header declares {declared} frames, only {count} could be decoded",
                             self.path)
        if count == 0:
            raise AudioError("holds no audio samples", self.path)
        self.info = dataclasses.replace(self.info, frames=count)
        self._exact = True


class SndfileSource(Source):
    """A file libsndfile reads, on the input's one file descriptor; blocks are read where they lie."""

    def __init__(self, path: Path, info: AudioInfo, reader: _Reader, handle: Any) -> None:
        super().__init__(path, info, reader)
        self._handle = handle
        # MP3 lengths are estimates until decoded (no Xing header, or a lying one).
        self._exact = info.format != "MP3"

    def read(self, a: int, b: int) -> np.ndarray:
        import soundfile as sf

        try:
            self._handle.seek(a)
            data = self._handle.read(b - a, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise AudioError(_decode_reason(exc), self.path) from None
        if len(data) < b - a:
            raise AudioError(f"truncated: audio ends at frame {a + len(data)} of {self.frames}", self.path)
        return self._checked(np.ascontiguousarray(data.T))

    def _blocks(self) -> Iterator[np.ndarray]:
        import soundfile as sf

        try:
            self._handle.seek(0)
            for chunk in self._handle.blocks(blocksize=_BLOCK_FRAMES, dtype="float32", always_2d=True):
                yield self._checked(np.ascontiguousarray(chunk.T))
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise AudioError(_decode_reason(exc), self.path) from None

    def load(self) -> np.ndarray:
        import soundfile as sf

        try:
            self._handle.seek(0)
            data = np.ascontiguousarray(self._handle.read(dtype="float32", always_2d=True).T)
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise AudioError(_decode_reason(exc), self.path) from None
        self._decoded(data.shape[1])
        return self._checked(data)

    def scan(self) -> None:
        self._decoded(sum(chunk.shape[1] for chunk in self._blocks()))

    def close(self) -> None:
        self._handle.close()
        super().close()


class ForwardSource(Source):
    """A decoder that only goes forward (PyAV for M4A): decoded into memory, or spilled when long.

    A spill is raw float32 in an anonymous temporary file of the system temp folder, unlinked at
    creation: it holds the decoded input, so it must never have a name anyone could find.
    """

    def __init__(self, path: Path, info: AudioInfo, reader: _Reader, container: Any) -> None:
        super().__init__(path, info, reader)
        self._container = container
        self._data: np.ndarray | None = None
        self._spill: Any = None

    def _blocks(self) -> Iterator[np.ndarray]:
        import av

        stream = self._container.streams.audio[0]
        context = stream.codec_context
        resampler = av.AudioResampler(format="fltp", layout=context.layout.name, rate=context.sample_rate)
        try:
            self._container.seek(0)
            for frame in self._container.decode(stream):
                for out in resampler.resample(frame):
                    yield self._checked(np.ascontiguousarray(out.to_ndarray(), dtype=np.float32))
            for out in resampler.resample(None):
                yield self._checked(np.ascontiguousarray(out.to_ndarray(), dtype=np.float32))
        except av.error.FFmpegError as exc:
            raise AudioError(f"cannot decode: {exc}", self.path) from None

    def load(self) -> np.ndarray:
        if self._data is None:
            pieces = list(self._blocks())
            data = np.concatenate(pieces, axis=1) if pieces else np.zeros((self.channels, 0), np.float32)
            self._decoded(data.shape[1])
            self._data = data
        return self._data

    def scan(self) -> None:
        if self._data is not None or self._spill is not None:
            return
        spill = tempfile.TemporaryFile(prefix="deid-")  # noqa: SIM115 - closed by close()
        count = 0
        try:
            for piece in self._blocks():
                spill.write(np.ascontiguousarray(piece.T).tobytes())
                count += piece.shape[1]
            spill.flush()
            self._decoded(count)
        except BaseException:
            spill.close()
            raise
        self._spill = spill

    def read(self, a: int, b: int) -> np.ndarray:
        if self._data is not None:
            return self._data[:, a:b]
        self.scan()
        size = 4 * self.channels
        raw = os.pread(self._spill.fileno(), (b - a) * size, a * size)
        if len(raw) < (b - a) * size:
            raise AudioError(f"truncated: audio ends at frame {a + len(raw) // size} of {self.frames}", self.path)
        return np.frombuffer(raw, dtype=np.float32).reshape(-1, self.channels).T.copy()

    def close(self) -> None:
        self._container.close()
        if self._spill is not None:
            self._spill.close()
        super().close()


def open_input(path: str | Path, *, hash: bool = True) -> Source:
    """Open an input for reading: every check that needs no decoding, then the header.

    Parameters
    ----------
    path : str or Path
        A WAV, AIFF, FLAC, Ogg Vorbis/Opus, MP3 or MP4/M4A file.
    hash : bool
        Hash the file's bytes as they are read (``Source.sha256``). A batch that has hashed the
        file already passes False.

    Raises
    ------
    AudioError
        With a one-line reason naming the file: missing, a folder, empty, unreadable, not audio,
        unsupported, or truncated according to its header.
    """
    path = Path(path)
    size = _check_file(path)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise AudioError(f"cannot read: {exc.strerror or exc}", path) from None
    try:
        head = os.pread(fd, 1 << 16, 0)
        trailing, layout_error = _layout(path, head)
        reader = _Reader(fd, size, digest=hashlib.sha256() if hash else None)
        try:
            if head[4:8] == b"ftyp":
                source: Source = _open_av(path, reader)
            else:
                source = _open_sndfile(path, reader)
        except AudioError:
            # deid's own walker says more precisely what is wrong (a count no file could hold).
            if layout_error is not None:
                raise AudioError(layout_error.reason, path) from None
            raise
        if trailing is not None and trailing.streams:
            raise AudioError(trailing.reason(), path)
        _check_header(source, fd)
        return source
    except BaseException:
        os.close(fd)
        raise


def _check_file(path: Path) -> int:
    """Refuse what is not a readable, non-empty file; returns its size."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise AudioError("no such file", path) from None
    except OSError as exc:
        raise AudioError(f"cannot read: {exc.strerror}", path) from None
    if path.is_dir():
        raise AudioError("is a folder, not an audio file", path)
    if stat.st_size == 0:
        raise AudioError("empty file (0 bytes)", path)
    return stat.st_size


def _layout(path: Path, head: bytes) -> tuple[Any, DeidError | None]:
    """What deid's own walker finds after the first audio stream (`deid.metadata.trailing_data`),
    or why it cannot lay out a container it knows; a file the decoder reads need not be one it can."""
    from deid.metadata import sniff, trailing_data

    try:
        sniff(head)
    except DeidError:
        return None, None  # not a container deid knows: the decoder says what it is not
    try:
        return trailing_data(path), None
    except DeidError as exc:
        return None, exc


def _check_header(source: Source, fd: int) -> None:
    """Refuse what the header shows, before any decoding: a rate below `MIN_RATE`, no audio, and
    audio that ends before the header says (an interrupted copy or recording)."""
    from deid.metadata import declared_audio

    info, path = source.info, source.path
    if info.samplerate < MIN_RATE:
        raise AudioError(f"sample rate of {info.samplerate} Hz: deid handles {MIN_RATE} Hz and more", path)
    if info.channels < 1 or (source.exact and info.frames == 0):
        raise AudioError("holds no audio samples", path)
    if info.format not in ("WAV", "WAVEX", "AIFF"):
        return
    with mmap.mmap(fd, 0, access=mmap.ACCESS_READ) as buf:
        try:
            extent = declared_audio(buf)
        except DeidError:
            return
    if extent is not None and extent[1] < extent[0]:
        raise AudioError(f"truncated: the header declares {extent[0]} bytes of audio, the file holds {extent[1]}",
                         path)


def _open_sndfile(path: Path, reader: _Reader) -> SndfileSource:
    import soundfile as sf

    try:
        handle = sf.SoundFile(_View(reader))
    except (sf.LibsndfileError, RuntimeError) as exc:
        # Taggers put ID3v2 before FLAC's marker, and some write blocks libFLAC refuses: give
        # libsndfile the file as strip would rebuild it, read in place.
        from deid.metadata import rebuilt_pieces

        try:
            with mmap.mmap(reader.fd, 0, access=mmap.ACCESS_READ) as buf:
                pieces = rebuilt_pieces(buf)
            handle = sf.SoundFile(_View(reader, pieces))
        except (DeidError, sf.LibsndfileError, RuntimeError):
            raise AudioError(_decode_reason(exc), path) from None
    info = AudioInfo(handle.format, handle.subtype, handle.samplerate, handle.channels, handle.frames)
    return SndfileSource(path, info, reader, handle)


def _open_av(path: Path, reader: _Reader) -> ForwardSource:
    import av

    from deid.metadata import rebuilt_pieces

    # deid's walker reads the sample tables with every count bounded by the bytes that hold it,
    # before FFmpeg trusts them.
    with mmap.mmap(reader.fd, 0, access=mmap.ACCESS_READ) as buf:
        try:
            rebuilt_pieces(buf)
        except AudioError as exc:
            raise AudioError(exc.reason, path) from None
    try:
        container = av.open(_View(reader), mode="r")
    except av.error.FFmpegError as exc:
        raise AudioError(f"cannot decode: {exc}", path) from None
    if not container.streams.audio:
        container.close()
        raise AudioError("no audio stream", path)
    stream = container.streams.audio[0]
    sr = stream.codec_context.sample_rate
    seconds = float(stream.duration * stream.time_base) if stream.duration else float(container.duration or 0) / 1e6
    info = AudioInfo("MP4", "AAC", sr, stream.codec_context.channels, int(round(seconds * sr)), decoder="ffmpeg")
    return ForwardSource(path, info, reader, container)


def _decode_reason(exc: Exception) -> str:
    # libsndfile's own words: str() adds "Error opening <the object read>", which names a
    # Python object (or a stand-in for a file in a store), and the error names the file already.
    text = (getattr(exc, "error_string", None) or str(exc)).split("\n")[0]
    lowered = text.lower()
    if "unknown format" in lowered or "format not recognised" in lowered or "not a regular file" in lowered:
        return "not a recognised audio file (unsupported format or corrupt header)"
    if "lost sync" in text or "truncated" in lowered:
        return "corrupt or truncated audio data"
    return f"cannot decode: {text.removeprefix('Error : ').strip()}"
