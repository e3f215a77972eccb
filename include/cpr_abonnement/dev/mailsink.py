"""A mail sink on 127.0.0.1 for the demo: an SMTP server (aiosmtpd) that writes each
message it receives as an ``.eml`` file, so a newcomer sees the failure alerts without
a mail server (open the file in any mail program, or read it: it is text).

    python -m cpr_abonnement.dev.mailsink --dir var/demo/mail --port 2525

Only for demos and development: it accepts any sender and recipient, without TLS or
login, and listens on the loopback address only. The demo points Airflow's
``smtp_default`` connection here (:func:`airflow_connection`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HOST = "127.0.0.1"
#: The sender the demo's alerts come from.
DEMO_SENDER = "cpr-abonnement@localhost"


class MailFolder:
    """aiosmtpd handler: each message becomes ``<folder>/<UTC time>-<n>.eml``, written to
    a hidden temporary name first and renamed, so a reader never sees half a mail."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._numbers = itertools.count(1)

    def path_for(self) -> Path:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
        return self.folder / f"{stamp}-{next(self._numbers):04d}.eml"

    async def handle_DATA(self, server, session, envelope) -> str:  # aiosmtpd's hook
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.path_for()
        part = path.with_name(f".{path.name}.part")
        part.write_bytes(envelope.original_content or envelope.content)
        os.replace(part, path)
        return "250 Message accepted for delivery"


def free_port(host: str = HOST) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@contextmanager
def running(folder: Path, port: int | None = None, host: str = HOST) -> Iterator[int]:
    """The sink, listening while the block runs; yields its port."""
    from aiosmtpd.controller import Controller

    controller = Controller(MailFolder(folder), hostname=host, port=port or free_port(host))
    controller.start()
    try:
        yield controller.port
    finally:
        controller.stop()


def airflow_connection(port: int, host: str = HOST) -> str:
    """Airflow's ``smtp_default`` for the sink (plain SMTP on loopback, no login), as the
    JSON an ``AIRFLOW_CONN_SMTP_DEFAULT`` variable takes."""
    return json.dumps({"conn_type": "smtp", "host": host, "port": port,
                       "extra": {"disable_ssl": True, "disable_tls": True, "timeout": 10,
                                 "retry_limit": 0, "from_email": DEMO_SENDER}})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cpr_abonnement.dev.mailsink",
        description="Development mail sink: an SMTP server on 127.0.0.1 that writes each "
                    "mail it receives as an .eml file (the demo's failure alerts).")
    parser.add_argument("--dir", type=Path, required=True, help="folder for the .eml files")
    parser.add_argument("--port", type=int, default=2525)
    args = parser.parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with running(args.dir, args.port) as port:
        print(f"mail sink on {HOST}:{port}: each mail becomes an .eml file in {args.dir}",
              flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
