"""DAG integrity and policy: imports cleanly, no I/O or heavy imports at parse time,
retries and failure notifiers on every task, the expected shape."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAG_FILES = sorted((ROOT / "dags").glob("*.py"))


@pytest.fixture(scope="module")
def bag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_imports_without_errors(bag, path):
    assert str(path) not in bag.import_errors, bag.import_errors.get(str(path))


def test_parse_time_does_no_network_or_database_io(monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    def refuse(*args, **kwargs):
        raise AssertionError("I/O at DAG parse time")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr("sqlalchemy.create_engine", refuse)
    monkeypatch.setattr("airflow.sdk.BaseHook.get_connection", refuse)
    monkeypatch.setattr("airflow.sdk.Variable.get", refuse)
    parsed = DagBag(dag_folder=str(ROOT / "dags"))
    assert parsed.import_errors == {} and parsed.dag_ids


def test_no_heavy_imports_at_parse_time():
    probe = f"""
import json, runpy, sys
import airflow.sdk
before = set(sys.modules)
runpy.run_path({str(DAG_FILES[0])!r})
new = {{m.split('.')[0] for m in set(sys.modules) - before}}
print(json.dumps(sorted(new & {{'pandas', 'numpy', 'great_expectations', 'sqlalchemy',
                                 'paramiko', 'fastapi'}})))
"""
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, cwd=ROOT / "plugins").stdout
    assert json.loads(out.strip().splitlines()[-1]) == []


#: Tasks that deliberately retry less than the policy's two times, and why.
FEWER_RETRIES = {
    ("cpr_abonnement_daily", "wait_for_extract"): "a sensor: its deadline and timeout decide",
    ("cpr_abonnement_daily", "parse_and_validate"): "a bad extract is quarantined; a retry "
                                                    "would find nothing",
    ("cpr_abonnement_daily", "filter_for_subscribers"): "re-reads the whole extract: one "
                                                        "retry for a transient DB error",
    ("cpr_abonnement_daily", "report"): "fails only to mark the run; causes already alerted",
}


def test_policy_retries_notifiers_tags(bag):
    from cpr_abonnement.tasks.alerts import failure_alert

    for dag in bag.dags.values():
        assert dag.tags, f"{dag.dag_id} has no tags"
        assert dag.doc_md, f"{dag.dag_id} has no documentation"
        for t in dag.tasks:
            where = f"{dag.dag_id}.{t.task_id} ({dag.fileloc})"
            if (dag.dag_id, t.task_id) not in FEWER_RETRIES:
                assert t.retries >= 2, f"{where}: {t.retries} retries, the policy is >= 2"
            callbacks = t.on_failure_callback or []
            callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
            if t.task_id == "report":  # fails only to mark the run; each cause already alerted
                assert not callbacks
            else:
                assert failure_alert in callbacks, f"{t.task_id}: no failure notifier"


def test_daily_dag_shape(bag):
    from cpr_timetable import CprDeliveryTimetable

    dag = bag.dags["cpr_abonnement_daily"]
    assert isinstance(dag.timetable, CprDeliveryTimetable)
    assert dag.max_active_runs == 1 and not dag.catchup
    assert {t.task_id: sorted(t.downstream_task_ids) for t in dag.tasks} == {
        "wait_for_extract": ["parse_and_validate"],
        "parse_and_validate": ["filter_for_subscribers", "report", "update_replica"],
        "filter_for_subscribers": ["deliver", "report"],
        "deliver": ["report"],
        "report": [],
        "update_replica": [],  # beside the deliveries: neither waits for the other
    }
    deliver = dag.get_task("deliver")
    assert deliver.retries >= 2 and deliver.retry_exponential_backoff
    assert deliver.map_index_template == "{{ subscriber_name }}"
    assert dag.get_task("wait_for_extract").mode == "reschedule"


def test_every_dag_says_what_it_does_in_the_dag_list(bag):
    """Issue 14, item 5: the DAG list shows ``description`` under the DAG's name; the
    long ``doc_md`` is only on the DAG's page."""
    for dag_id, dag in bag.dags.items():
        assert dag.description, f"{dag_id} has no description"
        assert len(dag.description) <= 150 and "\n" not in dag.description, dag_id


def test_daily_dag_params_check_what_operators_type(bag):
    """The params are checked against their draft-07 schemas (cheap: each task process
    resolves them twice) with the same verdicts as before: wrong types are refused with
    the param's name, right ones pass."""
    import copy

    from airflow.sdk.exceptions import ParamValidationError

    params = bag.dags["cpr_abonnement_daily"].params
    assert {params.get_param(n).schema.get("$schema") for n in params} == {
        "http://json-schema.org/draft-07/schema#"}
    good = copy.deepcopy(params)
    for name, value in (("allow_gap", True), ("delivery_day", "2026-12-04"),
                        ("replace_pickup", ["a", "b"])):
        good[name] = value
    assert good.validate() == {"allow_gap": True, "delivery_day": "2026-12-04",
                               "replace_pickup": ["a", "b"]}
    for name, wrong in (("allow_gap", "yes"), ("delivery_day", 20261204),
                        ("replace_pickup", [1]), ("replace_pickup", "a")):
        values = copy.deepcopy(params)
        with pytest.raises(ParamValidationError, match=name):
            values[name] = wrong
