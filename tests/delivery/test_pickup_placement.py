"""The pick-up mode's file placement on its own: atomic, verified, never overwriting."""

from __future__ import annotations

import os
import threading
import time

import pytest

from cpr_abonnement.delivery.base import DeliveryTarget
from cpr_abonnement.delivery.pickup import PickupDelivery, place_file
from cpr_abonnement.errors import DeliveryConflict, DeliveryError

NAME = "D261126.L431101"


@pytest.fixture
def files(tmp_path, monkeypatch):
    monkeypatch.setenv("CPRSUB_PICKUP_ROOT", str(tmp_path / "root"))
    data = tmp_path / "staged" / NAME
    data.parent.mkdir()
    data.write_bytes(os.urandom(3 << 20))
    meta = data.with_name(NAME + ".metadata")
    meta.write_bytes(b"<ns2:Trigger/>\n")
    return [data, meta]


def _deliver(files, account="acct"):
    return PickupDelivery().deliver(files, DeliveryTarget("pickup", "", account),
                                    subscriber="A")


def test_places_both_files_then_repeats_idempotently(files, tmp_path):
    first = _deliver(files)
    inbox = tmp_path / "root" / "acct" / "IN"
    assert [o.already_there for o in first] == [False, False]
    assert sorted(p.name for p in inbox.iterdir()) == [NAME, NAME + ".metadata"]
    assert (inbox / NAME).read_bytes() == files[0].read_bytes()
    assert (inbox / NAME).stat().st_mode & 0o777 == 0o644
    assert inbox.stat().st_mode & 0o777 == 0o755
    assert [o.already_there for o in _deliver(files)] == [True, True]


def test_overlapping_attempts_both_succeed_and_one_file_results(files, tmp_path):
    results, errors = [], []

    def attempt():
        try:
            results.append(_deliver(files))
        except Exception as exc:  # collected for the assertion
            errors.append(exc)
    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(not r[0].already_there for r in results) == 1  # exactly one placed it
    inbox = tmp_path / "root" / "acct" / "IN"
    assert (inbox / NAME).read_bytes() == files[0].read_bytes()
    assert list((tmp_path / "root" / ".partial" / "acct").iterdir()) == []


def test_a_different_file_is_a_conflict_and_stays(files, tmp_path):
    inbox = tmp_path / "root" / "acct" / "IN"
    inbox.mkdir(parents=True)
    (inbox / NAME).write_bytes(b"other\n")
    with pytest.raises(DeliveryConflict, match="not overwritten"):
        _deliver(files)
    assert (inbox / NAME).read_bytes() == b"other\n"
    assert not (inbox / f"{NAME}.metadata").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to the account's user needs root")
def test_a_name_the_account_created_itself_is_a_conflict_that_says_so(files, tmp_path):
    """An empty file the account created in its IN/ (sshd cannot refuse that, see
    pickup/strays.py) under the coming file's name: still never overwritten, but the
    conflict names the cause and the sweep that removes it."""
    inbox = tmp_path / "root" / "acct" / "IN"
    inbox.mkdir(parents=True)
    account_uid = 4242  # the account's Unix user owns its IN/ (pickup/unix.py)
    os.chown(inbox, account_uid, 0)
    (inbox / NAME).touch()
    os.chown(inbox / NAME, account_uid, 0)
    with pytest.raises(DeliveryConflict, match="created by the pick-up account itself"):
        _deliver(files)
    assert (inbox / NAME).stat().st_size == 0


def test_a_final_file_appearing_before_the_link_is_never_replaced(files, tmp_path,
                                                                  monkeypatch):
    inbox = tmp_path / "root" / "acct" / "IN"
    real_link = os.link

    def racing_link(src, dst):  # another writer wins the name just before our link
        (inbox / NAME).write_bytes(b"the winner\n")
        return real_link(src, dst)
    monkeypatch.setattr(os, "link", racing_link)
    with pytest.raises(DeliveryConflict):
        place_file(files[0], *_folders(tmp_path), subscriber="A")
    assert (inbox / NAME).read_bytes() == b"the winner\n"


def _folders(tmp_path):
    inbox = tmp_path / "root" / "acct" / "IN"
    partial = tmp_path / "root" / ".partial" / "acct"
    inbox.mkdir(parents=True, exist_ok=True)
    partial.mkdir(parents=True, exist_ok=True)
    return inbox, partial


def test_stale_temporaries_of_killed_attempts_are_cleaned(files, tmp_path):
    inbox, partial = _folders(tmp_path)
    stale, fresh = partial / f".{NAME}.{'a' * 16}.part", partial / f".{NAME}.{'b' * 16}.part"
    for p in (stale, fresh):
        p.write_bytes(b"half")
    old = time.time() - 7200
    os.utime(stale, (old, old))
    place_file(files[0], inbox, partial, subscriber="A")
    assert list(partial.iterdir()) == []  # all of them once the final file is verified


@pytest.mark.parametrize("account", ["../escape", "/abs", ".partial"])
def test_a_target_outside_the_storage_is_refused(files, tmp_path, account):
    with pytest.raises(DeliveryError, match="pick-up account"):
        _deliver(files, account)
    assert not (tmp_path / "escape").exists()
