"""A re-run of a day whose pick-up files the subscriber already fetched and removed: the
ledger knows they were delivered with the same SHA-256 and removed, so the re-run
reports ALREADY_DELIVERED and places nothing; the operator forces a new placement with
the run parameter ``replace_pickup`` (the subscriber's UUID), recorded in the ledger."""

from __future__ import annotations

import datetime as dt

import pytest

from cpr_abonnement.records import ledger
from support.deployment import PICKUP_ACCOUNT as ACCOUNT
from support.deployment import PICKUP_UUID, add_pickup_subscriber, task_states

pytestmark = pytest.mark.slow

DAY = dt.date(2026, 11, 19)


def _mine(deployment):
    return next(e for e in ledger.entries(deployment.engine, "431101", DAY)
                if e.subscriber_uuid == PICKUP_UUID)


def _fetch_and_remove(deployment, inbox, name: str) -> None:
    """What the subscriber does (and the sshd log tells the ledger): download, remove."""
    at = dt.datetime(2026, 11, 19, 9, 0, tzinfo=dt.UTC)
    for event in ("downloaded", "removed"):
        assert ledger.record_pickup_event(deployment.engine, account=ACCOUNT, file_name=name,
                                          event=event, at=at)
    for f in inbox.iterdir():
        f.unlink()


def test_rerun_after_removal_does_not_place_again_unless_the_operator_forces_it(
        deployment, monkeypatch, tmp_path):
    inbox = add_pickup_subscriber(deployment, monkeypatch, tmp_path)
    src = deployment.extract(DAY)
    assert deployment.run(DAY).state == "success"
    first = _mine(deployment)
    _fetch_and_remove(deployment, inbox, src.name)

    again = deployment.run(DAY)
    assert again.state == "success", task_states(again)
    assert list(inbox.iterdir()) == []  # not re-placed
    entry = _mine(deployment)
    assert entry.outcome == "ALREADY_DELIVERED"
    assert "removed by subscriber" in entry.detail and "replace_pickup" in entry.detail
    assert entry.removed_at is not None
    assert entry.sha256 == first.sha256

    forced = deployment.run(DAY, replace_pickup=[PICKUP_UUID])
    assert forced.state == "success", task_states(forced)
    assert sorted(p.name for p in inbox.iterdir()) == [src.name, f"{src.name}.metadata"]
    entry = _mine(deployment)
    assert entry.outcome == "DELIVERED"
    assert "re-placed on request (replace_pickup)" in entry.detail
    # tracking starts again: not downloaded, not removed, available now
    assert entry.picked_up_at is None and entry.removed_at is None
    assert entry.available_at is not None and entry.available_at > first.available_at


def test_a_file_still_in_place_is_verified_as_before(deployment, monkeypatch, tmp_path):
    """Only a removal the ledger knows of skips the placement: a file downloaded but
    still there is checked as usual (a different file there is a conflict)."""
    inbox = add_pickup_subscriber(deployment, monkeypatch, tmp_path)
    src = deployment.extract(DAY)
    assert deployment.run(DAY).state == "success"
    ledger.record_pickup_event(deployment.engine, account=ACCOUNT, file_name=src.name,
                               event="downloaded", at=dt.datetime(2026, 11, 19, 9, 0))
    (inbox / src.name).unlink()
    (inbox / src.name).write_bytes(b"not ours\n")
    again = deployment.run(DAY)
    assert again.state == "failed"
    assert _mine(deployment).outcome == "CONFLICT"
