"""Where the replica lives: in the filter database by default, or in a database of its
own (``CPRSUB_REPLICA_DB_URL``, or the Airflow connection ``cpr_replica_db``), e.g. to
size, back up or place it apart from the subscriptions.

The replica's tables (persons, applied extracts, the look-up log) are then written and
read there; what the replica is compared with or filtered by (processed extracts,
subscribers, filters) stays in the filter database. ``cprsub db upgrade --db URL``
prepares a replica database like any other (its other tables stay empty).
"""

from __future__ import annotations

from functools import cache

from sqlalchemy import Engine

from cpr_abonnement.settings import replica_db_url
from cpr_abonnement.store.db import make_engine

#: The Airflow connection naming the replica's database, when the variable is unset.
AIRFLOW_CONN_ID = "cpr_replica_db"


def replica_engine(filters: Engine, url: str | None = None) -> Engine:
    """The replica's database: ``url`` (default ``CPRSUB_REPLICA_DB_URL``), else
    ``filters``."""
    url = url or replica_db_url()
    return _engine(url) if url else filters


@cache
def _engine(url: str) -> Engine:
    """One engine (one pool) per replica URL in a process."""
    return make_engine(url)
