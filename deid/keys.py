"""Secret keys and the key-derived random generator of each file, speaker or channel.

Every random draw of a run comes from ``rng_for(key, scope)``: an ``np.random.Generator`` seeded
with HMAC-SHA256(key, scope). Without the key the draws can be neither guessed nor replayed; with
it they are exactly reproducible. The key itself never leaves this module in readable form.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

import numpy as np

from deid.errors import DeidError

ENV_VAR = "DEID_KEY"
#: Fewest bytes a secret key from a file or ``$DEID_KEY`` may have. Whoever holds an output and
#: the preset can try every possible key against it; 16 bytes of random data (128 bits) put
#: that out of reach, a few letters do not.
MIN_KEY_BYTES = 16


class Key:
    """A secret key. Its repr and str never show the bytes, so it cannot leak into logs.

    ``path`` is the key file it was read from, if any: deid never writes over that file.
    """

    __slots__ = ("_secret", "origin", "path")

    def __init__(self, secret: bytes, origin: str, path: Path | None = None) -> None:
        if not secret:
            raise DeidError(f"the key from {origin} is empty")
        self._secret = bytes(secret)
        self.origin = origin
        self.path = path

    def __repr__(self) -> str:
        return f"Key(<secret from {self.origin}>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Key) and hmac.compare_digest(self._secret, other._secret)

    def __hash__(self) -> int:
        return hash(self.digest("key-identity"))

    def __reduce__(self) -> tuple:
        # Worker processes need the key; pickling keeps it in memory between our own processes.
        return (Key, (self._secret, self.origin, self.path))

    def digest(self, scope: str) -> bytes:
        """HMAC-SHA256 of ``scope`` under this key.

        A scope may hold a file name that is not valid UTF-8 (a folder copied from another
        system): its original bytes are hashed, as ``os.fsencode`` gives them back.
        """
        return hmac.new(self._secret, scope.encode("utf-8", "surrogateescape"), hashlib.sha256).digest()

    @property
    def reproducible(self) -> bool:
        """False for a fresh random key that was never stored."""
        return self.origin != "a fresh random key"

    @classmethod
    def from_seed(cls, seed: int) -> Key:
        """A non-secret, reproducible key for demos and tests."""
        return cls(f"deid-seed:{int(seed)}".encode(), f"--seed {int(seed)}")

    @classmethod
    def fresh(cls) -> Key:
        """A random key made for this run and never stored: irreversible and not reproducible."""
        return cls(secrets.token_bytes(32), "a fresh random key")

    @classmethod
    def from_file(cls, path: str | Path) -> Key:
        """The contents of a key file, with surrounding whitespace removed (at least `MIN_KEY_BYTES`)."""
        try:
            data = Path(path).read_bytes().strip()
        except OSError as exc:
            raise DeidError(f"cannot read key file: {exc.strerror or exc}", path) from None
        _check_length(data, "the key file", path)
        return cls(data, "the key file", Path(path))


def resolve_key(
    key: Key | bytes | str | None = None,
    *,
    key_file: str | Path | None = None,
    seed: int | None = None,
) -> Key:
    """Pick the key of a run: an explicit key, a key file, a seed, ``$DEID_KEY``, or a fresh one.

    Every public entry point resolves its key here, so every way of giving one is held to the
    same rules.

    Parameters
    ----------
    key : Key, bytes or str, optional
        A secret key of at least `MIN_KEY_BYTES` bytes. Bytes are taken as they are; text is
        stripped of surrounding whitespace as a key file is, so that
        ``key=open("deid.key").read()`` is the key of ``--key-file deid.key``.
    key_file : str or Path, optional
        A file holding the secret key.
    seed : int, optional
        A non-secret seed, for demos and tests.

    Raises
    ------
    DeidError
        When more than one is given, one has the wrong type (an int key, a float or text seed),
        or a secret key is too short.
    """
    given = [name for name, value in (("key", key), ("key file", key_file), ("seed", seed)) if value is not None]
    if len(given) > 1:
        raise DeidError(f"give only one of a key, a key file or a seed (got {' and '.join(given)})")
    if isinstance(key, Key):
        return key
    if isinstance(key, (str, bytes, bytearray)):
        secret = key.strip().encode("utf-8", "surrogateescape") if isinstance(key, str) else bytes(key)
        _check_length(secret, "the key argument")
        return Key(secret, "the key argument")
    if key is not None:
        raise DeidError(f"a key must be bytes, str or a deid.keys.Key, not {type(key).__name__} "
                        "(for a reproducible run without a secret, give seed=)")
    if key_file is not None:
        if not isinstance(key_file, (str, os.PathLike)):
            raise DeidError(f"a key file must be a path, not {type(key_file).__name__}")
        return Key.from_file(key_file)
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise DeidError(f"a seed must be an integer, not {type(seed).__name__} {seed!r}")
        return Key.from_seed(seed)
    if os.environ.get(ENV_VAR):
        # Stripped as a key file is, so that `export DEID_KEY=$(cat keyfile)` is the same key.
        secret = os.environ[ENV_VAR].strip().encode("utf-8", "surrogateescape")
        _check_length(secret, f"${ENV_VAR}")
        return Key(secret, f"${ENV_VAR}")
    return Key.fresh()


def _check_length(secret: bytes, origin: str, path: str | Path | None = None) -> None:
    if len(secret) < MIN_KEY_BYTES:
        raise DeidError(f"{origin} holds {len(secret)} byte(s); a secret key needs at least {MIN_KEY_BYTES} "
                        "(whoever holds an output could try every shorter key): make one with "
                        "`head -c 32 /dev/urandom | base64 > deid.key`", path)


def rng_for(key: Key, scope: str) -> np.random.Generator:
    """The generator of one scope: PCG64 seeded with HMAC-SHA256(key, scope)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(int.from_bytes(key.digest(scope), "big"))))


def content_scope(data: bytes) -> str:
    """The default scope of a file or array: a hash of its content, so renaming changes nothing."""
    return "file:" + hashlib.sha256(data).hexdigest()
