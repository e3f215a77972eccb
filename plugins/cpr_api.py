"""Mounts the CPR Abonnement subscription API into Airflow's API server.

Airflow serves the app under ``/cpr-abonnement`` without any authentication of its own
(plugin apps are mounted as-is), so the app authenticates every call itself with
per-IT-system bearer tokens. The filter database is opened on the first request: the
URL comes from ``CPRSUB_DB_URL`` or else the Airflow connection ``cpr_filter_db``.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from airflow.plugins_manager import AirflowPlugin

from cpr_abonnement.api.app import create_app

URL_PREFIX = "/cpr-abonnement"


def _engine():
    from cpr_abonnement.subscriptions.db import (
        AIRFLOW_CONN_ID,
        ENV_URL,
        connection_url,
        make_engine,
    )

    url = os.environ.get(ENV_URL)
    if not url:
        # The API server is not a task: read the connection through core's secrets chain.
        from airflow.models.connection import Connection

        url = connection_url(Connection.get_connection_from_secrets(AIRFLOW_CONN_ID))
    return make_engine(url)


class CprAbonnementApiPlugin(AirflowPlugin):
    name = "cpr_abonnement_api"
    fastapi_apps: ClassVar[list[dict[str, Any]]] = [
        {"app": create_app(_engine), "url_prefix": URL_PREFIX,
         "name": "CPR Abonnement subscription API"},
    ]
