"""Writing an output: one function, :func:`open_output`, and one sink for every container.

:func:`open_output` does every check of an output before any processing starts: the write rule
(:func:`deid.paths.check_writes`: not an input, not a folder, not a read-only file...), its
folder exists and is writable, the format can hold the rate, channels and sample format. The
sink then takes the audio in pieces and, on :meth:`FileSink.commit`:

1. **encode**: libsndfile (or, for M4A, FFmpeg's AAC encoder) has written the pieces into an
   anonymous temporary file in the system temp folder (never visible, gone when the process ends);
2. **clean, verify, hash**: :func:`deid.metadata.clean_encoded` rebuilds it from the structures on
   the allow-list into a hidden temporary file beside the output, hashing the bytes as it
   writes them, and walks the result with deid's own parser;
3. **rename**: that file is flushed to disk and renamed onto the output, so a crash never leaves
   a half-written file under the final name.

Another container is another encoder in :data:`_ENCODERS`; everything after encoding is shared.
An output to a stream (standard output) is a :class:`StreamSink`: encoded, cleaned and verified
the same way, in a private temporary folder, before its first byte is copied out.
"""

from __future__ import annotations

import mmap
import os
import shutil
import tempfile
from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from deid.audio.formats import aac_bitrate, check_format, extension, title
from deid.errors import AudioError, DeidError
from deid.paths import TempFile, check_writes

#: How messages name standard output.
STDOUT = "<stdout>"
#: Bytes copied at a time to a stream.
_COPY = 1 << 20


class _SndfileEncoder:
    """libsndfile writing a container into a file object."""

    def __init__(self, target: Any, path: Path, *, sr: int, channels: int, format: str, subtype: str,
                 bitrate: int | None = None) -> None:
        import soundfile as sf

        self._describe = f"{format}/{subtype} at {sr} Hz"
        self._path = path
        try:
            self._handle = sf.SoundFile(target, "w", sr, channels, subtype=subtype, format=format)
        except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
            raise AudioError(f"cannot write {self._describe}: {exc}", path) from None

    def write(self, piece: np.ndarray) -> None:
        import soundfile as sf

        try:
            self._handle.write(np.ascontiguousarray(piece.T))
        except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
            raise AudioError(f"cannot write {self._describe}: {exc}", self._path) from None

    def close(self) -> None:
        self._handle.close()


#: FFmpeg's channel layouts that AAC codes, by channel count (its channel configurations 1 to 7).
_AAC_LAYOUTS = {1: "mono", 2: "stereo", 3: "3.0", 4: "4.0", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}


class _AacEncoder:
    """AAC-LC in MP4 (the M4A brand) by FFmpeg's own encoder, from the PyAV wheel.

    Both the encoder and the muxer run with FFmpeg's bitexact flags, so the same samples give the
    same bytes and no version string is written. The movie time scale is the sample rate, so the
    edit list that hides the encoder's priming (1024 samples) ends on the exact last sample. The
    muxer's own boxes (``udta``, ``free``, the handler name) are removed by the cleaning after it.
    Samples go in interleaved (``flt``): PyAV's planar frames fail beyond seven channels.
    """

    def __init__(self, target: Any, path: Path, *, sr: int, channels: int, format: str, subtype: str,
                 bitrate: int | None = None) -> None:
        import av

        self.bitrate = aac_bitrate(channels, bitrate)
        self._describe = f"M4A (AAC) at {sr} Hz"
        self._path, self._sr, self._layout, self._pos = path, sr, _AAC_LAYOUTS[channels], 0
        self._container: Any = av.open(target, "w", format="ipod",
                                       options={"fflags": "+bitexact", "movie_timescale": str(sr)})
        try:
            self._stream = self._container.add_stream("aac", rate=sr, layout=self._layout)
            self._stream.bit_rate = self.bitrate
            self._stream.time_base = Fraction(1, sr)
            self._stream.codec_context.options = {"flags": "+bitexact"}
        except av.error.FFmpegError as exc:
            self._container.close()
            raise AudioError(f"cannot write {self._describe}: {exc}", path) from None

    def write(self, piece: np.ndarray) -> None:
        import av

        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(piece.T).reshape(1, -1), format="flt",
                                           layout=self._layout)
        frame.sample_rate, frame.pts, frame.time_base = self._sr, self._pos, Fraction(1, self._sr)
        self._pos += piece.shape[1]
        self._encode(frame)

    def _encode(self, frame: Any) -> None:
        import av

        try:
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        except av.error.FFmpegError as exc:
            raise AudioError(f"cannot write {self._describe}: {exc}", self._path) from None

    def close(self) -> None:
        if self._container is None:
            return
        try:
            self._encode(None)
        finally:
            self._container.close()
            self._container = None


#: Encoders of the containers libsndfile does not write, by format name; libsndfile writes the rest.
_ENCODERS: dict[str, type] = {"MP4": _AacEncoder}


class FileSink:
    """One output file; see the module docstring. Use :func:`open_output`.

    After :meth:`commit`, ``size`` and ``sha256`` describe the file written.
    """

    def __init__(self, path: Path, *, sr: int, channels: int, format: str, subtype: str,
                 bitrate: int | None = None) -> None:
        self.path, self.format, self.subtype = path, format, subtype
        self.size = 0
        self.sha256 = ""
        self._encoded = tempfile.TemporaryFile(prefix="deid-")  # noqa: SIM115 - closed by commit/abort
        try:
            self._encoder = _ENCODERS.get(format, _SndfileEncoder)(self._encoded, path, sr=sr, channels=channels,
                                                                  format=format, subtype=subtype, bitrate=bitrate)
        except BaseException:
            self._encoded.close()
            raise
        #: The bitrate of a coded format whose bitrate deid chooses (AAC), in bit/s.
        self.bitrate: int | None = getattr(self._encoder, "bitrate", None)

    def write(self, piece: np.ndarray) -> None:
        """Encode the next float32 ``(channels, n)`` samples."""
        self._encoder.write(piece)

    def commit(self) -> None:
        """Clean, verify and hash the encoded file, then put it in place atomically."""
        tmp = self._cleaned()
        try:
            tmp.publish()
        except OSError as exc:
            raise AudioError(f"cannot write: {exc.strerror or exc}", self.path) from None
        _fsync_dir(self.path.parent)

    def _cleaned(self) -> TempFile:
        """Finish encoding, then clean, verify and hash into a temporary file beside ``path``."""
        from deid.metadata import clean_encoded

        self._encoder.close()
        self._encoded.flush()
        try:
            with mmap.mmap(self._encoded.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                tmp, self.size, self.sha256 = clean_encoded(buf, self.format, self.path)
        finally:
            self._encoded.close()
        return tmp

    def abort(self) -> None:
        """Drop everything written so far; the output is untouched."""
        if not self._encoded.closed:
            try:
                self._encoder.close()
            except Exception:  # noqa: BLE001 - the encoded bytes are thrown away anyway
                pass
            self._encoded.close()

    def __enter__(self) -> FileSink:
        return self

    def __exit__(self, kind: object, *exc: object) -> None:
        if kind is not None:
            self.abort()


class StreamSink(FileSink):
    """An output to a binary stream (standard output), cleaned and verified before its first byte.

    The cleaned file is made in a private temporary folder (mode 0700) of the system temp
    folder, opened, unlinked, and only then copied to the stream; nothing is left behind.
    """

    def __init__(self, stream: BinaryIO, *, sr: int, channels: int, format: str, subtype: str,
                 bitrate: int | None = None) -> None:
        self._stream = stream
        self._folder = Path(tempfile.mkdtemp(prefix="deid-"))
        try:
            super().__init__(self._folder / f"stdout{extension(format, subtype)}", sr=sr, channels=channels,
                             format=format, subtype=subtype, bitrate=bitrate)
        except BaseException:
            shutil.rmtree(self._folder, ignore_errors=True)
            raise

    def commit(self) -> None:
        """Clean, verify and hash the encoded file, then copy it to the stream."""
        try:
            tmp = self._cleaned()
            with open(tmp.path, "rb") as handle:
                tmp.discard()
                for block in iter(lambda: handle.read(_COPY), b""):
                    _write_all(self._stream, block)
            self._stream.flush()
        except BrokenPipeError:
            raise AudioError("standard output was closed before the whole output was written", STDOUT) from None
        finally:
            shutil.rmtree(self._folder, ignore_errors=True)

    def abort(self) -> None:
        super().abort()
        shutil.rmtree(self._folder, ignore_errors=True)


def _write_all(stream: BinaryIO, data: bytes) -> None:
    """Write all of `data`: a buffered pipe may take part of it and report the rest only on the next write."""
    view = memoryview(data)
    while view:
        count = stream.write(view)
        if count == 0:
            raise BrokenPipeError
        view = view[len(view) if count is None else count:]


def open_output(path: str | Path | BinaryIO, *, sr: int, channels: int, format: str, subtype: str,
                bitrate: int | None = None, reads: Mapping[str, Path | None] | None = None) -> FileSink:
    """Check an output before any work, and open its sink.

    Parameters
    ----------
    path : str, Path or binary stream
        The output file, or a stream to write to (standard output: ``sys.stdout.buffer``).
    sr, channels : int
        What will be written.
    format, subtype : str
        soundfile format and subtype (see :func:`deid.audio.output_format`).
    bitrate : int, optional
        AAC bitrate in bit/s (M4A only; default 96 kbit/s per channel).
    reads : mapping of label to path, optional
        Files the run reads, which the output must not be (``{"the input": ..., "the key file":
        ..., "the preset": ...}``); see :func:`deid.paths.check_writes`.

    Raises
    ------
    DeidError
        When the output breaks the write rule (it is a file the run reads, a folder, or an
        existing read-only file), or its folder is missing or unwritable.
    AudioError
        When the format cannot hold this audio (e.g. Opus at 44.1 kHz).
    """
    if bitrate is not None and format != "MP4":
        raise DeidError(f"--bitrate applies to M4A (AAC) output only, not to {title(format, subtype)}")
    if not isinstance(path, (str, os.PathLike)):
        check_format(Path(STDOUT), sr, format=format, subtype=subtype, channels=channels)
        return StreamSink(path, sr=sr, channels=channels, format=format, subtype=subtype, bitrate=bitrate)
    path = Path(path)
    check_writes({"the output": path}, reads=reads)
    folder = path.parent
    if not folder.is_dir():
        raise DeidError("output folder does not exist", folder)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise AudioError("cannot write into its folder: permission denied", path)
    check_format(path, sr, format=format, subtype=subtype, channels=channels)
    return FileSink(path, sr=sr, channels=channels, format=format, subtype=subtype, bitrate=bitrate)


def write_audio(path: str | Path, samples: np.ndarray, sr: int, *, format: str, subtype: str) -> Path:
    """Write float audio ``(channels, n)`` atomically, cleaned and verified (see the module docstring).

    Raises
    ------
    AudioError
        When the format cannot hold this audio (e.g. Opus at 44.1 kHz) or the write fails.
    MetadataError
        When the written file would carry metadata beyond the technical allow-list.
    """
    samples = np.atleast_2d(np.asarray(samples, dtype=np.float32))
    with open_output(path, sr=sr, channels=samples.shape[0], format=format, subtype=subtype) as sink:
        sink.write(samples)
        sink.commit()
    return sink.path


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
