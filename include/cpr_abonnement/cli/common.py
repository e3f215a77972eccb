"""What every ``cprsub`` command group shares: the ``--db`` option and the filter
database it names."""

from __future__ import annotations

import argparse


def db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", metavar="URL",
                        help="filter database URL (default: $CPRSUB_DB_URL, else var/filters.db)")


def engine_of(args: argparse.Namespace):
    from cpr_abonnement.store.db import make_engine

    return make_engine(args.db)


def at_least_one(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {n}")
    return n
