"""Puts each daily run's summary on the run itself, as its note in the UI.

A task cannot write its own run's note in Airflow 3 (tasks have no metadata-database
access), so the ``report`` task pushes its summary to XCom (key ``run_note``) and this
listener, which runs where the run's state is decided (scheduler, or ``dag.test``),
copies it into the run's note when the run succeeds or fails.
"""

from __future__ import annotations

import logging

from airflow.listeners import hookimpl
from airflow.plugins_manager import AirflowPlugin

from cpr_abonnement import DAILY_DAG_ID

DAG_ID = DAILY_DAG_ID
NOTE_KEY = "run_note"
NOTE_LIMIT = 1000  # dag_run_note.content
log = logging.getLogger(__name__)


def _note(session, dag_run) -> str | None:
    from airflow.models.xcom import XComModel

    rows = session.scalars(XComModel.get_many(
        run_id=dag_run.run_id, dag_ids=dag_run.dag_id, task_ids=["report"],
        key=NOTE_KEY)).all()
    return str(XComModel.deserialize_value(rows[0]))[:NOTE_LIMIT] if rows else None


def _copy_summary(dag_run) -> None:
    if dag_run.dag_id != DAG_ID:
        return
    try:
        from sqlalchemy.orm import object_session

        session = object_session(dag_run)
        if session is not None:
            # The caller's session (the scheduler's), which it commits: a session of our
            # own on the same thread would be the scoped one and detach its objects.
            text = _note(session, dag_run)
            if text:
                dag_run.note = text
            return
        from airflow import settings
        from airflow.models.dagrun import DagRun

        with settings.Session.session_factory() as own:  # independent of the scoped one
            text = _note(own, dag_run)
            if text:
                own.get(DagRun, dag_run.id).note = text
                own.commit()
    except Exception:  # a note must never break the scheduler
        log.exception("could not set the run note of %s", dag_run.run_id)


class RunNoteListener:
    @hookimpl
    def on_dag_run_success(self, dag_run, msg):
        _copy_summary(dag_run)

    @hookimpl
    def on_dag_run_failed(self, dag_run, msg):
        _copy_summary(dag_run)


class CprRunNotePlugin(AirflowPlugin):
    name = "cpr_run_note"
    listeners = [RunNoteListener()]  # noqa: RUF012 (Airflow's plugin attribute)
