"""``cprsub db``: the filter database itself: its schema (upgrade, DDL), backups and
restores."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cpr_abonnement.cli.common import at_least_one, db_option, engine_of


def register(sub: argparse._SubParsersAction) -> None:
    db = sub.add_parser("db", help="the filter database").add_subparsers(
        dest="command", required=True, metavar="COMMAND")
    up = db.add_parser("upgrade", help="create or upgrade the schema in place (idempotent)")
    db_option(up)
    up.add_argument("--grant-roles", action="store_true",
                    help="PostgreSQL: then make the roles cprsub_api, cprsub_worker, "
                         "cprsub_keys, cprsub_pickup (passwords from "
                         "CPRSUB_DB_PASSWORD_API, _WORKER, _KEYS, _PICKUP; unset: a new "
                         "role is NOLOGIN, an existing one keeps its password) and apply "
                         "their grants (docs/deployment-roles.md); run as the owner, "
                         "with CREATEROLE. Not for SQLite, which has no roles")
    up.set_defaults(handler=db_upgrade)
    ddl = db.add_parser("schema", help="print the schema DDL (what sql/ holds)")
    ddl.add_argument("--dialect", choices=["postgresql", "sqlite"], default="postgresql")
    ddl.set_defaults(handler=db_schema)
    bak = db.add_parser("backup", help="back up the filter database into a dated file "
                                       "and its manifest (PostgreSQL: pg_dump -Fc)")
    db_option(bak)
    bak.add_argument("--out", required=True, type=Path, metavar="DIR",
                     help="directory the backup and its manifest are written to")
    bak.add_argument("--keep", type=at_least_one, metavar="N",
                     help="then remove all but the newest N backups of this database in DIR")
    bak.set_defaults(handler=db_backup)
    res = db.add_parser("restore", help="restore a backup into a new, EMPTY database and "
                                        "check it against the backup's manifest")
    res.add_argument("file", type=Path, metavar="FILE")
    res.add_argument("--db", required=True, metavar="URL",
                     help="the empty database to restore into (never a default: a restore "
                          "is aimed on purpose)")
    res.set_defaults(handler=db_restore)


def db_upgrade(args: argparse.Namespace) -> int:
    """Migrate, then (``--grant-roles``) the roles and their grants, so a table a
    migration adds has its grants before any service uses it. On SQLite the flag is
    refused before anything is migrated: a deployment that asked for roles must not
    believe it has them."""
    from cpr_abonnement.errors import RolesNotApplicable
    from cpr_abonnement.settings import role_passwords
    from cpr_abonnement.store.db import upgrade
    from cpr_abonnement.store.roles import grant_roles

    engine = engine_of(args)
    if args.grant_roles and engine.dialect.name != "postgresql":
        raise RolesNotApplicable(
            f"--grant-roles applies to PostgreSQL only: {engine.dialect.name} has no "
            "database roles, so nothing was migrated or granted (run without the flag)")
    print(f"filter database at revision {upgrade(engine)}")
    if args.grant_roles:
        for change in grant_roles(engine, role_passwords()):
            print(f"role {change.line()}")
        print("grants applied (include/cpr_abonnement/store/grants.postgresql.sql)")
    return 0


def db_schema(args: argparse.Namespace) -> int:
    from cpr_abonnement.filters import METADATA
    from cpr_abonnement.store.db import schema_sql

    print(schema_sql(args.dialect, METADATA), end="")
    return 0


def db_backup(args: argparse.Namespace) -> int:
    from cpr_abonnement.store.backup import backup
    from cpr_abonnement.store.db import resolve_url

    done = backup(resolve_url(args.db), args.out, keep=args.keep)
    m = done.manifest
    print(f"BACKED UP {m.database} at revision {m.alembic_revision} to {done.path} "
          f"({m.size_bytes:,} bytes, {sum(m.rows.values()):,} rows, {m.seconds:.1f} s; "
          f"sha256 {m.sha256})")
    for path in done.pruned:
        print(f"  pruned {path}")
    return 0


def db_restore(args: argparse.Namespace) -> int:
    from cpr_abonnement.store.backup import restore

    done = restore(args.file, args.db)
    checked = ("size, SHA-256, revision and row counts match its manifest"
               if done.checked_against_manifest else
               "no manifest beside it: size, SHA-256 and row counts NOT checked")
    print(f"RESTORED {done.file} into {done.database} at revision {done.revision}: "
          f"{sum(done.rows.values()):,} rows in {len(done.rows)} tables, "
          f"{done.seconds:.1f} s; {checked}")
    if done.upgrade_needed:
        print(f"cprsub: note: this release is at schema revision {done.head}: run "
              f"`cprsub db upgrade --db URL` before the pipeline uses the database",
              file=sys.stderr)
    return 0
