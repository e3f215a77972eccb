"""Delivery behind one interface: a subscriber's target picks the mode, and what the
ledger, the errors and the XCom payloads say does not depend on it (issue 11.2/11.7)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest

from cpr_abonnement import delivery
from cpr_abonnement.delivery.base import DeliveryTarget
from cpr_abonnement.errors import MissingDeliveryTarget
from cpr_abonnement.records import ledger
from cpr_abonnement.subscriptions.recipient import Recipient
from cpr_abonnement.tasks import deliver
from cpr_abonnement.tasks.payloads import (
    DaySummary,
    DeliveryItem,
    DeliveryResult,
    ReceivedExtract,
)
from support.ledger import DAY, NAME, SUBSCRIBER, TASK, T, register_day


@pytest.fixture
def item(tmp_path) -> DeliveryItem:
    data = tmp_path / NAME
    data.write_bytes(b"delta\n")
    data.with_name(NAME + ".metadata").write_text("{}\n")
    return DeliveryItem(subscriber=SUBSCRIBER, name="Subscriber A",
                        target=DeliveryTarget("push", "sftp_a", "/in"),
                        data=f"file://{data}", metadata=f"file://{data}.metadata",
                        file_name=NAME, persons=1, records=2, sha256="1" * 64, day=DAY,
                        task_number=TASK)


def test_a_subscriber_is_pushed_to_over_sftp_and_the_ledger_target_is_unchanged():
    sub = Recipient(SUBSCRIBER, "Subscriber A", "sftp_a", "/in/a")
    target = delivery.target_of(sub)
    assert target == DeliveryTarget("push", "sftp_a", "/in/a")
    assert delivery.describe(target) == "sftp://sftp_a//in/a"  # as the ledger had it
    no_connection = dataclasses.replace(sub, sftp_conn_id=None)
    assert delivery.target_of(no_connection) is None and delivery.describe(None) == "-"


def test_a_missing_target_fails_without_naming_a_transport(engine, item):
    register_day(engine)
    with pytest.raises(MissingDeliveryTarget, match="no delivery target") as exc:
        deliver.deliver_one(dataclasses.replace(item, target=None), engine, now=T)
    assert "SFTP" not in str(exc.value)
    [entry] = ledger.entries(engine, TASK, DAY)
    assert (entry.target, entry.outcome, entry.attempts) == ("-", "FAILED", 1)


def test_an_unknown_mode_is_the_subscribers_configuration_not_a_retry(engine, item):
    register_day(engine)
    odd = dataclasses.replace(item, target=DeliveryTarget("carrier-pigeon", "x", "/"))
    with pytest.raises(MissingDeliveryTarget, match="unknown delivery mode 'carrier-pigeon'"):
        deliver.deliver_one(odd, engine, now=T)


@pytest.mark.parametrize("payload", [
    ReceivedExtract(day=DAY, file_name=NAME, extract="file:///s/x", sha256="a" * 64,
                    task_number=TASK, previous_date=DAY - dt.timedelta(days=1), persons=3,
                    records=9, platform_records={"910": 1, "997": 0}),
    DeliveryItem(subscriber=SUBSCRIBER, name="A", target=DeliveryTarget("push", "c", "/d"),
                 data="file:///d", metadata="file:///d.metadata", file_name=NAME,
                 persons=1, records=2, sha256="b" * 64, day=DAY, task_number=TASK),
    DeliveryItem(subscriber=SUBSCRIBER, name="A", target=None, data="d", metadata="m",
                 file_name=NAME, persons=0, records=0, sha256="c" * 64, day=DAY,
                 task_number=TASK),
    DeliveryResult(SUBSCRIBER, "ALREADY_DELIVERED"),
    DaySummary("head", ["a line"], ["A"], processed=False),
], ids=lambda p: type(p).__name__)
def test_xcom_payloads_survive_a_json_round_trip(payload):
    wire = json.loads(json.dumps(payload.to_xcom()))
    assert type(payload).from_xcom(wire) == payload


def test_a_delivery_item_travels_as_one_json_text_and_old_dict_items_still_read(item):
    """Issue 26: the filter step's list carries each item as one string (a thousand
    objects for the API server to validate, not fifteen thousand); an item of a run
    filtered before, a dict, is still read (a task of that run cleared after an
    upgrade)."""
    wire = item.to_wire()
    assert isinstance(wire, str) and json.loads(wire) == item.to_xcom()
    assert DeliveryItem.from_wire(wire) == item
    assert DeliveryItem.from_wire(item.to_xcom()) == item


def test_a_failure_logs_one_readable_line_with_the_next_step(engine, item, caplog):
    """The task log's first line about a failure says who, why and what to do, above
    the traceback Airflow prints."""
    register_day(engine)
    with pytest.raises(MissingDeliveryTarget):
        deliver.deliver_one(dataclasses.replace(item, target=None), engine, now=T)
    [line] = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert line.startswith(f"delivery Subscriber A ({SUBSCRIBER}) file={NAME} "
                           "outcome=FAILED reason=MissingDeliveryTarget: ")
    assert 'next: runbook step "Delivery failed" (docs/operating.md#' in line
