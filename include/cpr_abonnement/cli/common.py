"""What every ``cprsub`` command group shares: the ``--db`` option and the filter
database it names."""

from __future__ import annotations

import argparse
import datetime as dt


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


def date_arg(text: str) -> dt.date:
    """An argument ``YYYY-MM-DD``; anything else is argparse's usage error."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None
