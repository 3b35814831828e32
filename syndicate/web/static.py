"""Serving ``public/`` (archive pages and feeds) with validators and 304 answers.

Pure path and type decisions first, then one function that builds the Flask
response. ETags are strong content hashes (cached per file identity): the feeds
are rewritten in place by each edition, sometimes within the same second and at
the same size, which a size+mtime ETag would miss.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

from flask import Response, send_file
from werkzeug.security import safe_join

#: Content types of what the feed and archive channels write.
CONTENT_TYPES = {
    "feed.xml": "application/rss+xml; charset=utf-8",
    "atom.xml": "application/atom+xml; charset=utf-8",
    "feed.json": "application/feed+json; charset=utf-8",
}
SUFFIX_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".xml": "application/xml; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
}


def content_type(path: Path) -> str:
    return CONTENT_TYPES.get(path.name) or SUFFIX_TYPES.get(
        path.suffix.lower(), "application/octet-stream"
    )


def resolve(root: Path, url_path: str) -> tuple[Path | None, bool]:
    """The file under ``root`` for ``url_path`` and whether the URL lacks a trailing slash
    for a folder (the caller redirects). ``(None, False)`` when there is nothing to serve.

    ``safe_join`` refuses ``..`` and absolute parts; hidden names (``.tmp`` files of
    atomic writes, ``.git``) are never served; a resolved path must stay inside ``root``
    even through symlinks.
    """
    parts = [p for p in url_path.split("/") if p]
    if any(p.startswith(".") for p in parts):
        return None, False
    joined = safe_join(str(root), *parts) if parts else str(root)
    if joined is None:
        return None, False
    candidate = Path(joined)
    if candidate.is_dir():
        if parts and not url_path.endswith("/"):
            return candidate, True
        candidate = candidate / "index.html"
    try:
        real = candidate.resolve(strict=True)
        real.relative_to(root.resolve())
    except (OSError, ValueError):
        return None, False
    if not real.is_file():
        return None, False
    return real, False


class ETags:
    """Content-hash ETags, recomputed only when the file's identity changes."""

    def __init__(self) -> None:
        self._cache: dict[Path, tuple[tuple[int, ...], str]] = {}
        self._lock = threading.Lock()

    def __call__(self, path: Path, stat: os.stat_result) -> str:
        # ctime too: it moves on every write and, unlike mtime, cannot be set back.
        key = (stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
        with self._lock:
            hit = self._cache.get(path)
            if hit and hit[0] == key:
                return hit[1]
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 16), b""):
                digest.update(block)
        tag = digest.hexdigest()[:32]
        with self._lock:
            if len(self._cache) > 10_000:  # bounded: a long-running server, many pages
                self._cache.clear()
            self._cache[path] = (key, tag)
        return tag


def file_response(path: Path, etags: ETags) -> Response:
    """``path`` with ETag, Last-Modified and ``no-cache`` (always revalidate: a new
    edition changes the index and feeds), answering 304 to If-None-Match /
    If-Modified-Since."""
    stat = path.stat()
    response = send_file(
        path,
        mimetype="application/octet-stream",  # replaced below: werkzeug would add a charset
        etag=etags(path, stat),
        last_modified=stat.st_mtime,
        conditional=True,
        max_age=0,
    )
    response.headers["Content-Type"] = content_type(path)
    response.cache_control.no_cache = True
    return response
