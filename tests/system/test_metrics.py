"""Our metrics through the real daily DAG (dag.test) to a real StatsD receiver.

The names received here are the ones tests/deploy/test_metrics_deploy.py holds the
mapping and the Grafana dashboard to (``support.metrics``): this test fails if the run
sends a different set of ours, or not Airflow's listed there.
"""

from __future__ import annotations

import datetime as dt
import json
import socket

import pytest

from cpr_abonnement.errors import PickupLate
from cpr_abonnement.records import ledger
from cpr_abonnement.settings import Settings
from cpr_abonnement.tasks import metrics
from support.deployment import SUBSCRIBERS, task_states
from support.metrics import AIRFLOW_EMITTED, EMITTED_BY_THE_DAILY_RUN, PREFIX
from support.pickup import record_delivered
from support.statsd import airflow_metrics_to

DAY = dt.date(2026, 11, 19)  # a Thursday, its deadline long past


def test_the_daily_run_sends_the_days_metrics_through_airflows_statsd(deployment,
                                                                        monkeypatch):
    """One subscriber's server is down: the day's metrics tell delivered from failed,
    and are sent although the report then fails the run."""
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    monkeypatch.setenv("AIRFLOW_CONN_SFTP_ODENSE", json.dumps(
        {**json.loads(deployment.sftp.airflow_connection("cpr")), "port": dead}))
    deployment.extract(DAY)
    with airflow_metrics_to(monkeypatch) as statsd:
        started = dt.datetime.now(dt.UTC)
        run = deployment.run(DAY)
        assert task_states(run)["report"] == "failed"
        assert task_states(run)["deliver[Odense Sag]"] == "failed"
        names = statsd.wait_for(*EMITTED_BY_THE_DAILY_RUN, *AIRFLOW_EMITTED)
    ours = {n for n in names if n.startswith(PREFIX + "cpr_abonnement.")}
    assert ours == EMITTED_BY_THE_DAILY_RUN, statsd.lines
    assert names >= set(AIRFLOW_EMITTED), sorted(names)
    kinds = {**dict.fromkeys(statsd.gauges, "gauge"), **dict.fromkeys(statsd.counters, "counter"),
             **dict.fromkeys(statsd.timers, "timer")}
    assert {n: kinds[n] for n in AIRFLOW_EMITTED} == AIRFLOW_EMITTED
    assert {kinds[n] for n in ours} == {"gauge"}

    gauges = {n.removeprefix(PREFIX): v for n, v in statsd.gauges.items()}
    sub = metrics.SUBSCRIBERS.format
    rows = ledger.entries(deployment.engine, "431101", DAY)
    assert sorted(e.outcome for e in rows) == ["DELIVERED", "DELIVERED", "FAILED"]
    assert len(rows) == len(SUBSCRIBERS)
    assert gauges[sub(outcome="delivered")] == 2
    assert gauges[sub(outcome="failed")] == 1
    assert gauges[sub(outcome="waiting")] == 0
    delivered = [e for e in rows if e.outcome == "DELIVERED"]
    failed = next(e for e in rows if e.outcome == "FAILED")
    assert gauges[metrics.PERSONS_DELIVERED] == sum(e.persons for e in delivered) > 0
    assert failed.persons > 0  # Odense's file has persons, not counted: not delivered
    assert gauges[metrics.BYTES_DELIVERED] == sum(e.size_bytes for e in delivered) > 0
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
    from cpr_abonnement.store.db import make_engine, upgrade
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
