"""Mounts the CPR Abonnement subscription API into Airflow's API server.

Airflow serves the app under ``/cpr-abonnement`` without any authentication of its own
(plugin apps are mounted as-is), so the app authenticates every call itself with
per-IT-system bearer tokens. The filter database is opened on the first request: the
URL comes from ``CPRSUB_DB_URL`` or else the Airflow connection ``cpr_filter_db``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from airflow.plugins_manager import AirflowPlugin

from cpr_abonnement.plugin_attributes import BuiltOnRead

URL_PREFIX = "/cpr-abonnement"


def _apps() -> list[dict[str, Any]]:
    """The app, built where Airflow reads it (the API server), not in each task process
    that loads this file (:mod:`cpr_abonnement.plugin_attributes`)."""
    from cpr_abonnement.airflow_side.connections import (
        api_server_engine,
        api_server_replica_engine,
    )
    from cpr_abonnement.api.app import create_app

    app = create_app(api_server_engine, replica_of=api_server_replica_engine)
    return [{"app": app, "url_prefix": URL_PREFIX,
             "name": "CPR Abonnement subscription API"}]


class CprAbonnementApiPlugin(AirflowPlugin):
    name = "cpr_abonnement_api"
    fastapi_apps: ClassVar[list[dict[str, Any]]] = BuiltOnRead(_apps)
