"""Pick-up test helpers: accounts' folders with delivered files, client keys, and
logins with paramiko (as cpr_udtraek does) and with OpenSSH's sftp client."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import paramiko

DATA_NAME = "D260105.L431101"
METADATA = """<?xml version="1.0" encoding="UTF-8"?>
<ns2:Trigger xmlns:ns2="http://serviceplatformen.dk/xml/wsdl/soap11/SFTP/1/types">
  <FileTransferUUID>3f0c1a52-2d1b-4c55-9a0e-6b1d2c3e4f50</FileTransferUUID>
  <FileDescriptor><FileName>{name}</FileName><SizeInBytes>{size}</SizeInBytes>
    <Sender>CPR Abonnement test</Sender><SendersFileId>1</SendersFileId>
    <Recipients>{account}</Recipients></FileDescriptor>
  <FileContentDescriptor/>
</ns2:Trigger>
"""
#: A PNR-shaped string an attacker may put in a path; it must never reach a log unmasked.
PNR_LIKE = "0101901234"

#: What an account may try in its sftp session, refused by both pick-up servers with
#: nothing changed on disk. ``{other}``: the other account's name; ``{self}``: a local
#: file to upload. ``IN/escape`` is a symlink the test makes to the other account's file.
ATTACKS = [
    f"get ../{{other}}/IN/{DATA_NAME} /dev/null",        # ..
    f"get /{{other}}/IN/{DATA_NAME} /dev/null",          # absolute
    f"get /../{{other}}/IN/{DATA_NAME} /dev/null",       # absolute, climbing
    f"rm ../{{other}}/IN/{DATA_NAME}",
    "get /etc/passwd /dev/null",                         # absolute, inside the chroot: none
    "ls ../{other}/IN",
    "get IN/escape /dev/null",                           # symlink to another account
    "put {self} IN/new-file",                            # upload
    f"put {{self}} IN/{DATA_NAME}",                      # overwrite
    f"rename IN/{DATA_NAME} IN/renamed",
    "mkdir IN/sub",
    "rmdir IN",
    f"chmod 777 IN/{DATA_NAME}",
    f"symlink /IN/{DATA_NAME} IN/link",
    f"ln IN/{DATA_NAME} IN/hard",
    f"get ../{PNR_LIKE}/IN/x /dev/null",
]


@dataclass
class Account:
    name: str
    key_file: Path          # private key (OpenSSH format), for sftp -i and paramiko
    public: str             # "ssh-... AAAA..." line
    data: bytes

    @property
    def pkey(self) -> paramiko.PKey:
        return paramiko.PKey.from_path(self.key_file)


def keygen(path: Path, kind: str, bits: int | None = None) -> str:
    args = ["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(path), "-C", path.name]
    if bits:
        args += ["-b", str(bits)]
    subprocess.run(args, check=True)
    return path.with_suffix(".pub").read_text().strip()


@contextmanager
def unix_account(name: str) -> Iterator[str]:
    """A real Unix account ``name`` (system, no home, no login) that the pick-up sync did
    not make, as an operator's or a package's account is; removed afterwards. Needs
    root (``useradd``)."""
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                    "/usr/sbin/nologin", name], check=True, capture_output=True)
    try:
        yield name
    finally:
        subprocess.run(["userdel", name], check=False, capture_output=True)


def place(root: Path, account: str, data: bytes) -> None:
    """What the pick-up delivery mode leaves in an account's folder."""
    inbox = root / account / "IN"
    inbox.mkdir(parents=True, exist_ok=True)
    (inbox / DATA_NAME).write_bytes(data)
    (inbox / f"{DATA_NAME}.metadata").write_text(
        METADATA.format(name=DATA_NAME, size=len(data), account=account))


def tree(root: Path) -> dict[str, str]:
    """Every path under ``root`` with a digest of its content (or its link target)."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_symlink():
            out[rel] = "-> " + str(p.readlink())
        elif p.is_file():
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
        else:
            out[rel] = "dir"
    return out


def paramiko_sftp(port: int, username: str, pkey: paramiko.PKey | None = None, *,
                  password: str | None = None, source: str = "127.0.0.1"
                  ) -> tuple[paramiko.Transport, paramiko.SFTPClient]:
    """Log in the way cpr_udtraek does: ``Transport.connect(username=, pkey=)``."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10,
                                    source_address=(source, 0))
    transport = paramiko.Transport(sock)
    try:
        transport.connect(username=username, pkey=pkey, password=password)
        return transport, paramiko.SFTPClient.from_transport(transport)
    except BaseException:
        transport.close()
        raise


def sftp_batch(port: int, user: str, key: Path, commands: list[str], *extra: str
               ) -> subprocess.CompletedProcess:
    """OpenSSH's sftp client in batch mode (-b): stops at the first failing command."""
    return subprocess.run(
        ["sftp", "-b", "-", "-i", str(key), "-P", str(port), "-o", "BatchMode=yes",
         "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
         "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR", *extra, f"{user}@127.0.0.1"],
        input="\n".join(commands) + "\n", capture_output=True, text=True, timeout=60)


def assert_no_pnr(text: str) -> None:
    assert not re.search(r"(?<!\d)\d{6}-?\d{4}(?!\d)", text), "a PNR-shaped number was logged"


def register(engine, accounts, *, day=None) -> dict[str, str]:
    """Each account as an active pick-up subscriber with its key, and a delivered ledger
    row for its ``IN/`` data file; returns account -> subscriber uuid."""
    import datetime as dt
    import uuid as uuidlib

    from cpr_abonnement.records import extract_runs, ledger
    from cpr_abonnement.subscriptions.service import SubscriptionService

    day = day or dt.date(2026, 1, 5)
    svc = SubscriptionService(engine, caller="test")
    uuids = {}
    for a in accounts.values():
        uuid = str(uuidlib.uuid4())
        svc.add_subscriber(uuid, f"System {a.name}", delivery_mode="pickup",
                           pickup_account=a.name, ssh_keys=[a.public])
        extract_runs.register(engine, task_number="431101", production_date=day,
                          previous_date=day - dt.timedelta(days=3), file_name=DATA_NAME,
                          sha256="0" * 64, persons=1, records=1)
        ledger.record_delivery(
            engine, task_number="431101", production_date=day, subscriber_uuid=uuid,
            file_name=DATA_NAME, sha256=hashlib.sha256(a.data).hexdigest(), persons=1,
            records=1, target=f"pickup:{a.name}", outcome="DELIVERED", detail="test",
            now=dt.datetime(2026, 1, 5, 21, 5))
        uuids[a.name] = uuid
    return uuids


def record_delivered(engine, day, uuid: str) -> str:
    """Register day's extract and a delivered pick-up file of it for ``uuid`` at 20:00
    (as the daily run would); returns the file name."""
    from cpr_abonnement.records import extract_runs, ledger

    name = f"D{day:%y%m%d}.L431101"
    t = dt.datetime.combine(day, dt.time(20))
    extract_runs.register(engine, task_number="431101", production_date=day,
                          previous_date=day - dt.timedelta(days=1), file_name=name,
                          sha256="0" * 64, persons=1, records=1, clock=lambda: t, as_of=t)
    ledger.record_delivery(engine, task_number="431101", production_date=day,
                           subscriber_uuid=uuid, file_name=name, sha256="0" * 64,
                           persons=1, records=1, target="pickup", outcome="DELIVERED",
                           detail="", now=t)
    return name

