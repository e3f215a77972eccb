"""
### CPR Abonnement: daily housekeeping (retention of CPR data, pick-up, certificates)

Every day at 06:00 Danish time (weekends too: retention counts calendar days).

0. **remove_expired_cpr_data**: every other copy of CPR data after its rule
   (`include/cpr_abonnement/lifecycle.py`, docs/data-lifecycle.md): staged extracts
   after `CPRSUB_STAGING_RETENTION_DAYS` (30), deltas `CPRSUB_DELTA_GRACE_DAYS` (3) after
   their delivery, quarantined files after `CPRSUB_QUARANTINE_RETENTION_DAYS` (90); each
   removal audited (`RetentionRemoval`). Ages are judged at the run's logical date.
1. **remove_expired_pickup_files**: removes files older than
   `CPRSUB_PICKUP_RETENTION_DAYS` (30) from each pick-up account's `IN/`, judged by each
   file's own age (never a younger file), and records the removals in the ledger as
   removed by retention.
2. **sweep_account_created_files**: removes the files a pick-up account created itself
   in its `IN/` (empty: OpenSSH refuses the write but not the creation of the name)
   and fails, so alerts, naming the accounts.
3. **check_late_pickups**: fails, and so alerts the data engineers
   (`CPRSUB_ALERT_EMAIL`, Slack), when a pick-up subscriber has not downloaded a file
   for `CPRSUB_PICKUP_ALERT_DAYS` (3) delivery days. `cprsub health` lists the same.
4. **check_certificate_expiry**: fails, and so alerts, when an IT system's client
   certificate comes within 90, 30 or 7 days of its expiry (once per threshold) or has
   expired. `cprsub health` and the console's Subscribers page show the same.

Runbook: docs/operating.md; pick-up: docs/it-systems.md.
"""

from __future__ import annotations

import datetime as dt

import pendulum
from airflow.sdk import ExceptionRetryPolicy, RetryAction, RetryRule, dag, task

from cpr_abonnement.tasks.alerts import failure_alert


@dag(
    dag_id="cpr_pickup_housekeeping",
    description="Daily: remove pick-up files past retention, alert about subscribers "
                "who have not fetched their files and client certificates near expiry",
    schedule="0 6 * * *",
    start_date=pendulum.datetime(2025, 1, 1, tz="Europe/Copenhagen"),
    catchup=False,
    max_active_runs=1,
    default_args={
        "owner": "cpr-abonnement",
        "retries": 2,
        "retry_delay": dt.timedelta(minutes=5),
        "on_failure_callback": failure_alert,
    },
    tags=["cpr", "pickup", "housekeeping"],
    doc_md=__doc__,
)
def cpr_pickup_housekeeping():
    @task
    def remove_expired_pickup_files(logical_date=None) -> dict:
        from cpr_abonnement.airflow_side.connections import task_engine
        from cpr_abonnement.settings import Settings
        from cpr_abonnement.tasks.housekeeping import clock, remove_expired

        return remove_expired(Settings.from_env(), task_engine(), now=clock(logical_date))

    @task
    def remove_expired_cpr_data(logical_date=None) -> dict:
        from cpr_abonnement.airflow_side.connections import replica_engine_of, task_engine
        from cpr_abonnement.settings import Settings
        from cpr_abonnement.tasks.housekeeping import apply_data_retention, clock

        engine = task_engine()
        return apply_data_retention(Settings.from_env(), engine, now=clock(logical_date),
                                    replica=replica_engine_of(engine))

    @task(retry_policy=ExceptionRetryPolicy(rules=[RetryRule(
        exception="cpr_abonnement.errors.PickupStrayFiles", action=RetryAction.FAIL,
        reason="files created by accounts were removed: alert now")]))
    def sweep_account_created_files() -> list[str]:
        from cpr_abonnement.settings import Settings
        from cpr_abonnement.tasks.housekeeping import sweep_account_files

        return sweep_account_files(Settings.from_env())

    @task(retry_policy=ExceptionRetryPolicy(rules=[RetryRule(
        exception="cpr_abonnement.errors.PickupLate", action=RetryAction.FAIL,
        reason="late pick-ups: alert now, a retry changes nothing")]))
    def check_late_pickups() -> list[str]:
        from cpr_abonnement.airflow_side.connections import task_engine
        from cpr_abonnement.settings import Settings
        from cpr_abonnement.tasks.housekeeping import check_pickups

        return check_pickups(Settings.from_env(), task_engine(), now=dt.datetime.now(dt.UTC))

    @task(retry_policy=ExceptionRetryPolicy(rules=[RetryRule(
        exception="cpr_abonnement.errors.CertificatesExpiring", action=RetryAction.FAIL,
        reason="certificates close to expiry: alert now, a retry changes nothing")]))
    def check_certificate_expiry() -> list[str]:
        from cpr_abonnement.airflow_side.connections import task_engine
        from cpr_abonnement.tasks.housekeeping import check_certificates

        return check_certificates(task_engine(), now=dt.datetime.now(dt.UTC))

    remove_expired_pickup_files() >> check_late_pickups()
    remove_expired_cpr_data()
    check_certificate_expiry()
    sweep_account_created_files()  # on its own: its alert never holds up the others


cpr_pickup_housekeeping()
