"""Where the service plugs into Airflow, apart from the task bodies (:mod:`cpr_abonnement.tasks`):
the filter database as an Airflow connection, for tasks and for the API server
(:mod:`~cpr_abonnement.airflow_side.connections`); the console's authorisation by
Airflow's auth manager and its links to task logs
(:mod:`~cpr_abonnement.airflow_side.console_access`); and the LocalExecutor that imports
the task side before forking (:mod:`~cpr_abonnement.airflow_side.executor`).

Like :mod:`cpr_abonnement.tasks` it may import Airflow; the rest of the package imports
without it (tests/test_layering.py).
"""
