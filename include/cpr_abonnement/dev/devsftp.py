"""An embedded SFTP server for one machine: the demo's subscribers and the tests.

asyncssh serves a folder (chrooted) on 127.0.0.1 with password or key login and its
own Ed25519 host key; :meth:`EmbeddedSftpServer.airflow_connection` gives the matching
Airflow connection with the host key pinned, so delivery runs with host-key checking
on, exactly as against a real server. It runs on its own thread and event loop
because the SFTP provider's hook is synchronous (paramiko).
"""

from __future__ import annotations

import json
from pathlib import Path

import asyncssh

from cpr_abonnement.onboarding.push_connection import SSH_OPTIONS
from cpr_abonnement.sshserver import BackgroundSshServer, run_until_interrupted


class _Auth(asyncssh.SSHServer):
    def __init__(self, users: dict[str, str]) -> None:
        self._users = users

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return self._users.get(username) == password


class EmbeddedSftpServer(BackgroundSshServer):
    """``with EmbeddedSftpServer(root, {"user": "password"}) as server: ...``"""

    def __init__(self, root: str | Path, users: dict[str, str], *, port: int = 0,
                 host_key_file: str | Path | None = None) -> None:
        super().__init__(thread_name="embedded-sftp", port=port, host_key_file=host_key_file)
        self.root = Path(root)
        self.users = users

    def start(self) -> EmbeddedSftpServer:
        self.root.mkdir(parents=True, exist_ok=True)

        async def listen():
            return await asyncssh.listen(
                "127.0.0.1", self.requested_port, server_host_keys=[self.host_key],
                server_factory=lambda: _Auth(self.users),
                sftp_factory=lambda chan: asyncssh.SFTPServer(chan, chroot=str(self.root)),
                allow_scp=False)

        self._listen(listen)
        return self

    def airflow_connection(self, login: str) -> str:
        """JSON for ``AIRFLOW_CONN_<ID>`` pointing at this server, host key pinned, with
        the SSH options a registration writes."""
        return json.dumps({
            "conn_type": "sftp", "host": "127.0.0.1", "port": self.port, "login": login,
            "password": self.users[login],
            "extra": {"host_key": self.host_key_line, **SSH_OPTIONS},
        })


def main(argv: list[str] | None = None) -> int:
    """Serve a folder over SFTP until interrupted (for ``airflow standalone`` demos)."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m cpr_abonnement.devsftp")
    ap.add_argument("--root", required=True)
    ap.add_argument("--port", type=int, default=2222)
    ap.add_argument("--host-key", required=True, help="kept so the pinned key stays valid")
    ap.add_argument("--user", required=True, metavar="LOGIN:PASSWORD")
    args = ap.parse_args(argv)
    login, _, password = args.user.partition(":")
    with EmbeddedSftpServer(args.root, {login: password}, port=args.port,
                            host_key_file=args.host_key) as server:
        print(f"SFTP on 127.0.0.1:{server.port}, root {args.root}, host key "
              f"{server.host_key_line}", flush=True)
        return run_until_interrupted()


if __name__ == "__main__":
    raise SystemExit(main())
