"""The housekeeping DAG through dag.test(): retention of IN/, the late pick-up alert and
the alert about a client certificate near its expiry."""

from __future__ import annotations

import datetime as dt
import json
import os
import time

import pendulum
import pytest

from cpr_abonnement.delivery_calendar import DeliveryCalendar
from cpr_abonnement.identities import expiry
from cpr_abonnement.records import ledger
from cpr_abonnement.store.db import make_engine, upgrade
from cpr_abonnement.subscriptions.service import SubscriptionService
from support.certs import TestCA
from support.deployment import ROOT, task_states
from support.pickup import record_delivered
from support.smtp import smtp_server

UUID = "44444444-0000-4000-8000-000000000004"
ESDH = "6f1f0b8e-6a55-4f55-9d7b-1c5c1f3a0001"
DAY = 86400


def NOW_UTC() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _age(path, days: float) -> None:
    t = time.time() - days * DAY
    os.utime(path, (t, t), follow_symlinks=False)


@pytest.mark.slow
def test_housekeeping_removes_only_expired_files_records_them_and_alerts_late(
        airflow_db, tmp_path, monkeypatch):
    engine = make_engine(f"sqlite:///{tmp_path / 'filters.db'}")
    upgrade(engine)
    svc = SubscriptionService(engine, caller="t", clock=lambda: dt.datetime(2025, 1, 1))
    svc.add_subscriber(UUID, "Glemsom Kommune", delivery_mode="pickup",
                       pickup_account="glemsom")
    # An IT system whose client certificate expires in 20 days (issue 21 item 13).
    svc.add_subscriber(ESDH, "Aalborg ESDH")
    svc.add_certificate(ESDH, TestCA().client("Aalborg ESDH", days=20).pem)
    cal = DeliveryCalendar.default()
    old_day = cal.previous_delivery_day(dt.date.today() - dt.timedelta(days=31))
    recent_day = cal.previous_delivery_day(cal.previous_delivery_day(
        cal.previous_delivery_day(cal.previous_delivery_day(dt.date.today()))))
    old, recent = (record_delivered(engine, day, UUID) for day in (old_day, recent_day))
    root = tmp_path / "pickup"
    inbox = root / "glemsom" / "IN"
    inbox.mkdir(parents=True)
    other = root / "andet" / "IN"
    other.mkdir(parents=True)
    for name, days in ((old, 31), (f"{old}.metadata", 31), (recent, 4),
                       ("just-younger", 29.9), ("left-by-someone", 45)):
        (inbox / name).write_text(name)
        _age(inbox / name, days)
    (other / "young").write_text("x")
    (inbox / "old-link").symlink_to(other / "young")
    _age(inbox / "old-link", 60)
    with smtp_server() as (mail, smtp_port):
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps({
            "conn_type": "smtp", "host": "127.0.0.1", "port": smtp_port,
            "extra": {"disable_ssl": True, "disable_tls": True, "timeout": 10,
                      "retry_limit": 0, "from_email": "airflow@cpr-abonnement.example"}}))
        for key, value in {"CPRSUB_DB_URL": str(engine.url), "CPRSUB_PICKUP_ROOT": str(root),
                           "CPRSUB_ALERT_EMAIL": "data-engineers@cpr-abonnement.example",
                           "CPRSUB_PICKUP_RETENTION_DAYS": "30"}.items():
            monkeypatch.setenv(key, value)
        from airflow.dag_processing.dagbag import DagBag

        bag = DagBag(dag_folder=str(ROOT / "dags"))
        assert not bag.import_errors, bag.import_errors
        today = dt.date.today()
        run = bag.get_dag("cpr_pickup_housekeeping").test(
            logical_date=pendulum.datetime(today.year, today.month, today.day, tz="UTC"))
        states = task_states(run)
        alerts = mail.texts()
    assert states["remove_expired_pickup_files"] == "success"
    assert sorted(p.name for p in inbox.iterdir()) == sorted(
        [recent, "just-younger", "old-link"])
    assert (other / "young").exists()
    rows = {e.file_name: e for e in ledger.entries(engine, "431101", old_day)}
    assert rows[old].removed_by == "retention" and rows[old].removed_at is not None
    # the recent file has waited 4 delivery days: late, the engineers are told
    assert states["check_late_pickups"] == "failed"
    assert states["check_certificate_expiry"] == "failed"
    late, = [a for a in alerts if "Glemsom Kommune" in a]
    assert recent in late
    expiring, = [a for a in alerts if "Aalborg ESDH" in a]
    assert "expire within 90/30/7 days" in expiring and "register its successor" in expiring
    assert len(alerts) == 2
    assert [e.threshold for e in expiry.expiring(engine, NOW_UTC())] == [30]
    assert expiry.due(engine, NOW_UTC()) == []  # alerted once at 30 days


@pytest.mark.skipif(os.geteuid() != 0, reason="files owned by another user need root")
def test_a_file_an_unconfined_account_created_is_swept_and_alerted(tmp_path):
    """The sweep behind ``--allow-unconfined`` (a kernel without Landlock, where sshd can
    let an account create an empty name in its IN/): a file owned by the owner of IN/ is
    the account's, removed and named in the alert; delivered files (the delivery's user)
    and other accounts' folders stay."""
    from cpr_abonnement.errors import PickupStrayFiles
    from cpr_abonnement.pickup.strays import sweep_strays

    account_uid = 54321  # an unused uid stands for the account's Unix user
    for name in ("glemsom", "other"):
        inbox = tmp_path / name / "IN"
        inbox.mkdir(parents=True)
        os.chown(inbox, account_uid + (name == "other"), -1)
        (inbox / "D260105.L431101").write_bytes(b"delivered")
    stray = tmp_path / "glemsom" / "IN" / "D260106.L431101"
    stray.touch()
    os.chown(stray, account_uid, -1)
    with pytest.raises(PickupStrayFiles, match="glemsom") as raised:
        sweep_strays(tmp_path)
    assert "other" not in str(raised.value)
    assert not stray.exists()
    assert (tmp_path / "glemsom" / "IN" / "D260105.L431101").read_bytes() == b"delivered"
    assert sweep_strays(tmp_path) == []  # nothing left: no alert
