"""The health check a monitoring system polls."""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest

from cpr_abonnement.delivery_calendar import DeliveryCalendar
from cpr_abonnement.health import check, due_day
from cpr_abonnement.records import extract_runs, ledger
from cpr_abonnement.settings import Settings
from cpr_abonnement.subscriptions.service import SubscriptionService

CAL = DeliveryCalendar.default()
A, B = "aaaaaaaa-0000-4000-8000-000000000001", "bbbbbbbb-0000-4000-8000-000000000002"


@pytest.fixture(autouse=True)
def _default_deployment(monkeypatch):
    """The packaged calendar and 21:00, whatever the shell running the tests has set."""
    for name in ("CPRSUB_EXTRA_CLOSURES", "CPRSUB_DELIVERY_TIME"):
        monkeypatch.delenv(name, raising=False)


def test_due_day_waits_for_run_time_and_grace():
    def at(y, m, d, h):
        return dt.datetime(y, m, d, h, tzinfo=dt.UTC)
    settings = Settings.from_env()
    # Thursday 26 Nov 2026 21:00 CET = 20:00Z; with 8 h grace due at Fri 04:00Z
    assert due_day(at(2026, 11, 27, 3), settings, 8) == dt.date(2026, 11, 25)
    assert due_day(at(2026, 11, 27, 4), settings, 8) == dt.date(2026, 11, 26)
    assert due_day(at(2026, 12, 27, 12), settings, 8) == dt.date(2026, 12, 25)


def test_health_follows_the_ledger(engine):
    svc = SubscriptionService(engine, caller="t", clock=lambda: dt.datetime(2026, 11, 1))
    svc.add_subscriber(A, "A")
    svc.add_subscriber(B, "B")
    now = dt.datetime(2026, 11, 27, 12, tzinfo=dt.UTC)
    state = check(engine, now=now)
    assert not state.healthy and state.problems == ["no extract processed for 2026-11-26"]
    t = dt.datetime(2026, 11, 26, 20)
    extract_runs.register(engine, task_number="431101", production_date=dt.date(2026, 11, 26),
                      previous_date=dt.date(2026, 11, 25), file_name="D261126.L431101",
                      sha256="0" * 64, persons=1, records=1, clock=lambda: t, as_of=t)
    for uuid, outcome in ((A, "DELIVERED"), (B, "FAILED")):
        ledger.record_delivery(engine, task_number="431101",
                                 production_date=dt.date(2026, 11, 26), subscriber_uuid=uuid,
                                 file_name="D261126.L431101", sha256="0" * 64, persons=1,
                                 records=1, target="x", outcome=outcome,
                                 detail="SSHException: connection refused", now=t)
    state = check(engine, now=now)
    assert not state.healthy and (state.subscribers, state.delivered) == (2, 1)
    # Who (by name), why (the ledger's reason) and what to do: not a bare UUID.
    assert state.problems[1:] == [
        f"1 subscriber(s) not delivered for 2026-11-26: B ({B[:8]}…): FAILED after 1 "
        'attempt(s): SSHException: connection refused (runbook step "Delivery failed")']
    # The next day delivered to both does not hide the older failed day.
    t2 = dt.datetime(2026, 11, 27, 20)
    _processed_and_delivered(engine, dt.date(2026, 11, 27), dt.date(2026, 11, 26), t2, (A, B))
    later = check(engine, now=dt.datetime(2026, 11, 28, 12, tzinfo=dt.UTC))
    assert later.delivery_day == "2026-11-27" and not later.healthy
    assert later.problems == [f"still not delivered for 2026-11-26: B ({B[:8]}…): FAILED "
                              'after 1 attempt(s): SSHException: connection refused '
                              '(runbook step "Delivery failed")']
    ledger.record_delivery(engine, task_number="431101", production_date=dt.date(2026, 11, 26),
                             subscriber_uuid=B, file_name="D261126.L431101", sha256="0" * 64,
                             persons=1, records=1, target="x", outcome="DELIVERED", detail="",
                             now=t)
    extract_runs.mark_delivered(engine, "431101", dt.date(2026, 11, 26), t)
    assert check(engine, now=dt.datetime(2026, 11, 28, 12, tzinfo=dt.UTC)).healthy


def _processed_and_delivered(engine, day: dt.date, previous: dt.date, t: dt.datetime,
                             uuids: tuple[str, ...]) -> None:
    """The day's extract processed with the filters of instant ``t``, delivered to
    ``uuids`` and marked processed, as the DAG's run leaves it."""
    name = f"D{day:%y%m%d}.L431101"
    extract_runs.register(engine, task_number="431101", production_date=day,
                      previous_date=previous, file_name=name, sha256="0" * 64, persons=1,
                      records=1, clock=lambda: t, as_of=t)
    for uuid in uuids:
        ledger.record_delivery(engine, task_number="431101", production_date=day,
                                 subscriber_uuid=uuid, file_name=name, sha256="0" * 64,
                                 persons=1, records=1, target="x", outcome="DELIVERED",
                                 detail="", now=t)
    extract_runs.mark_delivered(engine, "431101", day, t)


def test_a_subscriber_added_after_the_days_snapshot_is_not_counted(engine):
    thursday = dt.date(2026, 11, 26)
    snapshot = dt.datetime(2026, 11, 26, 20)
    SubscriptionService(engine, caller="t", clock=lambda: snapshot - dt.timedelta(days=1)
                        ).add_subscriber(A, "A")
    _processed_and_delivered(engine, thursday, dt.date(2026, 11, 25), snapshot, (A,))
    # B is created on Friday morning, after Thursday's snapshot: it had no file to get.
    SubscriptionService(engine, caller="t", clock=lambda: dt.datetime(2026, 11, 27, 9)
                        ).add_subscriber(B, "B")
    state = check(engine, now=dt.datetime(2026, 11, 27, 12, tzinfo=dt.UTC))
    assert state.healthy, state.problems
    assert (state.delivery_day, state.subscribers, state.delivered) == ("2026-11-26", 1, 1)


def test_a_subscriber_disabled_after_the_snapshot_still_counts(engine):
    thursday = dt.date(2026, 11, 26)
    snapshot = dt.datetime(2026, 11, 26, 20)
    svc = SubscriptionService(engine, caller="t", clock=lambda: snapshot - dt.timedelta(days=1))
    svc.add_subscriber(A, "A")
    svc.add_subscriber(B, "B")
    _processed_and_delivered(engine, thursday, dt.date(2026, 11, 25), snapshot, (A,))
    SubscriptionService(engine, caller="t", clock=lambda: dt.datetime(2026, 11, 27, 9)
                        ).set_active(B, False)
    state = check(engine, now=dt.datetime(2026, 11, 27, 12, tzinfo=dt.UTC))
    assert not state.healthy and (state.subscribers, state.delivered) == (2, 1)
    assert any(f"B ({B[:8]}…): no delivery recorded" in p for p in state.problems)


def test_health_uses_the_deployments_closures_and_run_time(engine, monkeypatch):
    """CPRSUB_EXTRA_CLOSURES and CPRSUB_DELIVERY_TIME as the DAG reads them: on Tuesday
    29 Dec 2026 with Monday the 28th closed, the day due is Friday the 25th."""
    monkeypatch.setenv("CPRSUB_EXTRA_CLOSURES", "2026-12-28")
    monkeypatch.setenv("CPRSUB_DELIVERY_TIME", "18:00")
    SubscriptionService(engine, caller="t", clock=lambda: dt.datetime(2026, 12, 1)
                        ).add_subscriber(A, "A")
    _processed_and_delivered(engine, dt.date(2026, 12, 25), dt.date(2026, 12, 23),
                             dt.datetime(2026, 12, 25, 17), (A,))
    state = check(engine, now=dt.datetime(2026, 12, 29, 12, tzinfo=dt.UTC))
    assert state.healthy and state.delivery_day == "2026-12-25", state
    # Tuesday 18:00 CET + 8 h grace = Wednesday 01:00Z: from then on the 29th is due.
    assert due_day(dt.datetime(2026, 12, 30, 1, tzinfo=dt.UTC),
                   Settings.from_env()) == dt.date(2026, 12, 29)


def test_cli_health_reads_the_deployment_settings(sqlite_url, monkeypatch, capsys):
    from cpr_abonnement.cli import main
    from cpr_abonnement.store.db import make_engine, upgrade

    engine = make_engine(sqlite_url)
    upgrade(engine)
    today = dt.datetime.now(ZoneInfo("Europe/Copenhagen")).date()
    due = due_day(dt.datetime.now(dt.UTC), Settings.from_env())
    # Close every delivery day from the one due up to today: the CLI must skip them all.
    closed = [due + dt.timedelta(days=n) for n in range((today - due).days + 1)]
    monkeypatch.setenv("CPRSUB_EXTRA_CLOSURES", ",".join(d.isoformat() for d in closed))
    expected = CAL.previous_delivery_day(due)
    assert main(["health", "--db", sqlite_url, "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["delivery_day"] == expected.isoformat()


def test_exit_codes_for_a_monitor(sqlite_url, tmp_path, capsys):
    """Issue 22 item 6: ``--exit-code`` speaks the monitoring plugins' language: 2 when
    not healthy, 1 for a warning alone (a certificate near expiry), 0 when all is well,
    3 when the database cannot be read; without it, 0 or 1 as before."""
    from cpr_abonnement.cli import main
    from cpr_abonnement.store.db import make_engine, upgrade
    from support.certs import TestCA

    engine = make_engine(sqlite_url)
    upgrade(engine)

    def health(*flags: str) -> int:
        code = main(["health", "--db", sqlite_url, *flags])
        capsys.readouterr()
        return code

    assert (health("--exit-code"), health()) == (2, 1)  # nothing processed yet
    due = due_day(dt.datetime.now(dt.UTC), Settings.from_env())
    t = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(days=400)
    svc = SubscriptionService(engine, caller="t", clock=lambda: t)
    svc.add_subscriber(A, "Aalborg ESDH")
    _processed_and_delivered(engine, due, CAL.previous_delivery_day(due), t, (A,))
    assert (health("--exit-code"), health()) == (0, 0)
    SubscriptionService(engine, caller="t").add_certificate(
        A, TestCA().client("Aalborg ESDH", days=40).pem)
    assert (health("--exit-code"), health()) == (1, 0)
    unreadable = tmp_path / "not-a-database.db"
    unreadable.write_bytes(b"\0" * 4096)
    assert main(["health", "--db", f"sqlite:///{unreadable}", "--exit-code"]) == 3
    assert "UNKNOWN: the filter database cannot be read" in capsys.readouterr().out


def test_health_shows_each_volumes_free_space_and_oldest_file(engine, tmp_path, monkeypatch):
    """Issue 27 item 2: where CPR data lives, how full, and what retention left."""
    import os

    for name in ("inbound", "staging", "quarantine", "pickup"):
        (tmp_path / name).mkdir()
    old = tmp_path / "staging" / "2026-10-01" / "extract" / "D261001.L431101"
    old.parent.mkdir(parents=True)
    old.write_bytes(b"x")
    os.utime(old, (dt.datetime(2026, 10, 1, tzinfo=dt.UTC).timestamp(),) * 2)
    (tmp_path / "staging" / "newer").write_bytes(b"y")
    for name in ("INBOUND", "STAGING", "QUARANTINE"):
        monkeypatch.setenv(f"CPRSUB_{name}", f"file://{tmp_path / name.lower()}")
    monkeypatch.setenv("CPRSUB_PICKUP_ROOT", str(tmp_path / "pickup"))
    state = check(engine, now=dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC))
    lines = {line.split()[0]: line for line in state.storage}
    assert set(lines) == {"inbound", "staging", "quarantine", "pickup"}
    assert "MB free of" in lines["staging"]
    assert "oldest file 2026-10-01 (31 day(s))" in lines["staging"]
    assert lines["inbound"].endswith("empty")
