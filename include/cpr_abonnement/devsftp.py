"""An embedded SFTP server for one machine: the demo's subscribers and the tests.

asyncssh serves a folder (chrooted) on 127.0.0.1 with password or key login and its
own Ed25519 host key; :meth:`EmbeddedSftpServer.airflow_connection` gives the matching
Airflow connection with the host key pinned, so delivery runs with host-key checking
on, exactly as against a real server. It runs on its own thread and event loop
because the SFTP provider's hook is synchronous (paramiko).
"""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import asyncssh


def _host_key(path: Path | None) -> asyncssh.SSHKey:
    """A fresh Ed25519 key, or the one kept in ``path`` (so a pinned key stays valid)."""
    if path is not None and path.exists():
        return asyncssh.read_private_key(str(path))
    key = asyncssh.generate_private_key("ssh-ed25519")
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        key.write_private_key(str(path))
        path.chmod(0o600)
    return key


class _Auth(asyncssh.SSHServer):
    def __init__(self, users: dict[str, str]) -> None:
        self._users = users

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return self._users.get(username) == password


class EmbeddedSftpServer:
    """``with EmbeddedSftpServer(root, {"user": "password"}) as server: ...``"""

    def __init__(self, root: str | Path, users: dict[str, str], *, port: int = 0,
                 host_key_file: str | Path | None = None) -> None:
        self.root = Path(root)
        self.users = users
        self.requested_port = port
        self.port = 0
        self.host_key = _host_key(Path(host_key_file) if host_key_file else None)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="embedded-sftp")
        self._acceptor = None

    @property
    def host_key_line(self) -> str:
        """``ssh-ed25519 AAAA...``: the form the SFTP connection's ``host_key`` extra takes."""
        return " ".join(self.host_key.export_public_key("openssh").decode().split()[:2])

    def start(self) -> EmbeddedSftpServer:
        self.root.mkdir(parents=True, exist_ok=True)
        self._thread.start()

        async def listen():
            return await asyncssh.listen(
                "127.0.0.1", self.requested_port, server_host_keys=[self.host_key],
                server_factory=lambda: _Auth(self.users),
                sftp_factory=lambda chan: asyncssh.SFTPServer(chan, chroot=str(self.root)),
                allow_scp=False)

        self._acceptor = asyncio.run_coroutine_threadsafe(listen(), self._loop).result(10)
        self.port = self._acceptor.get_port()
        return self

    def stop(self) -> None:
        if self._acceptor is not None:
            async def close():
                self._acceptor.close()
                await self._acceptor.wait_closed()

            asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
            self._acceptor = None
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._loop.close()

    def __enter__(self) -> EmbeddedSftpServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def airflow_connection(self, login: str) -> str:
        """JSON for ``AIRFLOW_CONN_<ID>`` pointing at this server, host key pinned."""
        return json.dumps({
            "conn_type": "sftp", "host": "127.0.0.1", "port": self.port, "login": login,
            "password": self.users[login],
            "extra": {"host_key": self.host_key_line, "look_for_keys": False},
        })


def main(argv: list[str] | None = None) -> int:
    """Serve a folder over SFTP until interrupted (for ``airflow standalone`` demos)."""
    import argparse
    import time

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
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    raise SystemExit(main())
