"""Issue 14, item 3: a failed delivery produces a mail a newcomer can open. The demo's
mail sink (a real aiosmtpd in its own process, as the README's terminal runs it) gets
the alert of a real failed delivery through ``dag.test()``; the mail links to the
failed try's log in Airflow's UI and names the runbook step of docs/operating.md."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote, unquote, urlparse

import pytest
from sqlalchemy import select

from cpr_abonnement.dev import mailsink
from cpr_abonnement.tasks.alerts import RUNBOOK
from support.deployment import task_states
from support.servers import free_port

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
DAY = dt.date(2026, 11, 19)


@pytest.fixture
def sink(tmp_path):
    folder, port = tmp_path / "mail", free_port()
    proc = subprocess.Popen([sys.executable, "-m", "cpr_abonnement.dev.mailsink", "--dir",
                             str(folder), "--port", str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        assert "mail sink on 127.0.0.1" in proc.stdout.readline()
        yield folder, port
    finally:
        proc.terminate()
        proc.wait(10)


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_failed_delivery_leaves_an_eml_linking_the_log_and_the_runbook(deployment, sink,
                                                                         monkeypatch):
    folder, port = sink
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", mailsink.airflow_connection(port))
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "http://localhost:8080")
    conn = json.loads(deployment.sftp.airflow_connection("cpr"))
    conn["port"] = _dead_port()
    monkeypatch.setenv("AIRFLOW_CONN_SFTP_ODENSE", json.dumps(conn))
    deployment.extract(DAY)
    run = deployment.run(DAY)
    assert task_states(run)["deliver[Odense Sag]"] == "failed"

    mails = [email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
             for p in sorted(folder.glob("*.eml"))]
    (mail,) = [m for m in mails if "Odense Sag" in m["Subject"]]
    assert mail["Subject"].startswith("[CPR Abonnement] 2026-11-19: delivery to Odense Sag "
                                      "failed: connection sftp_odense: "), mail["Subject"]
    html = mail.get_body(preferencelist=("html",)).get_content()
    plain = mail.get_body(preferencelist=("plain",)).get_content()
    assert mail.get_content_type() == "multipart/alternative"
    assert "Delivery day: 2026-11-19" in plain and "<" not in plain.split("Runbook")[0]
    # Airflow 3's URL of the failed (last) try's log: the mapped task of the subscriber.
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as s:
        (ti,) = [t for t in run.get_task_instances(session=s)
                 if t.task_id == "deliver" and t.rendered_map_index == "Odense Sag"]
        index, tries = ti.map_index, ti.try_number
        # Issue 14, item 5 (map-index names while up for retry): Airflow 3.3 archives a
        # try that will be retried into its history from the SDK's RetryTask message,
        # which (unlike the terminal TaskState) carries no rendered_map_index, so the
        # archived first try is named by its number. Pinned: an Airflow that keeps the
        # name fails here, and the template can then be revisited.
        from airflow.models.taskinstancehistory import TaskInstanceHistory as History

        first = [(name, str(state)) for name, state in s.execute(
            select(History.rendered_map_index, History.state).where(
                History.run_id == run.run_id, History.task_id == "deliver",
                History.map_index == index))]
    assert isinstance(ti, TaskInstance) and tries == 2  # one retry, then the alert
    assert first == [("1", "failed")]
    log = (f"http://localhost:8080/dags/cpr_abonnement_daily/runs/{quote(run.run_id)}"
           f"/tasks/deliver/mapped/{index}?try_number={tries}")
    assert f"Log:          {log}" in html
    assert f'<a href="{log}">Open the task log</a>' in html.replace("&amp;", "&")
    # The runbook is a URL (CPRSUB_RUNBOOK_URL; by default this checkout's file) ...
    url = (ROOT / RUNBOOK.partition("#")[0]).as_uri() + "#operating-the-daily-dag"
    assert f'Runbook:      {url}, step "Delivery failed"' in html.replace("&quot;", '"')
    # ... and that step and section exist in the runbook the link names.
    runbook = Path(unquote(urlparse(url).path)).read_text()
    assert "## Operating the daily DAG" in runbook and "* **Delivery failed**" in runbook
