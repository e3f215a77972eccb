"""Fixtures for running the daily DAG: an Airflow metadata DB and a deployment."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from cpr_abonnement.dev.devsftp import EmbeddedSftpServer
from cpr_abonnement.store.db import make_engine, upgrade
from cpr_abonnement.subscriptions.service import SubscriptionService
from support.deployment import SUBSCRIBERS, Deployment
from support.smtp import smtp_server


@pytest.fixture
def filter_db_url(tmp_path) -> str:
    """The deployment's filter database: the embedded SQLite file. A test module that
    runs the DAG on PostgreSQL overrides this fixture."""
    return f"sqlite:///{tmp_path / 'filters.db'}"


@pytest.fixture
def deployment(airflow_db, tmp_path, monkeypatch, filter_db_url):
    root = tmp_path
    dirs = {n: root / n for n in ("inbound", "staging", "quarantine", "sftp")}
    for d in dirs.values():
        d.mkdir()
    db_url = filter_db_url
    engine = make_engine(db_url)
    upgrade(engine)
    svc = SubscriptionService(engine, caller="test",
                              clock=lambda: dt.datetime(2026, 1, 1))
    for uuid, (name, conn, flt) in SUBSCRIBERS.items():
        svc.add_subscriber(uuid, name, sftp_conn_id=conn, remote_dir=f"/{uuid}")
        if flt and flt[0] == "kom":
            svc.add_municipality(uuid, flt[1])
        elif flt:
            svc.add_change_code(uuid, flt[1])
    with EmbeddedSftpServer(dirs["sftp"], {"cpr": "delivery-secret"}) as sftp, \
            smtp_server() as (inbox, smtp_port):
        for _, conn, _ in SUBSCRIBERS.values():
            monkeypatch.setenv(f"AIRFLOW_CONN_{conn.upper()}", sftp.airflow_connection("cpr"))
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps({
            "conn_type": "smtp", "host": "127.0.0.1", "port": smtp_port,
            "extra": {"disable_ssl": True, "disable_tls": True, "timeout": 10,
                      "retry_limit": 0, "from_email": "airflow@cpr-abonnement.example"}}))
        for key, value in {
            "CPRSUB_INBOUND": f"file://{dirs['inbound']}",
            "CPRSUB_STAGING": f"file://{dirs['staging']}",
            "CPRSUB_QUARANTINE": f"file://{dirs['quarantine']}",
            "CPRSUB_DB_URL": db_url,
            "CPRSUB_ALERT_EMAIL": "data-engineers@cpr-abonnement.example",
            "CPRSUB_DELIVERY_RETRIES": "1",
            "CPRSUB_RETRY_DELAY_SECONDS": "0.2",
            "CPRSUB_POKE_SECONDS": "1",
            "CPRSUB_SETTLE_SECONDS": "0",  # files are written before the run
            "CPRSUB_EXTRACT_DEADLINE_HOURS": "0",
        }.items():
            monkeypatch.setenv(key, value)
        yield Deployment(root, dirs["inbound"], dirs["staging"], dirs["quarantine"],
                         dirs["sftp"], engine, inbox, sftp)
