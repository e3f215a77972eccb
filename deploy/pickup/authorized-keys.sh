#!/bin/sh
# sshd's AuthorizedKeysCommand (run as cprsub-keys with an empty environment): the
# account's active keys from the filter database, nothing for an unknown, disabled or
# push account. The database URL comes from a root-owned file, readable by cprsub-keys.
set -eu
. /etc/cprsub/pickup.env
export CPRSUB_DB_URL
exec /home/airflow/.local/bin/cprsub pickup authorized-keys "$1"
