"""Pick-up tracking for OpenSSH: sshd's internal-sftp log lines into the ledger.

internal-sftp (``-l INFO``) logs per session::

    internal-sftp[812]: session opened for local user kommune-a from [10.0.0.5]
    internal-sftp[812]: open "/IN/D260105.L431101" flags READ mode 0666
    internal-sftp[812]: close "/IN/D260105.L431101" bytes read 110006 written 0
    internal-sftp[812]: remove name "/IN/D260105.L431101"

Paths are the chroot's, so the account is the session's (by process id). A close
counts as a complete download when the bytes read reach the file's size (taken from
the pick-up storage when the line is read: run the ingestion continuously, as
``cprsub pickup track`` does; a file already gone is reported and not counted).

In a chroot internal-sftp reaches syslog only through a ``dev/log`` socket inside the
account's folder; :class:`SftpLogCollector` listens on those sockets, writes each line
with its receive time to a log file (the audit trail) and feeds the ingestion.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine

from cpr_abonnement.cpr_number import scrub

log = logging.getLogger(__name__)

_TIME = re.compile(r"^(?:<\d+>)?(?P<iso>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?"
                   r"(?:Z|[+-]\d\d:?\d\d)?)?\s*")
_SOURCE = re.compile(r"(?:internal-sftp|sftp-server|sshd(?:-session)?)\[(?P<pid>\d+)\]:\s*"
                     r"(?P<message>.*)$")
_OPENED = re.compile(r"session opened for local user (?P<user>\S+) from")
_OPEN = re.compile(r'open "(?P<path>[^"]*)" flags (?P<flags>\S+)')
_CLOSE = re.compile(r'close "(?P<path>[^"]*)" bytes read (?P<read>\d+) written (?P<written>\d+)')
_REMOVE = re.compile(r'remove name "(?P<path>[^"]*)"')
_CLOSED = re.compile(r"session closed for local user")
#: internal-sftp's names of the open flags that write or create.
_WRITING = {"WRITE", "APPEND", "CREATE", "TRUNCATE", "EXCL"}

#: ``record(account, file_name, event, at) -> bool`` (the ledger's record_pickup_event).
Recorder = Callable[[str, str, str, dt.datetime], bool]


@dataclass
class IngestResult:
    lines: int = 0
    downloaded: int = 0
    removed: int = 0
    unmatched: int = 0
    incomplete: int = 0
    #: "<account>/<path>" of each open for writing or creating (refused writes; an
    #: empty file may remain: :mod:`cpr_abonnement.pickup.strays`).
    uploads: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{self.lines} line(s): {self.downloaded} download(s) and {self.removed} "
                f"removal(s) recorded, {self.unmatched} without a ledger row, "
                f"{self.incomplete} partial or unmeasurable read(s), "
                f"{len(self.uploads)} open(s) for writing")


@dataclass
class SftpLogIngester:
    """Turns internal-sftp lines into pick-up events; feed it lines in order."""

    record: Recorder
    root: Path | None = None
    result: IngestResult = field(default_factory=IngestResult)
    _sessions: dict[str, str] = field(default_factory=dict)

    def feed(self, line: str, *, received: dt.datetime | None = None) -> None:
        self.result.lines += 1
        stamp = _TIME.match(line)
        at = _parse_time(stamp.group("iso")) if stamp and stamp.group("iso") else None
        at = at or received or dt.datetime.now(dt.UTC)
        found = _SOURCE.search(line)
        if not found:
            return
        pid, message = found.group("pid"), found.group("message")
        if m := _OPENED.match(message):
            self._sessions[pid] = m.group("user")
        elif _CLOSED.match(message):
            self._sessions.pop(pid, None)
        elif (m := _CLOSE.match(message)) and pid in self._sessions:
            self._closed(self._sessions[pid], m.group("path"), int(m.group("read")), at)
        elif (m := _REMOVE.match(message)) and pid in self._sessions:
            self._event(self._sessions[pid], m.group("path"), "removed", at)
        elif (m := _OPEN.match(message)) and pid in self._sessions:
            self._opened(self._sessions[pid], m.group("path"), m.group("flags"))

    def _opened(self, account: str, path: str, flags: str) -> None:
        """An open for writing or creating is an upload attempt: warn at once."""
        if not _WRITING & set(flags.split(",")):
            return
        self.result.uploads.append(f"{account}/{scrub(path.lstrip('/'))}")
        log.warning("pickup log: account %s tried to open %s for writing (flags %s); "
                    "uploads are refused", account, scrub(path), flags)

    def _closed(self, account: str, path: str, read: int, at: dt.datetime) -> None:
        size = self._size(account, path)
        if size is None or read < size:
            self.result.incomplete += read > 0
            if read:
                log.info("pickup log: %s read %d of %s bytes of %s: not a complete "
                         "download", account, read, "?" if size is None else size,
                         scrub(path))
            return
        self._event(account, path, "downloaded", at)

    def _size(self, account: str, path: str) -> int | None:
        if self.root is None:
            return None
        try:
            return (self.root / account / path.lstrip("/")).stat().st_size
        except OSError:
            return None

    def _event(self, account: str, path: str, event: str, at: dt.datetime) -> None:
        parts = path.strip("/").split("/")
        if len(parts) != 2 or parts[0] != "IN" or parts[1].endswith(".metadata"):
            return
        if self.record(account, parts[1], event, at):
            if event == "downloaded":
                self.result.downloaded += 1
            else:
                self.result.removed += 1
        else:
            self.result.unmatched += 1
            log.warning("pickup log: %s of %s by %s matches no ledger row", event,
                        scrub(parts[1]), account)


def _parse_time(text: str) -> dt.datetime | None:
    try:
        at = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return at if at.tzinfo else at.replace(tzinfo=dt.UTC)


def ledger_recorder(engine: Engine) -> Recorder:
    from cpr_abonnement.records.ledger import record_pickup_event

    def record(account: str, file_name: str, event: str, at: dt.datetime) -> bool:
        return record_pickup_event(engine, account=account, file_name=file_name,
                                   event=event, at=at)

    return record


def ingest(lines: Iterable[str], engine: Engine, *, root: Path | None = None
           ) -> IngestResult:
    """Record the downloads and removals in an sshd/internal-sftp log (``ingest-log``)."""
    ingester = SftpLogIngester(ledger_recorder(engine), root)
    for line in lines:
        ingester.feed(line.rstrip("\n"))
    return ingester.result


class SftpLogCollector:
    """Listens on ``<root>/<account>/dev/log`` for each account and hands each line,
    prefixed with its receive time (ISO 8601, UTC), to ``sink``."""

    def __init__(self, root: Path, accounts: Iterable[str], sink: Callable[[str], None]
                 ) -> None:
        self.root = Path(root)
        self.sink = sink
        self._sockets: dict[str, socket.socket] = {}
        self._added: list[socket.socket] = []  # not yet watched by the thread
        self._lock = threading.Lock()
        for account in accounts:
            self.listen(account)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="sftp-log")

    @property
    def accounts(self) -> set[str]:
        """The accounts listened to."""
        with self._lock:
            return set(self._sockets)

    def listen(self, account: str) -> None:
        """Listen on the account's ``dev/log`` from now on; also while running (an
        account registered since the server started)."""
        dev = self.root / account / "dev"
        dev.mkdir(parents=True, exist_ok=True)
        path = dev / "log"
        path.unlink(missing_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(path))
        os.chmod(path, 0o666)  # the account's process writes to it
        sock.settimeout(0.2)
        with self._lock:
            self._sockets[account] = sock
            self._added.append(sock)

    def _run(self) -> None:
        import selectors

        sel = selectors.DefaultSelector()
        while not self._stop.is_set():
            with self._lock:
                added, self._added = self._added, []
            for sock in added:
                sel.register(sock, selectors.EVENT_READ)
            for key, _ in sel.select(0.2):
                data = key.fileobj.recv(65536)
                stamp = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
                self.sink(f"{stamp} {data.decode('utf-8', 'replace').rstrip()}")

    def __enter__(self) -> SftpLogCollector:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)
        for sock in self._sockets.values():
            sock.close()
