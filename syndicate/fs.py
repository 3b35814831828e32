"""Atomic file writes: readers see the old file or the new one, never half of either.

A leaf (standard library only): the corpus, the renderers, the channels, republish and
the CLI all write through here, so a crash or a full disk never leaves a torn page, feed
or corpus file behind.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, text: str, *, mode: int = 0o644) -> None:
    """Write UTF-8 ``text`` so that readers see the old file or the new one, never half."""
    write_atomic_bytes(path, text.encode("utf-8"), mode=mode)


def write_atomic_bytes(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write ``data`` atomically: a temp file in the same folder, fsynced, then renamed.

    The file gets ``mode`` (mkstemp's 0600 would hide it from a web server), and the
    fsync before the rename means a crash never leaves an empty file in its place.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


__all__ = ["write_atomic", "write_atomic_bytes"]
