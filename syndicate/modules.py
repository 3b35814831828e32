"""Names a module exports on first use (PEP 562), and a module's own source.

A leaf (standard library only). :func:`lazy_attribute` is the one body of the module
``__getattr__`` of the packages that import their parts on first use (``syndicate``,
``channels``, ``ledger``, ``transport``) and of ``ledger._records`` (records defined on
first use): a command imports only what it reads. :func:`module_source` is what a kept
output (:meth:`syndicate.corpus.Corpus.kept`) is stamped with: the code that made it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from importlib import import_module
from pathlib import Path
from typing import Any


def lazy_attribute(namespace: dict[str, Any], homes: Mapping[str, str], name: str) -> Any:
    """``name`` from the module ``homes[name]`` (a name relative to the package of the
    module whose ``globals()`` ``namespace`` is), imported now and kept in ``namespace``:
    the next access is a plain attribute. A name not in ``homes`` is an AttributeError
    (also how ``from package import submodule`` goes on to find a submodule)."""
    home = homes.get(name)
    if home is None:
        raise AttributeError(f"module {namespace['__name__']!r} has no attribute {name!r}")
    value = getattr(import_module(f".{home}", namespace["__package__"]), name)
    namespace[name] = value
    return value


@functools.cache
def module_source(file: str) -> bytes | None:
    """The bytes of the source file ``file`` (a module's ``__file__``), read once per
    process; None when it cannot be read (then nothing made by that code is kept)."""
    try:
        return Path(file).read_bytes()
    except OSError:
        return None


__all__ = ["lazy_attribute", "module_source"]
