"""Writing an output: one function, :func:`open_output`, and one sink for every container.

:func:`open_output` does every check of an output before any processing starts: not an input,
its folder exists and is writable, it is not a folder, the format can hold the rate and sample
format. The sink then takes the audio in pieces and, on :meth:`FileSink.commit`:

1. **encode**: libsndfile has written the pieces into an anonymous temporary file in the system
   temp folder (never visible, gone when the process ends);
2. **clean, verify, hash**: :func:`deid.metadata.clean_encoded` rebuilds it from the structures on
   the allow-list into a hidden temporary file beside the output, hashing the bytes as it
   writes them, and walks the result with deid's own parser;
3. **rename**: that file is flushed to disk and renamed onto the output, so a crash never leaves
   a half-written file under the final name.

Another container is another encoder in :data:`_ENCODERS`; everything after encoding is shared.
"""

from __future__ import annotations

import mmap
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from deid.audio.formats import check_format
from deid.errors import AudioError, DeidError
from deid.paths import check_writes


class _SndfileEncoder:
    """libsndfile writing a container into a file object."""

    def __init__(self, target: Any, path: Path, *, sr: int, channels: int, format: str, subtype: str) -> None:
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


#: Encoders of the containers libsndfile does not write, by format name; libsndfile writes the rest.
_ENCODERS: dict[str, type] = {}


class FileSink:
    """One output file; see the module docstring. Use :func:`open_output`.

    After :meth:`commit`, ``size`` and ``sha256`` describe the file written.
    """

    def __init__(self, path: Path, *, sr: int, channels: int, format: str, subtype: str) -> None:
        self.path, self.format, self.subtype = path, format, subtype
        self.size = 0
        self.sha256 = ""
        self._encoded = tempfile.TemporaryFile(prefix="deid-")  # noqa: SIM115 - closed by commit/abort
        try:
            self._encoder = _ENCODERS.get(format, _SndfileEncoder)(self._encoded, path, sr=sr, channels=channels,
                                                                  format=format, subtype=subtype)
        except BaseException:
            self._encoded.close()
            raise

    def write(self, piece: np.ndarray) -> None:
        """Encode the next float32 ``(channels, n)`` samples."""
        self._encoder.write(piece)

    def commit(self) -> None:
        """Clean, verify and hash the encoded file, then put it in place atomically."""
        from deid.metadata import clean_encoded

        self._encoder.close()
        self._encoded.flush()
        try:
            with mmap.mmap(self._encoded.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                tmp, self.size, self.sha256 = clean_encoded(buf, self.format, self.path)
        finally:
            self._encoded.close()
        try:
            tmp.publish()
        except OSError as exc:
            raise AudioError(f"cannot write: {exc.strerror or exc}", self.path) from None
        _fsync_dir(self.path.parent)

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


def open_output(path: str | Path, *, sr: int, channels: int, format: str, subtype: str,
                reads: Mapping[str, str | os.PathLike[str] | None] | None = None) -> FileSink:
    """Check an output before any work, and open its sink.

    Parameters
    ----------
    path : str or Path
        The output file.
    sr, channels : int
        What will be written.
    format, subtype : str
        soundfile format and subtype (see :func:`deid.audio.output_format`).
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
    path = Path(path)
    check_writes({"the output": path}, reads=reads)
    folder = path.parent
    if not folder.is_dir():
        raise DeidError("output folder does not exist", folder)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise AudioError("cannot write into its folder: permission denied", path)
    check_format(path, sr, format=format, subtype=subtype)
    return FileSink(path, sr=sr, channels=channels, format=format, subtype=subtype)


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
