"""Every copy of CPR data has a lifetime (issue 27): the housekeeping DAG removes staged
extracts, delivered deltas and quarantined files past their rules, judged at its run's
logical date (the clock the test controls), to the second, and audits each removal; a
delta not yet delivered stays; a re-run of a day whose extract was removed fails at once
saying how to restore it; the disk guard refuses a day that would fill staging."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from pathlib import Path

import pendulum
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from cpr_abonnement import lifecycle, storage
from cpr_abonnement.errors import DiskSpaceLow
from cpr_abonnement.records import extract_runs, ledger
from cpr_abonnement.settings import Settings
from cpr_abonnement.store.models import AuditEntry
from support.deployment import ROOT, SUBSCRIBERS, task_states

A, B, C = SUBSCRIBERS
#: The housekeeping run's logical date: "now" for every rule.
T = dt.datetime(2026, 11, 30, 6, 0, 0)
SECOND = dt.timedelta(seconds=1)
OLD_DAY, NEW_DAY, RECENT_DAY = dt.date(2026, 10, 20), dt.date(2026, 10, 21), dt.date(2026, 11, 26)


def _file(path: Path, at: dt.datetime, size: int = 1000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    stamp = at.replace(tzinfo=dt.UTC).timestamp()
    os.utime(path, (stamp, stamp))
    return path


def _delivered(engine, day: dt.date, outcomes: dict[str, tuple[str, dt.datetime]]) -> None:
    name = f"D{day:%y%m%d}.L431101"
    extract_runs.register(engine, task_number="431101", production_date=day,
                          previous_date=day - dt.timedelta(days=1), file_name=name,
                          sha256="0" * 64, persons=1, records=10,
                          clock=lambda: dt.datetime(2026, 10, 1), as_of=dt.datetime(2026, 10, 1))
    for uuid, (outcome, at) in outcomes.items():
        ledger.record_delivery(engine, task_number="431101", production_date=day,
                               subscriber_uuid=uuid, file_name=name, sha256="0" * 64,
                               persons=1, records=10, target="x", outcome=outcome, detail="",
                               now=at)


def _housekeeping(logical_date: dt.datetime):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert not bag.import_errors, bag.import_errors
    return bag.get_dag("cpr_pickup_housekeeping").test(
        logical_date=pendulum.instance(logical_date.replace(tzinfo=dt.UTC)))


def test_each_copy_goes_one_second_after_its_rule_and_not_before(deployment, tmp_path,
                                                                 monkeypatch):
    monkeypatch.setenv("CPRSUB_PICKUP_ROOT", str(tmp_path / "pickup"))
    staging, quarantine = deployment.staging, deployment.quarantine
    day = lambda d: staging / f"{d:%Y-%m-%d}"  # noqa: E731
    # staged extracts: 30 days after they were staged
    month = T - dt.timedelta(30)
    gone_extract = _file(day(OLD_DAY) / "extract" / "D261020.L431101", month - SECOND)
    _file(day(OLD_DAY) / "extract" / "D261020.L431101.index", month - SECOND, 300)
    kept_extract = _file(day(NEW_DAY) / "extract" / "D261021.L431101", month + SECOND)
    # deltas: 3 days after their delivery; one never delivered stays whatever its age
    _delivered(deployment.engine, OLD_DAY, {A: ("DELIVERED", T - dt.timedelta(3) - SECOND),
                                            B: ("FAILED", T - dt.timedelta(40))})
    _delivered(deployment.engine, RECENT_DAY, {A: ("DELIVERED", T - dt.timedelta(3) + SECOND)})
    gone_delta = _file(day(OLD_DAY) / "deltas" / A / "D261020.L431101", T - dt.timedelta(40), 500)
    _file(day(OLD_DAY) / "deltas" / A / "D261020.L431101.metadata", T - dt.timedelta(40), 200)
    undelivered = _file(day(OLD_DAY) / "deltas" / B / "D261020.L431101", T - dt.timedelta(40))
    kept_delta = _file(day(RECENT_DAY) / "deltas" / A / "D261126.L431101", T - dt.timedelta(4))
    # quarantine: 90 days after it was quarantined (the reason file's time, not the file's)
    q_old = _file(quarantine / "D260801.L431101.20260802T060000Z", T - dt.timedelta(200), 700)
    _file(quarantine / f"{q_old.name}.reason.txt", T - dt.timedelta(90) - SECOND, 50)
    q_new = _file(quarantine / "D260901.L431101.20260902T060000Z", T - dt.timedelta(200))
    _file(quarantine / f"{q_new.name}.reason.txt", T - dt.timedelta(90) + SECOND)

    run = _housekeeping(T)
    assert task_states(run)["remove_expired_cpr_data"] == "success", task_states(run)

    assert not gone_extract.parent.exists() and kept_extract.exists()
    tomb = json.loads((day(OLD_DAY) / lifecycle.TOMBSTONE).read_text())
    assert tomb["files"] == ["D261020.L431101", "D261020.L431101.index"]
    assert tomb["rule"] == "CPRSUB_STAGING_RETENTION_DAYS=30"
    assert not gone_delta.parent.exists() and undelivered.exists() and kept_delta.exists()
    assert sorted(p.name for p in quarantine.iterdir()) == sorted(
        [q_new.name, f"{q_new.name}.reason.txt"])
    with Session(deployment.engine) as s:
        audited = [json.loads(a) for a in s.scalars(select(AuditEntry.arguments).where(
            AuditEntry.operation == lifecycle.OPERATION))]
    assert sorted((a["copy"], a["day"], a["bytes"]) for a in audited) == sorted([
        ("staged extract", "2026-10-20", 1300), ("delta", "2026-10-20", 700),
        ("quarantined file", None, 700), ("quarantined file", None, 50)])
    assert all(a["rule"] and a["since"] for a in audited)

    # The same run again removes nothing more: every rule is judged at the same instant.
    assert lifecycle.due(Settings.from_env(), deployment.engine, T) == []


def test_a_rerun_of_a_day_whose_extract_retention_removed_fails_at_once(deployment):
    day = dt.date(2026, 11, 19)
    deployment.extract(day)
    assert deployment.run(day).state == "success"
    later = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(days=31)
    removed = lifecycle.apply(Settings.from_env(), deployment.engine, later, caller="test")
    assert {r.copy for r in removed} == {"staged extract", "delta"}

    again = deployment.run(day)
    assert task_states(again)["wait_for_extract"] == "failed"
    (alert,) = [m for m in deployment.inbox.texts() if "wait_for_extract" in m]
    assert "was removed from staging" in alert and "CPRSUB_STAGING_RETENTION_DAYS=30" in alert
    assert "put the original file back" in alert and "runbook" in alert


@pytest.fixture
def small_volume(tmp_path):
    """A 4 MB file system (tmpfs): staging on a volume that can fill up."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    folder = tmp_path / "small"
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(folder)], check=True)
    yield folder
    subprocess.run(["umount", "-l", str(folder)], check=False)


def test_the_disk_guard_refuses_a_day_that_would_fill_staging(deployment, small_volume,
                                                              monkeypatch):
    monkeypatch.setenv("CPRSUB_STAGING", f"file://{small_volume}")
    day = dt.date(2026, 11, 19)
    src = deployment.extract(day, persons=800)  # about 1 MB
    # The last run's subscribers took three times its extract: the day needs ~3 MB.
    _delivered(deployment.engine, dt.date(2026, 11, 18),  # the day before: the chain holds
               {A: ("DELIVERED", T), B: ("DELIVERED", T), C: ("DELIVERED", T)})
    assert storage.delivered_share(deployment.engine) == 3.0
    with pytest.raises(DiskSpaceLow, match=r"has [\d.]+ MB free; the day needs about"):
        storage.check_room(Settings.from_env(), deployment.engine, 2 * src.stat().st_size)

    run = deployment.run(day)
    states = task_states(run)
    assert states["filter_for_subscribers"] == "failed", states
    assert not any(deployment.delivered(uuid) for uuid in SUBSCRIBERS)
    assert not (small_volume / f"{day:%Y-%m-%d}" / "deltas").exists()  # nothing written
    (alert,) = [m for m in deployment.inbox.texts() if "filter_for_subscribers" in m]
    assert "staging volume" in alert and "CPRSUB_DISK_RESERVE_PERCENT" in alert

