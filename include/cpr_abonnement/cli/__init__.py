"""``cprsub``: the command line of CPR Abonnement.

Every subcommand is a thin shell over a package function; exit status 0 means
success, 1 a rule or validation failure (message on stderr), 2 a usage error.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from cpr_abonnement import __version__
from cpr_abonnement.errors import CprAbonnementError

#: Each top-level command and the module under ``cpr_abonnement.cli`` that defines it, in
#: the order ``cprsub --help`` lists them. Only the module of the command run is imported:
#: the pick-up entrypoint starts sshd under ``cprsub pickup confine``, which needs neither
#: SQLAlchemy nor the filter registry the subscription commands import (0.74 -> 0.05 s of
#: CPU), and sshd runs ``cprsub pickup authorized-keys`` on every login attempt.
#: tests/cli/test_cli_basics.py checks this table against what the modules register.
COMMANDS = {
    "extract": "extract",
    "db": "database",
    "subscriber": "subscriptions", "filters": "subscriptions", "filter": "subscriptions",
    "filter-preview": "subscriptions",
    "health": "service", "api": "service",
    "pickup": "pickup",
    "replica": "replica",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser for ``command`` alone when it is one of :data:`COMMANDS`, else (none,
    ``--help``, a typo) for all of them."""
    parser = argparse.ArgumentParser(
        prog="cprsub", description="CPR Abonnement: change extracts, subscriptions, delivery."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="group", required=True, metavar="COMMAND")
    modules = [COMMANDS[command]] if command in COMMANDS else COMMANDS.values()
    for module in dict.fromkeys(modules):
        importlib.import_module(f"cpr_abonnement.cli.{module}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv[0] if argv else None).parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except CprAbonnementError as exc:
        print(f"cprsub: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        # A missing or unreadable file is the user's to fix, not a bug: name it, no traceback.
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"cprsub: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
