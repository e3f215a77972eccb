"""The Unix side of the OpenSSH pick-up server (``cprsub pickup sync-accounts``): the
accounts it makes carry its mark; a reserved name or an account it did not make is
refused, never reused, and gets no keys from ``cprsub pickup authorized-keys``."""

from __future__ import annotations

import os
import pwd
import secrets
import subprocess

import pytest
from sqlalchemy import update

from cpr_abonnement.cli import main
from cpr_abonnement.errors import ReservedPickupAccount
from cpr_abonnement.pickup.accounts import authorized_keys
from cpr_abonnement.pickup.names import UNIX_ACCOUNT_MARK, validate_account_name
from cpr_abonnement.pickup.unix import ensure_account
from cpr_abonnement.store.db import make_engine, upgrade
from cpr_abonnement.store.models import Subscriber
from cpr_abonnement.subscriptions.service import SubscriptionService
from support.sshkeys import ed25519_line

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (Unix accounts)")

OURS, LEGACY = "6f1f0b8e-6a55-4f55-9d7b-1c5c1f3a0001", "6f1f0b8e-6a55-4f55-9d7b-1c5c1f3a0002"


@pytest.fixture
def ours():
    """A name for an account the sync makes (removed afterwards)."""
    name = f"pku{secrets.token_hex(3)}"
    yield name
    subprocess.run(["userdel", name], check=False, capture_output=True)


def test_reserved_and_foreign_accounts_are_refused_not_reused(tmp_path, foreign_account,
                                                              ours):
    """Issue 21, item 7: ensure_account used to take over any existing passwd entry."""
    root = tmp_path / "pickup"
    for name in ("daemon", "root", foreign_account):
        with pytest.raises(ReservedPickupAccount) as caught:
            ensure_account(root, name)
        assert caught.value.account == name and caught.value.rule == "pickup account"
        assert not (root / name).exists()
    assert pwd.getpwnam(foreign_account).pw_gecos == ""  # left as it was
    assert ensure_account(root, ours) is True
    assert pwd.getpwnam(ours).pw_gecos == UNIX_ACCOUNT_MARK
    assert validate_account_name(ours) == ours  # ours: still a valid name
    assert ensure_account(root, ours) is False  # and reused


def test_sync_skips_a_registration_older_than_the_rule_and_gives_it_no_keys(
        tmp_path, ours, capsys):
    """A `daemon` registered before the rule: the sync says so and makes the others;
    authorized-keys gives no key for it, whatever the database holds."""
    url = f"sqlite:///{tmp_path / 'filters.db'}"
    engine = make_engine(url)
    upgrade(engine)
    svc = SubscriptionService(engine, caller="test")
    svc.add_subscriber(OURS, "Ours", delivery_mode="pickup", pickup_account=ours,
                       ssh_keys=[ed25519_line("ours")])
    svc.add_subscriber(LEGACY, "Legacy", delivery_mode="pickup", pickup_account="legacy",
                       ssh_keys=[ed25519_line("legacy")])
    with engine.begin() as conn:  # as an older version let it be registered
        conn.execute(update(Subscriber).where(Subscriber.uuid == LEGACY)
                     .values(pickup_account="daemon"))
    root = tmp_path / "pickup"
    root.mkdir()
    code = main(["pickup", "sync-accounts", "--db", url, "--root", str(root)])
    out, err = capsys.readouterr()
    assert code == 0 and out == f"created pick-up account {ours}\n"
    assert "refused: pick-up account 'daemon' is reserved" in err
    assert not (root / "daemon").exists() and (root / ours / "IN").is_dir()
    assert authorized_keys(engine, "daemon") == []
    assert len(authorized_keys(engine, ours)) == 1
