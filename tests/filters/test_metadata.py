"""The ``.metadata`` companion in Serviceplatformen's XML format, read back the way
clients written for the platform read it (spsftp: xmltodict, ``ns2:Trigger``)."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import xmltodict

from builders import extract, person, write
from cpr_abonnement.deltas import PROVENANCE_NS, SFTP_TYPES_NS
from cpr_abonnement.filter_step import filter_extract
from cpr_abonnement.subscriptions.service import SubscriptionService

T0 = dt.datetime(2026, 11, 26, 5, 0)
PUSHED = "6f1f0b8e-6a55-4f55-9d7b-1c5c1f3a0001"
PICKED = "0d4c3b2a-1111-4222-8333-444455556666"
NAME = "D261126.L431101"


@pytest.fixture
def filtered(engine, tmp_path, monkeypatch):
    monkeypatch.delenv("CPRSUB_SENDER_NAME", raising=False)
    svc = SubscriptionService(engine, caller="test", clock=lambda: dt.datetime(2026, 11, 1))
    svc.add_subscriber(PUSHED, "Aalborg ESDH")
    svc.add_subscriber(PICKED, "Herning Sag", delivery_mode="pickup",
                       pickup_account="herning-sag")
    for system in (PUSHED, PICKED):
        svc.add_pnr(system, "0101901234")
    src = write(tmp_path, extract([*person("0101901234"), *person("0202801234")]))

    def run(out: str) -> dict[str, bytes]:
        filter_extract(src, engine, tmp_path / out, clock=lambda: T0)
        return {s: (tmp_path / out / s / f"{NAME}.metadata").read_bytes()
                for s in (PUSHED, PICKED)}
    return run


def _trigger(data: bytes) -> dict:
    return xmltodict.parse(data)["ns2:Trigger"]


def test_spsftp_reads_recipients_sender_and_file(filtered, tmp_path):
    meta = filtered("a")
    picked, pushed = _trigger(meta[PICKED]), _trigger(meta[PUSHED])
    assert picked["@xmlns:ns2"] == SFTP_TYPES_NS
    assert picked["FileDescriptor"]["Recipients"] == "herning-sag"  # the pick-up login
    assert pushed["FileDescriptor"]["Recipients"] == PUSHED  # push: the UUID
    for trigger, system in ((picked, PICKED), (pushed, PUSHED)):
        fd = trigger["FileDescriptor"]
        assert fd["Sender"] == "CPR Abonnement on Airflow"
        assert fd["FileName"] == NAME
        assert int(fd["SizeInBytes"]) == (tmp_path / "a" / system / NAME).stat().st_size
        assert uuid.UUID(trigger["FileTransferUUID"]).version == 5
        content = trigger["FileContentDescriptor"]
        assert content["@xmlns:cpr"] == PROVENANCE_NS
        assert content["cpr:ProductionDate"] == "2026-11-26"
        assert content["cpr:Persons"] == "1" and content["cpr:Subscriber"] == system
        assert content["cpr:FiltersAsOf"] == "2026-11-26T05:00:00.000000Z"
    assert picked["FileTransferUUID"] != pushed["FileTransferUUID"]  # one per file


def test_same_extract_and_subscriber_give_the_same_bytes(filtered):
    first, again = filtered("a"), filtered("b")
    assert first == again
    assert first[PICKED].startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<ns2:Trigger')


def test_the_sender_name_comes_from_settings_and_is_escaped(filtered, monkeypatch):
    monkeypatch.setenv("CPRSUB_SENDER_NAME", "KOMBIT & <Partner>")
    trigger = _trigger(filtered("a")[PUSHED])
    assert trigger["FileDescriptor"]["Sender"] == "KOMBIT & <Partner>"
