"""catchup=False through Airflow's own scheduling code: a backfill, then the scheduler.

The path is the one production takes (issue 10, item 2): ``_create_backfill`` (what
``airflow backfill create`` and the UI call) creates backfill runs; the DAG processor
re-parses the DAG and sets ``DagModel.next_dagrun`` from the latest automated run
(``sync_bag_to_db``); the scheduler's run-creation step (``_create_dag_runs`` on the DAG
models ``dags_needing_dagruns`` selects) then creates scheduled runs. Each created run
is failed at once, as a day whose extract never comes fails, and the scheduler's
``max_active_runs`` bookkeeping is updated, so a catch-up storm shows as many runs.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pendulum
import pytest

from cpr_timetable import CprDeliveryTimetable

ROOT = Path(__file__).resolve().parents[2]
DAG_ID = "cpr_abonnement_daily"
UTC = pendulum.UTC


def _parse_dags() -> None:
    """What the DAG processor does after parsing: serialize the DAG, update its DagModel."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert not bag.import_errors, bag.import_errors
    sync_bag_to_db(bag, "dags-folder", None)


def _runs(run_type) -> list[dt.date]:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as s:
        dates = s.scalars(select(DagRun.logical_date).where(
            DagRun.dag_id == DAG_ID, DagRun.run_type == run_type)
            .order_by(DagRun.logical_date))
        return [d.date() for d in dates]


def _scheduler_loop(limit: int) -> None:
    """The scheduler's run-creation step until it has nothing due; each run fails."""
    from airflow.jobs.job import Job
    from airflow.jobs.scheduler_job_runner import SchedulerJobRunner
    from airflow.models.dag import DagModel
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from sqlalchemy import select

    runner = SchedulerJobRunner(job=Job(), num_runs=1)
    for _ in range(limit):
        with create_session() as s:
            query, _ = DagModel.dags_needing_dagruns(s)
            due = [m for m in query.all() if m.dag_id == DAG_ID]
            if not due:
                return
            runner._create_dag_runs(due, s)
            for run in s.scalars(select(DagRun).where(
                    DagRun.dag_id == DAG_ID, DagRun.state == DagRunState.QUEUED,
                    DagRun.run_type == "scheduled")):
                run.state = DagRunState.FAILED  # "extract for D not received"
            s.flush()
            runner._set_exceeds_max_active_runs(dag_model=due[0], session=s)


def _pending(day: dt.date) -> None:
    """The state the scheduler leaves while it waits for ``day``'s run time: the DAG's
    next run is ``day`` (set directly, as of a moment before an outage)."""
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import update

    tt = CprDeliveryTimetable()
    interval = tt.interval(day)
    with create_session() as s:
        s.execute(update(DagModel).where(DagModel.dag_id == DAG_ID).values(
            next_dagrun=interval.start, next_dagrun_data_interval_start=interval.start,
            next_dagrun_data_interval_end=interval.end,
            next_dagrun_create_after=tt.run_after(day)))


def _before_outage(last: dt.date) -> dt.date:
    """The scheduler ran ``last`` and then stopped while waiting for the next day."""
    _pending(last)
    _scheduler_loop(limit=1)
    assert _runs("scheduled") == [last]
    pending = CprDeliveryTimetable().calendar.next_delivery_day(last)
    _pending(pending)
    return pending


@pytest.fixture
def scheduled_dag(airflow_db):
    """The daily DAG parsed and unpaused; its runs and backfills removed afterwards."""
    from airflow.models.backfill import Backfill, BackfillDagRun
    from airflow.models.dag import DagModel
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import delete, update

    def forget() -> None:
        with create_session() as s:
            s.execute(delete(BackfillDagRun))
            s.execute(delete(DagRun).where(DagRun.dag_id == DAG_ID,
                                           DagRun.run_type.in_(("scheduled", "backfill"))))
            s.execute(delete(Backfill).where(Backfill.dag_id == DAG_ID))
            s.execute(update(DagModel).where(DagModel.dag_id == DAG_ID)
                      .values(is_paused=True, exceeds_max_non_backfill=False))

    _parse_dags()
    forget()
    with create_session() as s:
        s.execute(update(DagModel).where(DagModel.dag_id == DAG_ID).values(is_paused=False))
    try:
        yield
    finally:
        forget()


def test_after_a_backfill_the_scheduler_creates_only_the_latest_due_run(scheduled_dag):
    from airflow.models.backfill import _create_backfill

    tt = CprDeliveryTimetable()
    due_before = tt.latest_due(pendulum.now(UTC))
    _create_backfill(dag_id=DAG_ID, from_date=pendulum.datetime(2025, 12, 19, tz=UTC),
                     to_date=pendulum.datetime(2025, 12, 29, tz=UTC), max_active_runs=1,
                     reverse=False, dag_run_conf=None, triggering_user_name="test")
    assert _runs("backfill") == [dt.date(2025, 12, d) for d in (19, 22, 23, 25, 26, 29)]
    _parse_dags()  # the DAG processor: next_dagrun from the latest (backfill) run
    _scheduler_loop(limit=300)
    scheduled = _runs("scheduled")
    assert len(scheduled) == 1, f"{len(scheduled)} scheduled runs: {scheduled[:3]}..."
    assert scheduled[0] in {due_before, tt.latest_due(pendulum.now(UTC))}
    _parse_dags()  # and again: the next run is the next delivery day, not a missed one
    _scheduler_loop(limit=5)
    assert _runs("scheduled") == scheduled


OUTAGE_LAST_RUN = dt.date(2026, 6, 1)  # a Monday; the platform was down for months since


def test_after_a_scheduler_outage_only_the_latest_due_day_runs(scheduled_dag):
    """The usual case: the DAG processor (which re-parses every DAG file every
    ``min_file_process_interval``, 30 s) updates the next run before the scheduler
    creates it."""
    tt = CprDeliveryTimetable()
    _before_outage(OUTAGE_LAST_RUN)
    _parse_dags()
    _scheduler_loop(limit=300)
    assert _runs("scheduled")[0] == OUTAGE_LAST_RUN
    assert _runs("scheduled")[1:] == [tt.latest_due(pendulum.now(UTC))]


def test_a_full_restart_adds_at_most_the_run_that_was_pending(scheduled_dag):
    """Platform and DAG processor down together, and the scheduler first after the
    restart: the run Airflow had already computed before the outage (the first missed
    day) is created from the stored next run, then the latest due day; nothing else."""
    tt = CprDeliveryTimetable()
    pending = _before_outage(OUTAGE_LAST_RUN)
    _scheduler_loop(limit=300)
    assert _runs("scheduled") == [OUTAGE_LAST_RUN, pending, tt.latest_due(pendulum.now(UTC))]
