"""An asyncssh server running on an event loop of its own thread, for synchronous callers.

The pick-up server (shipped) and the embedded push target (demo and tests) differ in
what they serve; how they start, report their port and stop is this one class.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Self

import asyncssh

from cpr_abonnement.errors import SshProbeFailed


def host_key(path: Path | None) -> asyncssh.SSHKey:
    """A fresh Ed25519 key, or the one kept in ``path`` (so a pinned key stays valid)."""
    if path is not None and path.exists():
        return asyncssh.read_private_key(str(path))
    key = asyncssh.generate_private_key("ssh-ed25519")
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        key.write_private_key(str(path))
        path.chmod(0o600)
    return key


class BackgroundSshServer:
    """Subclasses call :meth:`_listen` from their ``start`` with the coroutine that opens
    their acceptor; ``with server:`` starts and stops it."""

    def __init__(self, *, thread_name: str, port: int,
                 host_key_file: str | Path | None) -> None:
        self.requested_port = port
        self.port = 0
        self.host_key = host_key(Path(host_key_file) if host_key_file else None)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name=thread_name)
        self._acceptor: Any = None

    @property
    def host_key_line(self) -> str:
        """``ssh-ed25519 AAAA...``: the form the SFTP connection's ``host_key`` extra takes."""
        return " ".join(self.host_key.export_public_key("openssh").decode().split()[:2])

    def _listen(self, listen: Callable[[], Awaitable[Any]]) -> None:
        self._thread.start()
        self._acceptor = asyncio.run_coroutine_threadsafe(listen(), self._loop).result(10)
        self.port = self._acceptor.get_port()

    def start(self) -> Self:
        raise NotImplementedError

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

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()



def run_until_interrupted() -> int:
    """Keep the process alive for a background server's thread until Ctrl-C (the
    ``serve`` commands); the exit status, 0."""
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0


def probe(host: str, port: int, *, timeout: float = 10.0) -> str:
    """A health check of any SSH server (the pick-up server, the development SFTP
    server): read its banner and complete a key exchange, then hang up without logging
    in. The host key's SHA-256 fingerprint on success; :class:`SshProbeFailed` naming
    the step otherwise. A TCP connect alone also succeeds for a server whose every slot
    is held by unauthenticated connections, or which accepts and never speaks."""
    import paramiko

    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise SshProbeFailed(f"{host}:{port}: no TCP connection ({exc})") from exc
    transport = paramiko.Transport(sock)
    transport.banner_timeout = transport.handshake_timeout = timeout
    try:
        transport.start_client(timeout=timeout)
        return transport.get_remote_server_key().fingerprint
    except (paramiko.SSHException, EOFError, OSError) as exc:
        raise SshProbeFailed(f"{host}:{port}: no SSH banner and key exchange "
                             f"({type(exc).__name__}: {exc})") from exc
    finally:
        transport.close()
