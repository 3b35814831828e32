"""The ``syndicate`` command line: thin click commands over the library.

The group and its context live in :mod:`._group`; each command group lives in its own
module and registers itself on :data:`cli` when imported, which the group does only when
that command is invoked (``_group.COMMANDS``): a command pays for its own imports only.
Errors from the library (:class:`~syndicate.errors.SyndicateError`) reach the user as one
clear message and exit status 1, never a traceback.
"""

from __future__ import annotations

from ._group import AppContext, cli, pass_app


def main() -> None:
    cli(prog_name="syndicate")


if __name__ == "__main__":  # pragma: no cover
    main()

__all__ = ["AppContext", "cli", "main", "pass_app"]
