"""``cprsub extract generate | validate | inspect``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cpr_abonnement.cli.common import date_arg
from cpr_abonnement.cli.progress import reporter


def register(sub: argparse._SubParsersAction) -> None:
    group = sub.add_parser("extract", help="CPR change extracts: generate, validate, inspect")
    cmds = group.add_subparsers(dest="command", required=True, metavar="COMMAND")

    gen = cmds.add_parser("generate", help="write a synthetic extract (deterministic by seed)")
    gen.add_argument("--date", type=date_arg, required=True, help="production date YYYY-MM-DD")
    gen.add_argument("--persons", type=int, required=True)
    gen.add_argument("--seed", type=int, default=0,
                     help="for --kind status: the population's seed")
    gen.add_argument("--kind", choices=("change", "status"), default="change",
                     help="a day's change extract, or a status extract (the population "
                          "of --persons persons, for `cprsub replica load`)")
    gen.add_argument("--population", type=int, default=0, metavar="N",
                     help="change extract: draw the persons events happen to from the "
                          "population of N persons a status extract made (--population-seed)")
    gen.add_argument("--population-seed", type=int, default=0)
    gen.add_argument("--task-number", default="431101")
    gen.add_argument("--previous-date", type=date_arg,
                     help="previous production date (default: previous CPR delivery day)")
    gen.add_argument("--crlf", action="store_true", help="CRLF line ends instead of LF")
    gen.add_argument("-o", "--output", type=Path, required=True,
                     help="file, or a directory to write D<YYMMDD>.L<task> into")
    gen.add_argument("--progress", action="store_true", default=None)
    gen.set_defaults(handler=generate_cmd)

    val = cmds.add_parser("validate", help="check an extract; exit 0 only when valid")
    val.add_argument("file", type=Path)
    val.add_argument("--expect-date", type=date_arg, help="the production date it must have")
    val.add_argument("--expect-previous", type=date_arg,
                     help="the previous production date it must chain onto")
    val.add_argument("--no-expectations", action="store_true",
                     help="skip the great-expectations data-quality suite")
    val.add_argument("--progress", action="store_true", default=None)
    val.set_defaults(handler=validate_cmd)

    ins = cmds.add_parser("inspect", help="persons, records per type, events, dates")
    ins.add_argument("file", type=Path)
    ins.add_argument("--json", action="store_true", help="machine-readable output")
    ins.add_argument("--progress", action="store_true", default=None)
    ins.set_defaults(handler=inspect_cmd)


def generate_cmd(args: argparse.Namespace) -> int:
    from cpr_abonnement.extract.generator import generate

    out = args.output
    if out.is_dir():
        from cpr_abonnement.extract.naming import extract_name

        out = out / extract_name(args.date, args.task_number)
    tmp = out.with_name(out.name + ".part")
    with open(tmp, "wb") as fh:
        result = generate(
            fh, production_date=args.date, persons=args.persons, seed=args.seed,
            task_number=args.task_number, previous_date=args.previous_date, crlf=args.crlf,
            progress=reporter("generating", "persons", enabled=args.progress),
            kind=args.kind, population=args.population,
            population_seed=args.seed if args.kind == "status" else args.population_seed,
        )
    tmp.replace(out)
    print(f"{out}: {args.kind} extract, {result.persons:,} persons, {result.records:,} records, "
          f"{result.nbytes:,} bytes, produced {result.production_date} "
          f"(previous {result.previous_date})")
    return 0


def _scan(args: argparse.Namespace):
    from cpr_abonnement.extract.index import scan

    return scan(args.file, progress=reporter("reading", "bytes", enabled=args.progress))


def validate_cmd(args: argparse.Namespace) -> int:
    from cpr_abonnement.extract.summary import describe, render_text
    from cpr_abonnement.extract.validation import check

    index = _scan(args)
    check(index, expect_date=args.expect_date, expect_previous=args.expect_previous)
    if not args.no_expectations:
        from cpr_abonnement.extract.expectations import run_expectations

        report = run_expectations(index)
        if not report.success:
            print(f"cprsub: {args.file.name}: data-quality expectations failed:",
                  file=sys.stderr)
            for outcome in report.failures:
                print(f"  - {outcome}", file=sys.stderr)
            return 1
    print(render_text(describe(index)))
    print("valid")
    return 0


def inspect_cmd(args: argparse.Namespace) -> int:
    from cpr_abonnement.extract.summary import describe, render_text

    summary = describe(_scan(args))
    print(json.dumps(summary, indent=2) if args.json else render_text(summary))
    return 0
