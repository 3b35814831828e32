"""The public surface: ``syndicate`` re-exports the API, heavy parts load on first use."""

from __future__ import annotations

import subprocess
import sys

from conftest import Clock, Project

import syndicate


def test_every_exported_name_resolves() -> None:
    missing = [name for name in syndicate.__all__ if getattr(syndicate, name, None) is None]
    assert not missing


def test_importing_the_package_does_not_load_the_publishing_stack() -> None:
    code = (
        "import sys, syndicate; "
        "print(sorted(m for m in ('syndicate.pipeline', 'syndicate.render.email', "
        "'syndicate.related', 'sklearn', 'mjml') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_publish_through_the_package_api(project: Project, clock: Clock) -> None:
    config = syndicate.load_config(project.config_path)
    result = syndicate.publish(config, now=clock)
    assert isinstance(result, syndicate.PublishResult)
    with syndicate.Ledger(config.database) as ledger:
        (edition,) = ledger.editions()
    assert edition.slug == result.view.slug
    assert isinstance(edition, syndicate.Edition)
