"""What a task process should find imported already: the modules the scheduler's
LocalExecutor workers import once, up front, so the task processes they fork per task
inherit them instead of importing them again (issue 16, item 3).

Each ``deliver`` task is a process of its own, forked from an executor worker. Before,
every one of them imported Airflow's task-side modules (the ``@task`` and sensor
decorators, the SFTP and mail providers) and ours (the DAG file's, the task body's)
anew: about 0.8 CPU-s on this project's 2-core machine, while the delivery itself costs
a few hundredths. With ``[scheduler] mp_start_method = forkserver`` Airflow starts the
workers from a fork server that imports :data:`MODULES` first
(``[scheduler] mp_forkserver_preload``, Airflow 3.3), so only the DAG file's own body
runs again per task (it is still parsed per task, which keeps DAG changes live).
Changes to ``cpr_abonnement`` itself then take a scheduler restart, as for plugins; the
package is installed code in a deployment anyway.
"""

from __future__ import annotations

#: Imported by the fork server; a name that fails to import is skipped there silently,
#: so a test imports each of them.
MODULES = (
    "airflow.sdk",
    "airflow.sdk.execution_time.task_runner",
    "airflow.providers.standard.decorators.python",
    "airflow.providers.standard.decorators.sensor",
    "airflow.providers.sftp.hooks.sftp",
    "airflow.providers.smtp.notifications.smtp",
    "cpr_timetable",
    "cpr_abonnement.tasks.alerts",
    "cpr_abonnement.tasks.connections",
    "cpr_abonnement.tasks.deliver",
)


def scheduler_environment() -> dict[str, str]:
    """The scheduler's settings that make the LocalExecutor's workers preload
    :data:`MODULES` (``AIRFLOW__*`` variables, for a deployment's environment)."""
    return {"AIRFLOW__SCHEDULER__MP_START_METHOD": "forkserver",
            "AIRFLOW__SCHEDULER__MP_FORKSERVER_PRELOAD": ",".join(MODULES)}
