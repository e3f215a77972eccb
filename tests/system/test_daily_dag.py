"""The daily DAG run through Airflow (dag.test) against real SFTP and SMTP servers."""

from __future__ import annotations

import datetime as dt
import json
import re
import socket

import pytest
import xmltodict

from cpr_abonnement.records import extract_runs, ledger
from support.deployment import SUBSCRIBERS, run_note, task_states
from support.webhook import slack_webhook

pytestmark = pytest.mark.slow

DAY = dt.date(2026, 11, 19)  # a Thursday, its deadline long past
AALBORG, ODENSE, VEJLE = SUBSCRIBERS


def test_delivers_each_subscriber_its_file_and_a_rerun_changes_nothing(deployment):
    src = deployment.extract(DAY)
    original = src.read_bytes()
    run = deployment.run(DAY)
    assert run.state == "success", task_states(run)
    states = task_states(run)
    assert {k for k in states if k.startswith("deliver[")} == {
        f"deliver[{name}]" for name, _, _ in SUBSCRIBERS.values()}
    for uuid in SUBSCRIBERS:
        got = deployment.delivered(uuid)
        assert set(got) == {src.name, f"{src.name}.metadata"}, uuid
        staged = deployment.staging / "2026-11-19" / "deltas" / uuid
        assert got[src.name] == (staged / src.name).read_bytes()  # the engine's output
        trigger = xmltodict.parse(got[f"{src.name}.metadata"])["ns2:Trigger"]
        assert trigger["FileDescriptor"]["Recipients"] == uuid
        assert trigger["FileContentDescriptor"]["cpr:ProductionDate"] == "2026-11-19"
    assert got[src.name].startswith(original[:36])  # 000 copied unchanged
    # Processed: the extract left the inbound folder; its staged copy is the archive, and
    # the re-run below reads that (issue 27).
    assert not src.exists()
    assert (deployment.staging / "2026-11-19" / "extract" / src.name).read_bytes() == original
    assert deployment.delivered(VEJLE)[src.name].count(b"\n") == 2  # no filters: 000 + 999
    rows = ledger.entries(deployment.engine, "431101", DAY)
    assert {e.outcome for e in rows} == {"DELIVERED"}
    assert "3 of 3 subscriber(s) delivered" in run_note(run)
    assert extract_runs.last_processed(deployment.engine, "431101", DAY + dt.timedelta(1)
                                   ).delivered_at is not None

    before = {uuid: deployment.delivered(uuid) for uuid in SUBSCRIBERS}
    again = deployment.run(DAY)
    assert again.state == "success", task_states(again)
    assert {uuid: deployment.delivered(uuid) for uuid in SUBSCRIBERS} == before
    rows = ledger.entries(deployment.engine, "431101", DAY)
    assert {e.outcome for e in rows} == {"ALREADY_DELIVERED"}
    assert {e.attempts for e in rows} == {2}
    assert deployment.inbox.messages == []


def test_an_unreachable_sftp_server_fails_only_that_subscriber_and_alerts(deployment,
                                                                          monkeypatch):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    conn = json.loads(deployment.sftp.airflow_connection("cpr"))
    conn["port"] = dead
    monkeypatch.setenv("AIRFLOW_CONN_SFTP_ODENSE", json.dumps(conn))
    src = deployment.extract(DAY)
    run = deployment.run(DAY)
    states = task_states(run)
    assert run.state == "failed"
    assert states["deliver[Odense Sag]"] == "failed"
    assert states["deliver[Aalborg ESDH]"] == states["deliver[Vejle Tom]"] == "success"
    assert src.name in deployment.delivered(AALBORG) and not deployment.delivered(ODENSE)
    rows = {e.subscriber_uuid: e for e in ledger.entries(deployment.engine, "431101", DAY)}
    assert rows[ODENSE].outcome == "FAILED" and rows[ODENSE].attempts == 2  # 1 retry
    processed = extract_runs.last_processed(deployment.engine, "431101", DAY + dt.timedelta(1))
    assert processed.production_date == DAY and processed.delivered_at is None
    assert "2 of 3 subscriber(s) delivered" in run_note(run)
    assert "| Odense Sag | FAILED after 2 attempt(s): connection sftp\\_odense: " \
        in run_note(run)  # a table row, with the reason
    alerts = [t for t in deployment.inbox.texts() if "Odense Sag" in t]
    assert len(alerts) == 1, deployment.inbox.texts()
    assert "2026-11-19" in alerts[0] and "deliver" in alerts[0]
    assert not re.search(r"\d{10}", alerts[0])

    friday = DAY + dt.timedelta(days=1)  # Odense still down: the others get Friday's file
    deployment.extract(friday, seed=5)
    next_day = deployment.run(friday)
    assert task_states(next_day)["parse_and_validate"] == "success"
    assert "D261120.L431101" in deployment.delivered(AALBORG)

    monkeypatch.setenv("AIRFLOW_CONN_SFTP_ODENSE", deployment.sftp.airflow_connection("cpr"))
    fixed = deployment.run(DAY)  # the data engineer re-runs once the server is back
    assert fixed.state == "success", task_states(fixed)
    assert src.name in deployment.delivered(ODENSE)


def test_a_bad_extract_is_quarantined_intact_and_nothing_is_delivered(deployment):
    src = deployment.extract(DAY)
    data = src.read_bytes()
    broken = data.replace(b"\n999999999999", b"\n999999999999", 1)[:-9] + b"00000001\n"
    src.write_bytes(broken)
    run = deployment.run(DAY)
    assert run.state == "failed"
    assert task_states(run)["parse_and_validate"] == "failed"
    assert not src.exists()
    kept = [p for p in deployment.quarantine.iterdir() if not p.name.endswith(".reason.txt")]
    assert len(kept) == 1 and kept[0].read_bytes() == broken
    reason = next(deployment.quarantine.glob("*.reason.txt")).read_text()
    assert "counter says 1 records" in reason
    assert all(not deployment.delivered(uuid) for uuid in SUBSCRIBERS)
    alert = deployment.inbox.texts()
    assert len(alert) == 1 and "parse_and_validate" in alert[0] and "counter says" in alert[0]
    subject = deployment.inbox.messages[0]["Subject"]
    assert subject.startswith("[CPR Abonnement] 2026-11-19: D261119.L431101 rejected (1 "
                              "problem(s)): ") and "counter says" in subject
    assert "moved to" not in subject and len(subject) < 160


def test_a_missing_extract_times_out_into_an_alert(deployment):
    run = deployment.run(DAY)
    assert run.state == "failed"
    assert task_states(run)["wait_for_extract"] == "failed"
    alert = deployment.inbox.texts()
    assert len(alert) == 1
    assert "extract for 2026-11-19 not received" in alert[0]


def test_alerts_also_go_to_slack_when_its_connection_exists(deployment, monkeypatch):
    with slack_webhook() as slack:
        monkeypatch.setenv("AIRFLOW_CONN_CPR_ABONNEMENT_SLACK", slack.connection())
        src = deployment.extract(DAY)
        src.write_bytes(src.read_bytes().replace(b"\n001", b"\nX01", 1))  # unknown type
        assert deployment.run(DAY).state == "failed"
    assert len(slack.posts) == 1 and len(deployment.inbox.messages) == 1
    text = slack.posts[0]["text"]
    assert "2026-11-19: D261119.L431101 rejected (2 problem(s)): line 2: unknown record type" \
        in text
    assert not re.search(r"\d{10}", text)


def test_a_failing_mail_server_does_not_swallow_the_slack_alert(deployment, monkeypatch):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps({
        "conn_type": "smtp", "host": "127.0.0.1", "port": dead,
        "extra": {"disable_ssl": True, "disable_tls": True, "timeout": 2, "retry_limit": 0}}))
    with slack_webhook() as slack:
        monkeypatch.setenv("AIRFLOW_CONN_CPR_ABONNEMENT_SLACK", slack.connection())
        assert deployment.run(DAY).state == "failed"  # no extract: the sensor times out
    assert deployment.inbox.messages == []  # the mail could not go out ...
    assert len(slack.posts) == 1  # ... Slack still got the alert
    assert "extract for 2026-11-19 not received" in slack.posts[0]["text"]


def test_a_gap_in_the_chain_stops_delivery_unless_overridden(deployment):
    monday, wednesday = dt.date(2026, 11, 23), dt.date(2026, 11, 25)
    deployment.extract(monday, previous=dt.date(2026, 11, 20))
    assert deployment.run(monday).state == "success"
    deployment.extract(wednesday, seed=4)  # previous = Tuesday 24th, never processed
    run = deployment.run(wednesday)
    assert run.state == "failed"
    assert task_states(run)["parse_and_validate"] == "failed"
    assert "D261125.L431101" not in deployment.delivered(AALBORG)
    assert any("an extract is missing" in t for t in deployment.inbox.texts())
    assert (deployment.inbound / "D261125.L431101").exists()  # not quarantined: it is fine
    overridden = deployment.run(wednesday, allow_gap=True)
    assert overridden.state == "success", task_states(overridden)
    assert "D261125.L431101" in deployment.delivered(AALBORG)


def test_staging_in_object_storage(deployment, monkeypatch):
    """Staging on a non-local ObjectStoragePath (fsspec's in-process memory:// here;
    s3:// or gs:// in a cluster): files go up after filtering and down for delivery."""
    import fsspec
    from airflow.sdk import ObjectStoragePath
    from airflow.sdk.io.store import attach

    attach("memory", fs=fsspec.filesystem("memory"))  # stands in for an s3/gs provider
    monkeypatch.setenv("CPRSUB_STAGING", "memory://cpr-staging")
    src = deployment.extract(DAY)
    original = src.read_bytes()
    run = deployment.run(DAY)
    assert run.state == "success", task_states(run)
    staged = ObjectStoragePath("memory://cpr-staging/2026-11-19")
    assert (staged / "extract" / src.name).read_bytes() == original
    for uuid in SUBSCRIBERS:
        delta = staged / "deltas" / uuid / src.name
        assert deployment.delivered(uuid)[src.name] == delta.read_bytes()
    assert not any(deployment.staging.iterdir())  # nothing staged on the local volume


def register_odense(deployment, windows: list[str]) -> None:
    """Odense's registration document: its contact person and service windows."""
    from cpr_abonnement.onboarding.registration import parse_document
    from cpr_abonnement.subscriptions.service import SubscriptionService

    name, conn, _ = SUBSCRIBERS[ODENSE]
    SubscriptionService(deployment.engine, caller="test").register(parse_document({
        "uuid": ODENSE, "name": name, "municipality": 461,
        "supplier": {"name": "Leverandør A/S", "cvr": "10150817"},
        "contact": {"name": "Ida Holm", "email": "ida@odense.example", "phone": "12345678"},
        "delivery": {"mode": "push", "connection": conn, "host": "127.0.0.1",
                     "port": deployment.sftp.port, "folder": f"/{ODENSE}",
                     "host_key": deployment.sftp.host_key_line},
        "service_windows": windows}))


def test_a_push_inside_the_service_window_waits_until_it_ends_without_a_retry(deployment,
                                                                             monkeypatch):
    """The delivery's clock is the test's (dag.test() runs the tasks in this process):
    inside Odense's window the push is rescheduled to the window's end, not failed or
    retried; once the clock has passed it, the file is delivered. The ledger and the run
    note say it waited; no real window is waited for."""
    from cpr_abonnement.onboarding.windows import TZ
    from cpr_abonnement.tasks import deliver as delivering

    register_odense(deployment, ["daily 20:00-22:00"])
    inside = dt.datetime(2026, 11, 19, 21, 0, tzinfo=TZ)
    end = dt.datetime(2026, 11, 19, 22, 0, tzinfo=TZ)

    def clock() -> dt.datetime:  # inside the window until Odense's wait is recorded
        odense = ledger.entry(deployment.engine, "431101", DAY, ODENSE)
        at = end + dt.timedelta(seconds=1) if odense and odense.window_wait_until else inside
        return at.astimezone(dt.UTC).replace(tzinfo=None)

    monkeypatch.setattr(delivering, "clock", clock)
    name = SUBSCRIBERS[ODENSE][0]
    src = deployment.extract(DAY)
    run = deployment.run(DAY)
    assert run.state == "success", task_states(run)
    assert src.name in deployment.delivered(ODENSE)
    rows = {e.subscriber_uuid: e for e in ledger.entries(deployment.engine, "431101", DAY)}
    waited = rows[ODENSE]
    assert (waited.outcome, waited.attempts) == ("DELIVERED", 1)  # the wait is no attempt
    assert waited.window_wait_until == end.astimezone(dt.UTC).replace(tzinfo=None)
    assert waited.delivered_at >= waited.window_wait_until
    assert rows[AALBORG].window_wait_until is None
    assert f"waited for service window until {end:%H:%M}" in run_note(run)
    assert deployment.inbox.messages == []  # a wait is not a failure: no alert

    from airflow.utils.session import create_session

    with create_session() as s:
        tis = [ti for ti in run.get_task_instances(session=s) if ti.task_id == "deliver"
               and ti.rendered_map_index == name]
    assert [ti.try_number for ti in tis] == [1]


def test_contact_person_gets_one_plain_notice_after_two_failed_delivery_days(deployment,
                                                                            monkeypatch):
    register_odense(deployment, [])
    conn = json.loads(deployment.sftp.airflow_connection("cpr"))
    monkeypatch.setenv("AIRFLOW_CONN_SFTP_ODENSE", json.dumps({**conn, "password": "no"}))
    deployment.extract(DAY)
    assert deployment.run(DAY).state == "failed"
    first = [m for m in deployment.inbox.messages]
    assert [m["To"] for m in first] == ["data-engineers@cpr-abonnement.example"]
    assert "Contact person: not notified yet (1 of 2" in deployment.inbox.texts()[0]

    friday = DAY + dt.timedelta(days=1)
    deployment.extract(friday, seed=5)
    assert deployment.run(friday).state == "failed"
    to_contact = [m for m in deployment.inbox.messages if m["To"] == "ida@odense.example"]
    assert len(to_contact) == 1
    notice = to_contact[0].get_body(preferencelist=("html", "plain")).get_content()
    assert "2 delivery day(s)" in notice and "Odense Sag" in notice
    for internal in ("DeliveryRefused", "127.0.0.1", "sftp_odense", "Authentication",
                     "Traceback", "D261119"):
        assert internal not in notice
    assert not re.search(r"\d{10}", notice)
    engineers = [t for m, t in zip(deployment.inbox.messages, deployment.inbox.texts(),
                                   strict=True) if m["To"] != "ida@odense.example"]
    assert "Contact person: ida@odense.example notified (2 failed delivery day(s))" \
        in engineers[-1]


def test_a_delivery_pushes_no_xcom(deployment):
    """Nothing reads a delivery's outcome from XCom (the ledger holds it, ``report`` reads
    the ledger), and each push is a round trip to the execution API per subscriber: a
    ``dict`` return once pushed three (issue 16, item 3)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    deployment.extract(DAY)
    run = deployment.run(DAY)
    assert run.state == "success", task_states(run)
    with create_session() as s:
        keys = {(x.task_id, x.key) for x in s.query(XComModel).filter(
            XComModel.run_id == run.run_id)}
    assert keys and not {k for k in keys if k[0] == "deliver"}, sorted(keys)
    assert {e.outcome for e in ledger.entries(deployment.engine, "431101", DAY)} == {
        "DELIVERED"}
