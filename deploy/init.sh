#!/bin/bash
# What `airflow-init` does before the other services start (docker-compose.yml), as root,
# on every `docker compose up`; idempotent. tests/system/test_celery_cluster.py runs this
# same script natively (the paths below pointed at a temporary layout), then runs Airflow
# as the services do: uid AIRFLOW_UID, group 0.
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")
uid=${AIRFLOW_UID:-50000}
data=${CPRSUB_DATA_DIR:-/opt/cpr}
logs=${CPRSUB_AIRFLOW_LOGS:-/opt/airflow/logs}
ui_tls=${CPRSUB_UI_TLS_DIR:-/opt/cpr-ui-tls}

# 1. What the workers, the triggerer and the scheduler write: extracts (an inbound folder
#    the workers archive from), staging, quarantine and task logs. Owner AIRFLOW_UID,
#    group 0 with setgid (the official image's convention: what is made inside stays
#    group 0, which every Airflow service has). The pick-up storage is the pick-up
#    server's to prepare (deploy/pickup/entrypoint.sh: sshd's chroot rules).
for dir in "$data/inbound" "$data/staging" "$data/quarantine" "$logs"; do
    install -d -o "$uid" -g 0 -m 2775 "$dir"
done

# 2. The Airflow UI's TLS certificate for cpr-proxy: the operator's (ui.pem, ui.key in
#    CPRSUB_UI_TLS_HOST_DIR), else a self-signed one for CPRSUB_UI_HOST made once.
install -d -m 0755 "$ui_tls"
if [[ ! -s $ui_tls/ui.pem || ! -s $ui_tls/ui.key ]]; then
    host=${CPRSUB_UI_HOST:-localhost}
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 \
        -subj "/CN=$host" -addext "subjectAltName=DNS:$host,DNS:localhost" \
        -keyout "$ui_tls/ui.key" -out "$ui_tls/ui.pem" 2>/dev/null
    echo "A self-signed certificate for the Airflow UI ($host) is in $ui_tls:" \
         "replace ui.pem and ui.key with your own (docs/deployment.md)."
fi
chmod 0600 "$ui_tls/ui.key"

# 2b. The backup service's volume (it runs as AIRFLOW_UID too): its dumps hold CPR
#     numbers, so the folder is the owner's alone.
if [[ -n ${CPRSUB_BACKUP_DIR:-} ]]; then
    install -d -o "$uid" -g 0 -m 0700 "$CPRSUB_BACKUP_DIR"
fi

# 3. The databases: Airflow's metadata and the filter database, migrated; then, on
#    PostgreSQL, the filter database's roles (passwords CPRSUB_DB_PASSWORD_*) and their
#    grants, re-applied after every migration so a new table has its grants before
#    any service uses it (docs/deployment-roles.md). Only this one-shot service holds
#    the owner's URL (AIRFLOW_CONN_CPR_FILTER_DB here) and the roles' passwords.
airflow db migrate
case $AIRFLOW_CONN_CPR_FILTER_DB in
    postgres*) cprsub db upgrade --db "$AIRFLOW_CONN_CPR_FILTER_DB" --grant-roles ;;
    *) cprsub db upgrade --db "$AIRFLOW_CONN_CPR_FILTER_DB" ;;
esac
echo "Airflow metadata and the filter database are migrated."

# 4. Sign-in (FAB auth manager): the roles and the first administrator.
if [[ -n ${AIRFLOW_ADMIN_USER:-} ]]; then
    python "$here/airflow_roles.py"
    airflow users create --role Admin --username "$AIRFLOW_ADMIN_USER" \
        --password="$AIRFLOW_ADMIN_PASSWORD" --email="$AIRFLOW_ADMIN_EMAIL" \
        --firstname CPR --lastname Administrator
    echo "Roles operator and viewer are in place; add people with airflow users create."
fi

# 5. Anything a root-run step (or an older, root-run start) left in the task logs.
chown -R "$uid:0" "$logs"
