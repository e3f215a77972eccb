"""The operator console's three questions to Airflow: may this caller see it, may they
clear a delivery task, and where is each delivery's task log.

:func:`console_access` is the one authorisation check of the console (pages, JSON,
plots). It asks the configured auth manager (Simple, FAB, Keycloak...) through
Airflow's own FastAPI dependency, so the console follows the deployment's users and
roles: whoever may read the daily DAG's runs may read the console; anyone else gets 403,
and a request without a valid Airflow session or token 401.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from cpr_abonnement import DAILY_DAG_ID as DAG_ID

#: Its mapped per-subscriber delivery task (map index named after the subscriber).
DELIVER_TASK = "deliver"


def console_access() -> Callable[..., Any]:
    """A FastAPI dependency: the caller must be authenticated by Airflow and allowed to
    read the runs of :data:`DAG_ID` (``requires_access_dag("GET", RUN)``)."""
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
    from airflow.api_fastapi.core_api.security import requires_access_dag

    return requires_access_dag("GET", DagAccessEntity.RUN, param_dag_id=DAG_ID)


def clear_permission() -> Callable[..., bool]:
    """A FastAPI dependency: whether the caller may clear the daily DAG's task instances
    (what ``clearTaskInstances`` requires: ``PUT`` on its task instances). The console
    offers "Clear it there to deliver again" only to them: Airflow 3.3's task page
    shows its Clear button to viewers too and refuses them only on the click."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import (
        DagAccessEntity,
        DagDetails,
    )
    from airflow.api_fastapi.core_api.security import get_user
    from fastapi import Depends

    def may_clear(user: Any = Depends(get_user)) -> bool:  # noqa: B008 (FastAPI idiom)
        return get_auth_manager().is_authorized_dag(
            method="PUT", access_entity=DagAccessEntity.TASK_INSTANCE,
            details=DagDetails(id=DAG_ID), user=user)

    return may_clear


def deliver_task_links(days: list[dt.date]) -> Mapping[tuple[dt.date, str], str]:
    """``(delivery day, subscriber name)`` → the UI path of that day's latest ``deliver``
    task instance for the subscriber, whose default tab is its log.

    A run's delivery day is its data interval's UTC start date (the rule of
    :func:`cpr_abonnement.tasks.run_dates.delivery_day`); the map index is rendered
    as the subscriber's name by the DAG's ``map_index_template``.
    """
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    if not days:
        return {}
    first = dt.datetime.combine(min(days), dt.time(), tzinfo=dt.UTC)
    last = dt.datetime.combine(max(days) + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    query = (select(DagRun.run_id, DagRun.data_interval_start, TaskInstance.map_index,
                    TaskInstance._rendered_map_index)
             .join(TaskInstance, (TaskInstance.dag_id == DagRun.dag_id)
                   & (TaskInstance.run_id == DagRun.run_id))
             .where(DagRun.dag_id == DAG_ID, TaskInstance.task_id == DELIVER_TASK,
                    DagRun.data_interval_start >= first, DagRun.data_interval_start < last)
             .order_by(DagRun.id))
    links: dict[tuple[dt.date, str], str] = {}
    with create_session() as session:
        for run_id, start, map_index, name in session.execute(query):
            if start is None or name is None:
                continue
            links[start.astimezone(dt.UTC).date(), name] = (  # later runs win
                f"/dags/{DAG_ID}/runs/{_quote(run_id)}/tasks/{DELIVER_TASK}/mapped/{map_index}")
    return links


def _quote(run_id: str) -> str:
    from urllib.parse import quote

    return quote(run_id, safe="")
