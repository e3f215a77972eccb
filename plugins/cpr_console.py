"""The operator console in Airflow's UI: a "CPR" entry in the sidebar.

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
#: The sidebar's label: one word, as Airflow's own entries (longer names are cut).
SIDEBAR_NAME = "CPR"


def _apps() -> list[dict[str, Any]]:
    """The console, built where Airflow reads it (the API server), not in each task
    process that loads this file (:mod:`cpr_abonnement.plugin_attributes`)."""
    from cpr_abonnement.airflow_side.connections import (
        api_server_engine,
        api_server_replica_engine,
    )
    from cpr_abonnement.airflow_side.console_access import (
        clear_permission,
        console_access,
        deliver_task_links,
    )
    from cpr_abonnement.console.app import create_console_app

    return [{"app": create_console_app(api_server_engine, access=console_access(),
                                       links=deliver_task_links,
                                       may_clear=clear_permission(),
                                       replica_of=api_server_replica_engine),
             "url_prefix": URL_PREFIX, "name": "CPR Abonnement operator console"}]


#: The sidebar's icon for the console: a stack of delivered files (inline, so it needs no
#: route of its own and no request the auth check would refuse).
ICON = ("data:image/svg+xml;utf8,<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 24 24' "
        "fill='none' stroke='{colour}' stroke-width='2' stroke-linecap='round' "
        "stroke-linejoin='round'><path d='M4 7l8-4 8 4-8 4z'/><path d='M4 12l8 4 8-4'/>"
        "<path d='M4 17l8 4 8-4'/></svg>")


def _views() -> list[dict[str, Any]]:
    """The navigation entries: the console one click away at the sidebar's top level
    (its pages link to each other), and each page under Plugins › CPR Abonnement."""
    from cpr_abonnement.console.app import PAGES

    entry = {"name": SIDEBAR_NAME, "href": f"{URL_PREFIX}/{PAGES[0][0]}", "destination": "nav",
             "nav_top_level": True, "url_route": "cpr-console",
             "icon": ICON.format(colour="%23333f4c"),
             "icon_dark_mode": ICON.format(colour="%23d7dde4")}
    return [entry, *({"name": title, "href": f"{URL_PREFIX}/{path}", "destination": "nav",
                      "category": CATEGORY, "url_route": f"cpr-{path}"}
                     for path, title in PAGES)]


class CprAbonnementConsolePlugin(AirflowPlugin):
    name = "cpr_abonnement_console"
    fastapi_apps: ClassVar[list[dict[str, Any]]] = BuiltOnRead(_apps)
    external_views: ClassVar[list[dict[str, Any]]] = BuiltOnRead(_views)
