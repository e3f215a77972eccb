"""Everything that runs inside Airflow: the daily DAG's task bodies
(:mod:`~cpr_abonnement.tasks.daily`), what they pass each other
(:mod:`~cpr_abonnement.tasks.payloads`), the run's delivery day
(:mod:`~cpr_abonnement.tasks.run_dates`), failure alerts
(:mod:`~cpr_abonnement.tasks.alerts`) and Airflow connections
(:mod:`~cpr_abonnement.tasks.connections`).

The rest of the package imports without Airflow (a test checks it); Airflow's
``ObjectStoragePath`` and ``SFTPHook`` are imported by :mod:`cpr_abonnement.staging` and
the inbound/delivery SFTP modules only when used.
"""
