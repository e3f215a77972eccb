#!/bin/bash
# The filter database's scheduled backup (docker-compose.yml, service `backup`):
# `cprsub db backup` (pg_dump -Fc plus a manifest, docs/deployment-backups.md) into
# CPRSUB_BACKUP_DIR every day at CPRSUB_BACKUP_AT (the container's local time, TZ),
# keeping the newest CPRSUB_BACKUP_KEEP. CPRSUB_BACKUP_INTERVAL (seconds), when set,
# replaces the daily time. A failed backup is retried every CPRSUB_BACKUP_RETRY seconds
# until one succeeds: the service keeps running (and its health check turns unhealthy
# once the newest backup is older than a day). On start it backs up at once unless a
# backup younger than a day is there, so a new deployment, or one stopped over the
# backup time, has a fresh backup without waiting for the next night.
# The database URL comes from CPRSUB_DB_URL, as for every cprsub command.
set -uo pipefail
out=${CPRSUB_BACKUP_DIR:-/backups}
keep=${CPRSUB_BACKUP_KEEP:-14}
at=${CPRSUB_BACKUP_AT:-03:00}
interval=${CPRSUB_BACKUP_INTERVAL:-}
retry=${CPRSUB_BACKUP_RETRY:-900}
# The files hold CPR numbers: readable by their owner only (cprsub makes them so too).
umask 077

if ! [[ $at =~ ^([01][0-9]|2[0-3]):[0-5][0-9]$ ]]; then
  echo "backup: CPRSUB_BACKUP_AT must be HH:MM (24-hour), not '$at'" >&2
  exit 2
fi
if [[ -n $interval && ! $interval =~ ^[1-9][0-9]*$ ]]; then
  echo "backup: CPRSUB_BACKUP_INTERVAL must be a number of seconds, not '$interval'" >&2
  exit 2
fi

backup() {
  cprsub db backup --out "$out" --keep "$keep" && return 0
  echo "backup: FAILED at $(date -u +%Y-%m-%dT%H:%M:%SZ); next attempt in ${retry} s" >&2
  return 1
}

backup_until_done() {
  until backup; do sleep "$retry"; done
}

seconds_until_next() {
  if [[ -n $interval ]]; then
    echo "$interval"
    return
  fi
  local now next
  now=$(date +%s)
  next=$(date -d "today $at" +%s)
  (( next > now )) || next=$(date -d "tomorrow $at" +%s)
  echo $(( next - now ))
}

mkdir -p "$out"
if ! find "$out" -maxdepth 1 -name '*.manifest.json' -mmin -1440 | grep -q .; then
  backup_until_done
fi
while true; do
  sleep "$(seconds_until_next)"
  backup_until_done
done
