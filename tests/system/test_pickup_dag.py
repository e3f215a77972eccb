"""Pick-up delivery through the real daily DAG (dag.test), beside push subscribers:
files land in ``<pickup root>/<account>/IN``, with Serviceplatformen's ``.metadata``."""

from __future__ import annotations

import datetime as dt

import xmltodict

from cpr_abonnement.records import ledger
from cpr_abonnement.subscriptions.service import SubscriptionService
from support.deployment import PICKUP_ACCOUNT as ACCOUNT
from support.deployment import (
    PICKUP_UUID,
    SUBSCRIBERS,
    add_pickup_subscriber,
    run_note,
    task_states,
)

DAY = dt.date(2026, 11, 19)
AALBORG = next(iter(SUBSCRIBERS))


def _trigger(data: bytes) -> dict:
    return xmltodict.parse(data)["ns2:Trigger"]


def test_pickup_and_push_side_by_side_then_a_rerun_changes_nothing(deployment, monkeypatch,
                                                                   tmp_path):
    inbox = add_pickup_subscriber(deployment, monkeypatch, tmp_path)
    src = deployment.extract(DAY)
    run = deployment.run(DAY)
    assert run.state == "success", task_states(run)
    assert sorted(p.name for p in inbox.iterdir()) == [src.name, f"{src.name}.metadata"]
    staged = deployment.staging / "2026-11-19" / "deltas" / PICKUP_UUID
    assert (inbox / src.name).read_bytes() == (staged / src.name).read_bytes()
    assert not list((inbox.parent.parent / ".partial" / ACCOUNT).iterdir())  # no leftovers
    trigger = _trigger((inbox / f"{src.name}.metadata").read_bytes())
    assert trigger["FileDescriptor"]["Recipients"] == ACCOUNT
    assert trigger["FileDescriptor"]["FileName"] == src.name
    assert int(trigger["FileDescriptor"]["SizeInBytes"]) == (inbox / src.name).stat().st_size
    pushed = _trigger(deployment.delivered(AALBORG)[f"{src.name}.metadata"])
    assert pushed["FileDescriptor"]["Recipients"] == AALBORG  # push: the UUID
    assert not (deployment.sftp_root / PICKUP_UUID).exists()  # nothing pushed for pick-up

    rows = {e.subscriber_uuid: e for e in ledger.entries(deployment.engine, "431101", DAY)}
    assert {e.outcome for e in rows.values()} == {"DELIVERED"} and len(rows) == 4
    mine = rows[PICKUP_UUID]
    assert mine.target == f"pickup://{ACCOUNT}/IN" and mine.available_at is not None
    assert rows[AALBORG].available_at is None  # push is not tracked
    assert "4 of 4 subscriber(s) delivered" in run_note(run)

    before = {p.name: (p.read_bytes(), p.stat().st_ino) for p in inbox.iterdir()}
    again = deployment.run(DAY)
    assert again.state == "success", task_states(again)
    assert {p.name: (p.read_bytes(), p.stat().st_ino) for p in inbox.iterdir()} == before
    entry = {e.subscriber_uuid: e for e in ledger.entries(deployment.engine, "431101", DAY)}
    assert entry[PICKUP_UUID].outcome == "ALREADY_DELIVERED"
    assert entry[PICKUP_UUID].available_at == mine.available_at  # the first time stays


def test_a_different_file_in_the_pickup_folder_is_a_conflict_never_overwritten(
        deployment, monkeypatch, tmp_path):
    inbox = add_pickup_subscriber(deployment, monkeypatch, tmp_path)
    src = deployment.extract(DAY)
    inbox.mkdir(parents=True)
    (inbox / src.name).write_bytes(b"someone else's file\n")
    run = deployment.run(DAY)
    assert run.state == "failed"
    assert task_states(run)["deliver[Herning Sag]"] == "failed"
    assert task_states(run)["deliver[Aalborg ESDH]"] == "success"
    assert (inbox / src.name).read_bytes() == b"someone else's file\n"
    assert not (inbox / f"{src.name}.metadata").exists()  # data first: metadata never placed
    rows = {e.subscriber_uuid: e for e in ledger.entries(deployment.engine, "431101", DAY)}
    assert rows[PICKUP_UUID].outcome == "CONFLICT"
    assert "not overwritten" in rows[PICKUP_UUID].detail
    assert rows[PICKUP_UUID].available_at is None


def test_switching_a_subscriber_to_pickup_moves_its_next_delivery(deployment, monkeypatch,
                                                                   tmp_path):
    monkeypatch.setenv("CPRSUB_PICKUP_ROOT", str(tmp_path / "pickup"))
    # switched before the day: the snapshot as of the day decides the mode
    svc = SubscriptionService(deployment.engine, caller="test",
                              clock=lambda: dt.datetime(2026, 11, 18))
    svc.set_delivery(AALBORG, "pickup")  # account: its UUID
    src = deployment.extract(DAY)
    run = deployment.run(DAY)
    assert run.state == "success", task_states(run)
    inbox = tmp_path / "pickup" / AALBORG / "IN"
    assert sorted(p.name for p in inbox.iterdir()) == [src.name, f"{src.name}.metadata"]
    assert deployment.delivered(AALBORG) == {}
    assert _trigger((inbox / f"{src.name}.metadata").read_bytes()
                    )["FileDescriptor"]["Recipients"] == AALBORG
