# The project's Airflow image: official Airflow 3.3.2 plus the cpr_abonnement package
# (importable on every component), its pinned dependencies, the DAGs and the plugins.
FROM apache/airflow:3.3.2-python3.11

USER airflow
WORKDIR /opt/cpr-abonnement
COPY --chown=airflow:root pyproject.toml constraints.txt README.md ./
COPY --chown=airflow:root include/ include/
# The runbook the alerts link to by default (CPRSUB_RUNBOOK_URL overrides it).
COPY --chown=airflow:root docs/ docs/
RUN pip install --no-cache-dir -c constraints.txt ".[postgres,celery]"

COPY --chown=airflow:root dags/ /opt/airflow/dags/
COPY --chown=airflow:root plugins/ /opt/airflow/plugins/
WORKDIR /opt/airflow
