"""SHA-256 without loading OpenSSL: the digests the light commands take.

``hashlib`` imports ``_hashlib``, which loads OpenSSL's libcrypto: about 3 ms, more than
``queue`` or ``status`` spend hashing (a config file's bytes, a folder's name, the odd
corpus file that changed). CPython ships its own SHA-256 (``_sha2`` from 3.12,
``_sha256`` before): the same digest, from a module that loads at once. Anything else
(an interpreter without it) takes hashlib's. A leaf: standard library only.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Protocol, cast


class _Hash(Protocol):
    def digest(self) -> bytes: ...
    def hexdigest(self) -> str: ...


def _builtin() -> Callable[[bytes], _Hash]:
    for name in ("_sha2", "_sha256"):
        try:
            return cast(Callable[[bytes], _Hash], import_module(name).sha256)
        except (ImportError, AttributeError):
            continue
    from hashlib import sha256 as fallback

    return fallback


sha256 = _builtin()


def sha256_hex(data: bytes) -> str:
    """The SHA-256 of ``data`` in hex (as ``hashlib.sha256(data).hexdigest()``)."""
    return sha256(data).hexdigest()


__all__ = ["sha256", "sha256_hex"]
