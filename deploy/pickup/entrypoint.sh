#!/bin/sh
# Start the pick-up server: host keys kept on their volume (clients pin them), the
# key look-up's database URL handed to the AuthorizedKeysCommand, a Unix account per pick-up account
# (sshd needs one to chroot to; no password: "*" is not "locked"), internal-sftp's log
# tracked into the ledger, then sshd in the foreground inside a Landlock sandbox where,
# beneath the pick-up root, files can only be read, listed and removed (an account can
# create nothing, not even an empty file). On a kernel without Landlock it does not
# start unless CPRSUB_PICKUP_ALLOW_UNCONFINED=1.
# sshd's privilege separation directory /run/sshd is made here, not in the image: /run
# is a fresh tmpfs in a container (and on a booted machine), and sshd refuses to start
# without it. Its path is compiled into sshd, so it has no override.
# The other paths are the image's; the CPRSUB_PICKUP_* overrides exist for
# tests/pickup/test_pickup_entrypoint.py, which runs this script as is.
set -eu
keys=${CPRSUB_PICKUP_HOST_KEYS:-/etc/ssh/pickup_host_keys}
etc=${CPRSUB_PICKUP_ETC:-/etc/cprsub}
srv=${CPRSUB_PICKUP_SRV:-/srv/pickup}
log=${CPRSUB_PICKUP_LOG:-/var/log/pickup/sftp.log}
config=${CPRSUB_PICKUP_SSHD_CONFIG:-/etc/ssh/sshd_config}
keys_group=${CPRSUB_PICKUP_KEYS_GROUP:-cprsub-keys}
mkdir -p /run/sshd
chown root:root /run/sshd && chmod 0755 /run/sshd
[ -f $keys/ssh_host_ed25519_key ] || ssh-keygen -q -t ed25519 -N "" -f $keys/ssh_host_ed25519_key
[ -f $keys/ssh_host_rsa_key ] || ssh-keygen -q -t rsa -b 4096 -N "" -f $keys/ssh_host_rsa_key
mkdir -p $etc
# The key look-up's own URL (role cprsub_keys: SSH keys only); the tracker and the sync
# keep CPRSUB_DB_URL (role cprsub_pickup), and sshd is started with neither.
printf 'CPRSUB_DB_URL=%s\n' "${CPRSUB_KEYS_DB_URL:-$CPRSUB_DB_URL}" > $etc/pickup.env
chown root:$keys_group $etc/pickup.env
chmod 0640 $etc/pickup.env
chown root:root $srv && chmod 0755 $srv
# The delivery (Airflow's workers, uid AIRFLOW_UID, group 0) writes its temporary files
# here, outside every chroot, and links them into the accounts' IN/ (group 0, 0770).
install -d -o "${AIRFLOW_UID:-50000}" -g 0 -m 0770 $srv/.partial
cprsub pickup sync-accounts --root $srv
# Accounts registered or switched to pick-up later are made, and their log tracked,
# within CPRSUB_PICKUP_SYNC_SECONDS: no restart.
env -u CPRSUB_KEYS_DB_URL cprsub pickup track --root $srv --log $log --sync-every "${CPRSUB_PICKUP_SYNC_SECONDS:-30}" &
exec env -u CPRSUB_DB_URL -u CPRSUB_KEYS_DB_URL cprsub pickup confine --root $srv ${CPRSUB_PICKUP_ALLOW_UNCONFINED:+--allow-unconfined} \
  -- /usr/sbin/sshd -D -e -f $config
