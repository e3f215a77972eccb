"""The LocalExecutor, with the task side imported before its workers are forked (issue 16,
item 3).

Airflow's LocalExecutor forks its worker processes from the scheduler once, when it
starts, and each worker forks one process per task. Every task process then imports the
Task SDK's task runner, the ``@task`` and sensor decorators its DAG file uses and our
task modules, all afresh: most of a ``deliver`` task's CPU, paid once per subscriber per
day. Imported in the scheduler just before the workers are forked, they are inherited
by every worker and every task process copy-on-write instead. The DAG file itself is
still parsed per task (the task runner does that), so DAG changes stay live; changes to
``cpr_abonnement`` take a scheduler restart, as changes to plugins do.

For a LocalExecutor deployment (``airflow standalone``, the demo, the delivery
benchmark): ``AIRFLOW__CORE__EXECUTOR=cpr_abonnement.airflow_side.executor.PreloadedLocalExecutor``.
Airflow's own ``[scheduler] mp_start_method = forkserver`` with
``mp_forkserver_preload`` does not do this: with any start method but ``fork`` the
LocalExecutor starts its workers one by one while tasks are queued, and each starts
Airflow again (a scheduler with ``parallelism`` 32 started 20 of them for 30 deliveries).
"""

from __future__ import annotations

import importlib
import logging

from airflow.executors.local_executor import LocalExecutor

log = logging.getLogger(__name__)

#: What every ``deliver`` task process imports before and while it runs, the modules
#: with it: the Task SDK's supervisor (a worker's, imported at its first task), runner
#: and DAG bag, the decorators and retry policies the daily DAG file uses (``airflow.sdk``
#: imports them on first use: 8 ms per task), the SFTP provider (push), the local
#: filesystem of ``ObjectStoragePath`` (staged files), and our modules the DAG file and
#: the ``deliver`` task import.
#: The receive and filter tasks' data stack (NumPy, pandas, great-expectations) is left
#: out: it runs once a day and would make the scheduler and every worker much larger.
TASK_SIDE_MODULES = (
    "airflow.sdk.execution_time.supervisor",
    "airflow.sdk.execution_time.task_runner",
    "airflow.dag_processing.dagbag",
    "airflow.sdk.definitions.decorators",
    "airflow.sdk.definitions.retry_policy",
    "airflow.providers.standard.decorators.python",
    "airflow.providers.standard.decorators.sensor",
    "airflow.providers.sftp.hooks.sftp",
    "upath.implementations.local",
    "cpr_abonnement.tasks.alerts",
    "cpr_abonnement.airflow_side.connections",
    "cpr_abonnement.tasks.deliver",
)


def preload_task_side(modules: tuple[str, ...] = TASK_SIDE_MODULES) -> list[str]:
    """Import ``modules``; return those that failed. A failure is logged, not raised:
    the task process then imports the module itself and reports its error there, in
    the task's log, where the DAG's author looks."""
    failed = []
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:
            log.warning("could not preload %s for the task processes", name, exc_info=True)
            failed.append(name)
    return failed


def load_plugins() -> None:
    """Load the plugins as the Task SDK does in each task process (for their macros,
    when the task's template context is made, and their listeners, before the task
    runs): it keeps both for the process, so a task process forked after this inherits
    them instead of executing every plugin file again (7 ms per task) and registering
    the listeners again (1 ms). Plugin changes already take a restart of the scheduler."""
    from airflow.sdk.listener import get_listener_manager
    from airflow.sdk.plugins_manager import integrate_macros_plugins

    integrate_macros_plugins()
    get_listener_manager()


def build_lazy_tables() -> None:
    """Build what the standard library builds on first use, in each process again, and
    every task with a connection uses: ``urllib.parse``'s percent-decoding table (the
    Task SDK renders each connection's URI; 4,096 entries, 1 ms of each delivery's
    process)."""
    from urllib.parse import unquote_to_bytes

    unquote_to_bytes("%2F")


def warm_dag_parsing(folder: str | None = None) -> None:
    """Parse the DAGs folder once and forget the result. A task process parses its DAG
    file again, as it must for DAG changes to be live, but the first parse in a process
    also fills what Python and Airflow cache on first use (ABC subclass checks, the
    JSON-schema validators of the DAG's params, ...). A process forked after this
    inherits those: the daily DAG's parse took 16.4 ms of CPU in a task process forked
    before it and 12.0 in one forked after (medians of 15). The parser installs its own
    SIGSEGV handler; the scheduler's is put back."""
    import signal

    from airflow import settings
    from airflow.dag_processing.dagbag import DagBag

    previous = signal.getsignal(signal.SIGSEGV)
    try:
        DagBag(dag_folder=folder or settings.DAGS_FOLDER, load_op_links=False)
    finally:
        signal.signal(signal.SIGSEGV, previous)


def preload_filter_database() -> None:
    """The filter database's engine for the task processes, its delivery queries
    compiled (:func:`~cpr_abonnement.airflow_side.connections.preload_task_engine`)."""
    from cpr_abonnement.airflow_side.connections import preload_task_engine
    from cpr_abonnement.tasks.deliver import warm

    preload_task_engine(warm)


def configure_orm() -> None:
    """Configure the ORM mappers of every imported model (ours: the ledger's, the
    subscribers'). SQLAlchemy does this at a process's first ORM query, so a task
    process forked before it does it again for every delivery (a fifth of a delivery's
    own CPU, profiled under the scheduler); done here, each task process inherits it."""
    from sqlalchemy.orm import configure_mappers

    configure_mappers()


def warm_api_client(server: str) -> None:
    """Build and close one Task SDK API client: it makes its SSL context once per
    process and caches it, which otherwise each worker does for its first task (loading
    the system's CA certificates, the largest part of a worker's first-task cost)."""
    from airflow.sdk.api.client import Client

    Client(base_url=server, token="").close()


class PreloadedLocalExecutor(LocalExecutor):
    """Airflow's LocalExecutor whose workers are forked after :data:`TASK_SIDE_MODULES`
    were imported, the standard library's lazy tables built, the plugins loaded, the
    DAGs folder parsed once, the filter database's engine made, the ORM mappers
    configured and the API client warmed (with ``multiprocessing``'s default ``fork``
    start method on Linux, which the LocalExecutor needs for this: other methods start
    workers afresh)."""

    def start(self) -> None:
        from airflow.executors.base_executor import get_execution_api_server_url

        preload_task_side()
        build_lazy_tables()
        try:
            load_plugins()
        except Exception:  # a broken plugin fails in the task process, with its log
            log.warning("could not load the plugins for the task processes", exc_info=True)
        try:
            warm_dag_parsing()
        except Exception:  # a DAG that fails to parse fails in its task, with its log
            log.warning("could not parse the DAGs folder for the task processes",
                        exc_info=True)
        try:
            preload_filter_database()
        except Exception:  # unreachable now: each task process connects and says so
            log.warning("could not preload the filter database's engine", exc_info=True)
        try:
            configure_orm()
        except Exception:  # a broken mapping fails the task's first query, with its log
            log.warning("could not configure the ORM mappers", exc_info=True)
        try:
            warm_api_client(get_execution_api_server_url(self.conf))
        except Exception:  # an unusable URL fails each task's supervisor, with its log
            log.warning("could not warm the Task SDK's API client", exc_info=True)
        super().start()
