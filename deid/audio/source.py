"""Opening an input: one function, :func:`open_input`, for every command and mode.

It does every check of an input, reads its header without decoding, hashes the file's bytes
while they are read, and then gives its audio as float32 ``(channels, n)`` at any span:

- :class:`SndfileSource`: every container libsndfile reads (WAV, AIFF, FLAC, Ogg, MP3), opened
  once on one file descriptor; blocks are read where they lie;
- :class:`ForwardSource`: a decoder that only goes forward (M4A through PyAV), decoded once. A
  short input is kept in memory; a long one spills its decoded samples to an anonymous
  temporary file in the system temp folder (unlinked at creation, so never visible and gone
  when the process ends, even by a kill; scrambled under a key only the process holds) and is
  read back from there;
- :class:`StreamSource`: standard input (WAV, AIFF, FLAC, Ogg or MP3, by content), a forward
  source whose length is known once it has all arrived.

Checks, and where they happen, for every command and mode alike: in :func:`open_input`, before
anything is decoded, the file itself (missing, a folder, empty, unreadable:
:func:`_check_file`), its structure as deid's own parser reads it (not audio, unsupported,
corrupt, cut or lying about its length, a second audio stream: :func:`_check_structure`) and
its header as the decoder reads it (no channels, no samples, a rate below the floor:
:func:`_check_header`); the samples (NaN or infinite, audio that ends before the header says)
whenever they are read. Hostile-input checks belong in those three functions. A stream
(standard input) gets the header check at once, and what its WAV, AIFF or FLAC header declares
(its length, where the first file ends) is held to once it has all arrived.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import itertools
import mmap
import os
import tempfile
from fractions import Fraction
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from deid.audio.formats import AudioInfo
from deid.defaults import BLOCK_SECONDS
from deid.errors import AudioError, DeidError
from deid.paths import as_path, read_failure

#: Bytes read at once when the hash has to catch up with a reader that jumped ahead.
_CHUNK = 1 << 20
#: Frames decoded at a time by a sequential read.
_BLOCK_FRAMES = 1 << 16
#: A forward-only input up to this long is kept in memory once decoded; a longer one is spilled
#: (the engine's one-block limit at the default block length).
MEMORY_SECONDS = 1.25 * BLOCK_SECONDS
#: Decoded samples beyond a declared length that are the padding of an encoder's last frame
#: (AAC: 1024 per frame, and a frame of rounding).
_PADDING = 2048
#: How messages name standard input.
STDIN = "<stdin>"
#: The containers standard input may carry, as FFmpeg's demuxers (by deid's own sniffing).
_STREAM_DEMUXERS = {"riff": ("wav", "WAV"), "aiff": ("aiff", "AIFF"), "flac": ("flac", "FLAC"), "ogg": ("ogg", "OGG"),
                    "mp3": ("mp3", "MP3")}
#: What sniffing a stream may need: its first bytes, or more behind a large ID3v2 tag.
_SNIFF_BYTES, _SNIFF_MAX = 1 << 16, 1 << 24


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
            raise _truncated(declared, count, self.path)
        if count == 0:
            raise AudioError("holds no audio samples", self.path)
        self.info = dataclasses.replace(self.info, frames=count)
        self._exact = True


def _truncated(declared: int, count: int, path: Path) -> AudioError:
    return AudioError(f"truncated: the header declares {declared} frames, only {count} could be decoded", path)


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


class _Spill:
    """Decoded samples in an anonymous temporary file of the system temp folder, scrambled.

    The file is unlinked at creation, so it is never visible and is gone when the process ends,
    even by a kill. It holds the decoded input, so its bytes are also XORed with a SHAKE-256
    keystream under a random key that lives only in this process: not even the disk blocks it
    used hold readable audio. Written in order, read at any span.
    """

    #: Bytes of keystream per counter value.
    _CHUNK = 1 << 16

    def __init__(self, channels: int) -> None:
        self._file = tempfile.TemporaryFile(prefix="deid-")  # noqa: SIM115 - closed by close()
        self._key = os.urandom(32)
        self._frame = 4 * channels
        self._size = 0

    def fileno(self) -> int:
        return self._file.fileno()

    def _keystream(self, start: int, stop: int) -> np.ndarray:
        first, last = start // self._CHUNK, (stop - 1) // self._CHUNK
        stream = b"".join(hashlib.shake_256(self._key + i.to_bytes(8, "little")).digest(self._CHUNK)
                          for i in range(first, last + 1))
        offset = first * self._CHUNK
        return np.frombuffer(stream, dtype=np.uint8)[start - offset: stop - offset]

    def write(self, piece: np.ndarray) -> None:
        """Append float32 ``(channels, n)`` samples."""
        data = np.ascontiguousarray(piece.T, dtype=np.float32).view(np.uint8).reshape(-1)
        if data.size:
            self._file.write((data ^ self._keystream(self._size, self._size + data.size)).tobytes())
            self._size += data.size

    def read(self, a: int, b: int) -> np.ndarray:
        """float32 ``(channels, b - a)`` of frames ``[a, b)``, or fewer where the spill ends."""
        start, stop = a * self._frame, min(b * self._frame, self._size)
        if stop <= start:
            return np.zeros((self._frame // 4, 0), dtype=np.float32)
        self._file.flush()
        raw = np.frombuffer(os.pread(self._file.fileno(), stop - start, start), dtype=np.uint8)
        plain = raw ^ self._keystream(start, start + raw.size)
        return plain.view(np.float32).reshape(-1, self._frame // 4).T.copy()

    def close(self) -> None:
        self._file.close()


class ForwardSource(Source):
    """A decoder that only goes forward (PyAV): decoded once, into memory or, when long, a spill.

    Up to :data:`MEMORY_SECONDS` of audio is kept in memory; a longer input goes, all of it, to
    a :class:`_Spill` as it is decoded and is read back from there, so memory stays bounded
    however long the input. Samples come as FFmpeg decodes them, except that decoding is
    trimmed to the length the container declares (an MP4 edit list that ends inside the last
    AAC frame: FFmpeg drops the encoder's priming but not its padding).
    """

    def __init__(self, path: Path, info: AudioInfo, reader: Any, container: Any) -> None:
        super().__init__(path, info, reader)
        self._container = container
        self._data: np.ndarray | None = None
        self._spill: _Spill | None = None

    def _blocks(self) -> Iterator[np.ndarray]:
        import av

        stream = self._container.streams.audio[0]
        context = stream.codec_context
        # Interleaved float: PyAV's planar arrays fail beyond seven channels.
        resampler = av.AudioResampler(format="flt", layout=context.layout, rate=context.sample_rate)
        pending: list[np.ndarray] = []
        held = done = 0
        try:
            for frame in itertools.chain(self._container.decode(stream), [None]):
                for out in resampler.resample(frame):
                    pending.append(out.to_ndarray().reshape(-1, self.channels).T)
                    held += pending[-1].shape[1]
                if held >= _BLOCK_FRAMES or (frame is None and held):
                    yield self._checked(np.ascontiguousarray(np.concatenate(pending, axis=1), dtype=np.float32))
                    pending, held, done = [], 0, done + held
        except av.error.FFmpegError as exc:
            if 0 < done + held < self.info.frames:  # a cut in the middle of a frame, short of the declared end
                raise _truncated(self.info.frames, done + held, self.path) from None
            raise AudioError(f"cannot decode: {exc}", self.path) from None

    def scan(self) -> None:
        if self._data is not None or self._spill is not None:
            return
        limit = int(MEMORY_SECONDS * self.sr)
        pieces: list[np.ndarray] = []
        count, spill = 0, None
        try:
            for piece in self._blocks():
                if spill is None and count + piece.shape[1] > limit:
                    spill = _Spill(self.channels)
                    for held in pieces:
                        spill.write(held)
                    pieces = []
                if spill is not None:
                    spill.write(piece)
                else:
                    pieces.append(piece)
                count += piece.shape[1]
            if 0 < self.info.frames < count <= self.info.frames + _PADDING:
                count = self.info.frames  # the encoder's padding, past the end its edit list declares
            self._decoded(count)
        except BaseException:
            if spill is not None:
                spill.close()
            raise
        if spill is not None:
            self._spill = spill
        else:
            data = np.concatenate(pieces, axis=1) if pieces else np.zeros((self.channels, 0), np.float32)
            self._data = np.ascontiguousarray(data[:, :count])

    def load(self) -> np.ndarray:
        self.scan()
        return self._data if self._data is not None else self.read(0, self.frames)

    def read(self, a: int, b: int) -> np.ndarray:
        self.scan()
        if self._data is not None:
            return self._data[:, a:b]
        b = min(b, self.frames)
        data = self._spill.read(a, b)
        if data.shape[1] < b - a:
            raise AudioError(f"truncated: audio ends at frame {a + data.shape[1]} of {self.frames}", self.path)
        return data

    def close(self) -> None:
        self._container.close()
        if self._spill is not None:
            self._spill.close()
        super().close()


class _StreamReader(io.RawIOBase):
    """A binary stream read once, in order, hashing every byte; what was peeked is read again first.

    With :meth:`watch`, the bytes found at an offset (where a WAV or AIFF header says the file
    ends) are kept, to tell what follows the first file.
    """

    def __init__(self, stream: BinaryIO) -> None:
        super().__init__()
        self._stream, self._digest, self._peeked, self.count = stream, hashlib.sha256(), b"", 0
        #: Where a WAV or AIFF header says the file ends (see :meth:`watch`).
        self.end: int | None = None
        self.after = b""

    def readable(self) -> bool:
        return True

    def watch(self, offset: int) -> None:
        """Keep the first bytes found at `offset` in :attr:`after` (nothing may have been read but peeked)."""
        self.end = offset
        self.after = self._peeked[offset:offset + _SNIFF_BYTES]

    def _take(self, size: int) -> bytes:
        data = self._stream.read(size)
        self._digest.update(data)
        if self.end is not None and self.count + len(data) > self.end and len(self.after) < _SNIFF_BYTES:
            self.after += data[max(0, self.end - self.count + len(self.after)):][:_SNIFF_BYTES - len(self.after)]
        self.count += len(data)
        return data

    def peek(self, size: int) -> bytes:
        """The stream's first `size` bytes (fewer if it is shorter), without consuming them."""
        while len(self._peeked) < size:
            more = self._take(size - len(self._peeked))
            if not more:
                break
            self._peeked += more
        return self._peeked[:size]

    def readinto(self, buffer: Any) -> int:
        out = memoryview(buffer).cast("B")
        if self._peeked:
            count = min(len(out), len(self._peeked))
            out[:count] = self._peeked[:count]
            self._peeked = self._peeked[count:]
            return count
        data = self._take(len(out))
        out[:len(data)] = data
        return len(data)

    def drain(self) -> None:
        """Read (and hash) what no decoder read."""
        while self._take(_CHUNK):
            pass

    def hexdigest(self) -> str:
        """SHA-256 of the whole stream."""
        self.drain()
        return self._digest.hexdigest()


class StreamSource(ForwardSource):
    """Audio from a stream that only goes forward (standard input): WAV, AIFF, FLAC, Ogg or MP3,
    recognised by content and decoded by FFmpeg as it arrives.

    Its length is known once all of it has arrived (:meth:`scan`, which ``anonymize_file`` calls
    before anything else reads it). A second file after the first (WAV or AIFF files joined with
    ``cat``), which FFmpeg would not play, is refused as it is in a file, and so is a stream that
    ends before its WAV or AIFF header says (an interrupted copy). The stream itself is not closed.
    """

    def scan(self) -> None:
        if self._data is not None or self._spill is not None:
            return
        from deid.metadata import NAMES, Trailing, sniff

        super().scan()
        self._reader.drain()
        end, count = self._reader.end, self._reader.count
        if end is not None and count + 1 < end:  # a missing pad byte at the very end loses nothing
            raise AudioError(f"truncated: the header declares {end} bytes, the stream held {count}", self.path)
        try:
            kind = sniff(self._reader.after) if self._reader.after else ""
        except DeidError:
            kind = ""
        if kind:
            raise AudioError(Trailing(end, count - end, ((NAMES[kind], end),), 0).reason(), self.path)

    def close(self) -> None:
        self._container.close()
        if self._spill is not None:
            self._spill.close()


def open_input(path: str | Path | BinaryIO, *, hash: bool = True) -> Source:
    """Open an input for reading: every check that needs no decoding, then the header.

    This is the one input check of every command and mode (anonymize, strip, inspect; a file or
    a folder): what it refuses, none of them reads.

    Parameters
    ----------
    path : str, Path or binary stream
        A WAV, AIFF, FLAC, Ogg Vorbis/Opus, MP3 or MP4/M4A file; or a stream read once, in order
        (standard input: ``sys.stdin.buffer``), holding WAV, AIFF, FLAC, Ogg or MP3.
    hash : bool
        Hash the file's bytes as they are read (``Source.sha256``). A batch that has hashed the
        file already passes False. A stream is always hashed.

    Raises
    ------
    AudioError
        With a one-line reason naming the file: missing, a folder, empty, unreadable, not audio,
        unsupported, corrupt, cut or lying about its length (from its structure), holding a
        second audio stream, or with a header no recording has (no channels, no samples, a
        rate below :data:`deid.defaults.MIN_SAMPLE_RATE`).
    """
    if not isinstance(path, (str, os.PathLike)) and hasattr(path, "read"):
        return _open_stream(path)
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


def _open_stream(stream: BinaryIO) -> StreamSource:
    """A stream's container from its first bytes (deid's own sniffing, never FFmpeg's guess), then
    FFmpeg's demuxer for it; the length stays open until the stream has been read."""
    from deid.metadata import sniff
    from deid.metadata.id3 import id3v2_size
    from deid.metadata.mp3 import frame_length, gapless_samples

    path = Path(STDIN)
    reader = _StreamReader(stream)
    head = reader.peek(_SNIFF_BYTES)
    if not head:
        raise AudioError("empty input (0 bytes)", path)
    tag = id3v2_size(head, 0) if head[:3] == b"ID3" else 0
    if tag > _SNIFF_MAX:
        raise AudioError(f"an ID3v2 tag of {tag} bytes opens the stream; deid reads up to {_SNIFF_MAX}", path)
    head = reader.peek(tag + _SNIFF_BYTES) if tag else head
    try:
        kind = sniff(head)
    except DeidError:
        kind = ""
    if kind == "mp4":
        raise AudioError("M4A cannot be read from a pipe (its index may follow its audio); give its file name, "
                         "or pipe WAV or FLAC", path)
    if kind not in _STREAM_DEMUXERS:
        raise AudioError("not a recognised audio stream (WAV, AIFF, FLAC, Ogg and MP3 can be piped)", path)
    demuxer, container_format = _STREAM_DEMUXERS[kind]
    declared = int.from_bytes(head[4:8], "little" if kind == "riff" else "big")
    if kind in ("riff", "aiff") and declared not in (0, 0xFFFFFFFF):
        reader.watch(8 + declared + (declared & 1))  # where the header says the file ends
    container, stream = _open_audio_stream(reader, path, format=demuxer)
    context = stream.codec_context
    if kind == "riff" and _wave_format_tag(head) == 0xFFFE:
        container_format = "WAVEX"  # WAVE_FORMAT_EXTENSIBLE, as libsndfile names it
    # FFmpeg honours an MP3's LAME header from a pipe only at the start: the length it declares
    # trims the encoder's padding at the end, as libsndfile does for a file.
    frames = (gapless_samples(head[tag:tag + frame_length(head[tag:tag + 4])]) or 0) if kind == "mp3" else 0
    if kind == "flac" and stream.duration and stream.time_base == Fraction(1, context.sample_rate):
        frames = int(stream.duration)  # STREAMINFO's total, exact (0 where the encoder did not know it)
    info = AudioInfo(container_format, _subtype(context), context.sample_rate, context.channels, frames,
                     decoder="ffmpeg")
    source = StreamSource(path, info, reader, container)
    try:
        _check_header(source)
    except AudioError:
        source.close()
        raise
    return source


def _wave_format_tag(head: bytes) -> int:
    """The format tag of a WAV's ``fmt `` chunk, from the first bytes of the stream (0 if not there)."""
    at = 12
    while at + 10 <= len(head):
        size = int.from_bytes(head[at + 4:at + 8], "little")
        if head[at:at + 4] == b"fmt ":
            return int.from_bytes(head[at + 8:at + 10], "little")
        at += 8 + size + (size & 1)
    return 0


#: FFmpeg's decoders and the sample formats they decode to, as libsndfile names them.
_SUBTYPES = {"vorbis": "VORBIS", "opus": "OPUS", "libopus": "OPUS", "mp3": "MPEG_LAYER_III",
             "mp3float": "MPEG_LAYER_III", "pcm_u8": "PCM_U8", "pcm_s8": "PCM_S8", "pcm_alaw": "ALAW",
             "pcm_mulaw": "ULAW"}
_BY_WIDTH = {("s16", "pcm"): "PCM_16", ("s32", "pcm"): "PCM_32", ("flt", "pcm"): "FLOAT", ("dbl", "pcm"): "DOUBLE",
             ("s16", "flac"): "PCM_16", ("s32", "flac"): "PCM_24"}


def _subtype(context: Any) -> str:
    """The sample format of a stream, as soundfile names it (24-bit PCM decodes to 32-bit)."""
    name = context.name
    if name in _SUBTYPES:
        return _SUBTYPES[name]
    if name.startswith("pcm_s24"):
        return "PCM_24"
    family = "flac" if name == "flac" else "pcm" if name.startswith("pcm_") else name
    return _BY_WIDTH.get((context.format.name.rstrip("p"), family), name.upper())


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


def _open_audio_stream(target: Any, path: Path, *, format: str | None = None) -> tuple[Any, Any]:
    """FFmpeg's container of `target` (a file object) and its first audio stream."""
    import av

    try:
        container = av.open(target, mode="r", format=format)
    except av.error.FFmpegError as exc:
        raise AudioError(f"cannot decode: {exc}", path) from None
    if not container.streams.audio:
        container.close()
        raise AudioError("no audio stream", path)
    return container, container.streams.audio[0]


def _open_av(path: Path, reader: _Reader) -> ForwardSource:
    container, stream = _open_audio_stream(_View(reader), path)
    sr = stream.codec_context.sample_rate
    # The stream's duration is its edit list's, to the sample when the time base is the rate.
    seconds = float(stream.duration * stream.time_base) if stream.duration else float(container.duration or 0) / 1e6
    codec = stream.codec_context.name.upper()
    info = AudioInfo("MP4", codec, sr, stream.codec_context.channels, int(round(seconds * sr)), decoder="ffmpeg")
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
