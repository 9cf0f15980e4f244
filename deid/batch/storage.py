"""Where a batch reads and writes: a local folder, or a prefix in an object store.

A folder run names its input and output folders by path, by ``file://`` URL, or by any
fsspec URL (``s3://bucket/prefix``, ``gs://``, ``az://``, ``memory://``). This module is the
only one in :mod:`deid.batch` that knows the difference; the rest asks a :class:`LocalFolder`
or a :class:`StoreFolder` for what it needs (list, read and write small texts, stage an
input, place an output, tell whether an output is intact).

Why a store needs no rename: an object store's PUT is atomic, an object becomes visible only
once its upload is complete. So an output bound for a store is written, cleaned and verified
exactly as it would be locally, into a private folder (mode 0700) in the system temp folder,
and only then uploaded under its final name; the private folder is removed at once. A worker
killed before that leaves the folder behind, holding anonymized audio (or, for ``strip``, the
original audio without metadata): every deid process removes the staging folders of processes
that no longer exist before it stages anything (:func:`sweep_staging`).

An input in a store is copied into an anonymous temporary file (unlinked as it is created, so
a kill leaves nothing behind, and nobody else can open it) while its SHA-256 is computed, and
the per-file functions read it through ``/dev/fd``.

Credentials come from the store library's usual chain (for S3: ``AWS_PROFILE``, the
``AWS_*`` variables, ``~/.aws``, an instance role; ``AWS_ENDPOINT_URL`` for a non-AWS endpoint;
fsspec's ``FSSPEC_S3_*`` variables and configuration files). deid never handles them, and
:func:`redact` removes signatures, tokens and key ids from every store error it reports.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlparse

from deid.errors import DeidError
from deid.paths import TempFile

#: Staging folders of outputs bound for a store: ``deid-stage-PID-XXXXXXXX`` in the temp folder.
STAGE_PREFIX = "deid-stage-"
_STAGE_NAME = re.compile(rf"^{STAGE_PREFIX}(\d+)-")
#: Stores that exist only inside one process: files are processed in that process.
PROCESS_LOCAL = frozenset({"memory"})
#: The extra that brings each protocol's fsspec implementation.
_EXTRA = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs", "az": "azure", "abfs": "azure", "abfss": "azure",
          "adl": "azure"}
#: Environment variables whose values are secrets, removed from any message that echoes them.
_SECRET_VARIABLES = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID", "AZURE_STORAGE_KEY",
                     "AZURE_STORAGE_ACCOUNT_KEY", "AZURE_STORAGE_SAS_TOKEN", "AZURE_STORAGE_CONNECTION_STRING",
                     "AZURE_CLIENT_SECRET")
_SECRET_PATTERNS = (
    re.compile(r"(https?://[^\s?'\"<>]*)\?[^\s'\"<>]*"),  # query strings: presigned URLs, SAS tokens
    re.compile(r"((?:X-Amz-[A-Za-z-]+|Signature|Credential|AccountKey|SharedAccessSignature|sig|token|"
               r"access_token|Authorization)[=:]\s*)[^\s&;,'\"]+", re.IGNORECASE),
    re.compile(r"\b(?:AKIA|ASIA|AIDA|AROA)[A-Z0-9]{12,}\b"),  # AWS key ids
)
_COPY_BLOCK = 1 << 20


def is_url(location: str | Path) -> bool:
    """Whether ``location`` is written as a URL (``file:///data``, ``s3://bucket``) rather than a path."""
    return isinstance(location, str) and re.match(r"^[A-Za-z][A-Za-z0-9+.-]+:/", location) is not None


def local_path(location: str | Path, *, what: str = "this path") -> Path:
    """A local path from a path or a ``file://`` URL; any other URL is refused naming ``what``."""
    text = str(location)
    if not is_url(text):
        return Path(text)
    url = urlparse(text)
    if url.scheme != "file" or url.netloc not in ("", "localhost"):
        raise DeidError(f"{what} must be a local path or a file:// URL", shown(text))
    return Path(unquote(url.path))


def shown(location: str | Path) -> str:
    """``location`` as deid prints it: a URL without user, password or query string."""
    text = str(location)
    if not is_url(text):
        return text
    scheme, _, rest = text.partition(":")
    slashes = len(rest) - len(rest.lstrip("/"))
    netloc, slash, path = rest[slashes:].partition("/")
    return redact(f"{scheme}:{'/' * slashes}{netloc.rpartition('@')[2]}{slash}{path.partition('?')[0]}")


def redact(text: str) -> str:
    """``text`` without signatures, tokens, query strings, key ids or the values of credential variables."""
    for name in _SECRET_VARIABLES:
        value = os.environ.get(name, "")
        if len(value) >= 8:
            text = text.replace(value, "<redacted>")
    text = _SECRET_PATTERNS[0].sub(r"\1?<redacted>", text)
    text = _SECRET_PATTERNS[1].sub(r"\1<redacted>", text)
    return _SECRET_PATTERNS[2].sub("<redacted>", text)


def name_problem(rel: str) -> str:
    """Why ``rel`` (POSIX, relative) cannot name a file under a folder ("" if it can).

    An object store's keys are free text: ``in//x.wav``, ``in/../../x.wav`` or ``in/./x.wav``
    are three objects, and mirrored as paths they would name a file outside the output folder
    (``/x.wav``) or the same file as another object.
    """
    if "\x00" in rel:
        return "its name holds a NUL character"
    if any(part in ("", ".", "..") for part in rel.split("/")):
        return ("its name has an empty, '.' or '..' part, so its output would lie outside the output folder or "
                "take another's name; rename the object")
    return ""


def _checked(rel: str) -> str:
    """``rel`` itself, or a DeidError if it would leave its folder: no path is ever made from such a name."""
    problem = name_problem(rel) if rel else ""
    if problem:
        raise DeidError(problem, rel)
    return rel


@contextmanager
def _standing_in(local: Path, name: str) -> Iterator[None]:
    """Errors raised while ``local`` stands in for ``name`` (an object) name the object, as they would locally."""
    try:
        yield
    except DeidError as exc:
        here = str(local)
        if here in exc.reason or here == exc.path:
            exc.__init__(exc.reason.replace(here, name), name if exc.path == here else exc.path)
        raise


def sha256_file(path: str | Path) -> tuple[int, str]:
    """Size and SHA-256 of a file, read in 1 MiB pieces."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_COPY_BLOCK), b""):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()


def write_text_atomic(path: Path, text: str, *, errors: str = "strict", mtime: int | None = None) -> None:
    """Write a small text file atomically: temporary file beside it, fsync, rename.

    `mtime` (seconds since the epoch) dates the file before it appears under its name.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = TempFile(path)
    try:
        tmp.handle.write(text.encode("utf-8", errors))
    except BaseException:
        tmp.discard()
        raise
    tmp.publish(mtime=mtime)


class LocalFolder:
    """A folder on a local (or mounted, shared) filesystem."""

    local = True
    #: Whether other processes (local workers, Dask workers) see the same folder.
    shared = True

    def __init__(self, path: Path) -> None:
        self.path = path
        self.location = str(path)

    def __str__(self) -> str:
        return self.location

    def member(self, rel: str) -> Path:
        """The path of ``rel`` (POSIX, relative to the folder)."""
        return self.path / _checked(rel)

    def source(self, rel: str) -> str:
        """How a worker names the input ``rel``: its resolved path."""
        return str(self.member(rel).resolve())

    def ident(self, rel: str) -> tuple[int, int] | None:
        """What ``rel`` is, whatever its name (device and inode); None when it does not exist."""
        try:
            st = self.member(rel).stat()
        except OSError:
            return None
        return st.st_dev, st.st_ino

    def read_text(self, rel: str) -> str | None:
        try:
            return self.member(rel).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None

    def write_text(self, rel: str, text: str, *, mtime: int | None = None) -> None:
        write_text_atomic(self.member(rel), text, mtime=mtime)

    def intact(self, rel: str, size: int, sha256: str, tag: str) -> bool:
        """Whether ``rel`` still holds the bytes of that size and hash (it is hashed again)."""
        target = self.member(rel)
        try:
            return target.stat().st_size == size and sha256_file(target) == (size, sha256)
        except OSError:
            return False

    def tag(self, rel: str) -> str:
        """Files need no tag: :meth:`intact` hashes them."""
        return ""

    @contextmanager
    def output(self, rel: str) -> Iterator[Path]:
        """Where the per-file functions write ``rel``: in place (they write atomically beside it)."""
        target = self.member(rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        yield target


class StoreFolder:
    """A prefix in an object store, through fsspec (``s3://bucket/prefix``, ``gs://``, ``az://``, ``memory://``)."""

    local = False

    def __init__(self, url: str) -> None:
        scheme = urlparse(url).scheme.lower()
        try:
            import fsspec

            self.fs, root = fsspec.core.url_to_fs(url)
        except ImportError:
            extra = _EXTRA.get(scheme)
            hint = f"pip install 'deid-audio[{extra}]'" if extra else "install the fsspec implementation of this protocol"
            raise DeidError(f"{scheme}:// locations need the store's library: {hint}", shown(url)) from None
        except ValueError as exc:
            raise DeidError(f"cannot use this location: {redact(str(exc))}", shown(url)) from None
        self.protocol = scheme
        self.shared = scheme not in PROCESS_LOCAL
        self.root = root.rstrip("/")
        self.location = f"{scheme}://{self.root.lstrip('/')}" if scheme != "memory" else f"memory://{self.root}"
        self._uploaded: dict[str, dict[str, Any]] = {}
        # Listings cached by another user of the same filesystem object (fsspec shares them
        # within a process) could hide an output written since.
        self.fs.invalidate_cache()

    def __str__(self) -> str:
        return shown(self.location)

    def key(self, rel: str) -> str:
        return f"{self.root}/{_checked(rel)}" if rel else self.root

    def member(self, rel: str) -> str:
        """The URL of ``rel``."""
        return f"{self.location}/{_checked(rel)}"

    def source(self, rel: str) -> str:
        return self.member(rel)

    def ident(self, rel: str) -> tuple[str, str]:
        return self.protocol, self.key(rel)

    @contextmanager
    def _errors(self, doing: str, rel: str = "") -> Iterator[None]:
        """Turn what the store raises into a one-line DeidError naming the object, with no secret."""
        try:
            yield
        except DeidError:
            raise
        except Exception as exc:  # noqa: BLE001 - store libraries raise many kinds; each becomes one line
            raise DeidError(f"{doing}: {store_reason(exc)}", str(self) + (f"/{rel}" if rel else "")) from None

    def check_input(self) -> None:
        """Refuse a prefix that holds nothing (or names a single object)."""
        with self._errors("cannot list the input folder"):
            if self.fs.isfile(self.root):
                raise DeidError("is an object, not a folder: a folder run reads a prefix (single files are read from "
                                "local paths)", str(self))
            if not self.fs.isdir(self.root):
                raise DeidError("input folder does not exist or is not a folder (nothing is stored under it)", str(self))

    def check_output(self) -> None:
        """Refuse an output prefix that is an object, or lies in a bucket that does not exist (deid creates none)."""
        bucket = self.root.split("/")[0]
        with self._errors("cannot reach the output folder"):
            if self.root and self.fs.isfile(self.root):
                raise DeidError("output exists and is not a folder (it is an object)", str(self))
            if self.protocol not in PROCESS_LOCAL and bucket:
                try:
                    self.fs.info(bucket)
                except FileNotFoundError:
                    raise DeidError(f"no bucket {bucket!r} (or no permission to see it); deid creates none",
                                    str(self)) from None

    def inside(self, other: StoreFolder) -> bool:
        """Whether this prefix is ``other`` or lies under it, in the same store."""
        return self.protocol == other.protocol and (self.root == other.root or self.root.startswith(other.root + "/"))

    def list_files(self) -> list[str]:
        """Relative paths of every object under the prefix (a listing by prefix), sorted."""
        with self._errors("cannot list the input folder"):
            found = self.fs.find(self.root, withdirs=False, detail=True)
        start = len(self.root) + 1
        return sorted(path[start:] for path, info in found.items()
                      if info.get("type") != "directory" and not path.endswith("/") and len(path) > start)

    def read_text(self, rel: str) -> str | None:
        """The text of ``rel``, or None when there is no such object."""
        with self._errors("cannot read", rel):
            try:
                return self.fs.cat_file(self.key(rel)).decode("utf-8")
            except FileNotFoundError:
                return None
            except UnicodeDecodeError:
                return None

    def write_text(self, rel: str, text: str, *, mtime: int | None = None) -> None:
        """One PUT: the object appears complete or not at all. A store dates objects itself (``mtime`` is not kept)."""
        with self._errors("cannot write", rel):
            self.fs.pipe_file(self.key(rel), text.encode("utf-8"))

    def create_text(self, rel: str, text: str) -> bool:
        """Create ``rel`` only if it does not exist; False if it does.

        Conditional where the store offers it (S3's and Azure's ``If-None-Match: *``, GCS's
        ``ifGenerationMatch=0``, memory); fsspec's default elsewhere tests, then writes.
        """
        with self._errors("cannot write", rel):
            try:
                self.fs.pipe_file(self.key(rel), text.encode("utf-8"), mode="create")
            except FileExistsError:
                return False
        return True

    def remove(self, rel: str) -> None:
        with self._errors("cannot remove", rel):
            try:
                self.fs.rm_file(self.key(rel))
            except FileNotFoundError:
                pass

    def _info(self, rel: str) -> dict[str, Any] | None:
        with self._errors("cannot read", rel):
            try:
                return self.fs.info(self.key(rel))
            except FileNotFoundError:
                return None

    def tag(self, rel: str) -> str:
        """What changes when the object ``rel`` is replaced (its ETag, generation...); "" if the store has none."""
        info = self._uploaded.pop(rel, None) or self._info(rel)
        return _tag(info) if info else ""

    def intact(self, rel: str, size: int, sha256: str, tag: str) -> bool:
        """Whether ``rel`` is still the object recorded: same size and tag (objects appear whole or not at all).

        Without a tag (a store that gives none) the object is read and hashed.
        """
        info = self._info(rel)
        if info is None or info.get("size") != size:
            return False
        if tag:
            return _tag(info) == tag
        digest = hashlib.sha256()
        with self._errors("cannot read", rel), self.fs.open(self.key(rel), "rb") as f:
            for block in iter(lambda: f.read(_COPY_BLOCK), b""):
                digest.update(block)
        return digest.hexdigest() == sha256

    @contextmanager
    def output(self, rel: str) -> Iterator[Path]:
        """A local path to write ``rel`` to, uploaded when the block ends without error.

        The file lives in a private staging folder of the system temp folder, named only by
        its extension (the output format follows it), and removed with the folder whatever
        happens. The upload is one atomic PUT (or a multipart upload, which is invisible
        until completed); its size is checked against the local file.
        """
        sweep_staging()
        stage = Path(tempfile.mkdtemp(prefix=f"{STAGE_PREFIX}{os.getpid()}-"))
        try:
            local = stage / ("output" + PurePosixPath(rel).suffix)
            with _standing_in(local, str(self) + f"/{rel}"):
                yield local
            size = local.stat().st_size
            with self._errors("cannot upload the output", rel):
                self.fs.put_file(str(local), self.key(rel))
            info = self._info(rel)
            if info is None or info.get("size") != size:
                got = "no object" if info is None else f"{info.get('size')} bytes"
                raise DeidError(f"the upload left {got} instead of {size} bytes", self.member(rel))
            self._uploaded[rel] = info
        finally:
            shutil.rmtree(stage, ignore_errors=True)


Folder = LocalFolder | StoreFolder


def open_folder(location: str | Path | LocalFolder | StoreFolder) -> Folder:
    """The folder at ``location``: a path, a ``file://`` URL, or any other fsspec URL."""
    if isinstance(location, (LocalFolder, StoreFolder)):
        return location
    text = str(location)
    if not is_url(text) or urlparse(text).scheme.lower() == "file":
        return LocalFolder(local_path(text, what="a folder"))
    return StoreFolder(text)


@contextmanager
def staged_input(src: str) -> Iterator[tuple[Path, str]]:
    """A local path to read the input ``src`` (a path or a store URL) from, and its SHA-256.

    A store's object is copied into an anonymous temporary file (no name in any folder, gone
    when closed or when the process dies) while it is hashed, and read through ``/dev/fd``.
    """
    if not is_url(src):
        _, sha = sha256_file(src)
        yield Path(src), sha
        return
    folder = StoreFolder(src)
    digest = hashlib.sha256()
    with tempfile.TemporaryFile() as copy:
        with folder._errors("cannot read the input"), folder.fs.open(folder.root, "rb", block_size=8 << 20) as f:
            for block in iter(lambda: f.read(_COPY_BLOCK), b""):
                digest.update(block)
                copy.write(block)
        copy.flush()
        local = Path(f"/dev/fd/{copy.fileno()}")
        with _standing_in(local, shown(src)):
            yield local, digest.hexdigest()


def store_reason(exc: BaseException) -> str:
    """One line saying why a store operation failed, without credentials or signed URLs."""
    name = type(exc).__name__
    if isinstance(exc, FileNotFoundError):
        return "not found"
    if isinstance(exc, PermissionError) or name in ("AccessDenied", "Forbidden"):
        return "access denied (check the credentials and the bucket's permissions)"
    if name in ("NoCredentialsError", "PartialCredentialsError", "DefaultCredentialsError", "CredentialRetrievalError"):
        return ("no credentials found (set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                "or run where a role provides them)")
    text = str(exc).strip().splitlines()
    return redact(f"{name}: {text[0]}" if text else name)


def _tag(info: dict[str, Any]) -> str:
    for name in ("ETag", "etag", "generation", "md5Hash", "crc32c", "created", "LastModified", "mtime"):
        if info.get(name):
            return str(info[name])
    return ""


_swept: list[bool] = []


def sweep_staging(*, force: bool = False) -> int:
    """Remove the staging folders of deid processes that no longer exist (once per process); returns how many.

    Only ``deid-stage-PID-*`` folders of dead processes are touched: a live process's are in use.
    """
    if _swept and not force:
        return 0
    _swept.append(True)
    from deid.batch.lifeline import alive

    removed = 0
    root = tempfile.gettempdir()
    try:
        entries = list(os.scandir(root))
    except OSError:
        return 0
    for entry in entries:
        match = _STAGE_NAME.match(entry.name)
        if match and entry.is_dir(follow_symlinks=False) and not alive(int(match.group(1))):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed += not os.path.exists(entry.path)
    return removed
