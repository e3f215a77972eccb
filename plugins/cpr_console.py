"""The operator console in Airflow's UI: a "CPR Abonnement" section in the navigation.

The pages are a FastAPI app (:mod:`cpr_abonnement.console.app`) mounted under
``/cpr-console`` and listed as external views, which Airflow's UI shows inside its own
frame. Airflow mounts plugin apps without authentication; every console route depends
on :func:`cpr_abonnement.airflow_side.console_access.console_access`, Airflow's own auth-manager
check, so it needs a logged-in user allowed to read the daily DAG's runs.
"""

from __future__ import annotations

from typing import Any, ClassVar

from airflow.plugins_manager import AirflowPlugin

from cpr_abonnement.plugin_attributes import BuiltOnRead

URL_PREFIX = "/cpr-console"
CATEGORY = "CPR Abonnement"


def _apps() -> list[dict[str, Any]]:
    """The console, built where Airflow reads it (the API server), not in each task
    process that loads this file (:mod:`cpr_abonnement.plugin_attributes`)."""
    from cpr_abonnement.airflow_side.connections import api_server_engine
    from cpr_abonnement.airflow_side.console_access import console_access, deliver_task_links
    from cpr_abonnement.console.app import create_console_app

    return [{"app": create_console_app(api_server_engine, access=console_access(),
                                       links=deliver_task_links),
             "url_prefix": URL_PREFIX, "name": "CPR Abonnement operator console"}]


def _views() -> list[dict[str, Any]]:
    """The navigation entries, one per console page."""
    from cpr_abonnement.console.app import PAGES

    return [{"name": title, "href": f"{URL_PREFIX}/{path}", "destination": "nav",
             "category": CATEGORY, "url_route": f"cpr-{path}"} for path, title in PAGES]


class CprAbonnementConsolePlugin(AirflowPlugin):
    name = "cpr_abonnement_console"
    fastapi_apps: ClassVar[list[dict[str, Any]]] = BuiltOnRead(_apps)
    external_views: ClassVar[list[dict[str, Any]]] = BuiltOnRead(_views)
