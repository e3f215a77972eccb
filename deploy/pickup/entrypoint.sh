#!/bin/sh
# Start the pick-up server: host keys kept on their volume (clients pin them), the
# database URL handed to the AuthorizedKeysCommand, a Unix account per pick-up account
# (sshd needs one to chroot to; no password: "*" is not "locked"), internal-sftp's log
# tracked into the ledger, then sshd in the foreground.
set -eu
keys=/etc/ssh/pickup_host_keys
[ -f $keys/ssh_host_ed25519_key ] || ssh-keygen -q -t ed25519 -N "" -f $keys/ssh_host_ed25519_key
[ -f $keys/ssh_host_rsa_key ] || ssh-keygen -q -t rsa -b 4096 -N "" -f $keys/ssh_host_rsa_key
mkdir -p /etc/cprsub
printf 'CPRSUB_DB_URL=%s\n' "$CPRSUB_DB_URL" > /etc/cprsub/pickup.env
chown root:cprsub-keys /etc/cprsub/pickup.env
chmod 0640 /etc/cprsub/pickup.env
chown root:root /srv/pickup && chmod 0755 /srv/pickup
cprsub pickup sync-accounts --root /srv/pickup
cprsub pickup track --root /srv/pickup --log /var/log/pickup/sftp.log &
exec /usr/sbin/sshd -D -e -f /etc/ssh/sshd_config
