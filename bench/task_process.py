"""Benchmark: the CPU a ``deliver`` task process spends before the delivery, step by step.

    .venv/bin/python bench/task_process.py [--preload] [--repeat 7]

A parent imports what a LocalExecutor worker holds when it forks a task process (Airflow
as the scheduler imports it, and the Task SDK's supervisor); with ``--preload`` also
what ``PreloadedLocalExecutor`` imports before forking its workers
(:data:`cpr_abonnement.airflow_side.executor.TASK_SIDE_MODULES`). Then it forks one child per
repetition, as the supervisor forks a task process, and the child does what the task
runner does before a task's own code, timing each step in CPU-seconds (user + system):
import the task runner; load the plugins folder (the listener manager, before every
task); parse the daily DAG file (``BundleDagBag``, as the task runner does); import what
the ``deliver`` task imports for a push. Prints the median of each step and of the sum.
Not a test; the end-to-end figure is ``bench/deliver_many.py --scheduler``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

#: What a LocalExecutor worker has imported when it forks a task process: the scheduler's
#: own modules (inherited at the worker's fork) and the supervisor (its first task).
WORKER_MODULES = ("airflow.jobs.scheduler_job_runner", "airflow.executors.local_executor",
                  "airflow.api_fastapi.auth.tokens", "airflow.sdk.execution_time.supervisor")


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _steps(dag_file: Path) -> dict[str, float]:
    """The task process's start, each step's CPU-seconds."""
    spent, t = {}, _cpu()

    def lap(name: str) -> None:
        nonlocal t
        now = _cpu()
        spent[name], t = now - t, now

    import airflow.sdk.execution_time.task_runner

    lap("import task runner")
    from airflow.sdk.listener import get_listener_manager

    get_listener_manager()
    lap("load plugins")
    from airflow.dag_processing.dagbag import BundleDagBag

    bag = BundleDagBag(dag_folder=str(dag_file), safe_mode=False, load_op_links=False,
                       bundle_path=dag_file.parent, bundle_name="dags-folder")
    assert "cpr_abonnement_daily" in bag.dags, bag.import_errors
    lap("parse DAG file")
    import airflow.providers.sftp.hooks.sftp  # noqa: F401

    import cpr_abonnement.airflow_side.connections
    import cpr_abonnement.tasks.deliver
    import cpr_abonnement.tasks.payloads  # noqa: F401

    lap("deliver's imports")
    return spent


def _forked(dag_file: Path) -> dict[str, float]:
    """:func:`_steps` in a forked child (its figures through a pipe)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            os.write(write, json.dumps(_steps(dag_file)).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as fh:
        out = fh.read()
    os.waitpid(pid, 0)
    return json.loads(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preload", action="store_true",
                    help="the parent imports TASK_SIDE_MODULES first (PreloadedLocalExecutor)")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--plugins", type=Path,
                    help="the plugins folder to load (default: the repository's)")
    args = ap.parse_args()
    from cpr_abonnement.dev.demo import REPO, environment

    os.environ.update(environment(Path(tempfile.mkdtemp(prefix="cprsub-task-process-"))))
    plugins = args.plugins or REPO / "plugins"
    os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(plugins.resolve())
    sys.path.insert(0, str(plugins.resolve()))
    t = _cpu()
    for name in WORKER_MODULES:
        __import__(name)
    if args.preload:
        from cpr_abonnement.airflow_side.executor import preload_task_side

        assert preload_task_side() == []
    parent = _cpu() - t
    gc.freeze()  # as the LocalExecutor does before forking its workers
    runs = []
    for _ in range(args.repeat):
        runs.append(_forked(REPO / "dags" / "cpr_abonnement_daily.py"))
        time.sleep(0.05)
    print(f"parent (worker) imports {parent:.2f} CPU-s; preload {args.preload}; "
          f"plugins {plugins}; "
          f"median of {args.repeat} forked task processes, CPU-s:")
    for step in runs[0]:
        print(f"  {step:<22}{statistics.median(r[step] for r in runs):>8.3f}")
    print(f"  {'total':<22}{statistics.median(sum(r.values()) for r in runs):>8.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
