"""Pick-up delivery settings in the filter database: delivery mode, account, SSH keys
(the acceptance rule), the accounts the SFTP server asks for, and the ledger's pick-up
events. SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import subprocess

import pytest

from cpr_abonnement.errors import (
    InvalidDeliveryMode,
    InvalidPickupAccount,
    InvalidSshKey,
    RegisteredToAnotherSystem,
)
from cpr_abonnement.identities.ssh_keys import parse_public_key
from cpr_abonnement.pickup import accounts
from cpr_abonnement.records import extract_runs, ledger
from cpr_abonnement.subscriptions.outcomes import Result
from cpr_abonnement.subscriptions.service import SubscriptionService
from support.sshkeys import dsa_line, ecdsa_line, ed25519_line, rsa_line

SYS = "6f1f0b8e-6a55-4f55-9d7b-1c5c1f3a0001"
OTHER = "0d4c3b2a-1111-4222-8333-444455556666"
T0 = dt.datetime(2026, 11, 26, 8, 0)


@pytest.fixture
def svc(engine):
    return SubscriptionService(engine, caller="test", clock=lambda: T0)


def _audit(svc, operation):
    return [(a.operation, a.result) for a in svc.audit_trail(SYS) if a.operation == operation]


def test_a_pickup_subscriber_has_an_account_with_its_keys(svc, engine):
    key = ed25519_line()
    info = svc.add_subscriber(SYS, "Aalborg ESDH", delivery_mode="pickup", ssh_keys=[key])
    assert info.delivery_mode == "pickup" and info.pickup_account == SYS  # default: UUID
    assert [k.fingerprint for k in info.ssh_keys] == [parse_public_key(key).fingerprint]
    found = accounts.account(engine, SYS)
    assert found is not None and found.subscriber_uuid == SYS
    assert found.keys == (key,)  # canonical line, comment kept
    assert accounts.authorized_keys(engine, SYS) == [key]
    assert accounts.authorized_keys(engine, "nobody") == []


def test_a_push_subscriber_or_a_disabled_one_has_no_account(svc, engine):
    svc.add_subscriber(SYS, "A", delivery_mode="pickup", pickup_account="aalborg-esdh",
                       ssh_keys=[ed25519_line()])
    assert accounts.authorized_keys(engine, "aalborg-esdh")
    svc.set_active(SYS, False)
    assert accounts.account(engine, "aalborg-esdh") is None
    svc.set_active(SYS, True)
    assert accounts.account(engine, "aalborg-esdh") is not None
    info = svc.set_delivery(SYS, "push", sftp_conn_id="sftp_aalborg")
    assert info.delivery_mode == "push" and info.pickup_account == "aalborg-esdh"
    assert accounts.account(engine, "aalborg-esdh") is None
    assert accounts.authorized_keys(engine, "aalborg-esdh") == []
    again = svc.set_delivery(SYS, "pickup")  # the account it had comes back
    assert again.pickup_account == "aalborg-esdh"
    assert accounts.authorized_keys(engine, "aalborg-esdh")
    assert _audit(svc, "SetDelivery") == [("SetDelivery", "PUSH aalborg-esdh"),
                                          ("SetDelivery", "PICKUP aalborg-esdh")]


def test_several_keys_for_rotation_and_a_removed_key_stops_working(svc, engine):
    old, new = ed25519_line("old"), rsa_line(3072, "new")
    svc.add_subscriber(SYS, "A", delivery_mode="pickup", ssh_keys=[old])
    assert svc.add_ssh_key(SYS, new).result is Result.ADDED
    assert svc.add_ssh_key(SYS, new).result is Result.ALREADY_EXISTED
    assert accounts.authorized_keys(engine, SYS) == [old, new]
    fingerprint = parse_public_key(old).fingerprint
    assert svc.remove_ssh_key(SYS, fingerprint).result is Result.REMOVED
    assert svc.remove_ssh_key(SYS, fingerprint).result is Result.NON_EXISTING
    assert accounts.authorized_keys(engine, SYS) == [new]
    assert [k.bits for k in svc.subscriber(SYS).ssh_keys] == [3072]
    ops = [(a.operation, a.result) for a in svc.audit_trail(SYS)
           if a.operation.endswith("SshKey")]
    assert ops == [("AddSshKey", "ADDED"), ("AddSshKey", "ALREADY_EXISTED"),
                   ("RemoveSshKey", "REMOVED"), ("RemoveSshKey", "NON_EXISTING")]


@pytest.mark.filterwarnings("ignore:SSH DSA key support is deprecated")
@pytest.mark.parametrize(("line", "why"), [
    (dsa_line, "DSA keys"),
    (lambda: rsa_line(1024), "RSA key of 1024 bits refused"),
    (lambda: "ssh-ed25519 AAAAnot-base64!!", "not a valid OpenSSH public key"),
    (lambda: "garbage", "not an OpenSSH public key line"),
    (lambda: ed25519_line() + "\n" + ed25519_line(), "expected one OpenSSH public key line"),
    (lambda: "ssh-rsa " + ed25519_line().split()[1], "not a valid OpenSSH public key"),
    (lambda: 'command="/bin/sh" ' + ed25519_line(), "not a valid OpenSSH public key"),
    (lambda: "ssh-ed25519-cert-v01@openssh.com AAAA x", "not accepted"),
    (lambda: ed25519_line("bad\x1bcomment"), "printable"),
], ids=["dsa", "rsa-1024", "bad-base64", "garbage", "two-keys", "type-mismatch",
        "options", "certificate", "control-char-comment"])
def test_keys_that_are_refused_with_the_ssh_key_rule(svc, engine, line, why):
    svc.add_subscriber(SYS, "A", delivery_mode="pickup")
    with pytest.raises(InvalidSshKey, match=why) as caught:
        svc.add_ssh_key(SYS, line())
    assert caught.value.rule == "ssh key"
    assert accounts.authorized_keys(engine, SYS) == []
    (entry,) = _audit(svc, "AddSshKey")
    assert entry[1].startswith("REJECTED: ssh key:")


def test_accepted_key_kinds_and_their_fingerprints_are_ssh_keygens(svc, tmp_path):
    svc.add_subscriber(SYS, "A", delivery_mode="pickup")
    for line in (ed25519_line(), ecdsa_line(), rsa_line(2048)):
        assert svc.add_ssh_key(SYS, line).result is Result.ADDED
    kinds = {(k.key_type, k.bits) for k in svc.subscriber(SYS).ssh_keys}
    assert kinds == {("ssh-ed25519", 256), ("ecdsa-sha2-nistp256", 256), ("ssh-rsa", 2048)}
    for line in (ed25519_line(), ecdsa_line(), rsa_line(2048)):  # as ssh-keygen -l says
        pub = tmp_path / "k.pub"
        pub.write_text(line + "\n")
        shown = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", str(pub)],
                               capture_output=True, text=True, check=True).stdout.split()
        assert parse_public_key(line).fingerprint == shown[1]


def test_a_key_or_an_account_names_one_subscriber(svc):
    key = ed25519_line()
    svc.add_subscriber(SYS, "A", delivery_mode="pickup", pickup_account="shared",
                       ssh_keys=[key])
    svc.add_subscriber(OTHER, "B")
    with pytest.raises(RegisteredToAnotherSystem, match=SYS):
        svc.add_ssh_key(OTHER, key)
    with pytest.raises(RegisteredToAnotherSystem, match=SYS):
        svc.set_delivery(OTHER, "pickup", pickup_account="shared")
    assert svc.subscriber(OTHER).delivery_mode == "push"
    with pytest.raises(RegisteredToAnotherSystem):
        svc.add_subscriber("11111111-2222-4333-8444-555555555555", "C",
                           delivery_mode="pickup", pickup_account="shared")
    refused = [a.result for a in svc.audit_trail(OTHER) if a.operation == "SetDelivery"]
    assert refused == [f"REFUSED: pick-up account registered for IT system {SYS}"]


@pytest.mark.parametrize("bad", ["../etc", "UPPER", ".hidden", "a/b", "-x", "x" * 65])
def test_account_names_are_safe_folder_names(svc, bad):
    with pytest.raises(InvalidPickupAccount, match="pick-up account"):
        svc.add_subscriber(SYS, "A", delivery_mode="pickup", pickup_account=bad)
    assert svc.subscribers() == []


def test_delivery_mode_rules(svc):
    with pytest.raises(InvalidDeliveryMode):
        svc.add_subscriber(SYS, "A", delivery_mode="email")
    with pytest.raises(InvalidDeliveryMode):
        svc.add_subscriber(SYS, "A", pickup_account="a")  # push has no account
    svc.add_subscriber(SYS, "A", delivery_mode="pickup")
    with pytest.raises(InvalidDeliveryMode, match="needs an SFTP connection"):
        svc.set_delivery(SYS, "push")
    info = svc.set_delivery(SYS, "push", sftp_conn_id="sftp_a", remote_dir="in")
    assert (info.delivery_mode, info.sftp_conn_id, info.remote_dir) == ("push", "sftp_a", "in")


def _delivered_row(engine, uuid: str) -> None:
    day = dt.date(2026, 11, 26)
    extract_runs.register(engine, task_number="431101", production_date=day,
                      previous_date=day - dt.timedelta(1), file_name="D261126.L431101",
                      sha256="0" * 64, persons=1, records=1, clock=lambda: T0)
    ledger.record_delivery(engine, task_number="431101", production_date=day,
                             subscriber_uuid=uuid, file_name="D261126.L431101",
                             sha256="1" * 64, persons=1, records=3,
                             target="pickup://acct/IN", outcome="DELIVERED", detail="",
                             now=T0)


def test_pickup_events_set_each_column_once(svc, engine):
    svc.add_subscriber(SYS, "A", delivery_mode="pickup", pickup_account="acct")
    _delivered_row(engine, SYS)
    at = [T0 + dt.timedelta(hours=h) for h in range(5)]
    record = ledger.record_pickup_event
    assert record(engine, account="acct", file_name="IN/D261126.L431101", event="available",
                  at=at[1])
    assert record(engine, account="acct", file_name="D261126.L431101", event="downloaded",
                  at=at[2])
    assert record(engine, account="acct", file_name="D261126.L431101", event="downloaded",
                  at=at[3])  # a second download: the first stays
    assert record(engine, account="acct", file_name="D261126.L431101", event="removed",
                  at=at[4].replace(tzinfo=dt.UTC), by="retention")
    assert not record(engine, account="acct", file_name="D261126.L431101.metadata",
                      event="downloaded", at=at[3])
    assert not record(engine, account="acct", file_name="D261127.L431101",
                      event="downloaded", at=at[3])
    assert not record(engine, account="nobody", file_name="D261126.L431101",
                      event="downloaded", at=at[3])
    (entry,) = ledger.entries(engine, "431101", dt.date(2026, 11, 26))
    assert (entry.available_at, entry.picked_up_at, entry.removed_at, entry.removed_by) == (
        at[1], at[2], at[4], "retention")
    with pytest.raises(ValueError, match="unknown pick-up event"):
        record(engine, account="acct", file_name="D261126.L431101", event="opened", at=T0)
