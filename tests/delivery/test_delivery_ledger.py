"""The delivery ledger counts every attempt, including one killed mid-way (issue 10.21).

The attempt is recorded when it starts (outcome ``STARTED``) and updated when it ends,
so a ``deliver`` task whose process dies during the upload still shows in ``attempts``,
and the day is not taken for delivered.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cpr_abonnement.delivery import sftp_push
from cpr_abonnement.delivery.base import DeliveryTarget
from cpr_abonnement.dev.devsftp import EmbeddedSftpServer
from cpr_abonnement.records import ledger
from cpr_abonnement.store.db import make_engine, upgrade
from cpr_abonnement.tasks import daily, deliver
from cpr_abonnement.tasks.payloads import DeliveryItem, DeliveryResult, ReceivedExtract
from support.ledger import DAY, NAME, SUBSCRIBER, TASK, T, register_day

DELIVERER = Path(__file__).with_name("ledger_deliverer.py")
def record(engine, outcome: str | None, *, started: bool = True) -> ledger.LedgerEntry:
    """Start an attempt (``started``) and/or end it with ``outcome``."""
    key = dict(task_number=TASK, production_date=DAY, subscriber_uuid=SUBSCRIBER,
               file_name=NAME, sha256="1" * 64, persons=1, records=2, target="sftp://x/")
    entry = ledger.start_delivery(engine, **key, now=T) if started else None
    if outcome is not None:
        entry = ledger.finish_delivery(engine, **key, outcome=outcome, detail="", now=T)
    return entry


def test_an_attempt_counts_once_from_its_start(engine):
    register_day(engine)
    started = record(engine, None)
    assert (started.attempts, started.outcome) == (1, ledger.STARTED)
    assert started.outcome not in ledger.DELIVERED_OUTCOMES
    assert started.delivered_at is None
    ended = record(engine, "FAILED", started=False)
    assert (ended.attempts, ended.outcome) == (1, "FAILED")
    delivered = record(engine, "DELIVERED")
    assert (delivered.attempts, delivered.outcome) == (2, "DELIVERED")
    # A later attempt (a cleared task, a re-run) cannot take the file away from the
    # subscriber (delivery never overwrites or deletes it): the row stays delivered
    # while it runs, and still counts it.
    again = record(engine, None)
    assert (again.attempts, again.outcome, again.delivered_at) == (3, "DELIVERED", T)
    assert ledger.entries(engine, TASK, DAY) == [again]


def test_record_delivery_counts_a_whole_attempt(engine):
    register_day(engine)
    for n in (1, 2):
        entry = ledger.record_delivery(
            engine, task_number=TASK, production_date=DAY, subscriber_uuid=SUBSCRIBER,
            file_name=NAME, sha256="1" * 64, persons=1, records=2, target="sftp://x/",
            outcome="FAILED", detail="", now=T)
        assert (entry.attempts, entry.outcome) == (n, "FAILED")


@pytest.fixture
def day_to_deliver(tmp_path, monkeypatch):
    """A processed day with one 20 MB delta for one subscriber on an embedded SFTP server."""
    db_url = f"sqlite:///{tmp_path / 'filters.db'}"
    engine = make_engine(db_url)
    upgrade(engine)
    register_day(engine)
    data = tmp_path / "staging" / SUBSCRIBER / NAME
    data.parent.mkdir(parents=True)
    data.write_bytes(random.Random(21).randbytes(20 << 20))
    data.with_name(NAME + ".metadata").write_text('{"persons": 1}\n')
    sha, _ = sftp_push.sha256_file(data)
    with EmbeddedSftpServer(tmp_path / "sftp", {"cpr": "pw"}) as server:
        conn = server.airflow_connection("cpr")
        monkeypatch.setenv("AIRFLOW_CONN_SFTP_LEDGER", conn)
        item = DeliveryItem(
            subscriber=SUBSCRIBER, name="Subscriber A",
            target=DeliveryTarget("push", "sftp_ledger", f"/{SUBSCRIBER}"),
            data=f"file://{data}", metadata=f"file://{data}.metadata", file_name=NAME,
            persons=1, records=2, sha256=sha, day=DAY, task_number=TASK)
        yield engine, db_url, conn, item, tmp_path / "sftp" / SUBSCRIBER
    engine.dispose()


def start_deliverer(db_url: str, conn: str, item: DeliveryItem) -> subprocess.Popen:
    include = Path(daily.__file__).resolve().parents[2]
    env = {**os.environ, "AIRFLOW_CONN_SFTP_LEDGER": conn,
           "PYTHONPATH": os.pathsep.join([str(include), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, str(DELIVERER), db_url,
                             json.dumps(item.to_xcom())],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def wait_for_upload_under_way(folder: Path, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while not any(p.name.endswith(".part") and p.stat().st_size > 4 << 20
                  for p in (folder.iterdir() if folder.exists() else [])):
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail("the delivery ended (or never started) before it could be killed")
        time.sleep(0.002)


def test_an_attempt_killed_mid_upload_is_counted_and_not_delivered(day_to_deliver):
    engine, db_url, conn, item, folder = day_to_deliver
    proc = start_deliverer(db_url, conn, item)
    proc.stdin.write("go\n")
    proc.stdin.flush()
    wait_for_upload_under_way(folder, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)

    [entry] = ledger.entries(engine, TASK, DAY)
    assert (entry.attempts, entry.outcome, entry.delivered_at) == (1, ledger.STARTED, None)
    received = ReceivedExtract(day=DAY, file_name=NAME, extract="-", sha256="-",
                               task_number=TASK, previous_date=DAY - dt.timedelta(days=1),
                               persons=1, records=2)
    summary = daily.report(received, [item], engine, now=T)
    assert summary.failed == ["Subscriber A"] and not summary.processed
    assert "STARTED after 1 attempt(s)" in summary.subscribers[0]

    assert deliver.deliver_one(item, engine, now=T) == DeliveryResult(SUBSCRIBER, "DELIVERED")
    [entry] = ledger.entries(engine, TASK, DAY)
    assert (entry.attempts, entry.outcome) == (2, "DELIVERED")
    assert daily.report(received, [item], engine, now=T).failed == []


def test_a_ledger_write_missing_a_field_is_refused_before_touching_the_database(engine):
    register_day(engine)
    key = dict(task_number=TASK, production_date=DAY, subscriber_uuid=SUBSCRIBER,
               file_name=NAME, sha256="1" * 64, persons=1, target="sftp://a//in")
    with pytest.raises(TypeError, match="missing: records, unexpected: -"):
        ledger.start_delivery(engine, **key, now=T)
    with pytest.raises(TypeError, match="missing: -, unexpected: colour"):
        ledger.record_delivery(engine, **key, records=2, colour="red", outcome="DELIVERED",
                               detail="", now=T)
    assert ledger.entries(engine, TASK, DAY) == []


def test_warming_compiles_the_ledger_write_that_attempts_then_use_and_keeps_nothing(engine):
    """A preloading executor warms the engine its task processes inherit; the write is
    compiled for exactly the parameters an attempt binds (else every delivery compiled
    it again) and the warm-up leaves no row, on a day with a run and deliveries too."""
    register_day(engine)
    record(engine, "DELIVERED")
    before = ledger.entries(engine, TASK, DAY)
    cache = engine._compiled_cache
    cache.clear()
    ledger.warm(engine)
    assert len(cache) == 1
    again = record(engine, "DELIVERED")  # a start and a finish: both use the warmed form
    assert len(cache) == 1
    assert [(e.attempts, e.outcome) for e in before] == [(1, "DELIVERED")]
    assert (again.attempts, again.outcome) == (2, "DELIVERED")  # no attempt by the warm-up
    assert ledger.entries(engine, TASK, DAY) == [again]
