"""The compose ``backup`` service and its loop (deploy/backup/backup-loop.sh), run as is
with stand-ins for ``cprsub`` (records its arguments, can fail) and ``sleep`` (records
how long it was asked to wait, and ends the loop after a few waits): no Docker engine,
no real waiting."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
LOOP = ROOT / "deploy" / "backup" / "backup-loop.sh"

FAKE_CPRSUB = """#!/bin/bash
echo "cprsub $*" >> "$LOG"
n=$(( $(cat "$LOG.calls" 2>/dev/null || echo 0) + 1 )); echo $n > "$LOG.calls"
(( n <= ${FAIL_FIRST:-0} )) && exit 1
touch "$4/cpr_filters-$n.manifest.json"
"""
FAKE_SLEEP = """#!/bin/bash
echo "sleep $1" >> "$LOG"
n=$(( $(cat "$LOG.sleeps" 2>/dev/null || echo 0) + 1 )); echo $n > "$LOG.sleeps"
(( n >= STOP_AFTER_SLEEPS )) && kill -TERM $PPID
exit 0
"""


def run_loop(tmp_path: Path, stop_after_sleeps: int, **env: str) -> tuple[list[str], str]:
    """Run the loop until its ``stop_after_sleeps``-th wait; what it did, and stderr."""
    bin_dir, out, log = tmp_path / "bin", tmp_path / "backups", tmp_path / "log"
    bin_dir.mkdir(exist_ok=True)
    for name, script in (("cprsub", FAKE_CPRSUB), ("sleep", FAKE_SLEEP)):
        (bin_dir / name).write_text(script)
        (bin_dir / name).chmod(0o755)
    proc = subprocess.run(
        ["/bin/bash", str(LOOP)], capture_output=True, text=True, timeout=30,
        env={"PATH": f"{bin_dir}:{os.environ['PATH']}", "LOG": str(log), "TZ": "UTC",
             "CPRSUB_BACKUP_DIR": str(out), "CPRSUB_BACKUP_KEEP": "14",
             "STOP_AFTER_SLEEPS": str(stop_after_sleeps), **env})
    return (log.read_text().splitlines() if log.exists() else []), proc.stderr


def test_backs_up_at_once_retries_a_failure_then_waits_for_the_daily_time(tmp_path):
    at = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    done, stderr = run_loop(tmp_path, 2, FAIL_FIRST="1", CPRSUB_BACKUP_RETRY="7",
                            CPRSUB_BACKUP_AT=f"{at:%H:%M}")
    backup = f"cprsub db backup --out {tmp_path / 'backups'} --keep 14"
    assert done[:3] == [backup, "sleep 7", backup]  # no backup yet: at once, retried
    waited = int(done[3].removeprefix("sleep "))
    assert 3600 - 61 <= waited <= 3600  # then until the next CPRSUB_BACKUP_AT
    assert len(done) == 4
    assert "backup: FAILED at" in stderr and "next attempt in 7 s" in stderr


def test_a_recent_backup_is_not_repeated_on_start_and_the_interval_replaces_the_time(
        tmp_path):
    (tmp_path / "backups").mkdir()
    (tmp_path / "backups" / "cpr_filters-0.manifest.json").touch()  # made minutes ago
    done, _ = run_loop(tmp_path, 2, CPRSUB_BACKUP_INTERVAL="60")
    assert done == ["sleep 60", f"cprsub db backup --out {tmp_path / 'backups'} --keep 14",
                    "sleep 60"]


@pytest.mark.parametrize("setting", [{"CPRSUB_BACKUP_AT": "3am"},
                                     {"CPRSUB_BACKUP_INTERVAL": "daily"}])
def test_a_malformed_schedule_stops_the_service_with_its_reason(tmp_path, setting):
    done, stderr = run_loop(tmp_path, 1, **setting)
    assert done == []
    (name, value), = setting.items()
    assert f"backup: {name} must be" in stderr and value in stderr


def test_the_compose_service_runs_the_loop_into_the_backups_volume():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    svc = compose["services"]["backup"]
    assert svc["image"] == "cpr-abonnement-airflow:0.1.0"  # cprsub and pg_dump inside
    assert svc["entrypoint"] == ["/bin/bash", "/opt/cpr-backup/backup-loop.sh"]
    assert "./deploy/backup/backup-loop.sh:/opt/cpr-backup/backup-loop.sh:ro" in svc["volumes"]
    assert "backups:/backups" in svc["volumes"] and "backups" in compose["volumes"]
    env = svc["environment"]
    assert env["CPRSUB_DB_URL"].startswith(
        "postgresql://cprsub:${CPRSUB_FILTER_DB_PASSWORD:?")  # pg_dump: the owner
    assert env["CPRSUB_BACKUP_DIR"] == "/backups"
    assert env["CPRSUB_BACKUP_KEEP"] == "${CPRSUB_BACKUP_KEEP:-14}"
    assert env["CPRSUB_BACKUP_AT"] == "${CPRSUB_BACKUP_AT:-03:00}"
    assert "env_file" not in svc  # the filter database URL, not every secret in .env
    assert "*.manifest.json" in svc["healthcheck"]["test"][1]
    assert svc["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
    assert os.access(LOOP, os.X_OK)
