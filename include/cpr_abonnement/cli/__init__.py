"""``cprsub``: the command line of CPR Abonnement.

Every subcommand is a thin shell over a package function; exit status 0 means
success, 1 a rule or validation failure (message on stderr), 2 a usage error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from cpr_abonnement import __version__
from cpr_abonnement.cli import database as database_cmds
from cpr_abonnement.cli import extract as extract_cmds
from cpr_abonnement.cli import pickup as pickup_cmds
from cpr_abonnement.cli import replica as replica_cmds
from cpr_abonnement.cli import service as service_cmds
from cpr_abonnement.cli import subscriptions as subscription_cmds
from cpr_abonnement.errors import CprAbonnementError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cprsub", description="CPR Abonnement: change extracts, subscriptions, delivery."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="group", required=True, metavar="COMMAND")
    extract_cmds.register(sub)
    database_cmds.register(sub)
    subscription_cmds.register(sub)
    service_cmds.register(sub)
    pickup_cmds.register(sub)
    replica_cmds.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
