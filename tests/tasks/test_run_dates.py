"""Which day a run is for: future logical dates and the ``delivery_day`` param (dag.test)."""

from __future__ import annotations

import datetime as dt
import html
from zoneinfo import ZoneInfo

import pytest

from cpr_abonnement.delivery_calendar import DeliveryCalendar
from cpr_abonnement.errors import RunDateRefused
from cpr_abonnement.tasks.run_dates import delivery_day
from support.deployment import task_states

pytestmark = pytest.mark.slow

DAY = dt.date(2026, 11, 19)  # a Thursday, its deadline long past


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


def context(day: dt.date, delivery_day: str | None = None) -> dict:
    """What a run for logical date ``day`` hands its tasks (the timetable's interval)."""
    start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    return {"data_interval_start": start, "logical_date": start,
            "params": {"delivery_day": delivery_day}}


def test_the_delivery_day_param_may_only_repeat_the_logical_date():
    """The ``delivery_day`` param (for runs without a logical date) must name the run's
    own day; another day or a malformed one refuses the run, saying what to do. The
    first task turns the refusal into a failure at once (the future-day test above runs
    that through the DAG)."""
    calendar = DeliveryCalendar.default()
    assert delivery_day(context(DAY, DAY.isoformat()), calendar) == DAY
    assert delivery_day(context(DAY), calendar) == DAY
    assert delivery_day({"params": {"delivery_day": "2026-11-20"}}) == dt.date(2026, 11, 20)
    with pytest.raises(RunDateRefused, match="param delivery_day 2026-11-20 differs from "
                                             "this run's delivery day 2026-11-19"):
        delivery_day(context(DAY, "2026-11-20"), calendar)
    with pytest.raises(RunDateRefused, match=r"delivery_day '19-11-2026' is not a date "
                                             r"\(YYYY-MM-DD\)"):
        delivery_day(context(DAY, "19-11-2026"), calendar)
    with pytest.raises(RunDateRefused, match="has no logical date"):
        delivery_day({"params": {}})


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
