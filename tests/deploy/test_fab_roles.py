"""Issue 14, item 6: a real ``airflow api-server`` under the FAB auth manager (SQLite),
with the roles of ``deploy/airflow_roles.py`` and users from the database: an operator
triggers the daily DAG and administers subscribers, a viewer reads but gets 403 for
triggering, task logs and the subscription API's admin endpoints, anonymous gets 401."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from cpr_abonnement.store.db import make_engine, upgrade
from cpr_abonnement.store.models import AuditEntry
from support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DAG_ID = "cpr_abonnement_daily"
FAB = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"

pytestmark = pytest.mark.slow


def _run(cmd: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{cmd[:3]}: {done.stdout[-2000:]}{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def fab_server(tmp_path_factory):
    """The API server with users ``op`` (operator) and ``view`` (viewer)."""
    tmp = tmp_path_factory.mktemp("fab")
    port = free_port()
    filters = f"sqlite:///{tmp / 'filters.db'}"
    upgrade(make_engine(filters))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "CPRSUB"))}
    env.update({
        "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        "PYTHONPATH": str(ROOT / "include"),
        "AIRFLOW_HOME": str(tmp),
        "AIRFLOW__CORE__AUTH_MANAGER": FAB,
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp / 'airflow.db'}",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(48),
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(48),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "CPRSUB_DB_URL": filters,
        "GX_ANALYTICS_ENABLED": "False",
    })
    # token_urlsafe may start with "-", which argparse takes for an option unless the value
    # is joined to its flag; both passwords start with one so that form stays pinned.
    passwords = {"op": "-" + secrets.token_urlsafe(16), "view": "-" + secrets.token_urlsafe(16)}
    roles_script = ["script", str(ROOT / "deploy" / "airflow_roles.py")]
    steps = [["db", "migrate"], roles_script, roles_script,
             *(["users", "create", "--role", role, "--username", user,
                f"--password={passwords[user]}", "--firstname", user, "--lastname", "Test",
                "--email", f"{user}@example.org"]
               for user, role in (("op", "operator"), ("view", "viewer"))),
             ["dags", "reserialize"]]
    # The commands as `airflow` runs them, in one interpreter (support/airflow_batch.py).
    out = _run([sys.executable, str(ROOT / "tests" / "support" / "airflow_batch.py"),
                json.dumps(steps)], env)
    said = re.split(r"^== step \d+$", out, flags=re.M)[1:]
    assert len(said) == len(steps), out[-3000:]
    assert "role operator:" in said[1] and "role viewer:" in said[1]
    # A second run changes nothing (idempotent).
    assert said[2].count("(0 added, 0 removed)") == 2, said[2][-2000:]
    log = open(tmp / "api-server.log", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen([str(BIN / "airflow"), "api-server", "--host", "127.0.0.1",
                             "--port", str(port), "--workers", "1"], env=env, stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            assert proc.poll() is None, (tmp / "api-server.log").read_text()[-3000:]
            try:
                if httpx.get(f"{url}/api/v2/monitor/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "api-server did not start"
            time.sleep(1)
        tokens = {}
        for user, password in passwords.items():
            r = httpx.post(f"{url}/auth/token", json={"username": user, "password": password},
                           timeout=60)
            assert r.status_code == 201, r.text
            tokens[user] = r.json()["access_token"]
        yield url, tokens, filters
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(30)
        log.close()


def _get(url: str, path: str, token: str | None = None, **kw) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.request(kw.pop("method", "GET"), f"{url}{path}", headers=headers,
                         timeout=60, **kw)


def test_operator_triggers_viewer_is_refused_anonymous_is_401(fab_server):
    url, tokens, _ = fab_server
    trigger = {"method": "POST", "json": {"logical_date": None}}
    path = f"/api/v2/dags/{DAG_ID}/dagRuns"
    assert _get(url, path, None, **trigger).status_code == 401
    assert _get(url, path, tokens["view"], **trigger).status_code == 403
    assert _get(url, f"/api/v2/dags/{DAG_ID}", tokens["view"]).status_code == 200
    r = _get(url, path, tokens["op"], **trigger)
    assert r.status_code == 200, r.text
    run_id = r.json()["dag_run_id"]
    # Clearing is the operator's too, not the viewer's.
    clear = {"method": "POST", "json": {"dry_run": True, "only_failed": False}}
    assert _get(url, f"/api/v2/dags/{DAG_ID}/clearTaskInstances", tokens["view"],
                **clear).status_code == 403
    assert _get(url, f"/api/v2/dags/{DAG_ID}/clearTaskInstances", tokens["op"],
                **clear).status_code == 200
    # Task logs name files and folders: not for viewers.
    logs = f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/wait_for_extract/logs/1"
    assert _get(url, logs, tokens["view"]).status_code == 403
    assert _get(url, logs, tokens["op"]).status_code != 403


def test_subscription_admin_endpoints_honour_the_airflow_roles(fab_server):
    url, tokens, filters = fab_server
    admin = "/cpr-abonnement/v1/admin/subscribers"
    body = {"uuid": "11111111-2222-4333-8444-555555555555", "name": "Roskilde – ESDH",
            "sftpConnId": "sftp_roskilde", "remoteDir": "/roskilde"}
    assert _get(url, admin, None).status_code == 401
    assert _get(url, admin, None, method="POST", json=body).status_code == 401
    assert _get(url, admin, tokens["view"]).status_code == 403
    assert _get(url, admin, tokens["view"], method="POST", json=body).status_code == 403
    r = _get(url, admin, tokens["op"], method="POST", json=body)
    assert r.status_code in (200, 201), r.text
    listed = _get(url, admin, tokens["op"])
    assert listed.status_code == 200 and "Roskilde" in listed.text
    # The audit trail names the Airflow user, and the viewer's refusal.
    from sqlalchemy.orm import Session

    with Session(make_engine(filters)) as s:
        callers = {(a.caller, a.result) for a in s.query(AuditEntry)}
    assert any(c == "api:admin:airflow:op" for c, _ in callers), callers
    assert any(c == "api:viewer:airflow:view" and "DENIED" in (r or "")
               for c, r in callers), callers


def test_the_console_honours_the_airflow_roles(fab_server):
    """The console reads with the DAG's read permission: both roles see it (the viewer
    is the read-only console of item 6), anonymous gets 401."""
    url, tokens, _ = fab_server
    for path in ("/cpr-console/deliveries", "/cpr-console/api/deliveries",
                 "/cpr-console/extracts", "/cpr-console/api/subscribers",
                 "/cpr-console/api/health", "/cpr-console/plots/deliveries.svg"):
        assert _get(url, path, None).status_code == 401, path
        for user in ("view", "op"):
            r = _get(url, path, tokens[user])
            assert r.status_code == 200, (path, user, r.text[:300])
