"""Issue 16, item 3: a ``deliver`` task process imports only what a delivery needs.

One mapped ``deliver`` task runs per subscriber per day, each in its own process, so
whatever its import path pulls in is paid a thousand times a day. The task body's
path (the plugins folder as the Task SDK loads it before every task, the DAG file as
the task runner parses it, then the ``deliver`` task's own imports and a real pick-up
delivery with the ledger) runs here in a fresh interpreter, which then reports the
modules it loaded and how many database engines it built.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from cpr_abonnement.records import ledger
from support.ledger import DAY, NAME, SUBSCRIBER, TASK, register_day

ROOT = Path(__file__).resolve().parents[2]
#: The data stack, and asyncssh: the library of our own pick-up SFTP *server*, which a
#: delivery (paramiko's client for push, a local placement for pick-up) never needs; it
#: came in through ``pickup.strays`` and was the largest import of a pick-up delivery.
#: The subscription API and the operator console (FastAPI apps the plugins mount into
#: the API server; built in every task process when the plugin files built them at
#: import), and the subscription service (certificates, credentials) behind them.
HEAVY = ("numpy", "pandas", "great_expectations", "asyncssh", "fastapi",
         "cpr_abonnement.api.app", "cpr_abonnement.console.app",
         "cpr_abonnement.subscriptions.service")

#: What the ``deliver`` task does, with the engine count taken at ``make_engine``'s
#: one call into SQLAlchemy.
TASK_BODY = """
import datetime as dt, importlib.util, json, sys
from cpr_abonnement.store import db
built = []
real = db.create_engine
db.create_engine = lambda *a, **k: built.append(1) or real(*a, **k)
from airflow.sdk.plugins_manager import _get_plugins
plugins, errors = _get_plugins()  # as the task runner's listener manager does
assert {p.name for p in plugins} >= {"cpr_abonnement_api", "cpr_run_note"} and not errors
spec = importlib.util.spec_from_file_location("dag_file", sys.argv[1])
spec.loader.exec_module(importlib.util.module_from_spec(spec))
from cpr_abonnement.airflow_side.connections import task_engine
from cpr_abonnement.tasks.deliver import deliver_one
from cpr_abonnement.tasks.payloads import DeliveryItem
item = DeliveryItem.from_wire(sys.argv[2])  # as the DAG file's deliver task reads it
result = deliver_one(item, task_engine(), now=dt.datetime(2026, 11, 26, 12))
print(json.dumps({"outcome": result.outcome, "engines": len(built),
                  "heavy": [m for m in json.loads(sys.argv[3]) if m in sys.modules]}))
"""


def test_a_delivery_task_imports_no_data_stack_nor_ssh_server_and_one_engine(tmp_path, engine):
    from cpr_abonnement.delivery.base import DeliveryTarget
    from cpr_abonnement.tasks.payloads import DeliveryItem

    register_day(engine)
    data = tmp_path / NAME
    data.write_bytes(b"delta\n")
    data.with_name(NAME + ".metadata").write_text("{}\n")
    item = DeliveryItem(subscriber=SUBSCRIBER, name="Subscriber A",
                        target=DeliveryTarget("pickup", "", "subscriber-a"),
                        data=f"file://{data}", metadata=f"file://{data}.metadata",
                        file_name=NAME, persons=1, records=2, sha256="1" * 64, day=DAY,
                        task_number=TASK)
    report = _fresh_process(TASK_BODY, item.to_wire(), json.dumps(HEAVY),
                            CPRSUB_DB_URL=engine.url.render_as_string(hide_password=False),
                            CPRSUB_PICKUP_ROOT=str(tmp_path / "pickup"))
    assert report == {"outcome": "DELIVERED", "engines": 1, "heavy": []}
    assert (tmp_path / "pickup" / "subscriber-a" / "IN" / NAME).read_bytes() == b"delta\n"
    assert [e.outcome for e in ledger.entries(engine, TASK, DAY)] == ["DELIVERED"]


#: What the DAG processor's parse of the daily DAG file must not import: the filter
#: database's ORM models (through the ledger) were most of a parse, and the DAG
#: processor parses the file every half minute in a fresh process (issue 26).
PARSE_HEAVY = (*HEAVY, "cpr_abonnement.store.models", "cpr_abonnement.records.ledger")

DAG_PARSE = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("dag_file", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
assert module.DAG_ID == "cpr_abonnement_daily"
print(json.dumps([m for m in json.loads(sys.argv[2]) if m in sys.modules]))
"""


def test_parsing_the_daily_dag_file_imports_neither_the_orm_nor_the_ledger():
    assert _fresh_process(DAG_PARSE, json.dumps(PARSE_HEAVY)) == []


def _fresh_process(code: str, *args: str, **env: str):
    """What ``code``, run in a fresh interpreter with the daily DAG file's path and
    ``args``, prints as JSON on its last line (our package and plugins importable)."""
    done = subprocess.run([sys.executable, "-c", code,
                           str(ROOT / "dags" / "cpr_abonnement_daily.py"), *args],
                          env={**os.environ, **env,
                               "PYTHONPATH": f"{ROOT / 'include'}:{ROOT / 'plugins'}",
                               "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins")},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
