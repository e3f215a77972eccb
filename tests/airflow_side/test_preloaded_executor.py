"""Issue 16, item 3: with the LocalExecutor, every task process is forked from one of
the executor's workers, and the workers are forked from the scheduler when the
executor starts. What the scheduler has imported by then, every task process inherits;
what it has not, every task process imports again. ``PreloadedLocalExecutor`` imports
the task side first. A fresh interpreter starts one and records, at each fork, which
of those modules the forking process holds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from cpr_abonnement.airflow_side.executor import TASK_SIDE_MODULES

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, os, sys
from airflow._shared.module_loading import import_string
from cpr_abonnement.airflow_side.executor import TASK_SIDE_MODULES
at_fork, unconfigured = [], []

def seen_at_fork():
    at_fork.append([m for m in TASK_SIDE_MODULES if m in sys.modules])
    models = sys.modules.get("cpr_abonnement.store.models")
    unconfigured.append(None if models is None else sorted(
        m.class_.__name__ for m in models.Base.registry.mappers if not m.configured))

os.register_at_fork(before=seen_at_fork)
executor = import_string(sys.argv[1])(parallelism=2)
executor.start()
forks, workers = len(at_fork), len(executor.workers)
executor.end()
print(json.dumps({"workers": workers, "held": at_fork[:forks],
                  "unconfigured": unconfigured[:forks]}))
"""


def _forks_of(executor: str) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE, executor], capture_output=True,
                          text=True, timeout=300,
                          env={**os.environ,
                               "PYTHONPATH": f"{ROOT / 'include'}:{ROOT / 'plugins'}"})
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_workers_are_forked_holding_the_task_side():
    seen = _forks_of("cpr_abonnement.airflow_side.executor.PreloadedLocalExecutor")
    assert seen["workers"] == 2
    assert len(seen["held"]) >= 2
    assert all(held == list(TASK_SIDE_MODULES) for held in seen["held"])


def test_every_task_side_module_imports():
    """A name that fails to import would be skipped (logged) at the scheduler's start and
    cost every task again; the list must not rot."""
    from cpr_abonnement.airflow_side.executor import preload_task_side

    assert preload_task_side() == []


def test_workers_are_forked_with_our_orm_mappers_configured():
    """SQLAlchemy configures the mappers at a process's first ORM query; a task process
    forked before that configures them again (the ledger's first query: a fifth of a
    delivery's own CPU, profiled under the scheduler)."""
    seen = _forks_of("cpr_abonnement.airflow_side.executor.PreloadedLocalExecutor")
    assert len(seen["unconfigured"]) >= 2
    assert all(names == [] for names in seen["unconfigured"]), seen["unconfigured"]
