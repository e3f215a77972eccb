"""CPR Abonnement on Airflow.

Takes the CPR office's daily change extract (ændringsudtræk), thins it per subscriber
according to the filters each subscriber registered, and delivers each subscriber a
delta file byte-compatible with CPR's own format. The package holds every piece of
business logic; the Airflow DAGs and plugins only wire it together.
"""

__version__ = "0.1.0"
#: The daily DAG: its id names runs in the console, alerts and the run note, and its
#: permissions stand for CPR Abonnement's in Airflow's auth manager.
DAILY_DAG_ID = "cpr_abonnement_daily"
