#!/bin/bash
# Second database on the same server: the filter database, apart from Airflow's metadata.
# Run once by the postgres image on an empty data volume (docker-entrypoint-initdb.d).
# The owner's password comes from .env (CPRSUB_FILTER_DB_PASSWORD), never from a file
# in the repository; psql quotes it (:'password'), so any character is safe.
# The owner runs the migrations and, with CREATEROLE, makes the roles the services log
# in as (`cprsub db upgrade --grant-roles` in airflow-init; docs/deployment-roles.md).
# On PostgreSQL 16 CREATEROLE only reaches roles the owner made itself. A data volume
# made before the roles existed needs it once, as POSTGRES_USER:
#   ALTER ROLE cprsub CREATEROLE;
set -euo pipefail
: "${CPRSUB_FILTER_DB_PASSWORD:?set CPRSUB_FILTER_DB_PASSWORD in .env}"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
     -v password="$CPRSUB_FILTER_DB_PASSWORD" <<'SQL'
CREATE USER cprsub WITH CREATEROLE PASSWORD :'password';
CREATE DATABASE cpr_filters OWNER cprsub;
SQL
