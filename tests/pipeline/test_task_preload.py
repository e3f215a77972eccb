"""Issue 16, item 3: the LocalExecutor's workers preload what a task process imports.

A ``deliver`` task process is forked from an executor worker; with
``[scheduler] mp_start_method = forkserver`` the workers start from a fork server that
imported :data:`cpr_abonnement.tasks.preload.MODULES`. The list only helps if it is
complete (whatever it misses every task process imports again) and every name in it
imports (the fork server skips a failing one silently): both are checked here in a
fresh interpreter doing what a task process does after the fork: parse the DAG file,
then import the ``deliver`` task body's modules and the SFTP hook a push uses.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from cpr_abonnement.dev.demo import environment
from cpr_abonnement.tasks.preload import MODULES, scheduler_environment

ROOT = Path(__file__).resolve().parents[2]

AFTER_FORK = """
import importlib, importlib.util, json, sys
for name in json.loads(sys.argv[2]):
    importlib.import_module(name)
before = set(sys.modules)
spec = importlib.util.spec_from_file_location("dag_file", sys.argv[1])
spec.loader.exec_module(importlib.util.module_from_spec(spec))
from cpr_abonnement.tasks.connections import task_engine
from cpr_abonnement.tasks.deliver import deliver_one
from cpr_abonnement.tasks.payloads import DeliveryItem
from airflow.providers.sftp.hooks.sftp import SFTPHook
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def _imported_after_fork(preloaded: tuple[str, ...], tmp_path: Path) -> list[str]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'include'}:{ROOT / 'plugins'}",
           "CPRSUB_DB_URL": f"sqlite:///{tmp_path / 'filters.db'}"}
    done = subprocess.run([sys.executable, "-c", AFTER_FORK,
                           str(ROOT / "dags" / "cpr_abonnement_daily.py"),
                           json.dumps(preloaded)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_preloaded_modules_cover_a_delivery_task_process(tmp_path):
    # Without the list a task process imports hundreds of modules (ours among them).
    assert "cpr_abonnement.tasks.deliver" in _imported_after_fork((), tmp_path)
    # With it, only modules the parse or the first use creates lazily are left: none of
    # ours, none of a provider's.
    left = _imported_after_fork(MODULES, tmp_path)
    assert [m for m in left if m.startswith(("cpr_", "airflow.providers", "paramiko",
                                             "sqlalchemy.orm"))] == []
    assert len(left) < 20, left


def test_standalone_runs_its_scheduler_with_the_preloading_fork_server():
    env = environment(ROOT / "var" / "unused")
    assert env["AIRFLOW__SCHEDULER__MP_START_METHOD"] == "forkserver"
    assert env["AIRFLOW__SCHEDULER__MP_FORKSERVER_PRELOAD"].split(",") == list(MODULES)
    assert scheduler_environment().items() <= env.items()
