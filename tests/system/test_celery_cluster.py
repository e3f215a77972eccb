"""The production shape without Docker: PostgreSQL, Redis and Airflow with CeleryExecutor,
every component its own process (api-server, scheduler, dag-processor, triggerer and two
Celery workers) run as the compose services run (uid 50000, group 0) after the same
deploy/init.sh airflow-init runs, the daily DAG triggered through the REST API,
deliveries checked on the SFTP server, and tasks seen on both workers. Every process
started is stopped."""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pendulum
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text

from cpr_abonnement.dev.devsftp import EmbeddedSftpServer
from cpr_abonnement.extract.generator import generate
from cpr_abonnement.store.db import make_engine, upgrade
from cpr_abonnement.subscriptions.service import SubscriptionService
from cpr_timetable import CprDeliveryTimetable
from support.servers import free_port
from support.unprivileged import AIRFLOW_UID, as_airflow_user, can_switch

ROOT = Path(__file__).resolve().parents[2]
INIT = ROOT / "deploy" / "init.sh"
BIN = Path(sys.executable).parent
DAG_ID = "cpr_abonnement_daily"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not can_switch(), reason="runs Airflow as the compose services' "
                       "uid 50000: needs root and setpriv"),
]
SUBSCRIBERS = [f"{i:08x}-0000-4000-8000-{i:012x}" for i in range(1, 7)]


class Cluster:
    """Processes in their own process groups, logs in files, stopped in reverse order."""

    def __init__(self, logs: Path, env: dict[str, str],
                 as_service: Callable[[list[str]], list[str]]) -> None:
        self.logs, self.env, self.as_service = logs, env, as_service
        self.procs: dict[str, subprocess.Popen] = {}

    def spawn(self, name: str, cmd: list[str], *, service: bool = True, **extra_env: str
              ) -> None:
        """``cmd`` as the compose services run (``as_service``), or as root (Redis)."""
        log = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115 (closed with the process)
        self.procs[name] = subprocess.Popen(
            self.as_service(cmd) if service else cmd, env={**self.env, **extra_env},
            stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True, cwd=self.logs)

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def wait(self, what: str, check, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, p in self.procs.items():
                if p.poll() is not None:
                    tail = self.log(name)[-3000:]
                    raise AssertionError(f"{name} exited ({p.returncode}):\n{tail}")
            try:
                if check():
                    return
            except (httpx.HTTPError, OSError):
                pass
            time.sleep(0.5)
        raise AssertionError(f"timed out waiting for {what}")

    def stop(self) -> None:
        for p in reversed(list(self.procs.values())):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(10)


@pytest.fixture
def databases(postgres_url):
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for name in ("cluster_airflow", "cluster_filters"):
            conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
            conn.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    base = postgres_url.rsplit("/", 1)[0]
    return f"{base}/cluster_airflow", f"{base}/cluster_filters"


@pytest.fixture
def layout():
    """The folders compose mounts, below a folder the services' uid can traverse (not
    pytest's 0700 tmp_path): the image's AIRFLOW_HOME belongs to that uid; the rest is
    left to deploy/init.sh as in compose."""
    base = Path(tempfile.mkdtemp(prefix="cprsub-cluster-"))
    base.chmod(0o755)
    home = base / "airflow"
    home.mkdir()
    os.chown(home, AIRFLOW_UID, 0)
    for d in ("sftp", "logs"):  # the subscribers' SFTP server's and the processes' output
        (base / d).mkdir()
    yield base
    shutil.rmtree(base, ignore_errors=True)


def test_celery_cluster_runs_the_daily_dag_on_two_workers(layout, databases):
    """Issue 22 item 1, natively: deploy/init.sh as airflow-init runs it (as root), then
    every Airflow process as the compose services run, uid 50000 and group 0."""
    airflow_db, filters_db = databases
    day = CprDeliveryTimetable().latest_due(pendulum.now("UTC"))
    data = layout / "cpr"
    engine = make_engine(filters_db)
    upgrade(engine)
    svc = SubscriptionService(engine, caller="test", clock=lambda: dt.datetime(2026, 1, 1))
    for i, uuid in enumerate(SUBSCRIBERS):
        svc.add_subscriber(uuid, f"IT system {i}", sftp_conn_id="sftp_cluster",
                           remote_dir=f"/{uuid}")
        svc.add_age_range(uuid, 10 * i, 10 * i + 15)
    engine.dispose()

    redis_port, api_port = free_port(), free_port()
    with EmbeddedSftpServer(layout / "sftp", {"cpr": "pw"}) as sftp:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "CPRSUB"))}
        db = airflow_db.replace("postgresql+psycopg://", "")
        env.update({
            "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
            # This checkout's package, not whichever one the venv installed editable.
            "PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "support"),
                                           str(ROOT / "include")]),
            "AIRFLOW_HOME": str(layout / "airflow"),
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "worker_hostname.worker_hostname",
            "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple."
                                           "simple_auth_manager.SimpleAuthManager",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg://{db}",
            # psycopg 3 serves the async engine too (asyncpg is not installed)
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": f"postgresql+psycopg://{db}",
            "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{redis_port}/0",
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql+psycopg://{db}",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(48),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(48),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
            "AIRFLOW__SCHEDULER__DAG_DIR_LIST_INTERVAL": "5",
            "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
            "AIRFLOW_CONN_SFTP_CLUSTER": sftp.airflow_connection("cpr"),
            "CPRSUB_DB_URL": filters_db,
            "CPRSUB_INBOUND": f"file://{data / 'inbound'}",
            "CPRSUB_STAGING": f"file://{data / 'staging'}",
            "CPRSUB_QUARANTINE": f"file://{data / 'quarantine'}",
            # The extract is complete before the run is triggered; the settle time is
            # tested in tests/inbound/test_sensing.py and tests/system/test_sensing_dag.py.
            "CPRSUB_SETTLE_SECONDS": "0",
            "GX_ANALYTICS_ENABLED": "False",
        })
        init = subprocess.run(["bash", str(INIT)], capture_output=True, text=True, env={
            **env, "AIRFLOW_UID": str(AIRFLOW_UID), "CPRSUB_DATA_DIR": str(data),
            "CPRSUB_AIRFLOW_LOGS": str(layout / "airflow" / "logs"),
            "CPRSUB_UI_TLS_DIR": str(layout / "ui-tls"), "AIRFLOW_CONN_CPR_FILTER_DB":
            filters_db})
        assert init.returncode == 0, init.stderr[-3000:]
        assert stat.S_IMODE((layout / "ui-tls" / "ui.key").stat().st_mode) == 0o600
        with open(data / "inbound" / f"D{day:%y%m%d}.L431101", "wb") as fh:  # CPR's drop
            generate(fh, production_date=day, persons=600, seed=21)
        cluster = Cluster(layout / "logs", env, as_airflow_user)
        try:
            cluster.spawn("redis", ["redis-server", "--port", str(redis_port), "--bind",
                                    "127.0.0.1", "--save", "", "--appendonly", "no"],
                          service=False)
            airflow = str(BIN / "airflow")
            cluster.spawn("api-server", [airflow, "api-server", "--host", "127.0.0.1",
                                         "--port", str(api_port), "--workers", "1"])
            cluster.spawn("scheduler", [airflow, "scheduler"])
            cluster.spawn("dag-processor", [airflow, "dag-processor"])
            cluster.spawn("triggerer", [airflow, "triggerer", "--skip-serve-logs"])
            for w in ("w1", "w2"):
                cluster.spawn(f"worker-{w}", [airflow, "celery", "worker", "--concurrency", "1",
                                              "--celery-hostname", f"{w}@%h",
                                              "--skip-serve-logs"], CPRSUB_WORKER_NAME=w)
            api = f"http://127.0.0.1:{api_port}"
            cluster.wait("workers", lambda: all(
                re.search(rf"{w}@\S+ ready\.", cluster.log(f"worker-{w}")) for w in ("w1", "w2")))
            cluster.wait("api-server", lambda: httpx.get(f"{api}/api/v2/version").status_code
                         == 200)
            token = httpx.get(f"{api}/auth/token").json()["access_token"]
            client = httpx.Client(base_url=f"{api}/api/v2", timeout=30,
                                  headers={"Authorization": f"Bearer {token}"})
            cluster.wait("the DAG parsed", lambda: client.get(f"/dags/{DAG_ID}").status_code == 200)
            # Trigger the due delivery day through the REST API, then unpause: the scheduler
            # finds the run it would have created and runs it (no second run).
            r = client.post(f"/dags/{DAG_ID}/dagRuns",
                            json={"logical_date": f"{day.isoformat()}T00:00:00Z"})
            assert r.status_code == 200, r.text
            run_id = r.json()["dag_run_id"]
            assert client.patch(f"/dags/{DAG_ID}", json={"is_paused": False}).status_code == 200
            cluster.wait("the run to finish", lambda: client.get(
                f"/dags/{DAG_ID}/dagRuns/{run_id}").json()["state"] in ("success", "failed"),
                timeout=300)
            run = client.get(f"/dags/{DAG_ID}/dagRuns/{run_id}").json()
            state = run["state"]
            tis = client.get(f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances",
                             params={"limit": 100}).json()["task_instances"]
            summary = {(t["task_id"], t["map_index"]): (t["state"], t["hostname"]) for t in tis}
            assert state == "success", summary
            assert {t["hostname"] for t in tis} == {"w1", "w2"}, summary
            assert sum(1 for t in tis if t["task_id"] == "deliver") == len(SUBSCRIBERS)
            assert "6 of 6 subscriber(s) delivered" in (run["note"] or "")  # the run note
            for uuid in SUBSCRIBERS:
                got = sorted(p.name for p in (layout / "sftp" / uuid).iterdir())
                assert got == [f"D{day:%y%m%d}.L431101", f"D{day:%y%m%d}.L431101.metadata"]
            # Written by the services' uid, in the folders init.sh handed it.
            written = [*(data / "staging").rglob("*"),
                       *(layout / "airflow" / "logs").rglob("*.log")]
            assert written and {p.stat().st_uid for p in written} == {AIRFLOW_UID}
        finally:
            cluster.stop()
    assert all(p.poll() is not None for p in cluster.procs.values())
