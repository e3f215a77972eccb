"""Which day a run is for: future logical dates and the ``delivery_day`` param (dag.test)."""

from __future__ import annotations

import datetime as dt
import html
from zoneinfo import ZoneInfo

import pytest

from cpr_abonnement.calendar import DeliveryCalendar
from support.deployment import SUBSCRIBERS, task_states

DAY = dt.date(2026, 11, 19)  # a Thursday, its deadline long past
AALBORG = next(iter(SUBSCRIBERS))


def _future_delivery_day() -> dt.date:
    """A delivery day after tomorrow in Denmark (next week, as an operator might mistype)."""
    today = dt.datetime.now(ZoneInfo("Europe/Copenhagen")).date()
    return DeliveryCalendar.default().next_delivery_day(today + dt.timedelta(days=1))


@pytest.mark.timeout(180)  # before the fix the sensor waited for days
def test_a_run_for_a_future_day_fails_at_once_and_frees_the_slot(deployment):
    future = _future_delivery_day()
    started = dt.datetime.now(dt.UTC)
    run = deployment.run(future)
    assert run.state == "failed"
    assert task_states(run)["wait_for_extract"] == "failed"
    assert dt.datetime.now(dt.UTC) - started < dt.timedelta(seconds=120)
    alerts = [html.unescape(t) for t in deployment.inbox.texts()]
    assert len(alerts) == 1, alerts
    assert f"delivery day {future} is in the future" in alerts[0]
    assert "not received" not in alerts[0]
    # The one max_active_runs slot is free: an ordinary day runs right after.
    deployment.extract(DAY)
    assert deployment.run(DAY).state == "success"


def test_a_delivery_day_param_equal_to_the_logical_date_is_accepted(deployment):
    src = deployment.extract(DAY)
    run = deployment.run(DAY, delivery_day=DAY.isoformat())
    assert run.state == "success", task_states(run)
    assert src.name in deployment.delivered(AALBORG)


def test_a_delivery_day_param_that_differs_from_the_logical_date_fails_at_once(deployment):
    other = dt.date(2026, 11, 20)
    deployment.extract(DAY)
    deployment.extract(other, seed=5)
    run = deployment.run(DAY, delivery_day=other.isoformat())
    assert run.state == "failed"
    assert task_states(run)["wait_for_extract"] == "failed"
    assert task_states(run)["parse_and_validate"] == "upstream_failed"
    assert not deployment.delivered(AALBORG)  # neither day was processed
    alerts = [html.unescape(t) for t in deployment.inbox.texts()]
    assert len(alerts) == 1, alerts
    assert (f"param delivery_day {other} differs from this run's delivery day {DAY}"
            in alerts[0])


def test_a_malformed_delivery_day_param_fails_at_once(deployment):
    deployment.extract(DAY)
    run = deployment.run(DAY, delivery_day="19-11-2026")
    assert run.state == "failed"
    assert task_states(run)["wait_for_extract"] == "failed"
    alert = html.unescape(deployment.inbox.texts()[0])
    assert "delivery_day '19-11-2026' is not a date (YYYY-MM-DD)" in alert
    assert "not received" not in alert  # a refusal, not a reception problem


def test_a_cli_trigger_whose_interval_is_another_day_is_refused(airflow_db):
    """``airflow dags trigger --logical-date D`` (Airflow 3.3's CLI) takes the data
    interval from the time of triggering, so the run would show D and process another
    day: the first task refuses it, naming both days and how to run D."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from airflow.models import DagRun
    from airflow.utils.session import create_session

    from cpr_abonnement import DAILY_DAG_ID
    from cpr_abonnement.errors import RunDateRefused
    from cpr_abonnement.tasks.run_dates import delivery_day

    named = dt.date(2025, 3, 13)  # a Thursday no other test runs (the Airflow DB is shared)
    airflow = str(Path(sys.executable).parent / "airflow")
    env = dict(os.environ)
    subprocess.run([airflow, "dags", "reserialize"], check=True, capture_output=True, env=env)
    done = subprocess.run([airflow, "dags", "trigger", DAILY_DAG_ID, "--logical-date",
                           f"{named}T00:00:00+00:00", "--run-id", "cli-trigger"],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    with create_session() as session:
        run = session.query(DagRun).filter_by(dag_id=DAILY_DAG_ID, run_id="cli-trigger").one()
        context = {"logical_date": run.logical_date, "params": {},
                   "data_interval_start": run.data_interval_start}
        session.delete(run)  # queued, never to run: not left for the worker's next tests
    assert context["logical_date"].date() == named
    assert context["data_interval_start"].date() != named  # Airflow's CLI: interval from "now"
    calendar = DeliveryCalendar.default()
    with pytest.raises(RunDateRefused, match=f"names delivery day {named}, but its data "
                                             f"interval is for") as refused:
        delivery_day(context, calendar)
    assert f"airflow backfill create --from-date {named} --to-date {named}" in str(refused.value)
    # A run whose interval is the one its logical date names (UI, REST API, schedule,
    # backfill, dag.test) passes: the same run with the interval the timetable infers.
    context["data_interval_start"] = context["logical_date"]
    assert delivery_day(context, calendar) == named
