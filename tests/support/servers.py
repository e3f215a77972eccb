"""Real servers for tests, on 127.0.0.1 only: PostgreSQL, uvicorn, ``cprsub api serve``."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin(name: str) -> str:
    from cpr_abonnement.store.backup import pg_tool

    return pg_tool(name)  # scripts/test.sh installs PostgreSQL


@contextmanager
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL cluster; yields a URL to its ``postgres`` database.

    PostgreSQL refuses to run as root, so the cluster belongs to the ``postgres`` user
    when the tests run as root.
    """
    root = Path(tempfile.mkdtemp(prefix="cprsub-pg-"))
    data, port = root / "data", free_port()
    as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_pg:
        shutil.chown(root, "postgres")
    subprocess.run([*as_pg, _pg_bin("initdb"), "-D", str(data), "-A", "trust", "-U",
                    "postgres", "--no-sync"], check=True, capture_output=True)
    subprocess.run([*as_pg, _pg_bin("pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w",
                    "-o", f"-p {port} -k {root} -h 127.0.0.1 -F", "start"],
                   check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_pg, _pg_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def uvicorn_server(app, **options) -> Iterator[str]:
    """Serve an ASGI app on a free 127.0.0.1 port in a thread; yields the base URL.

    ``options`` go to ``uvicorn.Config`` (e.g. TLS: the URL is then ``https``).
    """
    import uvicorn

    port = free_port()
    # A client's idle keep-alive connection (zeep's session) would hold the shutdown for
    # its full grace; a test server needs none.
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           **{"timeout_graceful_shutdown": 1, **options}))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"{'https' if options.get('ssl_certfile') else 'http'}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def api_serve(args: list[str], log: Path, *, verify: object = True
              ) -> Iterator[tuple[str, int]]:
    """``cprsub api serve ARGS`` as a process of its own on a free port (uvicorn as the
    command runs it, its own options and logging); yields its base URL and process id
    once ``/v1/health`` answers. Its output (the access log) goes to ``log``."""
    import httpx

    port = free_port()
    tls = "--tls-cert" in args
    server = subprocess.Popen(
        [sys.executable, "-c", "import sys; from cpr_abonnement.cli import main; sys.exit(main())",
         "api", "serve", "--host", "127.0.0.1", "--port", str(port), *args],
        stdout=log.open("w"), stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "include")})
    base = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(base + "/v1/health", verify=verify, timeout=5)
                break
            except httpx.TransportError:
                assert server.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "the API server did not start"
                time.sleep(0.2)
        yield base, server.pid
    finally:
        server.terminate()
        server.wait(timeout=30)
