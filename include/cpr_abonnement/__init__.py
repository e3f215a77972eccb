"""CPR Abonnement on Airflow.

Takes the CPR office's daily change extract (ændringsudtræk), thins it per subscriber
according to the filters each subscriber registered, and delivers each subscriber a
delta file byte-compatible with CPR's own format. The package holds every piece of
business logic; the Airflow DAGs and plugins only wire it together.
"""

__version__ = "0.1.0"
