"""A delivery mode is one module and its registration (issue 23, item 2): a throwaway
third mode, ``drop`` (tests/support/drop_mode.py), registered and nothing else changed,
reaches the registration document, REST, the CLI, the console, the readiness check and
a delivery through the daily DAG, as the filter-type registry test proves for filters."""

from __future__ import annotations

import datetime as dt

import pytest
import yaml
from fastapi.testclient import TestClient

from cpr_abonnement.api.app import create_app
from cpr_abonnement.console import views
from cpr_abonnement.delivery import modes
from cpr_abonnement.identities.credentials import Role, issue
from cpr_abonnement.onboarding.readiness import delivery_check
from cpr_abonnement.records import ledger
from cpr_abonnement.subscriptions.service import SubscriptionService
from support import drop_mode
from support.deployment import SUBSCRIBERS, task_states

SYS = "6f1f0b8e-6a55-4f55-9d7b-1c5c1f3a0001"
DAY = dt.date(2026, 11, 19)


@pytest.fixture
def drop():
    with modes.registered(drop_mode.SPEC) as spec:
        yield spec


def document(**delivery) -> dict:
    return {"uuid": SYS, "name": "Aalborg ESDH", "municipality": 851,
            "supplier": {"name": "Systemleverandøren A/S", "cvr": "10150817"},
            "contact": {"name": "Jens Hansen", "email": "jens@leverandor.example",
                        "phone": "+45 12 34 56 78"},
            "delivery": delivery}


def test_without_its_registration_the_mode_is_refused_everywhere(cli, tmp_path):
    """The counter-check: what the tests below see comes from registering the mode."""
    with pytest.raises(SystemExit):  # argparse refuses it
        cli("subscriber", "add", "--uuid", SYS, "--name", "A", "--delivery", "drop")
    path = tmp_path / "reg.yaml"
    path.write_text(yaml.safe_dump(document(mode="drop", folder="/a")), encoding="utf-8")
    code, _, err = cli("subscriber", "register", str(path))
    assert code != 0 and "delivery.mode" in err and "not one of push, pickup" in err


def test_the_registration_document_takes_the_modes_own_fields(drop, cli, tmp_path):
    path = tmp_path / "reg.yaml"
    path.write_text(yaml.safe_dump(document(mode="drop", folder="/drop/aalborg")),
                    encoding="utf-8")
    assert cli("subscriber", "register", str(path))[0] == 0
    shown = yaml.safe_load(cli("subscriber", "show", SYS, "--format", "yaml")[1])
    assert shown["delivery"] == {"mode": "drop", "folder": "/drop/aalborg"}
    again = cli("subscriber", "register", str(path))
    assert again[0] == 0 and "UNCHANGED" in again[1]
    path.write_text(yaml.safe_dump(document(mode="drop", folder="/x", host="sftp.example")),
                    encoding="utf-8")
    code, _, err = cli("subscriber", "register", str(path))
    assert code != 0 and "unknown field(s) host; expected mode, folder" in err


def test_the_cli_offers_it_and_lists_its_target(drop, cli):
    code, out, _ = cli("subscriber", "add", "--uuid", SYS, "--name", "Aalborg ESDH",
                       "--delivery", "drop", "--remote-dir", "/drop/a")
    assert code == 0, out
    assert "drop dir=/drop/a" in cli("subscriber", "list")[1]
    code, _, err = cli("subscriber", "add", "--uuid", SYS[:-1] + "2", "--name", "B", "--delivery",
                       "drop", "--pickup-user", "b-acct")
    assert code != 0 and "pick-up account is for delivery mode pickup, not drop" in err


def test_rest_creates_and_switches_to_it(drop, engine):
    auth = {"Authorization": f"Bearer {issue(engine, role=Role.ADMIN, label='t')}"}
    client = TestClient(create_app(lambda: engine))
    made = client.post("/v1/admin/subscribers", headers=auth, json={
        "uuid": SYS, "name": "A", "deliveryMode": "drop", "remoteDir": "/drop/a"})
    assert made.status_code == 201, made.text
    assert made.json()["deliveryMode"] == "drop"
    other = SYS[:-1] + "2"
    assert client.post("/v1/admin/subscribers", headers=auth, json={
        "uuid": other, "name": "B", "sftpConnId": "sftp_b"}).status_code == 201
    switched = client.post(f"/v1/admin/subscribers/{other}/delivery", headers=auth,
                           json={"deliveryMode": "drop", "remoteDir": "/drop/b"})
    assert switched.status_code == 200 and switched.json()["remoteDir"] == "/drop/b"
    odd = client.post(f"/v1/admin/subscribers/{other}/delivery", headers=auth,
                      json={"deliveryMode": "pigeon"})
    assert odd.status_code == 422 and "not one of push, pickup, drop" in odd.text


def test_the_console_and_readiness_show_its_label_and_target(drop, engine):
    svc = SubscriptionService(engine, caller="test")
    info = svc.add_subscriber(SYS, "Aalborg ESDH", delivery_mode="drop", remote_dir="/d")
    [row] = views.subscribers(engine)
    assert (row.mode, row.target) == ("drop box", "folder /d")
    check = delivery_check(info)
    assert check.ok and check.detail == "drop box: /d"


def test_a_daily_run_delivers_by_it(
        drop, deployment, monkeypatch, tmp_path):
    uuid = next(iter(SUBSCRIBERS))
    # In force before the run's day: the run delivers as the settings were then.
    SubscriptionService(deployment.engine, caller="test",
                        clock=lambda: dt.datetime(2026, 1, 2)).set_delivery(
        uuid, "drop", remote_dir="/aalborg")
    monkeypatch.setenv("CPRSUB_TEST_DROP_ROOT", str(tmp_path / "drops"))
    src = deployment.extract(DAY)
    run = deployment.run(DAY)
    assert run.state == "success", task_states(run)
    dropped = tmp_path / "drops" / "aalborg"
    staged = deployment.staging / DAY.isoformat() / "deltas" / uuid
    assert sorted(p.name for p in dropped.iterdir()) == [src.name, src.name + ".metadata"]
    assert (dropped / src.name).read_bytes() == (staged / src.name).read_bytes()
    entry = {e.subscriber_uuid: e for e in ledger.entries(deployment.engine, "431101", DAY)}
    assert (entry[uuid].target, entry[uuid].outcome) == ("drop:///aalborg", "DELIVERED")
    assert deployment.delivered(uuid) == {}  # nothing went to its old SFTP server


def test_the_service_window_rule_asks_the_mode(drop, engine, tmp_path, monkeypatch):
    """Inside the subscriber's window a mode that reaches its server (push) waits; one
    that leaves files on our side (drop, like pick-up) delivers."""
    from sqlalchemy import update

    from cpr_abonnement.delivery.base import DeliveryTarget
    from cpr_abonnement.errors import ServiceWindowWait
    from cpr_abonnement.store.models import Subscriber
    from cpr_abonnement.tasks import deliver
    from cpr_abonnement.tasks.payloads import DeliveryItem, DeliveryResult
    from support.ledger import DAY as LEDGER_DAY
    from support.ledger import NAME, SUBSCRIBER, TASK, register_day

    SubscriptionService(engine, caller="test").add_subscriber(SUBSCRIBER, "A",
                                                              sftp_conn_id="sftp_a")
    with engine.begin() as conn:
        conn.execute(update(Subscriber).values(
            registration='{"service_windows": ["daily 20:00-22:00"]}'))
    register_day(engine)
    data = tmp_path / NAME
    data.write_bytes(b"delta\n")
    data.with_name(NAME + ".metadata").write_text("{}\n")
    monkeypatch.setenv("CPRSUB_TEST_DROP_ROOT", str(tmp_path / "drops"))
    inside = dt.datetime(2026, 11, 26, 20, 30)  # UTC: 21:30 Danish time
    item = DeliveryItem(subscriber=SUBSCRIBER, name="A", target=None, data=f"file://{data}",
                        metadata=f"file://{data}.metadata", file_name=NAME, persons=1,
                        records=2, sha256="1" * 64, day=LEDGER_DAY, task_number=TASK)
    push = DeliveryItem(**{**item.__dict__, "target": DeliveryTarget("push", "sftp_a", "/")})
    with pytest.raises(ServiceWindowWait):
        deliver.deliver_one(push, engine, now=inside)
    dropped = DeliveryItem(**{**item.__dict__, "target": DeliveryTarget("drop", "", "/a")})
    assert deliver.deliver_one(dropped, engine, now=inside) == DeliveryResult(SUBSCRIBER,
                                                                             "DELIVERED")
    assert (tmp_path / "drops" / "a" / NAME).read_bytes() == b"delta\n"
