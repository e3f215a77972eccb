"""``cprsub replica load | status | lookups``: the CPR replica from the operator's side."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

from cpr_abonnement.cli.common import date_arg, db_option, engine_of


def register(sub: argparse._SubParsersAction) -> None:
    group = sub.add_parser("replica", help="the CPR replica the person look-ups answer from")
    cmds = group.add_subparsers(dest="command", required=True, metavar="COMMAND")

    load = cmds.add_parser("load", help="load a status extract (the whole population), "
                                        "validated as a change extract is")
    load.add_argument("file", type=Path)
    load.add_argument("--no-expectations", action="store_true",
                      help="skip the great-expectations data-quality suite")
    db_option(load)
    load.set_defaults(handler=load_cmd)

    apply = cmds.add_parser("apply", help="apply a change extract by hand (the daily DAG's "
                                          "update_replica does it every day)")
    apply.add_argument("file", type=Path)
    apply.add_argument("--allow-gap", action="store_true",
                       help="apply although an earlier day is not in the replica")
    apply.add_argument("--no-expectations", action="store_true",
                       help="skip the great-expectations data-quality suite")
    db_option(apply)
    apply.set_defaults(handler=apply_cmd)

    status = cmds.add_parser("status", help="persons, last applied extract, lag")
    status.add_argument("--json", action="store_true")
    db_option(status)
    status.set_defaults(handler=status_cmd)

    lookups = cmds.add_parser(
        "lookups", help="who looked a person up (a citizen's access request); needs "
                        "CPRSUB_LOOKUP_KEY, the key the log was written with")
    lookups.add_argument("--pnr", required=True)
    lookups.add_argument("--from", dest="start", type=date_arg, required=True,
                         help="first day YYYY-MM-DD (UTC)")
    lookups.add_argument("--to", dest="end", type=date_arg, required=True,
                         help="last day YYYY-MM-DD (UTC, included)")
    lookups.add_argument("--json", action="store_true")
    db_option(lookups)
    lookups.set_defaults(handler=lookups_cmd)


def _replica(args: argparse.Namespace, filters=None):
    """The replica's database: ``CPRSUB_REPLICA_DB_URL`` if set, else the filter database
    (``--db``)."""
    from cpr_abonnement.replica.database import replica_engine

    return replica_engine(filters or engine_of(args))


def _validated(args: argparse.Namespace):
    """The file's index after the change extract's rules (each broken one named by
    :class:`~cpr_abonnement.errors.ExtractValidationFailed`) and, unless skipped, the
    data-quality suite: the replica takes nothing the pipeline would reject."""
    from cpr_abonnement.extract.index import scan
    from cpr_abonnement.extract.validation import check

    index = scan(args.file, digest=True)
    check(index)
    if not args.no_expectations:
        from cpr_abonnement.errors import ExtractValidationFailed
        from cpr_abonnement.extract.expectations import run_expectations

        report = run_expectations(index)
        if not report.success:
            raise ExtractValidationFailed(
                f"{args.file.name}: data quality: " + "; ".join(map(str, report.failures)))
    return index


def load_cmd(args: argparse.Namespace) -> int:
    from cpr_abonnement.replica.state import STATUS
    from cpr_abonnement.replica.updating import apply_extract

    index = _validated(args)
    print(apply_extract(_replica(args), args.file, index, kind=STATUS).line())
    return 0


def apply_cmd(args: argparse.Namespace) -> int:
    from cpr_abonnement.replica.state import CHANGE
    from cpr_abonnement.replica.updating import apply_extract

    index = _validated(args)
    print(apply_extract(_replica(args), args.file, index, kind=CHANGE,
                        allow_gap=args.allow_gap).line())
    return 0


def status_cmd(args: argparse.Namespace) -> int:
    from cpr_abonnement.replica.state import state

    filters = engine_of(args)
    now = state(filters, replica=_replica(args, filters))
    print(json.dumps(now.to_dict(), indent=2) if args.json else now.line())
    return 0


def lookups_cmd(args: argparse.Namespace) -> int:
    from cpr_abonnement.masking import mask
    from cpr_abonnement.replica.lookups import lookups_of
    from cpr_abonnement.settings import Settings

    rows = lookups_of(_replica(args), args.pnr, Settings.from_env().lookup_key,
                      dt.datetime.combine(args.start, dt.time()),
                      dt.datetime.combine(args.end + dt.timedelta(days=1), dt.time()))
    if args.json:
        print(json.dumps([{"at": r.looked_up_at.isoformat(), "system": r.system,
                           "user_uuid": r.user_uuid, "transport": r.transport,
                           "result": r.result} for r in rows], indent=2))
        return 0
    print(f"{len(rows)} look-up(s) of {mask(args.pnr)} from {args.start} to {args.end}:")
    for r in rows:
        print(f"  {r.looked_up_at:%Y-%m-%d %H:%M:%S} UTC  system {r.system or '-'}  "
              f"user {r.user_uuid or '-'}  {r.transport}  {r.result}")
    return 0
