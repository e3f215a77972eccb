"""``cprsub subscriber register / show`` and the admin API's registration: the NOT0314
form as one document, each rule, idempotency, secrets never echoed."""

from __future__ import annotations

import json
import uuid

import pytest
import yaml

from cpr_abonnement.cli import main
from cpr_abonnement.errors import InvalidRegistration
from cpr_abonnement.onboarding.registration import parse_document, valid_cvr
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

    monkeypatch.setenv("CPRSUB_SFTP_PASSWORD_AALBORG", "s3cret-pw")
    conn_id = f"sftp_reg_{uuid.uuid4().hex[:8]}"  # Airflow's database is per session
    delivery = {**document()["delivery"], "connection": conn_id, "login": "cpr",
                "password_env": "CPRSUB_SFTP_PASSWORD_AALBORG"}
    path = _write(tmp_path, document(delivery=delivery))
    code, out, _ = cli("subscriber", "register", path)
    assert code == 0 and f"created Airflow connection {conn_id}" in out
    conn = Connection.get_connection_from_secrets(conn_id)
    assert (conn.host, conn.port, conn.login, conn.password) == ("sftp.example", 2222, "cpr",
                                                                 "s3cret-pw")
    assert conn.extra_dejson["host_key"] == HOST_KEY.rsplit(" ", 1)[0]
    assert conn.extra_dejson["compress"] is False  # issue 26: zlib cost more than it saved
    assert cli("subscriber", "register", path)[1] == f"UNCHANGED {SYS}\n"
    _set_extra(conn_id, compress=True)  # an operator's choice for a slow link
    monkeypatch.setenv("CPRSUB_SFTP_PASSWORD_AALBORG", "rotated-pw")
    assert "updated Airflow connection" in cli("subscriber", "register", path)[1]
    assert Connection.get_connection_from_secrets(conn_id).extra_dejson["compress"] is True
    shown = cli("subscriber", "show", SYS, "--format", "json")[1]
    # The values, not "pw": a random host key's base64 may hold those two letters.
    assert "s3cret-pw" not in shown and "rotated-pw" not in shown and "password" not in shown
    assert json.loads(shown)["delivery"]["connection"] == conn_id


def _set_extra(conn_id: str, **changes) -> None:
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        conn = session.scalar(select(Connection).where(Connection.conn_id == conn_id))
        conn.set_extra(json.dumps({**conn.extra_dejson, **changes}))


def test_admin_api_takes_the_same_document(engine):
    from fastapi.testclient import TestClient

    from cpr_abonnement.api.app import create_app
    from cpr_abonnement.identities.credentials import Role, issue

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


# -- issue 21: documents that must be refused, through the CLI and the admin API -------
#: These run on SQLite only: what they check is decided before or apart from the database.
SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
PASSWORD_VAR = "CPRSUB_SFTP_PASSWORD_AALBORG"


@pytest.fixture
def api(engine):
    """``post(document)`` (or raw ``content``) to ``/v1/admin/registrations`` of the real
    app as an administrator; the response."""
    from fastapi.testclient import TestClient

    from cpr_abonnement.api.app import create_app
    from cpr_abonnement.identities.credentials import Role, issue

    auth = {"Authorization": f"Bearer {issue(engine, role=Role.ADMIN, label='t')}"}
    client = TestClient(create_app(lambda: engine))

    def post(doc: dict | None = None, *, content: bytes | None = None):
        if content is not None:
            return client.post("/v1/admin/registrations", content=content,
                               headers={**auth, "Content-Type": "application/json"})
        return client.post("/v1/admin/registrations", json=doc, headers=auth)
    return post


def _push(connection: str = "sftp_aalborg", **changes) -> dict:
    return {**document()["delivery"], "connection": connection, **changes}


@pytest.mark.parametrize("name", ["AIRFLOW__CORE__FERNET_KEY", "CPRSUB_FILTER_DB_PASSWORD",
                                  "CPRSUB_SFTP_PASSWORD_", "cprsub_sftp_password_x"])
def test_password_env_outside_the_fixed_prefix_is_refused(name):
    doc = document(delivery=_push(login="cpr", password_env=name))
    with pytest.raises(InvalidRegistration, match="CPRSUB_SFTP_PASSWORD_") as caught:
        parse_document(doc)
    assert (caught.value.field, caught.value.rule) == ("delivery.password_env", "credentials")
    parse_document(document(delivery=_push(login="cpr", password_env=PASSWORD_VAR)))


@SQLITE
def test_cli_never_sends_another_variable_as_the_sftp_password(cli, tmp_path, airflow_db,
                                                               monkeypatch):
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session
    from sqlalchemy import select

    monkeypatch.setenv("CPRSUB_FILTER_DB_PASSWORD", "db-secret-pw")
    conn_id = f"sftp_reg_{uuid.uuid4().hex[:8]}"
    doc = document(delivery=_push(conn_id, login="cpr",
                                  password_env="CPRSUB_FILTER_DB_PASSWORD"))
    code, out, err = cli("subscriber", "register", _write(tmp_path, doc))
    assert code == 1 and out == "" and "delivery.password_env" in err
    assert "CPRSUB_SFTP_PASSWORD_" in err and "db-secret-pw" not in err
    with create_session() as session:
        assert session.scalar(select(Connection).where(Connection.conn_id == conn_id)) is None
    assert cli("subscriber", "show", SYS)[0] == 1


@SQLITE
def test_api_names_the_password_env_rule(api):
    bad = api(document(delivery=_push(login="cpr", password_env="AIRFLOW__CORE__FERNET_KEY")))
    assert bad.status_code == 422
    assert (bad.json()["field"], bad.json()["rule"]) == ("delivery.password_env", "credentials")
    assert "CPRSUB_SFTP_PASSWORD_" in bad.json()["detail"]


@SQLITE
def test_cli_refuses_the_connection_of_another_system(cli, tmp_path, airflow_db, engine,
                                                      monkeypatch):
    from airflow.models.connection import Connection

    monkeypatch.setenv(PASSWORD_VAR, "aalborg-pw")
    conn_id = f"sftp_reg_{uuid.uuid4().hex[:8]}"
    theirs = _write(tmp_path, document(uuid=OTHER, service_agreements=[], delivery=_push(
        conn_id, login="cpr", password_env=PASSWORD_VAR)), "other.yaml")
    assert cli("subscriber", "register", theirs)[0] == 0
    monkeypatch.setenv(PASSWORD_VAR, "taker-pw")
    taker = document(delivery=_push(conn_id, host="sftp.taker.example", login="cpr",
                                    password_env=PASSWORD_VAR))
    code, out, err = cli("subscriber", "register", _write(tmp_path, taker))
    assert code == 1 and out == "" and "delivery.connection" in err and OTHER in err
    conn = Connection.get_connection_from_secrets(conn_id)  # the other system's, untouched
    assert (conn.host, conn.password) == ("sftp.example", "aalborg-pw")
    assert cli("subscriber", "show", SYS)[0] == 1
    assert [r.result[:8] for r in _audit_rows(engine)] == ["REFUSED:"]
    # Its own connection, registered again, is the system's to keep.
    monkeypatch.setenv(PASSWORD_VAR, "aalborg-pw")
    assert cli("subscriber", "register", theirs)[1] == f"UNCHANGED {OTHER}\n"


@SQLITE
def test_api_refuses_the_connection_of_another_system(api):
    theirs = document(uuid=OTHER, service_agreements=[], delivery=_push("sftp_shared"))
    assert api(theirs).json()["result"] == "CREATED"
    taken = api(document(delivery=_push("sftp_shared")))
    assert taken.status_code == 409 and OTHER in taken.json()["detail"]
    assert taken.json()["field"] == "delivery.connection"
    assert api(theirs).json()["result"] == "UNCHANGED"


@SQLITE
@pytest.mark.parametrize(("data", "offset"), [
    (f"uuid: {SYS}\nname: Ålborg ESDH\n".encode("latin-1"), 49),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", 0),
    ("name: Århus\n\x00\x01\x02".encode(), 13),  # UTF-8, but not text
], ids=["latin-1", "binary", "control characters"])
def test_cli_refuses_a_document_that_is_not_utf8(cli, tmp_path, data, offset):
    path = tmp_path / "reg.yaml"
    path.write_bytes(data)
    code, out, err = cli("subscriber", "register", str(path))
    assert code == 1 and out == "" and err.count("\n") == 1 and err.startswith("cprsub: ")
    assert "UTF-8" in err and f"byte {offset} " in err


@SQLITE
def test_a_document_nested_thousands_deep_is_refused_not_a_traceback(cli, tmp_path, api):
    path = tmp_path / "deep.yaml"
    path.write_text("[" * 5000 + "]" * 5000)
    code, out, err = cli("subscriber", "register", str(path))
    # The last line: Airflow's logging, set up by an earlier test, may write above it.
    assert code == 1 and out == "" and "RecursionError" not in err
    assert err.splitlines()[-1] == ("cprsub: document: nested too deeply to be a "
                                    "registration document")
    deep = api(content=("[" * 100_000 + "]" * 100_000).encode())
    assert deep.status_code == 422 and "nested too deeply" in deep.json()["detail"]


@SQLITE
def test_api_refuses_a_body_that_is_not_utf8(api):
    body = json.dumps(document(name="Ålborg ESDH", service_windows=[]), ensure_ascii=False)
    bad = api(content=body.encode("latin-1"))
    assert bad.status_code == 422 and bad.json()["field"] == "document"
    assert "UTF-8" in bad.json()["detail"] and f"byte {body.index('Å')}" in bad.json()["detail"]


def _pickup(account: str = "aalborg-esdh") -> dict:
    return {"mode": "pickup", "account": account, "ssh_keys": []}


@SQLITE
def test_cli_refuses_an_account_another_system_has(cli, tmp_path, engine):
    theirs = document(uuid=OTHER, service_agreements=[], delivery=_pickup())
    assert cli("subscriber", "register", _write(tmp_path, theirs, "other.yaml"))[0] == 0
    code, out, err = cli("subscriber", "register",
                         _write(tmp_path, document(delivery=_pickup())))
    assert code == 1 and out == "" and err.count("\n") == 1
    assert "delivery.account" in err and OTHER in err and "aalborg-esdh" in err
    assert "UNIQUE" not in err and "SQL" not in err
    assert cli("subscriber", "show", SYS)[0] == 1
    assert [r.result[:8] for r in _audit_rows(engine)] == ["REFUSED:"]


@SQLITE
@pytest.mark.parametrize("race", [False, True], ids=["checked", "race"])
def test_api_refuses_an_account_another_system_has(api, engine, monkeypatch, race):
    """``race``: the other system takes the account between the check and the write
    (the check misses it once); the unique index refuses the write, and the answer is
    the same."""
    from cpr_abonnement.subscriptions import administration

    assert api(document(uuid=OTHER, service_agreements=[], delivery=_pickup())).status_code \
        == 200
    if race:
        real, missed = administration._account_owner, []
        monkeypatch.setattr(administration, "_account_owner", lambda *a: (
            real(*a) if missed else missed.append(a)))
    taken = api(document(delivery=_pickup()))
    assert taken.status_code == 409 and OTHER in taken.json()["detail"]
    assert (taken.json()["field"], taken.json()["rule"]) \
        == ("delivery.account", "registered to another system")
    assert "UNIQUE" not in taken.text and "SQL" not in taken.text
    assert [r.result[:8] for r in _audit_rows(engine)] == ["REFUSED:"]
    assert not race or missed


def _windows(count: int) -> list[str]:
    """``count`` different valid windows."""
    return [f"daily 00:{i:02d}-23:59" if i < 60 else f"daily 01:{i - 60:02d}-23:59"
            for i in range(count)]


def test_service_windows_are_capped_at_50():
    assert len(parse_document(document(service_windows=_windows(50))).service_windows) == 50
    for windows in (_windows(51), ["not a window"] * 200_000):  # counted before parsed
        with pytest.raises(InvalidRegistration, match="at most 50") as caught:
            parse_document(document(service_windows=windows))
        assert (caught.value.field, caught.value.rule) == ("service_windows", "limit")


@SQLITE
def test_cli_and_api_refuse_more_than_50_service_windows(cli, api, tmp_path):
    doc = document(service_windows=_windows(51))
    code, out, err = cli("subscriber", "register", _write(tmp_path, doc))
    assert code == 1 and out == "" and "service_windows" in err and "at most 50" in err
    bad = api(doc)
    assert bad.status_code == 422
    assert (bad.json()["field"], bad.json()["rule"]) == ("service_windows", "limit")
    assert cli("subscriber", "show", SYS)[0] == 1


#: Each case: the field left out of a document, the text appended instead, the key given
#: twice, and the line of its second use counted from the end of the document.
DUPLICATES = {
    "top level": (None, f"uuid: {OTHER}\n", "uuid", 1),
    "nested": ("contact", "contact:\n  name: J\n  email: a@x.example\n  phone: '12345678'\n"
               "  email: b@x.example\n", "email", 5),
    "in a list": ("certificates", "certificates:\n- sha256: " + "a" * 64 + "\n  sha256: "
                  + "b" * 64 + "\n", "sha256", 3),
}


@SQLITE
@pytest.mark.parametrize("case", DUPLICATES, ids=list(DUPLICATES))
def test_cli_refuses_duplicate_keys_naming_key_and_line(cli, tmp_path, case):
    left_out, tail, key, offset = DUPLICATES[case]
    base = document()
    base.pop(left_out, None)
    head = yaml.safe_dump(base, allow_unicode=True, sort_keys=False)
    path = tmp_path / "reg.yaml"
    path.write_text(head + tail, encoding="utf-8")
    code, out, err = cli("subscriber", "register", str(path))
    line = head.count("\n") + offset
    assert code == 1 and out == "" and err.count("\n") == 1
    assert f"'{key}'" in err and f"line {line}" in err and "duplicate" in err
    assert cli("subscriber", "show", SYS)[0] == 1 and cli("subscriber", "show", OTHER)[0] == 1


@SQLITE
def test_api_refuses_duplicate_keys(api):
    body = json.dumps(document())
    for duplicated in (body.replace('"name"', f'"uuid": "{OTHER}", "name"', 1),
                       body.replace('"phone"', '"email": "b@x.example", "phone"', 1)):
        bad = api(content=duplicated.encode())
        assert bad.status_code == 422 and bad.json()["rule"] == "duplicate key"
        assert "duplicate key" in bad.json()["detail"]
    assert api(content=body.encode()).json()["result"] == "CREATED"


def test_pickup_account_may_not_be_a_system_or_foreign_unix_account(foreign_account, engine):
    """Issue 21, item 7, in the registration document (file and REST alike)."""
    from fastapi.testclient import TestClient

    from cpr_abonnement.api.app import create_app
    from cpr_abonnement.identities.credentials import Role, issue

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


LOOKUPS = "22222222-3333-4444-8555-666666666666"


def test_agreements_per_service_register_show_and_move(cli, tmp_path, engine):
    """A plain UUID is an SF6002 agreement; ``{uuid, service}`` names the service; show
    prints the same shapes (so registering it again changes nothing); changing an
    agreement's service in the document re-registers it for the new service."""
    doc = document(service_agreements=[AGREEMENT, {"uuid": LOOKUPS.upper(),
                                                   "service": "sf1520"}])
    assert cli("subscriber", "register", _write(tmp_path, doc))[0] == 0
    info = SubscriptionService(engine, caller="t").subscriber(SYS)
    assert info.agreement_services == ((AGREEMENT, "sf6002"), (LOOKUPS, "sf1520"))
    back = yaml.safe_load(cli("subscriber", "show", SYS, "--format", "yaml")[1])
    assert back["service_agreements"] == [AGREEMENT, {"uuid": LOOKUPS, "service": "sf1520"}]
    assert cli("subscriber", "register", _write(tmp_path, back, "back.yaml"))[1] \
        == f"UNCHANGED {SYS}\n"
    moved = document(service_agreements=[{"uuid": AGREEMENT, "service": "sf1520"}, LOOKUPS])
    code, out, _ = cli("subscriber", "register", _write(tmp_path, moved, "moved.yaml"))
    assert code == 0 and out.startswith("UPDATED")
    assert SubscriptionService(engine, caller="t").subscriber(SYS).agreement_services == (
        (AGREEMENT, "sf1520"), (LOOKUPS, "sf6002"))


@pytest.mark.parametrize("entry, field", [
    ({"uuid": AGREEMENT, "service": "sf9999"}, "service_agreements[0].service"),
    ({"uuid": "nope", "service": "sf1520"}, "service_agreements[0].uuid"),
    ({"uuid": AGREEMENT, "kind": "sf1520"}, "service_agreements[0]"),
])
def test_a_bad_agreement_entry_names_its_field(entry, field):
    with pytest.raises(InvalidRegistration) as raised:
        parse_document(document(service_agreements=[entry]))
    assert raised.value.field == field


def test_cli_adds_an_agreement_for_a_service(cli, engine):
    cli("subscriber", "add", "--uuid", SYS, "--name", "Aalborg")
    assert cli("subscriber", "add-service-agreement", "--uuid", SYS, "--agreement", LOOKUPS,
               "--service", "sf1520")[1] == "ADDED\n"
    _, out, err = cli("subscriber", "add-service-agreement", "--uuid", SYS,
                      "--agreement", LOOKUPS)
    assert out == "ALREADY_EXISTED\n" and "registered for sf1520" in err
    assert cli("subscriber", "add-service-agreement", "--uuid", SYS, "--agreement",
               AGREEMENT)[1] == "ADDED\n"
    assert f"service agreement {LOOKUPS}  sf1520" in cli("subscriber", "list")[1]
    assert SubscriptionService(engine, caller="t").subscriber(SYS).agreement_services == (
        (AGREEMENT, "sf6002"), (LOOKUPS, "sf1520"))


def test_a_document_sets_the_look_up_scope_and_renders_it_back(engine, tmp_path):
    """``lookup_scope: subscribed`` limits the system's person look-ups; an unknown
    scope is refused naming the field; the rendered document registers to no change."""
    from cpr_abonnement.onboarding.registration import parse_document
    from cpr_abonnement.subscriptions.service import SubscriptionService

    doc = {"uuid": "eeeeeeee-0000-4000-8000-000000000009", "name": "Scoped ESDH",
           "municipality": 851, "supplier": {"name": "Leverandør A/S", "cvr": "10150817"},
           "contact": {"name": "Jens Hansen", "email": "jens@leverandor.example",
                       "phone": "+45 12345678"},
           "delivery": {"mode": "pickup", "account": "scoped-esdh", "ssh_keys": []},
           "lookup_scope": "subscribed"}
    svc = SubscriptionService(engine, caller="test")
    svc.register(parse_document(doc))
    assert svc.subscriber(doc["uuid"]).lookup_scope == "subscribed"
    shown = svc.registration_document(doc["uuid"])
    assert shown["lookup_scope"] == "subscribed"
    assert svc.register(parse_document(shown)).result == "UNCHANGED"
    with pytest.raises(InvalidRegistration, match="lookup_scope") as err:
        parse_document({**doc, "lookup_scope": "everyone"})
    assert err.value.field == "lookup_scope"
