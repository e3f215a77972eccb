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
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cpr_abonnement.airflow_side.executor import TASK_SIDE_MODULES

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, os, signal, sys
from pathlib import Path
from airflow._shared.module_loading import import_string
from cpr_abonnement.airflow_side.executor import TASK_SIDE_MODULES
at_fork, unconfigured, preloaded = [], [], []

def seen_at_fork():
    at_fork.append([m for m in TASK_SIDE_MODULES if m in sys.modules])
    models = sys.modules.get("cpr_abonnement.store.models")
    unconfigured.append(None if models is None else sorted(
        m.class_.__name__ for m in models.Base.registry.mappers if not m.configured))
    pre = getattr(sys.modules.get("cpr_abonnement.airflow_side.connections"), "_preloaded",
                  None)
    loader = getattr(sys.modules.get("airflow.sdk.plugins_manager"), "_get_plugins", None)
    loaded = loader is not None and loader.cache_info().currsize > 0
    listener = sys.modules.get("airflow.sdk.listener")
    preloaded.append({
        "url": pre and pre[0], "compiled": pre and len(pre[1]._compiled_cache),
        "connections": pre and pre[1].pool.checkedin() + pre[1].pool.checkedout(),
        "plugins": sorted(p.name for p in loader()[0]) if loaded else [],
        "hextobyte": sys.modules["urllib.parse"]._hextobyte is not None,
        "listeners": bool(listener and listener.get_listener_manager.cache_info().currsize),
        "parsed": any(m.startswith("unusual_prefix_") and m.endswith("_cpr_abonnement_daily")
                      for m in sys.modules),
        "sigsegv": str(signal.getsignal(signal.SIGSEGV))})

os.register_at_fork(before=seen_at_fork)
executor = import_string(sys.argv[1])(parallelism=2)
executor.start()
forks, workers = len(at_fork), len(executor.workers)
executor.end()


def task_parse(path):
    # what the Task SDK's start-up does in a task process (task_runner.parse): the DAG
    # bag class looked up when it parses, for one DAG file of the dags-folder bundle
    from airflow.dag_processing import dagbag

    folder = os.environ["AIRFLOW__CORE__DAGS_FOLDER"]
    return dagbag.BundleDagBag(dag_folder=path, safe_mode=False, load_op_links=False,
                               bundle_path=Path(folder), bundle_name="dags-folder")


from cpr_abonnement.airflow_side import executor as preloading
kept = [bag for bag, _ in preloading._PARSED.values()]
folder = os.environ["AIRFLOW__CORE__DAGS_FOLDER"]
daily = os.path.join(folder, "cpr_abonnement_daily.py")
unchanged = task_parse(daily)
seen = os.stat(daily)
os.utime(daily, ns=(seen.st_atime_ns, seen.st_mtime_ns + 10**9))  # as an edit does
changed = task_parse(daily)
housekeeping = os.path.join(folder, "cpr_pickup_housekeeping.py")
seen = os.stat(housekeeping)
with open(housekeeping) as old, open(housekeeping + ".new", "w") as new:
    new.write(old.read())
os.utime(housekeeping + ".new", ns=(seen.st_atime_ns, seen.st_mtime_ns))
os.replace(housekeeping + ".new", housekeeping)  # a new version with the old one's time
replaced = task_parse(housekeeping)
reuse = {"bundles": sorted(name for name, _ in preloading._PARSED),
         "unchanged_kept": any(unchanged is bag for bag in kept),
         "unchanged_dags": sorted(unchanged.dags),
         "changed_kept": any(changed is bag for bag in kept),
         "changed_dags": sorted(changed.dags),
         "replaced_kept": any(replaced is bag for bag in kept),
         "replaced_dags": sorted(replaced.dags)}
print(json.dumps({"workers": workers, "held": at_fork[:forks],
                  "unconfigured": unconfigured[:forks], "preloaded": preloaded[:forks],
                  "reuse": reuse}))
"""


def _forks_of(executor: str, **env: str) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE, executor], capture_output=True,
                          text=True, timeout=300,
                          env={**os.environ, **env,
                               "PYTHONPATH": f"{ROOT / 'include'}:{ROOT / 'plugins'}"})
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def forks(tmp_path_factory) -> dict:
    """One PreloadedLocalExecutor started in a fresh interpreter with a filter database
    and our plugins, as the scheduler of a LocalExecutor deployment has them; what its
    process held at each fork (shared by the tests below: each start costs seconds)."""
    from cpr_abonnement.store.db import make_engine, upgrade

    here = tmp_path_factory.mktemp("preloaded")
    url = f"sqlite:///{here / 'filters.db'}"
    upgrade(make_engine(url))
    dags = here / "dags"  # a copy: the probe edits a DAG file's modification time
    shutil.copytree(ROOT / "dags", dags, ignore=shutil.ignore_patterns("__pycache__"))
    return {"url": url, **_forks_of(
        "cpr_abonnement.airflow_side.executor.PreloadedLocalExecutor", CPRSUB_DB_URL=url,
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(ROOT / "plugins"))}


def test_workers_are_forked_holding_the_task_side(forks):
    assert forks["workers"] == 2
    assert len(forks["held"]) >= 2
    assert all(held == list(TASK_SIDE_MODULES) for held in forks["held"])


def test_every_task_side_module_imports():
    """A name that fails to import would be skipped (logged) at the scheduler's start and
    cost every task again; the list must not rot."""
    from cpr_abonnement.airflow_side.executor import preload_task_side

    assert preload_task_side() == []


def test_workers_are_forked_with_our_orm_mappers_configured(forks):
    """SQLAlchemy configures the mappers at a process's first ORM query; a task process
    forked before that configures them again (the ledger's first query: a fifth of a
    delivery's own CPU, profiled under the scheduler)."""
    assert len(forks["unconfigured"]) >= 2
    assert all(names == [] for names in forks["unconfigured"]), forks["unconfigured"]


def test_workers_are_forked_with_the_plugins_and_the_filter_databases_engine(forks):
    """Issue 26: each task process executed every plugin file again (7 ms) and built
    the filter database's engine and compiled its queries (4 ms, and 5 for the ledger's
    write). Forked after the executor made them, the processes inherit the plugins and
    an engine without a connection (a forked process must open its own), its delivery
    statements compiled; compiling the ledger's write left no row behind."""
    assert len(forks["preloaded"]) >= 2
    for fork in forks["preloaded"]:
        assert fork["url"] == forks["url"] and fork["connections"] == 0, fork
        # the service windows' and the ledger's reads, and the ledger's write
        assert fork["compiled"] >= 3, fork
        assert fork["hextobyte"], fork  # urllib's table, for each connection's URI
        assert fork["listeners"], fork  # the plugins' listeners, registered once
        assert {"cpr_abonnement_api", "cpr_run_note", "cpr_timetable"} <= set(
            fork["plugins"]), fork
    from sqlalchemy import func, select

    from cpr_abonnement.store.db import make_engine
    from cpr_abonnement.store.models import Delivery

    with make_engine(forks["url"]).connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Delivery)) == 0


def test_workers_are_forked_after_one_parse_of_the_dags_folder(forks):
    """The DAG bundles are parsed before the workers fork; the parser's SIGSEGV handler
    does not stay in the scheduler."""
    assert forks["reuse"]["bundles"] == ["dags-folder"]
    for fork in forks["preloaded"]:
        assert fork["parsed"], fork  # the daily DAG's file, as DAG files are imported
        assert fork["sigsegv"] == str(signal.SIG_DFL), fork


def test_a_task_takes_its_dag_from_that_parse_until_its_file_changes(forks):
    """A task process's start-up asks for a DAG bag of its DAG file: while the file is as
    parsed before the fork it gets that bag (no parse: the daily DAG's was 12 ms of each
    delivery's CPU); once the file has changed, or a new version with the old one's
    modification time has replaced it, it gets a bag of its own, parsed afresh (DAG
    changes stay live)."""
    reuse = forks["reuse"]
    assert reuse["unchanged_kept"] and "cpr_abonnement_daily" in reuse["unchanged_dags"]
    assert not reuse["changed_kept"]
    assert reuse["changed_dags"] == ["cpr_abonnement_daily"]  # that one file, parsed
    # a new version put in place with the old one's modification time (rsync -t, cp -p)
    assert not reuse["replaced_kept"]
    assert reuse["replaced_dags"] == ["cpr_pickup_housekeeping"]
