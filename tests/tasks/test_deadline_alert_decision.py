"""Issue 14, item 3: may Airflow 3.3's (experimental) DAG deadline alert replace the
sensor's own timer for "extract not received by the deadline"? No; these tests pin the
reasons, so a later Airflow that lifts them makes a test fail and the question is asked
again.

1. A deadline is a DAG-run reference (logical date, queued-at) plus one fixed interval.
   Ours is 21:00 *Danish* time plus ``CPRSUB_EXTRACT_DEADLINE_HOURS`` after a logical
   date at UTC midnight, which is 25 hours after it in summer and 26 in winter: no
   single interval is right all year.
2. A deadline measures the whole run, not the extract: Airflow prunes it only when the
   run succeeds (``DagRun.update_state``), so a run whose extract arrived but whose
   delivery is still retrying, or a run that already failed and alerted, would get a
   second, wrong "extract not received" alert. The sensor knows whether the file is
   there (even one still arriving, which it waits for past the deadline).
"""

from __future__ import annotations

import datetime as dt
import inspect

from cpr_abonnement.settings import Settings


def test_no_single_interval_after_the_logical_date_is_the_extract_deadline(monkeypatch):
    from airflow.sdk.definitions.callback import SyncCallback
    from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference

    monkeypatch.setenv("CPRSUB_DELIVERY_TIME", "21:00")
    monkeypatch.setenv("CPRSUB_EXTRACT_DEADLINE_HOURS", "6")
    settings = Settings.from_env()
    needed = set()
    for day in (dt.date(2026, 1, 15), dt.date(2026, 7, 15)):  # winter, summer
        logical = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
        needed.add(settings.extract_deadline(day) - logical)
    assert needed == {dt.timedelta(hours=26), dt.timedelta(hours=25)}
    # What Airflow offers: one reference, one fixed interval per DAG.
    alert = DeadlineAlert(reference=DeadlineReference.DAGRUN_LOGICAL_DATE,
                          interval=dt.timedelta(hours=26),
                          callback=SyncCallback("cpr_abonnement.tasks.alerts.failure_alert"))
    assert isinstance(alert.interval, dt.timedelta)


def test_airflow_prunes_a_run_deadline_only_when_the_run_succeeds():
    from airflow.models.dagrun import DagRun

    source = inspect.getsource(DagRun.update_state)
    success = source.index("DagRunState.SUCCESS")
    prune = source.index("Deadline.prune_deadlines")
    assert source.count("Deadline.prune_deadlines") == 1
    # The only prune sits in the success branch: after success, before the next branch.
    assert success < prune < source.index("elif", success)
