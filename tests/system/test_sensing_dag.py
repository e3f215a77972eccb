"""Sensing through the real DAG (dag.test): a broken extract is quarantined at once,
one still being written is waited for (issue 10, item 5)."""

from __future__ import annotations

import datetime as dt
import re
import threading
import time

import pytest
from fastapi.testclient import TestClient

from cpr_abonnement.console.app import create_console_app
from support.deployment import SUBSCRIBERS, task_states

pytestmark = pytest.mark.slow

DAY = dt.date(2026, 11, 19)  # a Thursday, its deadline long past


def test_a_stable_truncated_extract_is_quarantined_and_the_alert_names_the_rule(
        deployment, monkeypatch):
    monkeypatch.setenv("CPRSUB_SETTLE_SECONDS", "1")
    src = deployment.extract(DAY)
    data = src.read_bytes()
    truncated = data[: data.rindex(b"\n999") + 1]  # everything but the 999 line
    src.write_bytes(truncated)
    run = deployment.run(DAY)
    states = task_states(run)
    assert run.state == "failed"
    assert states["wait_for_extract"] == "failed"
    assert states["parse_and_validate"] == "upstream_failed"
    assert not src.exists()
    kept = [p for p in deployment.quarantine.iterdir() if not p.name.endswith(".reason.txt")]
    assert [p.read_bytes() for p in kept] == [truncated]
    reason = next(deployment.quarantine.glob("*.reason.txt")).read_text()
    assert "rule '999 last'" in reason
    alert = deployment.inbox.texts()
    assert len(alert) == 1, alert
    assert "ExtractRejected" in alert[0] and "999 last" in alert[0]
    assert "not received" not in alert[0]
    # The subject says what is wrong, and the step is the rejected extract's, although
    # the sensor (the task of a *missing* extract) is what failed.
    (mail,) = deployment.inbox.messages
    assert mail["Subject"].startswith("[CPR Abonnement] 2026-11-19: D261119.L431101 for "
                                      "2026-11-19 arrived but is broken"), mail["Subject"]
    plain = mail.get_body(preferencelist=("plain",)).get_content()
    assert 'step "Extract rejected"' in plain and "999 last" in plain
    assert not re.search(r"\d{10}", alert[0])
    assert all(not deployment.delivered(uuid) for uuid in SUBSCRIBERS)

    # The console's Extracts page shows the rejection, rule and line, like a rejection
    # in parse_and_validate (the operator has no shell to read the .reason.txt).
    console = create_console_app(lambda: deployment.engine, access=lambda: None)
    with TestClient(console) as client:
        body = client.get("/api/extracts").json()
        page = client.get("/extracts").text
    (row,) = body["extracts"]
    assert row["file_name"] == src.name and row["verdict"] == "rejected"
    assert row["size_bytes"] == len(truncated)
    assert row["production_date"] == DAY.isoformat()  # as named: 000 is not read
    assert row["quarantined_to"] == str(kept[0])
    (problem,) = row["problems"]
    assert problem["rule"] == "999 last" and problem["record_type"] == "999"
    assert problem["line"] == truncated.count(b"\n")  # the last line, not a 999
    assert "truncated" in problem["message"]
    assert [t["state"] for t in body["timeline"] if t["day"] == DAY.isoformat()] == \
        ["rejected"]
    assert f'data-file="{src.name}"' in page and "rule <b>999 last</b>" in page
    assert not re.search(r"(?<!\d)\d{10}(?!\d)", page + str(body))


def test_an_extract_written_during_the_run_is_waited_for_then_delivered(deployment,
                                                                       monkeypatch):
    monkeypatch.setenv("CPRSUB_SETTLE_SECONDS", "3")
    src = deployment.extract(DAY)
    data = src.read_bytes()
    src.unlink()
    cut = data.rindex(b"\n999") + 12  # the writer pauses mid-way through its 999 line

    def writer() -> None:
        with open(src, "wb") as fh:
            for part in (data[: len(data) // 2], data[len(data) // 2 : cut], data[cut:]):
                fh.write(part)
                fh.flush()
                time.sleep(1.5)  # shorter than the settle time

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        run = deployment.run(DAY)
    finally:
        thread.join()
    assert run.state == "success", task_states(run)
    assert not any(deployment.quarantine.iterdir())
    assert not src.exists()  # processed: it left the inbound folder for its archive
    assert (deployment.staging / f"{DAY:%Y-%m-%d}" / "extract" / src.name).read_bytes() == data
    assert all(src.name in deployment.delivered(uuid) for uuid in SUBSCRIBERS)
