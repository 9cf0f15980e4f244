"""Opening an input: one function, :func:`open_input`, for every command and mode.

It does every check of an input, reads its header without decoding, hashes the file's bytes
while they are read, and then gives its audio as float32 ``(channels, n)`` at any span:

- :class:`SndfileSource`: every container libsndfile reads (WAV, AIFF, FLAC, Ogg, MP3), opened
  once on one file descriptor; blocks are read where they lie;
- :class:`ForwardSource`: a decoder that only goes forward (M4A through PyAV; a pipe would be
  another). A short input is decoded into memory; a long one spills its decoded samples to an
  anonymous temporary file in the system temp folder (unlinked at creation, so never visible and
  gone when the process ends, even by a kill) and is read back from there.

Checks, and where they happen, for every command and mode alike: in :func:`open_input`, before
anything is decoded, the file itself (missing, a folder, empty, unreadable:
:func:`_check_file`), its structure as deid's own parser reads it (not audio, unsupported,
corrupt, cut or lying about its length, a second audio stream: :func:`_check_structure`) and
its header as the decoder reads it (no channels, no samples, a rate below the floor:
:func:`_check_header`); the samples (NaN or infinite, audio that ends before the header says)
whenever they are read. Hostile-input checks belong in those three functions.
"""

from __future__ import annotations

import contextlib
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
from deid.paths import as_path, read_failure

#: Bytes read at once when the hash has to catch up with a reader that jumped ahead.
_CHUNK = 1 << 20
#: Frames decoded at a time by a sequential read.
_BLOCK_FRAMES = 1 << 16


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
        #: The file's regions as the input check parsed them (:mod:`deid.metadata.layout`).
        self.regions: list[Any] = []

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

    @contextlib.contextmanager
    def mapped(self) -> Iterator[mmap.mmap]:
        """The file's bytes, mapped read-only from the descriptor the checks read (the file
        :attr:`regions` describe, even if its name has since been given to another)."""
        with mmap.mmap(self._reader.fd, 0, access=mmap.ACCESS_READ) as buf:
            yield buf

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

    This is the one input check of every command and mode (anonymize, strip, inspect; a file or
    a folder): what it refuses, none of them reads.

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
        unsupported, corrupt, cut or lying about its length (from its structure), holding a
        second audio stream, or with a header no recording has (no channels, no samples, a
        rate below :data:`deid.defaults.MIN_SAMPLE_RATE`).
    """
    path = as_path(path, "the input")
    size = _check_file(path)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise AudioError(read_failure(exc), path) from None
    try:
        reader = _Reader(fd, size, digest=hashlib.sha256() if hash else None)
        regions = _check_structure(path, fd)
        if regions[0].kind == "mp4":
            source: Source = _open_av(path, reader)
        else:
            source = _open_sndfile(path, reader)
        source.regions = regions
        _check_header(source)
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
        raise AudioError(read_failure(exc), path) from None
    if path.is_dir():
        raise AudioError("is a folder, not an audio file", path)
    if stat.st_size == 0:
        raise AudioError("empty file (0 bytes)", path)
    return stat.st_size


def _check_structure(path: Path, fd: int) -> list[Any]:
    """The file's regions, read by deid's own parser, which refuses (before any decoder sees the
    file) a container it does not know, a first stream that is corrupt, cut or lies about its
    length, and a second audio stream (see :func:`deid.metadata.check_regions`)."""
    from deid.metadata import check_regions

    with mmap.mmap(fd, 0, access=mmap.ACCESS_READ) as buf:
        try:
            return check_regions(buf)
        except AudioError as exc:
            raise AudioError(exc.reason, path) from None


def _check_header(source: Source) -> None:
    """Refuse a header no recording has, as the decoder reads it: no channels, a rate below the
    floor, or (where the header's length is exact) no samples at all."""
    from deid.defaults import MIN_SAMPLE_RATE

    info = source.info
    if info.channels < 1:
        raise AudioError(f"has {info.channels} channels", source.path)
    if info.samplerate < MIN_SAMPLE_RATE:
        raise AudioError(f"its sample rate is {info.samplerate} Hz; deid reads speech sampled at {MIN_SAMPLE_RATE} Hz "
                         "(telephone quality) or more", source.path)
    if source.exact and info.frames == 0:
        raise AudioError("holds no audio samples", source.path)


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
