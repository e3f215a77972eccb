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
