"""OpenSSH's sshd on a free 127.0.0.1 port with its own host key: the server most
subscribers run. Key login for the current user; sftp via internal-sftp."""

from __future__ import annotations

import getpass
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from support.servers import free_port


def _keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
                   check=True)
    return path.with_suffix(".pub").read_text().strip()


@contextmanager
def openssh_server(workdir: Path) -> Iterator[dict]:
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    if not Path(sshd).exists():
        raise RuntimeError("OpenSSH's sshd is not installed (scripts/test.sh installs it)")
    workdir.mkdir(parents=True, exist_ok=True)
    host_pub = _keygen(workdir / "host_ed25519")
    client_pub = _keygen(workdir / "client_ed25519")
    (workdir / "authorized_keys").write_text(client_pub + "\n")
    os.chmod(workdir / "authorized_keys", 0o600)
    Path("/run/sshd").mkdir(exist_ok=True)  # privilege separation directory
    port = free_port()
    config = workdir / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {workdir / 'host_ed25519'}",
        f"AuthorizedKeysFile {workdir / 'authorized_keys'}", f"PidFile {workdir / 'sshd.pid'}",
        "PasswordAuthentication no", "KbdInteractiveAuthentication no",
        "PubkeyAuthentication yes", "PermitRootLogin prohibit-password", "StrictModes no",
        "UsePAM no", "Subsystem sftp internal-sftp", "LogLevel ERROR",
    ]) + "\n")
    proc = subprocess.Popen([sshd, "-D", "-e", "-f", str(config)], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"sshd did not start: {proc.stderr.read()!r}") from None
                time.sleep(0.05)
        yield {
            "port": port,
            "connection": json.dumps({
                "conn_type": "sftp", "host": "127.0.0.1", "port": port,
                "login": getpass.getuser(),
                "extra": {"host_key": " ".join(host_pub.split()[:2]),
                          "private_key": (workdir / "client_ed25519").read_text(),
                          "look_for_keys": False},
            }),
        }
    finally:
        proc.terminate()
        proc.wait(10)


# -- the pick-up server in its production shape ------------------------------------------
PICKUP_CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "pickup" / "sshd_config"


def adapt_config(text: str, changes: dict[str, str]) -> str:
    """deploy/pickup/sshd_config with some keywords' values replaced (all their lines:
    the first replacement is kept, later lines of that keyword dropped)."""
    out, done = [], set()
    for line in text.splitlines():
        word = line.split(" ", 1)[0]
        if word in changes:
            if word not in done:
                out.append(f"{word} {changes[word]}")
                done.add(word)
            continue
        out.append(line)
    return "\n".join(out) + "\n"


@contextmanager
def pickup_sshd(db_url: str, accounts: list[str], *, logs: list[str]) -> Iterator[dict]:
    """sshd with deploy/pickup/sshd_config on a free 127.0.0.1 port.

    Adapted for a test machine: its own host key, port and pid file; the chroots under
    a fresh root-owned ``/srv/cprsub-pickup-*`` (sshd refuses a chroot below the
    world-writable /tmp); the AuthorizedKeysCommand a wrapper running this checkout's
    ``cprsub pickup authorized-keys --db <db_url>`` as root (the venv's interpreter
    lives under /root, which a service user cannot reach). A Unix account per pick-up
    account (``useradd``, removed afterwards), as the container's entrypoint creates.
    internal-sftp's log lines (via each chroot's ``dev/log``) are appended to ``logs``.
    sshd runs inside ``cprsub pickup confine`` (Landlock), as the entrypoint runs it.
    """
    import sys
    import tempfile

    from cpr_abonnement.pickup.log import SftpLogCollector
    from cpr_abonnement.pickup.unix import ensure_account

    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    Path("/srv").mkdir(exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="cprsub-pickup-", dir="/srv"))
    os.chmod(base, 0o755)
    root = base / "pickup"
    root.mkdir(mode=0o755)
    created = []
    try:
        for account in accounts:
            ensure_account(root, account)  # what `cprsub pickup sync-accounts` does
            created.append(account)
        wrapper = base / "authorized-keys"
        include = Path(__file__).resolve().parents[2] / "include"
        wrapper.write_text(
            f"#!/bin/sh\nPYTHONPATH={include} exec {sys.executable} -c 'import sys; "
            f"from cpr_abonnement.cli import main; sys.exit(main(sys.argv[1:]))' "
            f"pickup authorized-keys --db '{db_url}' \"$1\"\n")
        wrapper.chmod(0o755)
        host_pub = _keygen(base / "host_ed25519")
        port = free_port()
        # sshd's own files in a folder of their own: the sandbox lets nothing new appear
        # in the folders on the way to the root (as /run and /var/log in the image)
        run = base / "run"
        run.mkdir()
        config = base / "sshd_config"
        config.write_text(adapt_config(PICKUP_CONFIG.read_text(), {
            "Port": str(port), "ListenAddress": "127.0.0.1",
            "HostKey": str(base / "host_ed25519"), "PidFile": str(run / "sshd.pid"),
            "AuthorizedKeysCommand": f"{wrapper} %u", "AuthorizedKeysCommandUser": "root",
            "ChrootDirectory": f"{root}/%u",
        }))
        Path("/run/sshd").mkdir(exist_ok=True)
        sshd_log = run / "sshd.log"
        with SftpLogCollector(root, accounts, logs.append):
            # as the entrypoint starts it: confined, so nothing can be created beneath root
            confine = [sys.executable, "-c", "import sys; from cpr_abonnement.cli import "
                       "main; sys.exit(main(sys.argv[1:]))", "pickup", "confine", "--root",
                       str(root), "--"]
            proc = subprocess.Popen([*confine, sshd, "-D", "-E", str(sshd_log), "-f",
                                     str(config)], stderr=subprocess.PIPE,
                                    env={**os.environ, "PYTHONPATH": str(include)})
            try:
                _wait_for(port, proc)
                yield {"port": port, "root": root, "host_key": " ".join(host_pub.split()[:2]),
                       "sshd_log": sshd_log}
            finally:
                proc.terminate()
                proc.wait(10)
    finally:
        for account in created:
            subprocess.run(["userdel", account], check=False, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def _wait_for(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sshd did not start: {proc.stderr.read()!r}") from None
            time.sleep(0.05)
