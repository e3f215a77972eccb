"""``cprsub subscriber check``: readiness against a real SFTP server (success, wrong host
key, refused credentials) and a real SMTP sink for the contact person's notice."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from cpr_abonnement.cli import main
from cpr_abonnement.dev.devsftp import EmbeddedSftpServer
from cpr_abonnement.onboarding.readiness import certificate_check
from cpr_abonnement.store.db import make_engine
from cpr_abonnement.subscriptions.service import SubscriptionService
from support.certs import test_ca  # noqa: F401 (fixture)
from support.smtp import smtp_server
from support.sshkeys import ed25519_line

SYS = "6f1f0b8e-6a55-4f55-9d7b-1c5c1f3a0001"
AGREEMENT = "11111111-2222-4333-8444-555555555555"


@pytest.fixture
def world(sqlite_url, tmp_path, monkeypatch, test_ca):  # noqa: F811
    root = tmp_path / "sftp"
    with EmbeddedSftpServer(root, {"cpr": "pw-ok"}) as sftp, smtp_server() as (inbox, port):
        monkeypatch.setenv("AIRFLOW_CONN_SFTP_READY", sftp.airflow_connection("cpr"))
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_READY", json.dumps({
            "conn_type": "smtp", "host": "127.0.0.1", "port": port,
            "extra": {"disable_ssl": True, "disable_tls": True, "timeout": 10,
                      "retry_limit": 0, "from_email": "cpr@abonnement.example"}}))
        monkeypatch.setenv("CPRSUB_SMTP_CONN_ID", "smtp_ready")
        (root / "in").mkdir()
        doc = {"uuid": SYS, "name": "Aalborg ESDH", "municipality": 851,
               "supplier": {"name": "L A/S", "cvr": "10150817"},
               "service_agreements": [AGREEMENT],
               "contact": {"name": "Jens Hansen", "email": "jens@leverandor.example",
                           "phone": "12345678"},
               "delivery": {"mode": "push", "connection": "sftp_ready", "host": "127.0.0.1",
                            "port": sftp.port, "folder": "/in", "host_key": sftp.host_key_line},
               "certificates": [test_ca.client("Aalborg ESDH", days=365).pem.decode()]}
        path = tmp_path / "reg.yaml"
        path.write_text(yaml.safe_dump(doc))
        assert main(["db", "upgrade", "--db", sqlite_url]) == 0
        assert main(["subscriber", "register", "--db", sqlite_url, str(path)]) == 0
        yield sftp, inbox, root


def check(sqlite_url, capsys) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["subscriber", "check", "--db", sqlite_url, SYS])
    return code, capsys.readouterr().out


def test_ready_system_is_mailed_once_checks_pass(world, sqlite_url, capsys):
    _, inbox, root = world
    code, out = check(sqlite_url, capsys)
    assert code == 1 and "FAIL filters" in out and inbox.messages == []
    assert main(["filters", "add-municipality", "--db", sqlite_url, "--system", SYS,
                 "851"]) == 0
    code, out = check(sqlite_url, capsys)
    assert code == 0, out
    assert "OK   delivery: connection sftp_ready: probe file written and removed" in out
    assert list((root / "in").iterdir()) == []  # the probe is gone
    assert [m["To"] for m in inbox.messages] == ["jens@leverandor.example"]
    assert "is ready" in inbox.messages[0]["Subject"]
    audit = [a.result for a in SubscriptionService(make_engine(sqlite_url), caller="t")
             .audit_trail(SYS) if a.operation == "ReadinessCheck"]
    assert audit == ["NOT READY: filters", "READY: contact jens@leverandor.example mailed"]


def test_wrong_host_key_and_refused_credentials_name_the_fix(world, sqlite_url, capsys,
                                                             monkeypatch):
    sftp, inbox, _ = world
    main(["filters", "add-municipality", "--db", sqlite_url, "--system", SYS, "851"])
    conn = json.loads(sftp.airflow_connection("cpr"))
    monkeypatch.setenv("AIRFLOW_CONN_SFTP_READY", json.dumps(
        {**conn, "extra": {**conn["extra"], "host_key": ed25519_line("other")}}))
    code, out = check(sqlite_url, capsys)
    assert code == 1 and "FAIL delivery" in out and "host key is not the pinned one" in out
    monkeypatch.setenv("AIRFLOW_CONN_SFTP_READY", json.dumps({**conn, "password": "wrong"}))
    code, out = check(sqlite_url, capsys)
    assert code == 1 and "credentials were refused" in out and "wrong" not in out
    assert inbox.messages == []


def test_certificate_must_last_thirty_days():
    import datetime as dt

    now = dt.datetime(2026, 11, 28)
    assert not certificate_check([now + dt.timedelta(days=29)], now).ok
    assert certificate_check([now + dt.timedelta(days=29), now + dt.timedelta(days=31)],
                             now).ok
    assert "no client certificate" in certificate_check([], now).detail


def test_a_connection_stored_by_airflow_connections_add_is_found(airflow_db, world, sqlite_url,
                                                                  capsys, monkeypatch):
    """Issue 22 item 9: the README tells compose users to store push connections in
    Airflow's metadata database; outside a task the check finds them as Airflow's own CLI
    does (it reported "not usable (AirflowNotFoundException)")."""
    conn = json.loads(world[0].airflow_connection("cpr"))
    monkeypatch.delenv("AIRFLOW_CONN_SFTP_READY")
    monkeypatch.delenv("_AIRFLOW_PROCESS_CONTEXT", raising=False)  # restored afterwards
    airflow = [sys.executable, "-m", "airflow", "connections"]
    subprocess.run([*airflow, "add", "sftp_ready", "--conn-json", json.dumps(conn)],
                   check=True, capture_output=True)
    try:
        assert main(["filters", "add-municipality", "--db", sqlite_url, "--system", SYS,
                     "851"]) == 0
        code, out = check(sqlite_url, capsys)
    finally:
        subprocess.run([*airflow, "delete", "sftp_ready"], capture_output=True)
    assert code == 0, out
    assert "OK   delivery: connection sftp_ready: probe file written and removed" in out
