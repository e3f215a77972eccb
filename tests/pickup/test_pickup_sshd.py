"""deploy/pickup/sshd_config on the real OpenSSH sshd: keys from the filter database via
``cprsub pickup authorized-keys``, chroot per account, read/list/remove only, and the
internal-sftp log ingested into the ledger."""

from __future__ import annotations

import secrets
import shutil
import socket
import time

import paramiko
import pytest
import xmltodict

from cpr_abonnement.pickup.log import SftpLogIngester, ledger_recorder
from cpr_abonnement.records import ledger
from cpr_abonnement.store.db import make_engine, upgrade
from cpr_abonnement.subscriptions.service import SubscriptionService
from support.pickup import (
    ATTACKS,
    DATA_NAME,
    assert_no_pnr,
    keygen,
    paramiko_sftp,
    place,
    register,
    sftp_batch,
    tree,
)
from support.sshd import PICKUP_CONFIG, pickup_sshd

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("sshd") is None and shutil.which("/usr/sbin/sshd") is None,
                       reason="OpenSSH's sshd is not installed"),
]


@pytest.fixture
def account_names():
    token = secrets.token_hex(3)  # Unix accounts are created for real: unique names
    return f"pka{token}", f"pkb{token}"


@pytest.fixture
def db(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'filters.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def sshd(db, accounts):
    uuids = register(db, accounts)
    logs: list[str] = []
    with pickup_sshd(str(db.url), list(accounts), logs=logs) as server:
        for a in accounts.values():
            place(server["root"], a.name, a.data)
            for f in (server["root"] / a.name / "IN").iterdir():
                f.chmod(0o644)  # owned by root (the delivery), not the account
        server.update(logs=logs, uuids=uuids, engine=db)
        yield server


def _wait_for_log(sshd, text: str) -> None:
    """internal-sftp's log reaches the collector through dev/log after the client has
    its reply: wait (10 s at most) until a line holds ``text``."""
    deadline = time.monotonic() + 10
    while not any(text in line for line in sshd["logs"]) and time.monotonic() < deadline:
        time.sleep(0.05)


def _ledger(engine, uuid):
    import datetime as dt
    return next(e for e in ledger.entries(engine, "431101", dt.date(2026, 1, 5))
                if e.subscriber_uuid == uuid)


def test_paramiko_rsa_download_metadata_delete_and_log_ingestion(sshd, accounts, tmp_path):
    a = next(iter(accounts.values()))
    transport, sftp = paramiko_sftp(sshd["port"], a.name, a.pkey)
    try:
        names = sftp.listdir("IN")
        assert sorted(names) == [DATA_NAME, f"{DATA_NAME}.metadata"]
        sftp.get(f"IN/{DATA_NAME}", str(tmp_path / DATA_NAME))
        with sftp.open(f"IN/{DATA_NAME}.metadata") as fh:
            meta = xmltodict.parse(fh.read())
        assert meta["ns2:Trigger"]["FileDescriptor"]["Recipients"] == a.name
        assert (tmp_path / DATA_NAME).read_bytes() == a.data
        # ingest while the file is still there (its size tells a complete download),
        # once internal-sftp's line for the download's close has come through dev/log
        # (on a loaded machine it arrives after the client has its reply)
        _wait_for_log(sshd, f'close "IN/{DATA_NAME}" bytes read')
        ingester = SftpLogIngester(ledger_recorder(sshd["engine"]), sshd["root"])
        for line in list(sshd["logs"]):
            ingester.feed(line)
        sftp.remove(f"IN/{DATA_NAME}")
        sftp.remove(f"IN/{DATA_NAME}.metadata")
    finally:
        transport.close()
    _wait_for_log(sshd, f"remove name \"IN/{DATA_NAME}.metadata\"")
    for line in list(sshd["logs"]):
        ingester.feed(line)
    entry = _ledger(sshd["engine"], sshd["uuids"][a.name])
    assert entry.picked_up_at is not None, "\n".join(sshd["logs"])
    assert entry.removed_at is not None and entry.removed_by == "subscriber"
    assert not (sshd["root"] / a.name / "IN" / DATA_NAME).exists()


def test_openssh_sftp_batch_download_and_remove(sshd, accounts, tmp_path):
    b = list(accounts.values())[1]
    result = sftp_batch(sshd["port"], b.name, b.key_file,
                        ["ls IN", f"get IN/{DATA_NAME} {tmp_path / 'got'}",
                         f"rm IN/{DATA_NAME}"])
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "got").read_bytes() == b.data


@pytest.mark.parametrize("command", ATTACKS)
def test_attacks_refused_by_sshd_and_nothing_changes(sshd, accounts, command):
    a, b = accounts.values()
    (sshd["root"] / a.name / "IN" / "escape").symlink_to(
        sshd["root"] / b.name / "IN" / DATA_NAME)
    before = tree(sshd["root"])
    result = sftp_batch(sshd["port"], a.name, a.key_file,
                        [command.format(other=b.name, self=a.key_file)])
    assert result.returncode != 0, f"{command!r} was allowed: {result.stdout}"
    assert tree(sshd["root"]) == before
    assert_no_pnr("\n".join(sshd["logs"]) + sshd["sshd_log"].read_text())


@pytest.mark.parametrize("target", ["IN/new", "/new", "IN/.hidden"])
def test_no_upload_creates_anything_not_even_an_empty_file(sshd, accounts, target):
    """internal-sftp's allow-list cannot refuse an ``open`` that creates (``open`` is one
    request type): the Landlock sandbox of ``cprsub pickup confine`` does, so a ``put``
    leaves no name behind, in ``IN/`` or anywhere in the chroot."""
    a = next(iter(accounts.values()))
    before = tree(sshd["root"])
    result = sftp_batch(sshd["port"], a.name, a.key_file, [f"put {a.key_file} {target}"])
    assert result.returncode != 0
    assert "Permission denied" in result.stderr, result.stderr
    assert tree(sshd["root"]) == before


def test_paramiko_open_for_writing_is_refused_and_the_tracker_warns(sshd, accounts):
    """The same through paramiko (what cpr_udtraek uses), and the attempt still reaches
    the data engineers through the log tracker; the housekeeping sweep finds nothing."""
    from cpr_abonnement.pickup.strays import sweep_strays

    a = next(iter(accounts.values()))
    transport, sftp = paramiko_sftp(sshd["port"], a.name, a.pkey)
    try:
        with pytest.raises(PermissionError):
            sftp.open("IN/new", "w")
    finally:
        transport.close()
    assert not (sshd["root"] / a.name / "IN" / "new").exists()
    _wait_for_log(sshd, "IN/new")
    ingester = SftpLogIngester(ledger_recorder(sshd["engine"]), sshd["root"])
    for line in list(sshd["logs"]):
        ingester.feed(line)
    assert ingester.result.uploads == [f"{a.name}/IN/new"]
    assert sweep_strays(sshd["root"]) == []


def _refused(port, user, pkey=None, password=None, source="127.0.0.1") -> bool:
    try:
        transport, _ = paramiko_sftp(port, user, pkey, password=password, source=source)
    except (paramiko.SSHException, EOFError, ConnectionError):
        return True
    transport.close()
    return False


def test_logins_refused_password_unregistered_removed_dsa_switched(sshd, accounts,
                                                                   keys_dir):
    a, b = accounts.values()
    engine = sshd["engine"]
    svc = SubscriptionService(engine, caller="test")
    assert _refused(sshd["port"], a.name, password="guess")
    keygen(keys_dir / "stranger", "ed25519")
    assert _refused(sshd["port"], a.name, paramiko.PKey.from_path(keys_dir / "stranger"))
    assert _refused(sshd["port"], a.name, b.pkey)
    keygen(keys_dir / "dsa", "dsa")
    dsa = sftp_batch(sshd["port"], a.name, keys_dir / "dsa", ["ls"],
                     "-o", "PubkeyAcceptedAlgorithms=+ssh-dss")
    assert dsa.returncode != 0
    # a removed key, then a switch to push: the next login is refused
    assert not _refused(sshd["port"], a.name, a.pkey)
    svc.set_delivery(sshd["uuids"][b.name], "push", sftp_conn_id="sftp_b")
    assert _refused(sshd["port"], b.name, b.pkey)
    fingerprint = svc.subscriber(sshd["uuids"][a.name]).ssh_keys[0].fingerprint
    svc.remove_ssh_key(sshd["uuids"][a.name], fingerprint)
    assert _refused(sshd["port"], a.name, a.pkey)


def _idle_preauth(port: int, source: str) -> socket.socket | None:
    """A connection from ``source`` that sends only its SSH banner and then waits, as a
    slow or hostile client does: the open socket if sshd took it (it answers with its
    own banner), None if sshd dropped it."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5,
                                    source_address=(source, 0))
    try:
        sock.sendall(b"SSH-2.0-x\r\n")
        if sock.recv(64).startswith(b"SSH-2.0-"):
            return sock
    except OSError:
        pass
    sock.close()
    return None


def test_idle_connections_from_one_address_do_not_starve_logins_from_others(sshd,
                                                                           accounts):
    """Issue 21, item 6: 300 unauthenticated connections from 127.0.0.2 that send a
    banner and wait (sshd keeps what it takes for LoginGraceTime) must not fill sshd's
    MaxStartups: PerSourceMaxStartups bounds one address, so every key login from
    127.0.0.1 is served meanwhile."""
    a = next(iter(accounts.values()))
    held: list[socket.socket] = []
    try:
        for _ in range(300):
            if (sock := _idle_preauth(sshd["port"], "127.0.0.2")) is not None:
                held.append(sock)
        assert held, "sshd took none of the idle connections: the test proves nothing"
        refused = sum(_refused(sshd["port"], a.name, a.pkey) for _ in range(5))
        assert refused == 0, (f"{refused} of 5 key logins refused while 127.0.0.2 "
                              f"held {len(held)} idle connections")
        per_source = next(int(line.split()[1]) for line in PICKUP_CONFIG.read_text()
                          .splitlines() if line.startswith("PerSourceMaxStartups "))
        assert len(held) <= per_source
    finally:
        for sock in held:
            sock.close()


@pytest.mark.slow
def test_one_hundred_failed_logins_bounded_and_others_served(sshd, accounts, keys_dir):
    """100 guesses from one address, 10 at a time: each refused; sshd's
    PerSourceMaxStartups sheds what that address has beyond its limit before any key
    lookup, and the right key from another address is served afterwards."""
    from concurrent.futures import ThreadPoolExecutor

    a, b = accounts.values()
    keygen(keys_dir / "guess", "ed25519")
    guess = paramiko.PKey.from_path(keys_dir / "guess")
    started = time.monotonic()
    with ThreadPoolExecutor(10) as pool:
        refused = list(pool.map(
            lambda _: _refused(sshd["port"], a.name, guess, source="127.0.0.2"), range(100)))
    elapsed = time.monotonic() - started
    assert all(refused)
    log = sshd["sshd_log"].read_text()
    looked_up = log.count(f"Failed publickey for {a.name}")
    # Some guesses reached the key lookup (the test exercised it), and not all: what the
    # address sent beyond PerSourceMaxStartups was shed before any lookup.
    assert 0 < looked_up < 100, f"{looked_up} of 100 guesses reached the key lookup"
    assert not _refused(sshd["port"], b.name, b.pkey)
    print(f"100 failed logins: {elapsed:.1f} s, {looked_up} reached the key lookup")
