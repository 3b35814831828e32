"""SHA-256 and BLAKE2b without loading OpenSSL: the digests the light commands take.

``hashlib`` imports ``_hashlib``, which loads OpenSSL's libcrypto: about 3 ms, more than
``queue`` or ``status`` spend hashing (a config file's bytes, a folder's name, the odd
corpus file that changed). CPython ships its own SHA-256 (``_sha2`` from 3.12,
``_sha256`` before) and BLAKE2 (``_blake2``, which hashlib itself uses): the same
digests, from modules that load at once. An interpreter without them gets hashlib's. A
leaf: standard library only.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Protocol, cast


class Hash(Protocol):
    """What both constructors return (as hashlib's objects)."""

    def update(self, data: bytes, /) -> None: ...
    def digest(self) -> bytes: ...
    def hexdigest(self) -> str: ...


def _builtin(modules: tuple[str, ...], name: str) -> Callable[..., Hash]:
    for module in modules:
        try:
            return cast(Callable[..., Hash], getattr(import_module(module), name))
        except (ImportError, AttributeError):
            continue
    return cast(Callable[..., Hash], getattr(import_module("hashlib"), name))


#: ``sha256(data=b"")``, as ``hashlib.sha256``.
sha256 = _builtin(("_sha2", "_sha256"), "sha256")
#: ``blake2b(data=b"", *, digest_size=64)``, as ``hashlib.blake2b``.
blake2b = _builtin(("_blake2",), "blake2b")


def sha256_hex(data: bytes) -> str:
    """The SHA-256 of ``data`` in hex (as ``hashlib.sha256(data).hexdigest()``)."""
    return sha256(data).hexdigest()


__all__ = ["Hash", "blake2b", "sha256", "sha256_hex"]
