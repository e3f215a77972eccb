"""Airflow's users and roles, applied to CPR Abonnement's own pages and API.

Plugin apps mounted into Airflow's API server get no authentication or authorisation
from Airflow, so whatever we serve there asks Airflow's auth manager itself, with the
permissions of the daily DAG: whoever may *read* ``cpr_abonnement_daily`` may look at
the console; whoever may *edit* it (trigger, clear: the ``operator`` role of
``deploy/airflow_roles.py``, and Airflow's Admin) may administer subscribers through
the subscription API, as an administrator token can. Under the FAB auth manager the
``viewer`` role reads but does not edit, and does not read task logs.

Only meaningful inside Airflow's API server, where the auth manager is initialised;
the subscription API run on its own (``cprsub api serve``) knows its own tokens only.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request

from cpr_abonnement.subscriptions.credentials import Principal, Role

if TYPE_CHECKING:
    from airflow.api_fastapi.auth.managers.models.base_user import BaseUser

log = logging.getLogger(__name__)
#: The DAG whose permissions stand for CPR Abonnement's.
DAG_ID = "cpr_abonnement_daily"
#: ``token_id`` of principals made from an Airflow login (not one of our tokens).
AIRFLOW_LOGIN = "airflow-login"


def _authorised(user: BaseUser, method: str, access_entity: Any = None) -> bool:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails

    return get_auth_manager().is_authorized_dag(
        method=method, access_entity=access_entity, details=DagDetails(id=DAG_ID), user=user)


def may_view_console(user: BaseUser) -> bool:
    """May ``user`` look at the console: read access to the daily DAG."""
    return _authorised(user, "GET")


def may_operate(user: BaseUser) -> bool:
    """May ``user`` trigger and clear the daily DAG (and so administer subscribers)."""
    return _authorised(user, "PUT")


def may_read_task_logs(user: BaseUser) -> bool:
    """May ``user`` open task logs (they name files and folders): the console shows
    log links only then."""
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity

    return _authorised(user, "GET", DagAccessEntity.TASK_LOGS)


async def _current_user(request: Request) -> BaseUser:
    """Airflow's logged-in user (session cookie or bearer JWT); 401 when there is none.
    A function of ours so Airflow is imported only inside its API server."""
    from airflow.api_fastapi.core_api.security import bearer_scheme, get_user

    return await get_user(request, None, await bearer_scheme(request))


def console_viewer(user: Annotated[Any, Depends(_current_user)]) -> BaseUser:
    """FastAPI dependency for every console page and its JSON: the logged-in Airflow
    user when they may read the daily DAG; 401 anonymous, 403 otherwise."""
    from fastapi import HTTPException

    if not may_view_console(user):
        raise HTTPException(403, f"no read access to the DAG {DAG_ID}")
    return user


async def airflow_principal(token: str) -> Principal | None:
    """The subscription API's caller for an Airflow login token (JWT): an operator is an
    administrator (audited under their Airflow user name), anyone else who may log in
    is a viewer, who may neither administer nor act for an IT system. None when the
    token is not a valid Airflow token or Airflow's auth manager is not running here."""
    airflow_app = sys.modules.get("airflow.api_fastapi.app")
    if airflow_app is None:  # not inside Airflow's API server (and no slow import)
        return None
    from jwt import InvalidTokenError

    try:
        user = await airflow_app.get_auth_manager().get_user_from_token(token)
    except RuntimeError:  # Airflow's API code is loaded but its auth manager is not set up
        return None
    except InvalidTokenError:
        return None
    role = Role.ADMIN if may_operate(user) else Role.VIEWER
    return Principal(role, f"airflow:{user.get_name()}", AIRFLOW_LOGIN)
