"""The real DAGs as the workers run them in docker-compose.yml: as the database role
``cprsub_worker`` (issue 22, item 4). The deployment is set up as the owner; every
task of the daily DAG (receive, filter, deliver by push and by pick-up, report) and of
the housekeeping DAG (retention, certificate expiry, late pick-ups) then reaches the filter database
only as the worker role, so a right the pipeline uses and the grants lack fails a task."""

from __future__ import annotations

import datetime as dt

import pendulum
import pytest

from cpr_abonnement.records import ledger
from support.deployment import (
    PICKUP_UUID,
    ROOT,
    add_pickup_subscriber,
    task_states,
)
from support.roles import as_role, owned_database, upgrade_with_roles

DAY = dt.date(2026, 11, 19)
PASSWORDS = {suffix: f"synthetic-{suffix}-password-0002" for suffix in
             ("api", "worker", "keys", "pickup")}


@pytest.fixture
def filter_db_url(postgres_url, monkeypatch) -> str:
    """The deployment's filter database: PostgreSQL owned by cprsub, migrated and
    granted as airflow-init does; the deployment fixture sets it up as this owner."""
    url = owned_database(postgres_url)
    assert upgrade_with_roles(url, monkeypatch, **PASSWORDS) == 0
    return url


def test_the_daily_and_housekeeping_dags_run_as_cprsub_worker(deployment, filter_db_url,
                                                            monkeypatch, tmp_path):
    add_pickup_subscriber(deployment, monkeypatch, tmp_path)
    monkeypatch.setenv("CPRSUB_DB_URL", as_role(filter_db_url, "cprsub_worker"))
    deployment.extract(DAY)
    run = deployment.run(DAY)
    assert run.state == "success", task_states(run)
    rows = {e.subscriber_uuid: e for e in ledger.entries(deployment.engine, "431101", DAY)}
    assert {e.outcome for e in rows.values()} == {"DELIVERED"} and len(rows) == 4
    assert rows[PICKUP_UUID].available_at is not None
    # The IT system downloads its file: the pick-up tracker records it, as its own role.
    from cpr_abonnement.pickup.log import ledger_recorder
    from cpr_abonnement.store.db import make_engine
    from support.deployment import PICKUP_ACCOUNT

    tracker = make_engine(as_role(filter_db_url, "cprsub_pickup"))
    assert ledger_recorder(tracker)(PICKUP_ACCOUNT, f"IN/{rows[PICKUP_UUID].file_name}",
                                    "downloaded", dt.datetime(2026, 11, 20, 8, tzinfo=dt.UTC))
    tracker.dispose()

    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    later = dt.datetime(2027, 1, 20, 3, tzinfo=dt.UTC)  # the staged extract's retention ran out
    house = bag.get_dag("cpr_pickup_housekeeping").test(logical_date=pendulum.instance(later))
    assert house.state == "success", task_states(house)
