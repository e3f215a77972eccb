"""The embedded pick-up server (``cprsub pickup serve``) with real clients and attacks."""

from __future__ import annotations

import logging
import time

import paramiko
import pytest
import xmltodict

from cpr_abonnement.pickup.server import MAX_FAILURES, FailureLimiter, PickupServer
from support.pickup import (
    ATTACKS,
    DATA_NAME,
    PNR_LIKE,
    assert_no_pnr,
    keygen,
    paramiko_sftp,
    place,
    sftp_batch,
    tree,
)

pytestmark = pytest.mark.slow


class Registry:
    """Keys per login, changeable while the server runs (what the database answers)."""

    def __init__(self, accounts):
        self.keys = {a.name: [a.public] for a in accounts.values()}
        self.lookups = 0
        self.events: list[tuple[str, str, str]] = []

    def lookup(self, account: str) -> list[str]:
        self.lookups += 1
        return list(self.keys.get(account, []))

    def record(self, account, file_name, event, at) -> bool:
        self.events.append((account, file_name, event))
        return True


@pytest.fixture
def served(tmp_path, accounts, caplog):
    caplog.set_level(logging.INFO)  # asyncssh's own INFO lines too
    root = tmp_path / "pickup"
    for a in accounts.values():
        place(root, a.name, a.data)
    registry = Registry(accounts)
    with PickupServer(root, keys=registry.lookup, events=registry.record,
                      host_key_file=tmp_path / "host_key") as server:
        yield server, registry, root


def test_paramiko_rsa_client_lists_downloads_reads_metadata_and_deletes(served, accounts,
                                                                          tmp_path):
    server, registry, root = served
    a = accounts["kommune-a"]
    transport, sftp = paramiko_sftp(server.port, a.name, a.pkey)
    try:
        names = sftp.listdir("IN")
        assert sorted(names) == [DATA_NAME, f"{DATA_NAME}.metadata"]
        for name in (n for n in names if not n.endswith(".metadata")):
            sftp.get(f"IN/{name}", str(tmp_path / name))
            with sftp.open(f"IN/{name}.metadata") as fh:
                meta = xmltodict.parse(fh.read())
            assert meta["ns2:Trigger"]["FileDescriptor"]["Recipients"] == a.name
            assert (tmp_path / name).read_bytes() == a.data
            sftp.remove(f"IN/{name}")
            sftp.remove(f"IN/{name}.metadata")
        assert sftp.listdir("IN") == []
    finally:
        transport.close()
    assert ("kommune-a", DATA_NAME, "downloaded") in registry.events
    assert ("kommune-a", DATA_NAME, "removed") in registry.events
    assert not any(e[1].endswith(".metadata") for e in registry.events)
    assert (root / "kommune-b" / "IN" / DATA_NAME).exists()


def test_partial_read_is_not_a_download(served, accounts):
    server, registry, _ = served
    a = accounts["kommune-a"]
    transport, sftp = paramiko_sftp(server.port, a.name, a.pkey)
    try:
        with sftp.open(f"IN/{DATA_NAME}") as fh:
            fh.read(100)
    finally:
        transport.close()
    assert registry.events == []


def test_openssh_sftp_batch_downloads_and_removes(served, accounts, tmp_path):
    server, registry, root = served
    b = accounts["kommune-b"]
    got = tmp_path / "got"
    result = sftp_batch(server.port, b.name, b.key_file,
                        ["ls IN", f"get IN/{DATA_NAME} {got}", f"rm IN/{DATA_NAME}"])
    assert result.returncode == 0, result.stderr
    assert got.read_bytes() == b.data
    assert not (root / "kommune-b" / "IN" / DATA_NAME).exists()
    assert registry.events == [("kommune-b", DATA_NAME, "downloaded"),
                               ("kommune-b", DATA_NAME, "removed")]


# sshd removes a link in the account's own IN/ (not its target); the embedded server
# serves only regular files and refuses that too
@pytest.mark.parametrize("command", [*ATTACKS, "rm IN/escape"])
def test_attacks_are_refused_logged_without_pnr_and_change_nothing(served, accounts,
                                                                   command, caplog):
    server, registry, root = served
    a = accounts["kommune-a"]
    (root / a.name / "IN" / "escape").symlink_to(root / "kommune-b" / "IN" / DATA_NAME)
    before = tree(root)
    result = sftp_batch(server.port, a.name, a.key_file,
                        [command.format(other="kommune-b", self=a.key_file)])
    assert result.returncode != 0, f"{command!r} was allowed: {result.stdout}"
    assert tree(root) == before
    assert registry.events == []
    assert_no_pnr(caplog.text)  # the server's log; the client's stderr echoes its input


def test_overwrite_by_open_for_write_leaves_file_intact(served, accounts):
    server, _, root = served
    a = accounts["kommune-a"]
    target = root / a.name / "IN" / DATA_NAME
    transport, sftp = paramiko_sftp(server.port, a.name, a.pkey)
    try:
        for mode in ("w", "a", "r+"):
            with pytest.raises(PermissionError):
                sftp.open(f"IN/{DATA_NAME}", mode)
    finally:
        transport.close()
    assert target.read_bytes() == a.data


def _refused(server, user, pkey=None, password=None, source="127.0.0.1") -> bool:
    try:
        transport, _ = paramiko_sftp(server.port, user, pkey, password=password,
                                     source=source)
    except (paramiko.SSHException, EOFError, ConnectionError):
        return True
    transport.close()
    return False


def test_password_login_is_refused(served, accounts):
    server, _, _ = served
    assert _refused(server, "kommune-a", password="anything")


def test_unregistered_removed_and_switched_keys_are_refused(served, accounts, keys_dir,
                                                            caplog):
    server, registry, root = served
    a, b = accounts["kommune-a"], accounts["kommune-b"]
    stranger = keygen(keys_dir / "stranger", "ed25519")
    assert stranger
    before = tree(root)
    assert _refused(server, a.name, paramiko.PKey.from_path(keys_dir / "stranger"))
    assert _refused(server, a.name, b.pkey)                 # another account's key
    assert _refused(server, PNR_LIKE, a.pkey)               # a PNR as login name
    registry.keys[a.name] = []                              # key removed / switched to push
    assert _refused(server, a.name, a.pkey)
    assert not _refused(server, b.name, b.pkey)
    assert tree(root) == before
    assert "not registered" in caplog.text
    assert_no_pnr(caplog.text)


def test_dsa_key_is_refused_even_if_registered(served, keys_dir, caplog):
    server, registry, _ = served
    registry.keys["kommune-a"].append(keygen(keys_dir / "dsa", "dsa"))
    result = sftp_batch(server.port, "kommune-a", keys_dir / "dsa", ["ls IN"],
                        "-o", "PubkeyAcceptedAlgorithms=+ssh-dss")
    assert result.returncode != 0
    assert "ssh-dss key not accepted" in caplog.text


def test_one_hundred_failed_logins_are_bounded_and_others_still_served(tmp_path, accounts,
                                                                       keys_dir):
    root = tmp_path / "pickup"
    for a in accounts.values():
        place(root, a.name, a.data)
    registry = Registry(accounts)
    keygen(keys_dir / "guess", "ed25519")
    guess = paramiko.PKey.from_path(keys_dir / "guess")
    limiter = FailureLimiter(block_seconds=60)
    with PickupServer(root, keys=registry.lookup, limiter=limiter) as server:
        started = time.monotonic()
        refused = sum(_refused(server, "kommune-a", guess, source="127.0.0.2")
                      for _ in range(100))
        elapsed = time.monotonic() - started
        assert refused == 100
        # Only the first MAX_FAILURES attempts reached the key lookup; the rest were cut
        # off at connect.
        assert registry.lookups <= MAX_FAILURES + 1
        assert not _refused(server, "kommune-b", accounts["kommune-b"].pkey)
        # ... and even the right key from the blocked address is refused until it expires
        assert _refused(server, "kommune-a", accounts["kommune-a"].pkey, source="127.0.0.2")
    assert elapsed < 60


def test_each_failed_connection_counts_once_so_the_tenth_is_served(tmp_path, accounts,
                                                                  keys_dir):
    """Issue 21, item 8: the README promises a block after 10 failed logins in a row, so
    connections 1-10 with a wrong key each reach the key lookup (a failure counted twice
    blocked after 5) and the 11th, even with the right key, is refused at connect."""
    assert MAX_FAILURES == 10  # the number the README documents
    registry = Registry(accounts)
    keygen(keys_dir / "guess", "ed25519")
    guess = paramiko.PKey.from_path(keys_dir / "guess")
    with PickupServer(tmp_path / "pickup", keys=registry.lookup) as server:
        for attempt in range(1, MAX_FAILURES + 1):
            assert _refused(server, "kommune-a", guess, source="127.0.0.3")
            assert registry.lookups == attempt, f"failed login {attempt} was not served"
        assert _refused(server, "kommune-a", accounts["kommune-a"].pkey, source="127.0.0.3")
        assert registry.lookups == MAX_FAILURES, "the login after the 10th failure was served"
        assert not _refused(server, "kommune-b", accounts["kommune-b"].pkey)
