"""The ``syndicate`` command line: thin click commands over the library.

The group and its context live in :mod:`._group`; each command group lives in its own
module and registers itself on :data:`cli` when imported below. Errors from the library
(:class:`~syndicate.errors.SyndicateError`) reach the user as one clear message and exit
status 1, never a traceback.
"""

from __future__ import annotations

# Imported for their side effect: each module adds its commands to ``cli``.
from . import (  # noqa: F401
    admin,
    bounces,
    config,
    corpus,
    deliveries,
    doctor,
    init,
    ledger,
    publish,
    republish,
    schedule,
    serve,
    subscribers,
    worker,
)
from ._group import AppContext, cli, pass_app


def main() -> None:
    cli(prog_name="syndicate")


if __name__ == "__main__":  # pragma: no cover
    main()

__all__ = ["AppContext", "cli", "main", "pass_app"]
