"""deploy/pickup/entrypoint.sh run as is (its paths pointed at a temporary folder): it
makes the host keys, the database URL file for the AuthorizedKeysCommand, the Unix
account and folders of each pick-up account, starts ``cprsub pickup track`` and then
OpenSSH's sshd with deploy/pickup/sshd_config inside ``cprsub pickup confine``. A real
client then downloads a file, is refused an upload, and removes the file, and the
tracker's log file and the ledger show it. The script runs with an empty tmpfs on /run,
as a container starts, so it must make sshd's /run/sshd itself."""

from __future__ import annotations

import datetime as dt
import os
import pwd
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from cpr_abonnement.records import ledger
from cpr_abonnement.store.db import make_engine, upgrade
from support.pickup import (
    DATA_NAME,
    Account,
    assert_no_pnr,
    keygen,
    paramiko_sftp,
    register,
)
from support.servers import free_port
from support.sshd import PICKUP_CONFIG, adapt_config
from support.unprivileged import AIRFLOW_UID, as_airflow_user, can_switch

ENTRYPOINT = PICKUP_CONFIG.parent / "entrypoint.sh"
INCLUDE = Path(__file__).resolve().parents[2] / "include"

pytestmark = pytest.mark.skipif(
    not Path("/usr/sbin/sshd").exists() or not can_switch() or not shutil.which("unshare"),
    reason="needs OpenSSH's sshd, root (Unix accounts, setpriv) and unshare (a fresh /run)")


@pytest.fixture
def account_names():
    token = secrets.token_hex(3)  # Unix accounts are created for real: unique names
    return f"pea{token}", f"peb{token}"


@pytest.fixture
def base():
    Path("/srv").mkdir(exist_ok=True)  # sshd refuses a chroot below the world-writable /tmp
    folder = Path(tempfile.mkdtemp(prefix="cprsub-entrypoint-", dir="/srv"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _cprsub_on_path(bin_dir: Path) -> None:
    """``cprsub`` as the image has it: this checkout's CLI."""
    bin_dir.mkdir()
    script = bin_dir / "cprsub"
    script.write_text(f"#!/bin/sh\nPYTHONPATH={INCLUDE} exec {sys.executable} -c 'import sys; "
                      "from cpr_abonnement.cli import main; sys.exit(main(sys.argv[1:]))' "
                      "\"$@\"\n")
    script.chmod(0o755)


def _config(base: Path, srv: Path, keys: Path, port: int, db_url: str) -> Path:
    wrapper = base / "authorized-keys"
    wrapper.write_text(f"#!/bin/sh\nexec {base / 'bin' / 'cprsub'} pickup authorized-keys "
                       f"--db '{db_url}' \"$1\"\n")
    wrapper.chmod(0o755)
    config = base / "sshd_config"
    config.write_text(adapt_config(PICKUP_CONFIG.read_text(), {
        "Port": str(port), "ListenAddress": "127.0.0.1",
        "HostKey": str(keys / "ssh_host_ed25519_key"), "PidFile": str(base / "sshd.pid"),
        "AuthorizedKeysCommand": f"{wrapper} %u", "AuthorizedKeysCommandUser": "root",
        "ChrootDirectory": f"{srv}/%u",
    }))
    return config


def _with_fresh_run(argv: list[str]) -> list[str]:
    """``argv`` in a mount namespace of its own with an empty tmpfs on /run, as in a new
    container: sshd's privilege separation directory /run/sshd (a path compiled into
    sshd) is then missing unless the entrypoint makes it, whatever another test or the
    machine left in the real /run, which stays untouched."""
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
            'mount -t tmpfs -o mode=0755 tmpfs /run && exec "$@"', "fresh-run", *argv]


def _until(check, seconds: float = 30.0):
    deadline = time.monotonic() + seconds
    while not (found := check()):
        if time.monotonic() > deadline:
            return found
        time.sleep(0.1)
    return found


def deliver_as_worker(srv: Path, account: str, data: bytes, subscriber: str, base: Path
                      ) -> None:
    """The real pick-up delivery of a data file and its ``.metadata``, run as Airflow's
    workers run in compose (uid 50000, group 0): it writes through the group of ``IN/``
    and its temporary files in ``.partial``, never as root."""
    files = base / f"outbox-{account}"
    files.mkdir(mode=0o755)
    (files / DATA_NAME).write_bytes(data)
    (files / f"{DATA_NAME}.metadata").write_text(f"<Trigger>{account}</Trigger>")
    code = ("import sys; from pathlib import Path; "
            "from cpr_abonnement.delivery.base import DeliveryTarget; "
            "from cpr_abonnement.delivery.pickup import PickupDelivery; "
            "d = Path(sys.argv[1]); PickupDelivery().deliver("
            "[d / sys.argv[2], d / (sys.argv[2] + '.metadata')], "
            "DeliveryTarget('pickup', '', sys.argv[3]), subscriber=sys.argv[4])")
    subprocess.run(as_airflow_user([sys.executable, "-c", code, str(files), DATA_NAME,
                                    account, subscriber]),
                   check=True, capture_output=True, timeout=60,
                   env={**os.environ, "CPRSUB_PICKUP_ROOT": str(srv),
                        "PYTHONPATH": str(INCLUDE)})


def test_entrypoint_starts_tracked_sshd_with_accounts_and_keys(base, accounts, tmp_path,
                                                                account_names):
    engine = make_engine(f"sqlite:///{tmp_path / 'filters.db'}")
    upgrade(engine)
    uuids = register(engine, accounts)
    a = next(iter(accounts.values()))
    account_suffix = account_names[0][3:]
    created: list[str] = []
    srv, keys, etc, log = base / "pickup", base / "keys", base / "etc", base / "log" / "sftp.log"
    srv.mkdir(mode=0o700)
    keys.mkdir()
    _cprsub_on_path(base / "bin")
    port = free_port()
    env = {**os.environ, "PATH": f"{base / 'bin'}:{os.environ['PATH']}",
           "CPRSUB_DB_URL": str(engine.url), "CPRSUB_PICKUP_HOST_KEYS": str(keys),
           "CPRSUB_PICKUP_ETC": str(etc), "CPRSUB_PICKUP_SRV": str(srv),
           "CPRSUB_PICKUP_LOG": str(log), "CPRSUB_PICKUP_KEYS_GROUP": "root",
           "AIRFLOW_UID": str(AIRFLOW_UID), "CPRSUB_PICKUP_SYNC_SECONDS": "0.5",
           "CPRSUB_PICKUP_SSHD_CONFIG": str(_config(base, srv, keys, port, str(engine.url)))}
    stderr = (base / "entrypoint.err").open("wb")
    proc = subprocess.Popen(_with_fresh_run(["sh", str(ENTRYPOINT)]), env=env,
                            start_new_session=True, stderr=stderr)
    try:
        # an RSA 4096 host key and two CLI calls come first: allow a slow machine
        assert _until(lambda: _listening(port) or proc.poll() is not None, 300) and \
            proc.poll() is None, (base / "entrypoint.err").read_text()
        # what the entrypoint set up (its /run seen through its own mount namespace)
        privsep = Path(f"/proc/{proc.pid}/root/run/sshd").stat()
        assert (stat.S_IMODE(privsep.st_mode), privsep.st_uid) == (0o755, 0)
        for key in ("ssh_host_ed25519_key", "ssh_host_rsa_key"):
            assert stat.S_IMODE((keys / key).stat().st_mode) == 0o600
        assert (etc / "pickup.env").read_text() == f"CPRSUB_DB_URL={engine.url}\n"
        assert stat.S_IMODE((etc / "pickup.env").stat().st_mode) == 0o640
        assert stat.S_IMODE(srv.stat().st_mode) == 0o755 and srv.stat().st_uid == 0
        partial = (srv / ".partial").stat()  # the delivery's, outside every chroot
        assert (stat.S_IMODE(partial.st_mode), partial.st_uid, partial.st_gid) == \
            (0o770, AIRFLOW_UID, 0)
        for name in accounts:
            inbox = srv / name / "IN"
            assert inbox.stat().st_uid == pwd.getpwnam(name).pw_uid
            assert (srv / name).stat().st_uid == 0
        assert _until(lambda: all((srv / n / "dev" / "log").is_socket() for n in accounts))

        deliver_as_worker(srv, a.name, a.data, uuids[a.name], base)
        transport, sftp = paramiko_sftp(port, a.name, a.pkey)
        try:
            assert sorted(sftp.listdir("IN")) == [DATA_NAME, f"{DATA_NAME}.metadata"]
            with sftp.open(f"IN/{DATA_NAME}") as fh:
                assert fh.read() == a.data
            # the tracker measures a complete read against the file, so wait for it
            assert _until(lambda: _entry(engine, uuids[a.name]).picked_up_at is not None)
            with pytest.raises(PermissionError):  # sshd runs in the Landlock sandbox
                sftp.open("IN/new", "w")
            assert not (srv / a.name / "IN" / "new").exists()
            sftp.remove(f"IN/{DATA_NAME}")
        finally:
            transport.close()
        entry = _until(lambda: (e := _entry(engine, uuids[a.name])).removed_at and e)
        assert entry and entry.removed_by == "subscriber"
        text = log.read_text()
        assert f'IN/{DATA_NAME}" flags READ' in text  # paramiko sends "IN/…", sftp "/IN/…"
        assert f'remove name "IN/{DATA_NAME}"' in text
        assert_no_pnr(text)
        assert "confined (Landlock ABI" in (base / "entrypoint.err").read_text()

        # Issue 22 item 2: an IT system onboarded for pick-up while the server runs can
        # log in and gets its files, with no restart.
        late = Account(f"pec{account_suffix}", tmp_path / "late",
                       keygen(tmp_path / "late", "ed25519"), b"persons of a late one\n" * 50)
        created.append(late.name)
        late_uuid = register(engine, {late.name: late})[late.name]
        assert _until(lambda: (srv / late.name / "dev" / "log").is_socket(), 30)
        deliver_as_worker(srv, late.name, late.data, late_uuid, base)
        transport, sftp = paramiko_sftp(port, late.name, late.pkey)
        try:
            with sftp.open(f"IN/{DATA_NAME}") as fh:
                assert fh.read() == late.data
        finally:
            transport.close()
        assert _until(lambda: _entry(engine, late_uuid).picked_up_at is not None)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # sshd and the tracker it was started with
        proc.wait(10)
        stderr.close()
        for name in [*accounts, *created]:
            subprocess.run(["userdel", name], check=False, capture_output=True)


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _entry(engine, uuid: str) -> ledger.LedgerEntry:
    return next(e for e in ledger.entries(engine, "431101", dt.date(2026, 1, 5))
                if e.subscriber_uuid == uuid)
