"""Backing up the filter database, and restoring a backup (``cprsub db backup|restore``).

The filter database holds what nothing else can give back: the subscribers and their
filters with their whole history (the snapshot instants that make a re-run or a
re-delivery of a day byte-identical, product.md §3), the audit trail and the delivery
ledger. A backup is one file plus a manifest beside it (``<file stem>.manifest.json``:
time, database, schema revision, size, SHA-256, row count per table).

PostgreSQL: ``pg_dump --format=custom`` (compressed, restorable table by table). The
manifest's revision and row counts are read in the very snapshot the dump is made of
(``pg_export_snapshot()`` handed to ``pg_dump --snapshot``), so a restore can prove it
got back exactly what was dumped, however busy the database was meanwhile.
SQLite (the embedded default): sqlite3's online backup API, a consistent copy even while
the API or a task writes.

A restore goes into an empty database only: restoring over existing tables would mix
two histories, or fail half-way. PostgreSQL's restore is one transaction
(``pg_restore --single-transaction``), so a failed one leaves the database empty and
can be retried. Backup files hold CPR numbers (the PNR filters): they are created
readable by their owner only.
"""

from __future__ import annotations

import datetime as dt
import glob
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from sqlalchemy import Connection, create_engine, func, inspect, select, table, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from cpr_abonnement.errors import (
    BackupCorrupt,
    BackupError,
    BackupRevisionUnknown,
    BackupToolFailed,
    DatabaseNotEmpty,
    RestoreMismatch,
)
from cpr_abonnement.masking import scrub
from cpr_abonnement.store.db import head_revision, is_known_revision, normalise_url

MANIFEST_SUFFIX = ".manifest.json"


@dataclass(frozen=True)
class Format:
    """A kind of backup file: the database it comes from and how it is recognised."""

    dialect: str
    suffix: str
    magic: bytes
    description: str


POSTGRES = Format("postgresql", ".dump", b"PGDMP", "pg_dump custom-format archive")
SQLITE = Format("sqlite", ".sqlite3", b"SQLite format 3\x00", "SQLite database file")
FORMATS = (POSTGRES, SQLITE)

#: ``<database>-<UTC time to the millisecond>Z``: sorts by time, never collides in
#: practice (and a collision is refused, never overwritten).
_STAMP = "%Y%m%dT%H%M%S"
_BACKUP_NAME = r"{name}-\d{{8}}T\d{{6}}\.\d{{3}}Z"


@dataclass(frozen=True)
class Manifest:
    """What a backup holds, written beside it: enough to check the file before a restore
    (size, SHA-256) and the restored database after it (revision, row counts)."""

    file: str
    format: str
    created_at: str
    database: str
    alembic_revision: str
    size_bytes: int
    sha256: str
    rows: dict[str, int]
    seconds: float
    tool: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def read(cls, path: Path) -> Manifest:
        try:
            return cls(**json.loads(path.read_text()))
        except (ValueError, TypeError) as exc:
            raise BackupCorrupt(f"{path} is not a backup manifest: {exc}",
                                path=str(path)) from exc


@dataclass(frozen=True)
class BackupResult:
    path: Path
    manifest_path: Path
    manifest: Manifest
    #: Older backups removed to keep the newest ``keep``.
    pruned: list[Path]


@dataclass(frozen=True)
class RestoreResult:
    file: Path
    database: str
    revision: str
    #: The revision this release would bring the database to (``cprsub db upgrade``).
    head: str
    rows: dict[str, int]
    #: Whether a manifest beside the file was found and everything matched it.
    checked_against_manifest: bool
    seconds: float

    @property
    def upgrade_needed(self) -> bool:
        return self.revision != self.head


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# -- backup -------------------------------------------------------------------------------
def backup(url: str, out_dir: Path, *, keep: int | None = None,
           clock: Callable[[], dt.datetime] = _utcnow) -> BackupResult:
    """Back up the database at ``url`` into ``out_dir``: one dated file and its manifest;
    then, with ``keep``, remove all but the newest ``keep`` backups of that database.

    The file is written under a ``.partial`` name and renamed once complete, and the
    manifest comes last, so a backup that died half-way is never taken for (or counted
    as) a complete one.
    """
    if keep is not None and keep < 1:
        raise BackupError(f"keep must be at least 1 backup, not {keep}")
    parsed = _parse(url)
    fmt = _format_of_url(parsed)
    name = _backup_stem(parsed)
    started = clock().astimezone(dt.UTC)
    base = f"{name}-{started:{_STAMP}}.{started.microsecond // 1000:03d}Z"
    out_dir.mkdir(parents=True, exist_ok=True)
    final, partial = out_dir / (base + fmt.suffix), out_dir / (base + fmt.suffix + ".partial")
    if final.exists():
        raise BackupError(f"a backup named {final.name} exists already", path=str(final))
    t = time.perf_counter()
    try:
        _create_private(partial).close()  # owner-only before a byte is in it
        revision, rows, tool = (_dump_postgres if fmt is POSTGRES else _copy_sqlite)(
            parsed, partial)
        size, digest = _size_and_sha256(partial)
        os.replace(partial, final)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    manifest = Manifest(
        file=final.name, format=fmt.description, created_at=started.isoformat(),
        database=_shown(parsed), alembic_revision=revision, size_bytes=size, sha256=digest,
        rows=rows, seconds=round(time.perf_counter() - t, 3), tool=tool)
    manifest_path = out_dir / (base + MANIFEST_SUFFIX)
    _write_private_atomically(manifest_path, manifest.to_json())
    pruned = prune(out_dir, name, keep) if keep else []
    return BackupResult(final, manifest_path, manifest, pruned)


def prune(out_dir: Path, name: str, keep: int) -> list[Path]:
    """Remove all but the newest ``keep`` complete backups of database ``name`` (those
    with a manifest) in ``out_dir``; returns the files removed. Other databases' backups
    and files that are not backups are left alone."""
    pattern = re.compile(_BACKUP_NAME.format(name=re.escape(name))
                         + re.escape(MANIFEST_SUFFIX))
    complete = sorted(p for p in out_dir.iterdir() if pattern.fullmatch(p.name))
    removed = []
    for manifest in complete[:-keep]:
        base = manifest.name.removesuffix(MANIFEST_SUFFIX)
        for data in (out_dir / (base + f.suffix) for f in FORMATS):
            if data.exists():
                data.unlink()
                removed.append(data)
        manifest.unlink()
        removed.append(manifest)
    return removed


def _dump_postgres(url: URL, path: Path) -> tuple[str, dict[str, int], str]:
    """``pg_dump -Fc`` into ``path``, of a snapshot this connection exports and reads the
    revision and row counts in, held open until the dump is done."""
    engine = create_engine(url, poolclass=NullPool, hide_parameters=True)
    try:
        with engine.connect() as conn, open(path, "wb") as out:
            conn.execution_options(isolation_level="REPEATABLE READ",
                                   postgresql_readonly=True)
            with conn.begin():
                snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
                _run("pg_dump", ["--format=custom", "--no-password",
                                 f"--snapshot={snapshot}"], url, stdout=out, path=path)
                revision, rows = inventory(conn)
    except DBAPIError as exc:
        raise _unreachable(url, exc) from exc
    finally:
        engine.dispose()
    return revision, rows, _run("pg_dump", ["--version"], url).strip()


def _copy_sqlite(url: URL, partial: Path) -> tuple[str, dict[str, int], str]:
    """sqlite3's backup API into ``partial``, left in rollback-journal mode so the backup
    is one self-contained file (the live database runs in WAL mode)."""
    source = Path(url.database or "")
    if not url.database or not source.is_file():
        raise BackupError(f"no SQLite database at {source}", database=_shown(url))
    with _sqlite_read_only(source) as src, closing(sqlite3.connect(partial)) as dst:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")
    copy = create_engine(f"sqlite:///{partial}", poolclass=NullPool)
    try:
        with copy.connect() as conn:
            revision, rows = inventory(conn)
    finally:
        copy.dispose()
    return revision, rows, f"sqlite3 backup API (SQLite {sqlite3.sqlite_version})"


def inventory(conn: Connection) -> tuple[str, dict[str, int]]:
    """The schema revision and the row count of every table, as ``conn`` sees them: what
    a manifest records and a restore is checked against."""
    from alembic.runtime.migration import MigrationContext

    revision = MigrationContext.configure(conn).get_current_revision() or ""
    rows = {name: int(conn.scalar(select(func.count()).select_from(table(name))) or 0)
            for name in sorted(inspect(conn).get_table_names())}
    return revision, rows


# -- restore ------------------------------------------------------------------------------
def restore(file: Path, url: str) -> RestoreResult:
    """Restore the backup ``file`` into the EMPTY database at ``url``, then check it.

    Refused before anything is written: a file that is no backup or does not match its
    manifest, a backup at a schema revision this release does not know (made by a newer
    one), a database of the other kind, and a database that is not empty. Afterwards the
    database's revision (and, with a manifest, every table's row count) must equal the
    backup's, else :class:`~cpr_abonnement.errors.RestoreMismatch`.
    """
    parsed = _parse(url)
    target, fmt = _format_of_url(parsed), _format_of_file(file)
    if fmt is not target:
        raise BackupError(f"{file} is a {fmt.description}; it restores into a "
                          f"{fmt.dialect} database, not the {target.dialect} one at "
                          f"{_shown(parsed)}", path=str(file), database=_shown(parsed))
    manifest = _checked_manifest(file, fmt)
    revision = _revision_in(file, fmt, parsed)
    if not is_known_revision(revision):
        raise BackupRevisionUnknown(
            f"{file} is at schema revision {revision!r}, which this release does not know "
            f"(its newest is {head_revision()}): restore it with the release that made it",
            path=str(file))
    _refuse_non_empty(parsed, fmt)
    t = time.perf_counter()
    if fmt is POSTGRES:
        # --no-privileges: the dump's grants name roles a new server may not have yet;
        # `cprsub db upgrade --grant-roles` grants them from the package's file instead.
        _run("pg_restore", ["--no-owner", "--no-privileges", "--single-transaction",
                            "--exit-on-error", "--no-password",
                            f"--dbname={parsed.database}", str(file)],
             parsed, path=file)
    else:
        _copy_into_sqlite(file, Path(parsed.database or ""))
    seconds = time.perf_counter() - t
    restored, rows = _inventory_of(parsed)
    _check_restored(file, parsed, revision, restored, rows, manifest)
    return RestoreResult(file, _shown(parsed), restored, head_revision(), rows,
                         manifest is not None, round(seconds, 3))


def manifest_of(file: Path) -> Path:
    """Where the manifest of backup ``file`` is (it may be missing: a copied file)."""
    base = next((file.name.removesuffix(f.suffix) for f in FORMATS
                 if file.name.endswith(f.suffix)), file.stem)
    return file.with_name(base + MANIFEST_SUFFIX)


def _checked_manifest(file: Path, fmt: Format) -> Manifest | None:
    """The manifest beside ``file``, after proving the file is the one it describes."""
    path = manifest_of(file)
    if not path.exists():
        return None
    manifest = Manifest.read(path)
    size, digest = _size_and_sha256(file)
    if (size, digest) != (manifest.size_bytes, manifest.sha256):
        raise BackupCorrupt(
            f"{file} is not the backup its manifest describes: {size:,} bytes, SHA-256 "
            f"{digest[:16]}..., manifest {manifest.size_bytes:,} bytes, SHA-256 "
            f"{manifest.sha256[:16]}... (damaged or replaced; use another backup)",
            path=str(file))
    return manifest


def _revision_in(file: Path, fmt: Format, url: URL) -> str:
    """The schema revision recorded inside the backup itself (alembic_version)."""
    if fmt is SQLITE:
        try:
            with _sqlite_read_only(file) as conn:
                row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.DatabaseError as exc:
            raise BackupCorrupt(f"{file}: no schema revision in it ({exc})",
                                path=str(file)) from exc
        revision = row[0] if row else None
    else:
        script = _run("pg_restore", ["--data-only", "--table=alembic_version", "--file=-",
                                     str(file)], url, path=file)
        lines = script.splitlines()
        at = next((i for i, line in enumerate(lines)
                   if line.startswith("COPY ") and "alembic_version" in line), None)
        revision = lines[at + 1].strip() if at is not None and at + 1 < len(lines) else None
        revision = None if revision == "\\." else revision
    if not revision:
        raise BackupCorrupt(f"{file} has no schema revision (alembic_version): not a "
                            f"backup of a filter database", path=str(file))
    return revision


def _refuse_non_empty(url: URL, fmt: Format) -> None:
    """Raise :class:`DatabaseNotEmpty` naming what the target database already holds."""
    if fmt is SQLITE:
        path = Path(url.database or "")
        if not path.exists() or path.stat().st_size == 0:
            return
        try:
            with _sqlite_read_only(path) as conn:
                objects = [r[0] for r in conn.execute(
                    "SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' "
                    "ORDER BY name")]
        except sqlite3.DatabaseError as exc:
            raise DatabaseNotEmpty(f"refusing to restore into {path}: it is not an empty "
                                   f"SQLite database ({exc})", database=_shown(url),
                                   objects=[str(path)]) from exc
    else:
        engine = create_engine(url, poolclass=NullPool, hide_parameters=True)
        try:
            with engine.connect() as conn:
                objects = list(conn.scalars(text(
                    "SELECT n.nspname || '.' || c.relname FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') "
                    "AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%' "
                    "ORDER BY 1")))
        except DBAPIError as exc:
            raise _unreachable(url, exc) from exc
        finally:
            engine.dispose()
    if objects:
        shown = ", ".join(objects[:5]) + (f" and {len(objects) - 5} more"
                                          if len(objects) > 5 else "")
        raise DatabaseNotEmpty(
            f"refusing to restore into {_shown(url)}: the database is not empty "
            f"({len(objects)} object(s): {shown}); restore into a new, empty database "
            f"({_NEW_DATABASE[fmt.dialect]}), then point the pipeline at it",
            database=_shown(url), objects=objects)


#: How to make the new, empty database a restore goes into.
_NEW_DATABASE = {POSTGRES.dialect: "CREATE DATABASE <name> OWNER <role>",
                 SQLITE.dialect: "a path where no file is yet"}


def _copy_into_sqlite(file: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with _sqlite_read_only(file) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)


def _inventory_of(url: URL) -> tuple[str, dict[str, int]]:
    engine = create_engine(url, poolclass=NullPool, hide_parameters=True)
    try:
        with engine.connect() as conn:
            return inventory(conn)
    finally:
        engine.dispose()


def _check_restored(file: Path, url: URL, revision: str, restored: str,
                    rows: dict[str, int], manifest: Manifest | None) -> None:
    if restored != revision:
        raise RestoreMismatch(f"{_shown(url)} is at revision {restored!r} after restoring "
                              f"{file}, which is at {revision!r}", path=str(file),
                              database=_shown(url))
    if manifest is None:
        return
    differ = {t: (manifest.rows.get(t), rows.get(t))
              for t in sorted(set(manifest.rows) | set(rows))
              if manifest.rows.get(t) != rows.get(t)}
    if differ or manifest.alembic_revision != restored:
        detail = ", ".join(f"{t}: {want} in the backup, {got} restored"
                           for t, (want, got) in differ.items())
        raise RestoreMismatch(
            f"{_shown(url)} does not hold what {file} does ("
            f"{detail or 'revision ' + repr(manifest.alembic_revision)})", path=str(file),
            database=_shown(url))


# -- shared -------------------------------------------------------------------------------
def pg_tool(name: str) -> str:
    """PostgreSQL's client program ``name``: the one on PATH, else the newest of Debian's
    ``/usr/lib/postgresql/<major>/bin``. (pg_dump refuses a server newer than itself, so
    the newest one installed is the one to use.)"""
    found = shutil.which(name)
    if found:
        return found
    installed = glob.glob(f"/usr/lib/postgresql/*/bin/{name}")
    if not installed:
        raise BackupToolFailed(f"PostgreSQL's {name} is not installed (Debian: apt-get "
                               f"install postgresql-client)", tool=name)
    return max(installed, key=lambda p: tuple(int(n) for n in re.findall(r"\d+",
                                                                          Path(p).parts[-3])))


#: URL query parameters and the libpq environment variables that carry them.
_LIBPQ_PARAMETERS = {
    "host": "PGHOST", "port": "PGPORT", "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT", "sslcert": "PGSSLCERT", "sslkey": "PGSSLKEY",
    "sslcrl": "PGSSLCRL", "connect_timeout": "PGCONNECT_TIMEOUT",
    "application_name": "PGAPPNAME", "target_session_attrs": "PGTARGETSESSIONATTRS",
    "gssencmode": "PGGSSENCMODE", "options": "PGOPTIONS",
}


def _libpq_env(url: URL) -> dict[str, str]:
    """The environment for pg_dump/pg_restore to reach the database ``url`` names.

    The password goes through ``PGPASSWORD``, never the command line (which every user
    of the machine can read in ``ps``). Inherited ``PG*`` variables are dropped: the URL
    alone names the database, as it does for the rest of the service.
    """
    given: dict[str, object] = {"PGHOST": url.host, "PGPORT": url.port,
                                "PGUSER": url.username, "PGPASSWORD": url.password,
                                "PGDATABASE": url.database}
    for key, value in url.query.items():
        if key not in _LIBPQ_PARAMETERS:
            raise BackupError(f"the database URL's parameter {key!r} is not one pg_dump "
                              f"understands ({', '.join(sorted(_LIBPQ_PARAMETERS))})",
                              database=_shown(url))
        given[_LIBPQ_PARAMETERS[key]] = value[-1] if isinstance(value, tuple) else value
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update({k: str(v) for k, v in given.items() if v not in (None, "")})
    return env


def _run(tool: str, args: list[str], url: URL, *, stdout: IO[bytes] | None = None,
         path: Path | None = None) -> str:
    """Run PostgreSQL's ``tool`` against ``url``; its output, unless it goes to
    ``stdout``. A failure raises :class:`BackupToolFailed` with what the tool said."""
    proc = subprocess.run([pg_tool(tool), *args], env=_libpq_env(url), check=False,
                          stdout=stdout if stdout is not None else subprocess.PIPE,
                          stderr=subprocess.PIPE)
    if proc.returncode != 0:
        raise BackupToolFailed(f"{tool} failed (exit status {proc.returncode})", tool=tool,
                               stderr=proc.stderr.decode(errors="replace"),
                               path=str(path) if path else None, database=_shown(url))
    return proc.stdout.decode(errors="replace") if stdout is None else ""


def _unreachable(url: URL, exc: DBAPIError) -> BackupError:
    first = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else ""
    return BackupError(f"cannot use the database {_shown(url)}: {type(exc.orig).__name__}: "
                       f"{scrub(first)}", database=_shown(url))


def _parse(url: str) -> URL:
    return make_url(normalise_url(url))


def _shown(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def _format_of_url(url: URL) -> Format:
    for fmt in FORMATS:
        if url.get_backend_name() == fmt.dialect:
            return fmt
    raise BackupError(f"cannot back up or restore a {url.get_backend_name()} database "
                      f"(PostgreSQL and SQLite only)", database=_shown(url))


def _format_of_file(file: Path) -> Format:
    with open(file, "rb") as fh:
        head = fh.read(max(len(f.magic) for f in FORMATS))
    for fmt in FORMATS:
        if head.startswith(fmt.magic):
            return fmt
    raise BackupCorrupt(f"{file} is neither a pg_dump custom-format archive nor a SQLite "
                        f"database", path=str(file))


def _backup_stem(url: URL) -> str:
    """The database's name as backup files begin with it (``cpr_filters``, ``filters``)."""
    name = url.database if url.get_backend_name() == POSTGRES.dialect else \
        Path(url.database or "").stem
    if not name or name == ":memory:":
        raise BackupError("the database URL names no database to back up",
                          database=_shown(url))
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def _sqlite_read_only(path: Path) -> closing[sqlite3.Connection]:
    """A read-only connection, closed on leaving: a backup never changes the database it
    copies, nor a restore its backup file."""
    return closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                                   timeout=60))


def _create_private(path: Path) -> IO[bytes]:
    """A new file only its owner can read (it will hold CPR numbers); never an existing one."""
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")


def _write_private_atomically(path: Path, content: str) -> None:
    tmp = path.with_name(path.name + ".partial")
    with _create_private(tmp) as fh:
        fh.write(content.encode())
    os.replace(tmp, path)


def _size_and_sha256(path: Path) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()
