"""``cprsub subscriber register / show`` and the admin API's registration: the NOT0314
form as one document, each rule, idempotency, secrets never echoed."""

from __future__ import annotations

import json
import uuid

import pytest
import yaml

from cpr_abonnement.cli import main
from cpr_abonnement.errors import InvalidRegistration
from cpr_abonnement.subscriptions.registration import parse_document, valid_cvr
from cpr_abonnement.subscriptions.service import SubscriptionService
from support.certs import test_ca  # noqa: F401 (fixture)
from support.sshkeys import dsa_line, ed25519_line

SYS = "6f1f0b8e-6a55-4f55-9d7b-1c5c1f3a0001"
OTHER = "6f1f0b8e-6a55-4f55-9d7b-1c5c1f3a0002"
AGREEMENT = "11111111-2222-4333-8444-555555555555"
HOST_KEY = ed25519_line("host")


def document(**changes) -> dict:
    doc = {
        "uuid": SYS, "name": "Aalborg ESDH", "municipality": 851,
        "supplier": {"name": "Systemleverandøren A/S", "cvr": "10150817"},
        "service_agreements": [AGREEMENT],
        "contact": {"name": "Jens Hansen", "email": "jens@leverandor.example",
                    "phone": "+45 12 34 56 78"},
        "delivery": {"mode": "push", "connection": "sftp_aalborg", "host": "sftp.example",
                     "port": 2222, "folder": "/cpr/in", "host_key": HOST_KEY},
        "service_windows": ["Saturdays 22:00–06:00", "first Tuesday of the month 18:00-23:00"],
    }
    doc.update(changes)
    return doc


@pytest.fixture
def cli(db_url, capsys, tmp_path):
    def run(*args: str) -> tuple[int, str, str]:
        code = main([*args[:2], "--db", db_url, *args[2:]])
        out = capsys.readouterr()
        return code, out.out, out.err
    run("db", "upgrade")
    return run


def _write(tmp_path, doc: dict, name: str = "reg.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return str(path)


def _audit_rows(engine) -> list:
    return [a for a in SubscriptionService(engine, caller="t").audit_trail(SYS)
            if a.operation == "Register"]


def test_register_twice_changes_nothing_and_show_round_trips(cli, tmp_path, test_ca,  # noqa: F811
                                                             engine):
    cert = test_ca.client("Aalborg ESDH")
    path = _write(tmp_path, document(certificates=[cert.pem.decode()]))
    code, out, err = cli("subscriber", "register", path)
    assert (code, out.split()[:2]) == (0, ["CREATED", SYS]) and "cprsub:" not in err
    assert cli("subscriber", "register", path)[1] == f"UNCHANGED {SYS}\n"
    assert len(_audit_rows(engine)) == 1

    code, shown, _ = cli("subscriber", "show", SYS, "--format", "yaml")
    back = yaml.safe_load(shown)
    assert back["municipality"] == "0851" and back["supplier"]["cvr"] == "10150817"
    assert back["service_windows"] == ["Saturdays 22:00-06:00",
                                       "first Tuesday of the month 18:00-23:00"]
    assert back["certificates"][0]["sha256"] == cert.sha256
    assert back["delivery"]["host_key"] == HOST_KEY.rsplit(" ", 1)[0]
    # What show prints, registered again, changes nothing.
    assert cli("subscriber", "register", _write(tmp_path, back, "back.yaml"))[1] \
        == f"UNCHANGED {SYS}\n"
    assert len(_audit_rows(engine)) == 1


def test_every_change_is_audited_and_dropped_items_are_unregistered(cli, tmp_path, engine):
    cli("subscriber", "register", _write(tmp_path, document()))
    changed = document(contact={"name": "Ida Holm", "email": "ida@leverandor.example",
                                "phone": "98765432"}, service_agreements=[])
    code, out, _ = cli("subscriber", "register", _write(tmp_path, changed))
    assert code == 0 and out.startswith(f"UPDATED {SYS}")
    assert f"removed service agreement {AGREEMENT}" in out and "set registration" in out
    rows = _audit_rows(engine)
    assert [r.result for r in rows] == ["CREATED", "UPDATED"]
    assert AGREEMENT in rows[1].arguments
    info = SubscriptionService(engine, caller="t").subscriber(SYS)
    assert info.service_agreements == () and info.serves == "0851 Aalborg"


def test_pickup_registration_keeps_keys(cli, tmp_path):
    key = ed25519_line("it@aalborg")
    doc = document(delivery={"mode": "pickup", "account": "aalborg-esdh", "ssh_keys": [key]})
    code, _, err = cli("subscriber", "register", _write(tmp_path, doc))
    assert code == 0 and "cprsub:" not in err
    back = yaml.safe_load(cli("subscriber", "show", SYS)[1])
    assert back["delivery"] == {"mode": "pickup", "account": "aalborg-esdh", "ssh_keys": [key]}
    assert cli("subscriber", "register", _write(tmp_path, back))[1] == f"UNCHANGED {SYS}\n"


@pytest.mark.parametrize(("change", "field", "rule"), [
    ({"uuid": "not-a-uuid"}, "uuid", "uuid"),
    ({"name": ""}, "name", "required"),
    ({"municipality": "12345"}, "municipality", "municipality code"),
    ({"municipality": "999"}, "municipality", "municipality code"),
    ({"supplier": {"name": "X", "cvr": "1015081"}}, "supplier.cvr", "cvr"),
    ({"supplier": {"name": "X", "cvr": "10150818"}}, "supplier.cvr", "cvr"),
    ({"contact": {"name": "J", "email": "jens.example", "phone": "12345678"}},
     "contact.email", "e-mail"),
    ({"contact": {"name": "J", "email": "j@x.example", "phone": "12"}}, "contact.phone",
     "phone"),
    ({"service_agreements": ["nope"]}, "service_agreements[0]", "service agreement"),
    ({"service_windows": ["Funday 22:00-06:00"]}, "service_windows", "service window"),
    ({"service_windows": ["Saturdays 25:00-06:00"]}, "service_windows", "service window"),
    ({"certificates": ["-----BEGIN CERTIFICATE-----\nxx\n-----END CERTIFICATE-----"]},
     "certificates[0]", "certificate"),
    ({"delivery": {"mode": "ftp"}}, "delivery.mode", "delivery mode"),
    ({"delivery": {"mode": "pickup", "ssh_keys": [dsa_line()]}}, "delivery.ssh_keys[0]",
     "ssh key"),
    ({"delivery": {"mode": "push", "connection": "c", "host": "h", "host_key": "ssh-rsa x"}},
     "delivery.host_key", "host key"),
    ({"delivery": {"mode": "push", "connection": "c", "host": "h", "host_key": HOST_KEY,
                   "port": 70000}}, "delivery.port", "port"),
    ({"delivery": {"mode": "push", "connection": "c", "host": "h", "host_key": HOST_KEY,
                   "login": "cpr"}}, "delivery.password_env", "credentials"),
    ({"delivery": {"mode": "push", "connection": "c", "host": "h", "host_key": HOST_KEY,
                   "password": "secret"}}, "delivery", "shape"),
    ({"extra": 1}, "document", "shape"),
])
def test_each_rule_names_its_field(change, field, rule):
    with pytest.raises(InvalidRegistration) as caught:
        parse_document(document(**change))
    assert (caught.value.field, caught.value.rule) == (field, rule)
    assert "secret" not in str(caught.value)


def test_cvr_modulus_11():
    assert valid_cvr("10150817")      # 1*2+0*7+1*6+5*5+0*4+8*3+1*2+7*1 = 66 = 6*11
    assert not valid_cvr("10150818")
    assert not valid_cvr("01501817")  # a CVR number never starts with 0


def test_cli_error_names_field_and_leaves_no_subscriber(cli, tmp_path):
    bad = document(contact={"name": "J", "email": "nope", "phone": "12345678"})
    code, out, err = cli("subscriber", "register", _write(tmp_path, bad))
    assert code == 1 and out == "" and "contact.email" in err
    assert cli("subscriber", "show", SYS)[0] == 1


def test_agreement_of_another_system_refuses_the_whole_document(cli, tmp_path, engine):
    cli("subscriber", "register", _write(tmp_path, document(uuid=OTHER)))
    code, _, err = cli("subscriber", "register", _write(tmp_path, document()))
    assert code == 1 and OTHER in err
    assert cli("subscriber", "show", SYS)[0] == 1
    assert [r.result[:8] for r in _audit_rows(engine)] == ["REFUSED:"]


def test_connection_created_from_environment_password_never_printed(
        cli, tmp_path, airflow_db, monkeypatch):
    from airflow.models.connection import Connection

    monkeypatch.setenv("AALBORG_SFTP_PASSWORD", "s3cret-pw")
    conn_id = f"sftp_reg_{uuid.uuid4().hex[:8]}"  # Airflow's database is per session
    delivery = {**document()["delivery"], "connection": conn_id, "login": "cpr",
                "password_env": "AALBORG_SFTP_PASSWORD"}
    path = _write(tmp_path, document(delivery=delivery))
    code, out, _ = cli("subscriber", "register", path)
    assert code == 0 and f"created Airflow connection {conn_id}" in out
    conn = Connection.get_connection_from_secrets(conn_id)
    assert (conn.host, conn.port, conn.login, conn.password) == ("sftp.example", 2222, "cpr",
                                                                 "s3cret-pw")
    assert conn.extra_dejson["host_key"] == HOST_KEY.rsplit(" ", 1)[0]
    assert cli("subscriber", "register", path)[1] == f"UNCHANGED {SYS}\n"
    monkeypatch.setenv("AALBORG_SFTP_PASSWORD", "rotated-pw")
    assert "updated Airflow connection" in cli("subscriber", "register", path)[1]
    shown = cli("subscriber", "show", SYS, "--format", "json")[1]
    assert "pw" not in shown and "password" not in shown
    assert json.loads(shown)["delivery"]["connection"] == conn_id


def test_admin_api_takes_the_same_document(engine):
    from fastapi.testclient import TestClient

    from cpr_abonnement.api.app import create_app
    from cpr_abonnement.subscriptions.credentials import Role, issue

    token = issue(engine, role=Role.ADMIN, label="t")
    client = TestClient(create_app(lambda: engine))
    auth = {"Authorization": f"Bearer {token}"}
    first = client.post("/v1/admin/registrations", json=document(), headers=auth)
    assert first.status_code == 200 and first.json()["result"] == "CREATED"
    again = client.post("/v1/admin/registrations", json=first.json()["document"],
                        headers=auth)
    assert again.json()["result"] == "UNCHANGED"
    bad = client.post("/v1/admin/registrations",
                      json=document(supplier={"name": "X", "cvr": "10150818"}), headers=auth)
    assert bad.status_code == 422
    assert (bad.json()["field"], bad.json()["rule"]) == ("supplier.cvr", "cvr")


def test_pickup_account_may_not_be_a_system_or_foreign_unix_account(foreign_account, engine):
    """Issue 21, item 7, in the registration document (file and REST alike)."""
    from fastapi.testclient import TestClient

    from cpr_abonnement.api.app import create_app
    from cpr_abonnement.subscriptions.credentials import Role, issue

    for name in ("root", "sys", "sshd", foreign_account):
        with pytest.raises(InvalidRegistration) as caught:
            parse_document(document(delivery={"mode": "pickup", "account": name}))
        assert (caught.value.field, caught.value.rule) == ("delivery.account",
                                                           "pickup account")
        assert f"pick-up account '{name}' is" in str(caught.value)
    token = issue(engine, role=Role.ADMIN, label="t")
    bad = TestClient(create_app(lambda: engine)).post(
        "/v1/admin/registrations", headers={"Authorization": f"Bearer {token}"},
        json=document(delivery={"mode": "pickup", "account": "daemon"}))
    assert bad.status_code == 422
    assert (bad.json()["field"], bad.json()["rule"]) == ("delivery.account", "pickup account")
