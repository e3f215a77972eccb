"""Reaching the filter database and keeping its schema current.

The database is named by a SQLAlchemy URL, resolved in this order: an explicit URL
(``--db``), the environment variable ``CPRSUB_DB_URL``, and the embedded default, a
SQLite file ``filters.db`` in ``CPRSUB_HOME`` (default ``./var``). Inside Airflow the
URL comes from an Airflow connection instead (see
:func:`cpr_abonnement.airflow_side.connections.task_engine`), so credentials stay in Airflow's
secrets.

Schema changes are Alembic migrations shipped in the package
(``store/migrations``); :func:`upgrade` applies the missing ones in place and
is idempotent.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from importlib import resources
from pathlib import Path

from sqlalchemy import Engine, MetaData, create_engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session

from cpr_abonnement.settings import cli_home, db_url


def default_url() -> str:
    home = Path(cli_home()).resolve()
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{home / 'filters.db'}"


def resolve_url(url: str | None = None) -> str:
    return url or db_url() or default_url()


def normalise_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL URLs written the common way (``postgres://``)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def connection_url(conn) -> str:
    """The filter-database URL an Airflow connection (SDK or core object) describes."""
    if conn.conn_type == "sqlite":
        return f"sqlite:///{conn.host}"
    return normalise_url(conn.get_uri())


#: A pooled PostgreSQL connection unused for this long is checked (``SELECT 1``)
#: before it is handed out; one in steady use is not (see :func:`_check_when_idle`).
IDLE_CHECK_SECONDS = 10.0


def as_naive_utc(t: dt.datetime) -> dt.datetime:
    """``t`` as the database stores every time: UTC without a zone (a naive ``t`` is
    taken to be UTC already)."""
    return t.astimezone(dt.UTC).replace(tzinfo=None) if t.tzinfo else t


def make_engine(url: str | None = None, *, connections: int | None = None) -> Engine:
    """An engine for the filter database.

    :param connections: PostgreSQL: keep exactly this many connections (the API server
        passes its setting ``api_db_connections``, the calls it serves at once). Left
        out, SQLAlchemy's default pool (5, plus 10 opened and closed again on demand)
        suits a task or the CLI; under twenty concurrent API calls that pool opened and
        closed a connection (a new server process) for many calls.
    """
    url = normalise_url(resolve_url(url))
    if url.startswith("sqlite"):
        # hide_parameters: a driver error must never print bound values (PNRs) in logs.
        engine = create_engine(url, connect_args={"timeout": 60}, hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:
            cur = dbapi_conn.cursor()
            # WAL lets the Airflow task read while the API writes; foreign keys are off by
            # default in SQLite.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    sizing = {"pool_size": connections, "max_overflow": 0} if connections else {}
    engine = create_engine(url, hide_parameters=True, **sizing)
    _check_when_idle(engine)
    return engine


def _check_when_idle(engine: Engine) -> None:
    """Check a pooled connection before use only if it lay unused for
    :data:`IDLE_CHECK_SECONDS`: one that was dropped (a database restart, a firewall's
    idle timeout) is replaced instead of failing the call. SQLAlchemy's ``pool_pre_ping``
    checks on every checkout, a round trip that was a tenth of an API call's time;
    a connection in steady use proves itself on every call."""
    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_conn, record) -> None:
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _check(dbapi_conn, record, _proxy) -> None:
        if time.monotonic() - record.info.get("returned_at", -math.inf) < IDLE_CHECK_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise DisconnectionError(f"pooled connection is gone: {exc}") from exc


#: One writer lock per SQLite engine (see :func:`writing`).
_SQLITE_WRITERS: weakref.WeakKeyDictionary[Engine, threading.RLock] = weakref.WeakKeyDictionary()
_WRITERS_GUARD = threading.Lock()


def _writer_lock(engine: Engine) -> threading.RLock | nullcontext:
    """SQLite: this engine's writer lock; other databases lock rows themselves."""
    if engine.dialect.name != "sqlite":
        return nullcontext()
    with _WRITERS_GUARD:
        return _SQLITE_WRITERS.setdefault(engine, threading.RLock())


@contextmanager
def writing(engine: Engine) -> Iterator[Session]:
    """A session in one write transaction, committed on leaving (rolled back on error).

    SQLite has one database-wide write lock, and a writer that finds it taken sleeps
    in SQLite's busy handler (steps of up to 100 ms), so under twenty concurrent API
    calls the unlucky ones waited seconds. Writers of one process therefore queue on
    a lock of their own first and meet SQLite's lock free; only writers of other
    processes (the Airflow tasks, the CLI) still meet the busy handler.
    """
    with _writer_lock(engine), Session(engine) as session, session.begin():
        yield session


def _alembic_config(engine: Engine | None = None):
    from alembic.config import Config

    cfg = Config()
    script_dir = resources.files("cpr_abonnement.store").joinpath("migrations")
    cfg.set_main_option("script_location", str(script_dir))
    cfg.attributes["engine"] = engine
    return cfg


def _scripts():
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config())


def head_revision() -> str:
    """The newest schema revision this release ships (what ``upgrade`` brings a
    database to)."""
    return _scripts().get_current_head() or ""


def is_known_revision(revision: str) -> bool:
    """Whether this release ships ``revision``: a database (or a backup) at a revision
    it does not know was made by a newer release, which this one can neither read
    safely nor migrate."""
    from alembic.util import CommandError

    try:
        return _scripts().get_revision(revision) is not None
    except CommandError:
        return False


def upgrade(engine: Engine, revision: str = "head") -> str:
    """Apply missing migrations; returns the revision the database is at afterwards."""
    from alembic import command

    command.upgrade(_alembic_config(engine), revision)
    return current_revision(engine) or ""


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


SCHEMA_HEADER = """\
-- Filter database of CPR Abonnement ({dialect}). GENERATED from the SQLAlchemy models
-- (include/cpr_abonnement/store/models.py) by `cprsub db schema --dialect {dialect}`,
-- and a test keeps it current. Deploy with `cprsub db upgrade` (Alembic), which creates the
-- same schema and upgrades existing databases in place.
--
-- subscriber            product.md §1-2: one row per IT system (UserSystemUUID)
-- filter_*              product.md §2-3: one table per filter type, [added_at, removed_at)
--                       is the validity period, so "filters in force at T" is one query
-- credential            API tokens (salted SHA-256 of a 256-bit secret, never the token)
-- audit                 every operation: caller, time, subscriber, arguments (PNRs masked)
"""


def schema_sql(dialect: str, metadata: MetaData) -> str:
    """The DDL of ``metadata`` (the whole schema: :data:`cpr_abonnement.filters.METADATA`)
    for ``postgresql`` or ``sqlite``, as committed under sql/."""
    from sqlalchemy.dialects import postgresql, sqlite
    from sqlalchemy.schema import CreateIndex, CreateTable

    compiled = {"postgresql": postgresql.dialect(), "sqlite": sqlite.dialect()}[dialect]
    parts = [SCHEMA_HEADER.format(dialect=dialect)]
    for table in metadata.sorted_tables:
        parts.append(str(CreateTable(table).compile(dialect=compiled)).strip() + ";\n")
        for index in sorted(table.indexes, key=lambda i: i.name or ""):
            parts.append(str(CreateIndex(index).compile(dialect=compiled)).strip() + ";\n")
    return "\n".join(line.rstrip() for line in "\n".join(parts).splitlines()) + "\n"
