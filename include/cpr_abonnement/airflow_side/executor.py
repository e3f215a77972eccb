"""The LocalExecutor, with the task side imported before its workers are forked (issue 16,
item 3).

Airflow's LocalExecutor forks its worker processes from the scheduler once, when it
starts, and each worker forks one process per task. Every task process then imports the
Task SDK's task runner, the ``@task`` and sensor decorators its DAG file uses and our
task modules, all afresh: most of a ``deliver`` task's CPU, paid once per subscriber per
day. Imported in the scheduler just before the workers are forked, they are inherited
by every worker and every task process copy-on-write instead. So are the DAG files, as
parsed once before the fork: a task process takes its DAG from there while its file is
unchanged and parses the file itself once it has changed, so DAG changes stay live;
changes to ``cpr_abonnement`` take a scheduler restart, as changes to plugins do.

For a LocalExecutor deployment (``airflow standalone``, the demo, the delivery
benchmark): ``AIRFLOW__CORE__EXECUTOR=cpr_abonnement.airflow_side.executor.PreloadedLocalExecutor``.
Airflow's own ``[scheduler] mp_start_method = forkserver`` with
``mp_forkserver_preload`` does not do this: with any start method but ``fork`` the
LocalExecutor starts its workers one by one while tasks are queued, and each starts
Airflow again (a scheduler with ``parallelism`` 32 started 20 of them for 30 deliveries).
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import os

from airflow.dag_processing.dagbag import BundleDagBag
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


#: The DAG bags of the local DAG bundles parsed in the scheduler before the workers fork,
#: by bundle name and path, each with the files it holds as they were parsed
#: (:func:`parse_dag_bundles`).
_PARSED: dict[tuple[str, str], tuple[BundleDagBag, dict[str, tuple[int, ...]]]] = {}


def _signature(seen: os.stat_result) -> tuple[int, ...]:
    """What tells a file apart from its next version: its modification time (the
    DagBag's own test), and its size and inode, which differ when a deployment puts a
    new version in place with the old one's time (``rsync -t``, ``cp -p``, a rename)."""
    return seen.st_mtime_ns, seen.st_size, seen.st_ino, seen.st_dev


def parse_dag_bundles() -> list[str]:
    """Parse the DAG files of every local (unversioned) DAG bundle once, keep the bags
    for the task processes forked after this, and let the Task SDK's start-up take a DAG
    from them (:class:`ReusingBundleDagBag`). Return the names of the bundles parsed.

    Each task process parses its DAG file before it runs a task: for a ``deliver`` task
    the daily DAG's parse was 12 ms of its CPU (its params' schemas checked, ``Param``
    objects deep-copied into every task, a pydantic adapter per decorated task), paid once
    per subscriber per day for the same unchanged file (12.0 -> 1.1 ms, the bundle's
    set-up left). A task whose file was changed (:func:`_signature`), added or failed
    to import is parsed afresh in its process, as before: DAG changes stay live. What a
    DAG file reads besides its own text when parsed is seen as at the scheduler's start
    until the file changes: ours read only the environment, which the scheduler's
    processes share. The parser installs its own SIGSEGV handler; the scheduler's is
    put back."""
    import signal

    from airflow.dag_processing import dagbag
    from airflow.dag_processing.bundles.local import LocalDagBundle
    from airflow.dag_processing.bundles.manager import DagBundlesManager

    previous = signal.getsignal(signal.SIGSEGV)
    try:
        for bundle in DagBundlesManager().get_all_dag_bundles():
            if isinstance(bundle, LocalDagBundle):
                bag = BundleDagBag(dag_folder=bundle.path, bundle_path=bundle.path,
                                   bundle_name=bundle.name, load_op_links=False)
                _PARSED[(bundle.name, str(bundle.path))] = (bag, _as_parsed(bag))
    finally:
        signal.signal(signal.SIGSEGV, previous)
    dagbag.BundleDagBag = ReusingBundleDagBag
    return [name for name, _ in _PARSED]


def _as_parsed(bag: BundleDagBag) -> dict[str, tuple[int, ...]]:
    """The signatures of the files ``bag`` parsed without an import error, taken after
    the parse: a file whose modification time is no longer the one the bag read was
    changed meanwhile and is left out (its tasks parse it themselves)."""
    held = {}
    for path, parsed_at in bag.file_last_changed.items():
        try:
            seen = os.stat(path)
        except OSError:
            continue
        if (dt.datetime.fromtimestamp(seen.st_mtime) == parsed_at
                and bag._get_relative_fileloc(path) not in bag.import_errors):
            held[path] = _signature(seen)
    return held


def _parsed_unchanged(path: str | os.PathLike | None, bundle_path: object,
                      bundle_name: str | None) -> BundleDagBag | None:
    """The bag parsed before the fork, if it holds ``path`` of that bundle as the file
    is now."""
    bag, held = _PARSED.get((str(bundle_name), str(bundle_path)), (None, {}))
    parsed = held.get(os.fspath(path)) if path is not None else None
    if parsed is None:
        return None
    try:
        return bag if _signature(os.stat(path)) == parsed else None
    except OSError:
        return None


class ReusingBundleDagBag(BundleDagBag):
    """The Task SDK's DAG bag (``BundleDagBag``), which hands a task process the bag
    parsed before its worker was forked when that holds the DAG file unchanged, and
    parses the file as Airflow does otherwise. Installed in the scheduler by
    :func:`parse_dag_bundles`; the task runner looks the class up when it parses, so every
    task process forked after that uses it. Only the process that received the bag uses
    it: what a task does to its DAG stays in its own copy-on-write memory."""

    def __new__(cls, dag_folder: str | os.PathLike | None = None, *args: object,
                bundle_path: object = None, bundle_name: str | None = None,
                **kwargs: object):
        parsed = _parsed_unchanged(dag_folder, bundle_path, bundle_name)
        # not an instance of this class: Python does not run __init__ (a parse) on it
        return parsed if parsed is not None else super().__new__(cls)


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
    DAG bundles parsed, the filter database's engine made, the ORM mappers
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
            parse_dag_bundles()
        except Exception:  # each task process parses its DAG file, and says why not
            log.warning("could not parse the DAG bundles for the task processes",
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
