"""The subscription API's databases, opened on the first request (never at import:
Airflow imports the plugin in processes that never serve it): the filter database, and
the CPR replica's, which is the same unless it has its own
(:mod:`cpr_abonnement.replica.database`)."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property

from sqlalchemy import Engine

from cpr_abonnement.replica.database import replica_engine
from cpr_abonnement.settings import Settings


class Databases:
    def __init__(self, engine_factory: Callable[[], Engine],
                 replica_of: Callable[[Engine], Engine] = replica_engine) -> None:
        self._factory, self._replica_of = engine_factory, replica_of

    @cached_property
    def engine(self) -> Engine:  # created on first request, never at import
        return self._factory()

    @cached_property
    def replica(self) -> Engine:
        """The CPR replica's database: the filter database unless it has its own."""
        return self._replica_of(self.engine)

    def made_engine(self) -> Engine | None:
        """The engine if a request has made it already (never makes it: for code on
        the event loop, where connecting must not happen)."""
        return self.__dict__.get("engine")


def default_engine() -> Engine:
    from cpr_abonnement.store.db import make_engine

    return make_engine(connections=Settings.from_env().api_db_connections)
