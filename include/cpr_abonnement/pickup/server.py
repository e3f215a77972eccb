"""The pick-up SFTP server for one machine (``cprsub pickup serve``): the demo and tests.

Production runs OpenSSH's sshd (``deploy/pickup/``); this asyncssh server applies the
same rules so one machine behaves like production:

* public-key login only; the keys of a login are looked up per attempt (the filter
  database's pick-up accounts), so adding, rotating or removing a key, or switching a
  subscriber to push, takes effect at the next login;
* each login sees only its own folder ``<root>/<account>`` as ``/``; ``..``, absolute
  paths and symbolic links are resolved on the server and refused when they leave it;
* read, list and remove only: an open for write/create/append/truncate, rename, mkdir,
  rmdir, setstat, symlink, link and readlink are refused before touching the disk;
* every open, complete download and removal is logged (file names only, PNR-shaped
  text scrubbed) and a complete download or removal of a data file in ``IN/`` is
  reported to ``events`` (the ledger's :func:`record_pickup_event`);
* an address that fails :data:`MAX_FAILURES` logins in a row is refused at connect for
  :data:`BLOCK_SECONDS`, and one connection may offer at most :data:`MAX_KEYS` keys, so
  a brute-force run is bounded and the server keeps serving everyone else.

It runs on its own thread and event loop (like :mod:`cpr_abonnement.dev.devsftp`), so
synchronous callers (tests, the demo) can start and stop it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import errno
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncssh
from asyncssh import SFTPAttrs, SFTPNoSuchFile, SFTPPermissionDenied

from cpr_abonnement.cpr_number import scrub
from cpr_abonnement.pickup import INBOX
from cpr_abonnement.sshserver import BackgroundSshServer

log = logging.getLogger(__name__)

#: A login name the server will map to a folder (no ``/``, no leading dot).
ACCOUNT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
#: Failed logins in a row from one address before it is refused at connect.
MAX_FAILURES = 10
#: How long such an address is refused.
BLOCK_SECONDS = 300.0
#: Keys one connection may offer (OpenSSH's MaxAuthTries is 6).
MAX_KEYS = 6
METADATA_SUFFIX = ".metadata"

KeyLookup = Callable[[str], list[str]]
#: ``events(account, file_name, event, at) -> bool`` (False: no ledger row matched).
EventSink = Callable[[str, str, str, dt.datetime], bool]


class _ScrubPnrs(logging.Filter):
    """asyncssh logs client-chosen text (the login name, paths) at INFO: mask any PNR in
    it before a handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


def _scrub_asyncssh_logs() -> None:
    for name in ("asyncssh", "asyncssh.sftp"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _ScrubPnrs) for f in logger.filters):
            logger.addFilter(_ScrubPnrs())


def _shown(path: str | bytes) -> str:
    """A client-supplied path as it may appear in a log line: decoded, PNRs masked."""
    text = path.decode("utf-8", "replace") if isinstance(path, bytes) else path
    return scrub(text)


# -- brute force ------------------------------------------------------------------------
@dataclass
class FailureLimiter:
    """Counts failed logins per client address; blocks an address after a run of them.

    A success resets the address. Keyed by address only (not by login name) because a
    guesser varies the name; the cost is that one NAT'ed address that guesses wrong
    ``max_failures`` times blocks its neighbours for ``block_seconds``.
    """

    max_failures: int = MAX_FAILURES
    block_seconds: float = BLOCK_SECONDS
    clock: Callable[[], float] = time.monotonic
    _failures: dict[str, int] = field(default_factory=dict)
    _blocked_until: dict[str, float] = field(default_factory=dict)

    def blocked(self, address: str) -> bool:
        until = self._blocked_until.get(address)
        if until is None:
            return False
        if self.clock() >= until:
            del self._blocked_until[address]
            self._failures.pop(address, None)
            return False
        return True

    def failed(self, address: str) -> None:
        count = self._failures.get(address, 0) + 1
        self._failures[address] = count
        if count >= self.max_failures and address not in self._blocked_until:
            self._blocked_until[address] = self.clock() + self.block_seconds
            log.warning("pickup: %s blocked for %.0f s after %d failed logins in a row",
                        address, self.block_seconds, count)

    def succeeded(self, address: str) -> None:
        self._failures.pop(address, None)


# -- authentication ---------------------------------------------------------------------
def _key_blob(line: str) -> bytes | None:
    """The public key of an OpenSSH key line, or None when the line is not one."""
    try:
        return asyncssh.import_public_key(line).public_data
    except (asyncssh.KeyImportError, ValueError):
        return None


#: Client key types accepted (DSA is not: 1024-bit and SHA-1 only).
KEY_TYPES = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
             "ecdsa-sha2-nistp521", "ssh-rsa")
MIN_RSA_BITS = 2048


def _acceptable_key(key: asyncssh.SSHKey) -> bool:
    """Whether a key's type and size are accepted at all, whatever the database says
    (the registration refuses the others too; this is the server's own line)."""
    kind = key.get_algorithm()
    if kind not in KEY_TYPES:
        return False
    return kind != "ssh-rsa" or key.pyca_key.key_size >= MIN_RSA_BITS


class _PickupAuth(asyncssh.SSHServer):
    """Public-key authentication against the keys registered for the login name."""

    def __init__(self, keys: KeyLookup, limiter: FailureLimiter) -> None:
        self._keys = keys
        self._limiter = limiter
        self._conn: asyncssh.SSHServerConnection | None = None
        self._address = "?"
        self._offered = 0
        self._authenticated = False
        self._failure_counted = False

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._address = (conn.get_extra_info("peername") or ("?",))[0]
        if self._limiter.blocked(self._address):
            log.info("pickup: connection from blocked %s refused", self._address)
            conn.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._authenticated and self._offered:
            self._failed()  # e.g. left after offering a key it could not sign with

    def _failed(self) -> None:
        """Count this connection as one failed login, however many keys it offered or
        refusals it met: MAX_FAILURES is documented as failed logins (connections).
        Counted at the first refusal, before the client hears it, so its next connection
        already finds the address blocked."""
        if not self._failure_counted:
            self._failure_counted = True
            self._limiter.failed(self._address)

    def begin_auth(self, username: str) -> bool:
        return True  # every login must authenticate

    def password_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False

    def host_based_auth_supported(self) -> bool:
        return False

    def public_key_auth_supported(self) -> bool:
        return True

    async def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        self._offered += 1
        if self._offered > MAX_KEYS or self._limiter.blocked(self._address):
            log.info("pickup: login %s from %s refused: too many attempts",
                     _shown(username), self._address)
            self._failed()
            if self._conn is not None:
                self._conn.close()
            return False
        if not _acceptable_key(key):
            log.info("pickup: login %s from %s refused: %s key not accepted",
                     _shown(username), self._address, key.get_algorithm())
            self._failed()
            return False
        allowed = ACCOUNT_NAME.fullmatch(username) is not None and key.public_data in {
            _key_blob(line) for line in await asyncio.to_thread(self._keys, username)}
        if not allowed:
            log.info("pickup: login %s from %s refused: key %s not registered",
                     _shown(username), self._address, key.get_fingerprint())
            self._failed()
        return allowed

    def auth_completed(self) -> None:
        self._authenticated = True
        self._limiter.succeeded(self._address)
        user = self._conn.get_extra_info("username") if self._conn else "?"
        log.info("pickup: login %s from %s accepted", user, self._address)


# -- the file system rules --------------------------------------------------------------
class _Download:
    """One open file: which byte ranges the client has read, to detect a complete download."""

    def __init__(self, handle, path: str, size: int) -> None:
        self.handle = handle
        self.path = path
        self.size = size
        self.ranges: list[tuple[int, int]] = []
        self.complete = size == 0

    def read(self, offset: int, data: bytes) -> None:
        if data:
            self.ranges.append((offset, offset + len(data)))
        self.complete = self.complete or self._covered() >= self.size

    def _covered(self) -> int:
        """End of the prefix ``[0, end)`` the reads so far cover (reads may come out of
        order: paramiko prefetches)."""
        end = 0
        for start, stop in sorted(self.ranges):
            if start > end:
                break
            end = max(end, stop)
        self.ranges = [(0, end)] + [r for r in self.ranges if r[0] > end]
        return end


class PickupSftp(asyncssh.SFTPServer):
    """Read, list and remove inside the account's folder; everything else refused."""

    def __init__(self, chan: asyncssh.SSHServerChannel, *, root: Path,
                 events: EventSink | None) -> None:
        self.account = chan.get_extra_info("username")
        self.home = (root / self.account).resolve()
        (self.home / INBOX).mkdir(parents=True, exist_ok=True)
        self._events = events
        super().__init__(chan, chroot=str(self.home).encode())

    # paths: resolve on the server, refuse what leaves the folder
    def map_path(self, path: bytes) -> bytes:
        real = os.path.realpath(os.fsdecode(super().map_path(path)))
        home = str(self.home)
        if real != home and not real.startswith(home + os.sep):
            self._refuse("path outside the folder", path)
        return os.fsencode(real)

    def _refuse(self, what: str, path: bytes | str = b"") -> None:
        log.warning("pickup: %s refused for %s: %s", what, self.account, _shown(path))
        raise SFTPPermissionDenied(f"{what}: read, list and remove only")

    def _client_path(self, local: str | bytes) -> str:
        local = local.decode() if isinstance(local, bytes) else local
        return "/" + os.path.relpath(local, self.home)

    def _data_file(self, local: bytes) -> str | None:
        """The file name when ``local`` is a data file directly in ``IN/``, else None."""
        rel = Path(os.path.relpath(local.decode(), self.home))
        if rel.parent == Path(INBOX) and not rel.name.endswith(METADATA_SUFFIX):
            return rel.name
        return None

    async def _record(self, local: bytes, event: str) -> None:
        name = self._data_file(local)
        if name is None or self._events is None:
            return
        matched = await asyncio.to_thread(self._events, self.account, name, event,
                                          dt.datetime.now(dt.UTC).replace(tzinfo=None))
        if not matched:
            log.warning("pickup: %s of %s by %s matches no ledger row", event, name,
                        self.account)

    # allowed
    def open(self, path: bytes, pflags: int, attrs: SFTPAttrs):
        if pflags & ~asyncssh.FXF_READ:
            self._refuse("open for writing", path)
        local = self.map_path(path)
        try:
            fd = os.open(local, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                self._refuse("symbolic link", path)
            raise
        handle = os.fdopen(fd, "rb", buffering=0)
        size = os.fstat(fd).st_size
        log.info("pickup: open %s %s (%d bytes)", self.account, self._client_path(local),
                 size)
        return _Download(handle, local.decode(), size)

    async def read(self, file_obj: _Download, offset: int, size: int) -> bytes:
        was_complete = file_obj.complete
        file_obj.handle.seek(offset)
        data = file_obj.handle.read(size)
        file_obj.read(offset, data)
        if file_obj.complete and not was_complete:
            log.info("pickup: downloaded %s %s (%d bytes)", self.account,
                     self._client_path(file_obj.path), file_obj.size)
            await self._record(file_obj.path.encode(), "downloaded")
        return data

    def close(self, file_obj: _Download) -> None:
        file_obj.handle.close()

    def fstat(self, file_obj: _Download):
        return os.fstat(file_obj.handle.fileno())

    async def remove(self, path: bytes) -> None:
        local = self.map_path(path)
        if not os.path.isfile(local) or os.path.islink(local):
            raise SFTPNoSuchFile("no such file")
        os.remove(local)
        log.info("pickup: removed %s %s", self.account, self._client_path(local))
        await self._record(local, "removed")

    # refused
    def write(self, file_obj, offset, data):
        self._refuse("write")

    def setstat(self, path, attrs):
        self._refuse("setstat", path)

    def lsetstat(self, path, attrs):
        self._refuse("setstat", path)

    def fsetstat(self, file_obj, attrs):
        self._refuse("setstat")

    def mkdir(self, path, attrs):
        self._refuse("mkdir", path)

    def rmdir(self, path):
        self._refuse("rmdir", path)

    def rename(self, oldpath, newpath):
        self._refuse("rename", oldpath)

    def posix_rename(self, oldpath, newpath):
        self._refuse("rename", oldpath)

    def symlink(self, oldpath, newpath):
        self._refuse("symlink", newpath)

    def link(self, oldpath, newpath):
        self._refuse("link", newpath)

    def readlink(self, path):
        self._refuse("readlink", path)

    def lock(self, file_obj, offset, length, flags):
        self._refuse("lock")


# -- the server -------------------------------------------------------------------------
#: Key exchange, ciphers and MACs offered: the modern subset, as in deploy/pickup/sshd_config.
KEX_ALGS = ["sntrup761x25519-sha512@openssh.com", "curve25519-sha256",
            "curve25519-sha256@libssh.org", "diffie-hellman-group16-sha512"]
CIPHERS = ["chacha20-poly1305@openssh.com", "aes256-gcm@openssh.com",
           "aes128-gcm@openssh.com", "aes256-ctr", "aes128-ctr"]
MACS = ["hmac-sha2-512-etm@openssh.com", "hmac-sha2-256-etm@openssh.com",
        "hmac-sha2-512", "hmac-sha2-256"]
#: Client key signatures accepted: no ssh-dss, no SHA-1 ``ssh-rsa`` signatures.
SIGNATURE_ALGS = ["ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
                  "ecdsa-sha2-nistp521", "rsa-sha2-512", "rsa-sha2-256"]


class PickupServer(BackgroundSshServer):
    """``with PickupServer(root, host_key_file, keys=..., events=...) as server: ...``"""

    def __init__(self, root: str | Path, *, keys: KeyLookup, events: EventSink | None = None,
                 host: str = "127.0.0.1", port: int = 0,
                 host_key_file: str | Path | None = None,
                 limiter: FailureLimiter | None = None) -> None:
        super().__init__(thread_name="pickup-sftp", port=port, host_key_file=host_key_file)
        self.root = Path(root).resolve()
        self.keys = keys
        self.events = events
        self.host = host
        self.limiter = limiter or FailureLimiter()

    def _algorithms(self) -> dict:
        def available(wanted: list[str], supported: list[bytes]) -> list[str]:
            have = {a.decode() for a in supported}
            return [a for a in wanted if a in have]

        return dict(
            kex_algs=available(KEX_ALGS, asyncssh.kex.get_kex_algs()),
            encryption_algs=available(CIPHERS, asyncssh.encryption.get_encryption_algs()),
            mac_algs=available(MACS, asyncssh.mac.get_mac_algs()),
            signature_algs=SIGNATURE_ALGS)

    def start(self) -> PickupServer:
        _scrub_asyncssh_logs()
        self.root.mkdir(parents=True, exist_ok=True)

        async def listen():
            return await asyncssh.listen(
                self.host, self.requested_port, server_host_keys=[self.host_key],
                server_factory=lambda: _PickupAuth(self.keys, self.limiter),
                sftp_factory=lambda chan: PickupSftp(chan, root=self.root,
                                                     events=self.events),
                allow_scp=False, agent_forwarding=False, x11_forwarding=False,
                allow_pty=False,
                login_timeout=30, **self._algorithms())

        self._listen(listen)
        log.info("pickup: SFTP on %s:%d, root %s", self.host, self.port, self.root)
        return self
