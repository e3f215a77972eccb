"""Airflow's users and roles, applied to CPR Abonnement's own pages and API.

Plugin apps mounted into Airflow's API server get no authentication or authorisation
from Airflow, so whatever we serve there asks Airflow's auth manager itself, with the
permissions of the daily DAG. The console asks with Airflow's own dependency
(:func:`cpr_abonnement.airflow_side.console_access.console_access`: read access); here, whoever may
*edit* the DAG (trigger, clear: the ``operator`` role of
``deploy/airflow_roles.py``, and Airflow's Admin) may administer subscribers through
the subscription API, as an administrator token can. Under the FAB auth manager the
``viewer`` role reads but does not edit, and does not read task logs.

Only meaningful inside Airflow's API server, where the auth manager is initialised;
the subscription API run on its own (``cprsub api serve``) knows its own tokens only.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from cpr_abonnement import DAILY_DAG_ID as DAG_ID
from cpr_abonnement.identities.credentials import Principal, Role

if TYPE_CHECKING:
    from airflow.api_fastapi.auth.managers.models.base_user import BaseUser

#: ``token_id`` of principals made from an Airflow login (not one of our tokens).
AIRFLOW_LOGIN = "airflow-login"


def may_operate(user: BaseUser) -> bool:
    """May ``user`` trigger and clear the daily DAG (and so administer subscribers)."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails

    return get_auth_manager().is_authorized_dag(
        method="PUT", details=DagDetails(id=DAG_ID), user=user)


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
