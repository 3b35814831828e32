"""Shared fixtures: a throw-away project (config, corpus) in a temp folder."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from _imap_support import dovecot_server, imap_server  # noqa: F401 - fixtures, likewise
from _postgres_support import pg_cluster, pg_url  # noqa: F401 - fixtures, for every test file

from syndicate.app import load_config
from syndicate.config import Config
from syndicate.corpus import CaseStudy

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "tests" / "data" / "seeds"  # copies of ../shared/seeds, so tests run anywhere
#: The sample case studies (package data: `syndicate init --example` copies them).
EXAMPLE_CORPUS = ROOT / "syndicate" / "examples" / "corpus"


class Clock:
    """An injectable clock: ``clock()`` returns the current fake time, ``advance`` moves it."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def __call__(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> datetime:
        self.current += timedelta(**delta)
        return self.current


class Project:
    """A copy of the repo's config and sample corpus under ``root`` (shipped templates)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.config_path = root / "config" / "syndicate.toml"

    def write_config(self, **sections: Any) -> Path:
        """Rewrite the config with the shipped one's values overridden by ``sections``.

        ``channels=[...]`` replaces the channel list; other keys update that table.
        """
        import tomllib

        data = tomllib.loads((ROOT / "config" / "syndicate.toml").read_text(encoding="utf-8"))
        data["storage"]["corpus"] = "../corpus"  # the project's own copy, not the package's
        for name, value in sections.items():
            if name == "channels":
                data["channels"] = value
            else:
                data.setdefault(name, {}).update(value)
        self.config_path.write_text(tomli_w.dumps(data), encoding="utf-8")
        return self.config_path

    def config(self) -> Config:
        return load_config(self.config_path)

    @property
    def public(self) -> Path:
        return self.root / "public"

    @property
    def var(self) -> Path:
        return self.root / "var"

    def done_editions(self, cases: Iterable[CaseStudy], published_at: Callable[[int], datetime],
                      *, missing: int = 0) -> None:
        """A ledger of done editions of ``cases`` (the ``i``-th, from 1, published at
        ``published_at(i)``), as a publish leaves them; the ``missing`` oldest without a
        snapshot (their text lost)."""
        from syndicate.ledger import open_ledger
        from syndicate.render.urls import edition_url
        from syndicate.snapshots import snapshot_artefacts

        config = self.config()
        with open_ledger(config.database) as ledger:
            for i, case in enumerate(cases, 1):
                edition = ledger.claim_edition(
                    slot=f"old:{i}", slug=case.slug, title=case.title,
                    url=edition_url(config.site.base_url, case.slug),
                    published_at=published_at(i))
                if i > missing:
                    ledger.store_artefacts(edition.id, snapshot_artefacts(case))
                ledger.set_edition_status(edition.id, "done")


@pytest.fixture(autouse=True, scope="session")
def _user_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The user cache of the commands the tests run (the light commands' config snapshots,
    one per config file: syndicate.config_snapshot) in a temporary folder, not ~/.cache."""
    saved = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    yield
    if saved is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = saved


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """CLI commands configure the ``syndicate`` logger (handler, level, no propagation);
    put it back after each test so caplog keeps working in the tests that follow."""
    logger = logging.getLogger("syndicate")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved


@pytest.fixture
def project(tmp_path: Path) -> Project:
    root = tmp_path / "site"
    shutil.copytree(ROOT / "config", root / "config")
    shutil.copytree(EXAMPLE_CORPUS, root / "corpus")
    proj = Project(root)
    proj.write_config(site={"base_url": "https://cas.example.org/"})
    return proj


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 24, 7, 0, tzinfo=UTC))


FakeNow = Callable[[], datetime]
