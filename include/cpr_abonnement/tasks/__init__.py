"""The DAGs' task bodies: the daily DAG's (:mod:`~cpr_abonnement.tasks.daily`, the
extract sensor's :mod:`~cpr_abonnement.tasks.waiting`, one subscriber's delivery
:mod:`~cpr_abonnement.tasks.deliver`), the housekeeping DAG's
(:mod:`~cpr_abonnement.tasks.housekeeping`), what they pass each other
(:mod:`~cpr_abonnement.tasks.payloads`), the run's delivery day
(:mod:`~cpr_abonnement.tasks.run_dates`), their failure alerts
(:mod:`~cpr_abonnement.tasks.alerts`) and metrics (:mod:`~cpr_abonnement.tasks.metrics`).
The rest of what Airflow loads lives in :mod:`cpr_abonnement.airflow_side`.

The rest of the package imports without Airflow (a test checks it); Airflow's
``ObjectStoragePath`` and ``SFTPHook`` are imported by :mod:`cpr_abonnement.staging` and
the inbound/delivery SFTP modules only when used.
"""
