"""Our metrics through the real daily DAG (dag.test) to a real StatsD receiver.

The names received here are the ones the dashboard test
(tests/deploy/test_metrics_dashboard.py) holds the Grafana dashboard to; it keeps them
in ``EMITTED_BY_THE_DAILY_RUN``, and this test fails if the run sends a different set.
"""

from __future__ import annotations

import datetime as dt

import pytest

from cpr_abonnement.errors import PickupLate
from cpr_abonnement.settings import Settings
from cpr_abonnement.subscriptions import ledger
from cpr_abonnement.tasks import metrics
from support.deployment import SUBSCRIBERS, task_states
from support.pickup import record_delivered
from support.statsd import airflow_metrics_to

DAY = dt.date(2026, 11, 19)  # a Thursday, its deadline long past
PREFIX = "airflow."

#: Our names a successful daily run sends (after Airflow's statsd_prefix).
EMITTED_BY_THE_DAILY_RUN = frozenset(PREFIX + n for n in (
    *(metrics.SUBSCRIBERS.format(outcome=o) for o in metrics.OUTCOMES),
    metrics.PERSONS_DELIVERED, metrics.BYTES_DELIVERED, metrics.DEADLINE_MARGIN,
    metrics.LATE_PICKUPS))
#: Airflow's own names that dag.test makes Airflow send for this run (task finishes,
#: the run's duration): the mapping is checked against real traffic for these too.
AIRFLOW_EMITTED = frozenset({
    "airflow.ti.finish.cpr_abonnement_daily.report.success",
    "airflow.ti.finish.cpr_abonnement_daily.deliver.success",
    "airflow.dagrun.duration.success.cpr_abonnement_daily",
})


def test_the_daily_run_sends_the_days_metrics_through_airflows_statsd(deployment,
                                                                        monkeypatch):
    deployment.extract(DAY)
    with airflow_metrics_to(monkeypatch) as statsd:
        started = dt.datetime.now(dt.UTC)
        run = deployment.run(DAY)
        assert run.state == "success", task_states(run)
        names = statsd.wait_for(*EMITTED_BY_THE_DAILY_RUN, *AIRFLOW_EMITTED)
    ours = {n for n in names if n.startswith(PREFIX + "cpr_abonnement.")}
    assert ours == EMITTED_BY_THE_DAILY_RUN, statsd.lines
    assert names >= AIRFLOW_EMITTED, sorted(names)

    gauges = {n.removeprefix(PREFIX): v for n, v in statsd.gauges.items()}
    sub = metrics.SUBSCRIBERS.format
    assert gauges[sub(outcome="delivered")] == len(SUBSCRIBERS) == 3
    assert gauges[sub(outcome="failed")] == gauges[sub(outcome="waiting")] == 0
    rows = ledger.entries(deployment.engine, "431101", DAY)
    assert {e.outcome for e in rows} == {"DELIVERED"}
    assert gauges[metrics.PERSONS_DELIVERED] == sum(e.persons for e in rows) > 0
    assert gauges[metrics.BYTES_DELIVERED] == sum(e.size_bytes for e in rows) > 0
    assert gauges[metrics.LATE_PICKUPS] == 0
    # The sensor saw the file (settle time 0) at a poke during the run, long after the
    # day's deadline: a negative margin, sent as "0|g" then the signed change.
    deadline = Settings.from_env().extract_deadline(DAY)
    margin = gauges[metrics.DEADLINE_MARGIN]
    assert (deadline - dt.datetime.now(dt.UTC)).total_seconds() <= margin \
        <= (deadline - started).total_seconds()
    assert margin < 0
    assert any(line.startswith(f"{PREFIX}{metrics.DEADLINE_MARGIN}:-") for line in statsd.lines)


def test_the_late_pickup_check_sends_its_count_even_as_it_alerts(sqlite_url, monkeypatch):
    """The housekeeping DAG's check fails to alert; the count is sent before that."""
    from cpr_abonnement.subscriptions.db import make_engine, upgrade
    from cpr_abonnement.subscriptions.service import SubscriptionService
    from cpr_abonnement.tasks.housekeeping import check_pickups

    for name in ("CPRSUB_EXTRA_CLOSURES", "CPRSUB_DELIVERY_TIME", "CPRSUB_PICKUP_ALERT_DAYS"):
        monkeypatch.delenv(name, raising=False)
    engine = make_engine(sqlite_url)
    upgrade(engine)
    svc = SubscriptionService(engine, caller="t", clock=lambda: dt.datetime(2026, 11, 1))
    for uuid, account in (("11111111-0000-4000-8000-000000000001", "late"),
                          ("22222222-0000-4000-8000-000000000002", "later")):
        svc.add_subscriber(uuid, account, delivery_mode="pickup", pickup_account=account)
        record_delivered(engine, dt.date(2026, 11, 23), uuid)  # never fetched
    name = PREFIX + metrics.LATE_PICKUPS
    with airflow_metrics_to(monkeypatch) as statsd:
        with pytest.raises(PickupLate, match="2 pick-up subscriber"):
            check_pickups(Settings.from_env(), engine,
                          now=dt.datetime(2026, 11, 28, 12, tzinfo=dt.UTC))
        statsd.wait_for(name)
    assert statsd.gauges == {name: 2}
