"""Airflow connections the service reads: the filter database, for tasks and for the
API server (the SFTP hosts are read by the provider's ``SFTPHook`` where they are used).

Credentials stay in Airflow's secrets backend; ``CPRSUB_DB_URL``, when set, wins (demos,
tests, deployments without the connection).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine

from cpr_abonnement.errors import FilterDatabaseUnavailable
from cpr_abonnement.settings import DB_URL_VARIABLE, db_url, replica_db_url
from cpr_abonnement.store.db import connection_url, make_engine

#: Airflow connection holding the filter database (conn type ``sqlite`` or ``postgres``).
AIRFLOW_CONN_ID = "cpr_filter_db"


def url_from_airflow_connection(conn_id: str = AIRFLOW_CONN_ID) -> str:
    """The filter-database URL stored in an Airflow connection (call inside a task)."""
    from airflow.sdk import BaseHook

    return connection_url(BaseHook.get_connection(conn_id))


def task_engine() -> Engine:
    """The filter database as an Airflow task sees it: ``CPRSUB_DB_URL`` if set, else the
    Airflow connection :data:`AIRFLOW_CONN_ID`, checked with one round trip.

    There is deliberately no embedded default here: a worker without the connection would
    otherwise filter against a new, empty SQLite file and deliver nothing to everyone.
    """
    url = db_url()
    source = f"${DB_URL_VARIABLE}" if url else f"Airflow connection {AIRFLOW_CONN_ID!r}"
    if not url:
        try:
            url = url_from_airflow_connection()
        except Exception as exc:  # AirflowNotFoundException, or a malformed connection
            raise FilterDatabaseUnavailable(
                f"the filter database is not configured: no {source} "
                f"({type(exc).__name__}); create it (conn type sqlite or postgres) "
                f"or set {DB_URL_VARIABLE}") from exc
    engine = _preloaded[1] if _preloaded and _preloaded[0] == url else make_engine(url)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except Exception as exc:
        engine.dispose()
        # The driver's message may quote the host but never the password (hidden by
        # SQLAlchemy's URL rendering); the type and the source are what an operator needs.
        raise FilterDatabaseUnavailable(
            f"the filter database named by {source} is not reachable "
            f"({type(exc).__name__} at {engine.url.render_as_string(hide_password=True)})"
        ) from exc
    return engine


#: The filter database's URL and engine as :func:`preload_task_engine` made them in a
#: process about to fork task processes; :func:`task_engine` uses it for that URL only.
_preloaded: tuple[str, Engine] | None = None


def preload_task_engine(warm: Callable[[Engine], object] | None = None) -> Engine | None:
    """Make the engine :func:`task_engine` would, in a process that then forks the
    task processes (:class:`~cpr_abonnement.airflow_side.executor.PreloadedLocalExecutor`),
    when ``CPRSUB_DB_URL`` names the database (the Airflow connection is a task's to
    read). Each task process then inherits it with its dialect set up and the statements
    ``warm`` ran (reads, and writes it rolled back) compiled, instead of building its
    own: 4 ms of each delivery, and 5 more for the ledger's write. The connection it
    opened is closed before anything forks; a forked process opens its own."""
    global _preloaded
    url = db_url()
    if not url:
        return None
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        if warm is not None:
            warm(engine)
    finally:
        engine.dispose()
    _preloaded = (url, engine)
    return engine


def api_server_engine() -> Engine:
    """The filter database for the subscription API mounted in Airflow's API server:
    ``CPRSUB_DB_URL``, else the connection through core's secrets chain (the API server
    is not a task, so the task SDK's lookup is not available there)."""
    url = db_url()
    if not url:
        from airflow.models.connection import Connection

        url = connection_url(Connection.get_connection_from_secrets(AIRFLOW_CONN_ID))
    return make_engine(url)


def replica_engine_of(filters: Engine, *, in_task: bool = True) -> Engine:
    """The CPR replica's database (:mod:`cpr_abonnement.replica.database`):
    ``CPRSUB_REPLICA_DB_URL``, else the Airflow connection ``cpr_replica_db`` if there is
    one, else the filter database ``filters``."""
    from cpr_abonnement.replica import database

    url = replica_db_url()
    if url is None:
        try:
            if in_task:
                url = url_from_airflow_connection(database.AIRFLOW_CONN_ID)
            else:
                from airflow.models.connection import Connection

                url = connection_url(Connection.get_connection_from_secrets(
                    database.AIRFLOW_CONN_ID))
        except Exception as exc:
            if type(exc).__name__ != "AirflowNotFoundException":
                raise  # a malformed connection is an error, not "none"
            url = None  # no connection of its own: the filter database
    return database.replica_engine(filters, url)


def api_server_replica_engine(filters: Engine) -> Engine:
    """:func:`replica_engine_of` for the API server (the subscription API and the
    console), which reads connections through core's secrets chain, not a task's."""
    return replica_engine_of(filters, in_task=False)
