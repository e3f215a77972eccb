"""``cprsub api serve --workers N``: N uvicorn processes, each listening on a socket of
its own bound to the same address (``SO_REUSEPORT``), so the kernel spreads connections
over them.

uvicorn's own ``--workers`` shares one listening socket between the processes. A burst
of connections (IT systems opening their keep-alive pools at once) wakes an idle worker
that accepts all of them before the others look, and keep-alive connections then stay
where they landed: with 20 SF1520 clients and two workers, all 20 connections sat on
one worker in two runs of three, and look-ups ran at half the rate with the other
worker idle (bench/person_lookup.py, docs/benchmarks.md). With a socket per worker the
kernel hashes each new connection to one socket; no worker can take another's.

The parent only supervises: a worker that dies is started again on its socket, and
SIGINT/SIGTERM stop them all (uvicorn's graceful shutdown in each). A worker that ends by
itself within :data:`STARTUP_SECONDS` of its start (not killed by a signal) is taken as
unable to start (the app's factory fails, a setting is malformed): the whole server
stops with uvicorn's start-up failure code, rather than starting it again in a loop.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time

from uvicorn import Config, Server
from uvicorn._subprocess import get_subprocess
from uvicorn.config import STARTUP_FAILURE

log = logging.getLogger("uvicorn.error")

#: How long a stopping worker may finish its requests before it is killed.
GRACE_SECONDS = 30
#: A worker that ends sooner after its start did not start.
STARTUP_SECONDS = 10.0


def listening_socket(host: str, port: int, backlog: int) -> socket.socket:
    """A listening socket on ``host:port`` that other sockets may share
    (``SO_REUSEPORT``: the kernel balances connections between them)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def serve(config: Config, workers: int) -> int:
    """Run ``workers`` processes of ``config``'s app until SIGINT or SIGTERM; the exit
    code (uvicorn's start-up failure code when a worker could not start)."""
    sockets = [listening_socket(config.host, config.port, config.backlog)
               for _ in range(workers)]
    stop = threading.Event()
    started = [0.0] * workers  # when each socket's current worker was started

    def start(i: int):
        process = get_subprocess(config, target=Server(config).run, sockets=[sockets[i]])
        process.start()
        started[i] = time.monotonic()
        return process

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    processes = [start(i) for i in range(workers)]
    log.info("Started %d worker processes on %s:%d, a socket each (SO_REUSEPORT)",
             workers, config.host, config.port)
    code = 0
    while not stop.wait(0.5):
        for i, process in enumerate(processes):
            if process.is_alive() or stop.is_set():
                continue
            ended_itself = (process.exitcode or 0) >= 0  # not killed by a signal
            early = time.monotonic() - started[i] < STARTUP_SECONDS
            if process.exitcode == STARTUP_FAILURE or (ended_itself and early):
                log.error("worker process %s could not start (exit code %s): stopping",
                          process.pid, process.exitcode)
                code = STARTUP_FAILURE
                stop.set()
            else:
                log.warning("worker process %s exited (code %s): starting another",
                            process.pid, process.exitcode)
                processes[i] = start(i)
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(GRACE_SECONDS)
        if process.is_alive():
            process.kill()
            process.join()
    for sock in sockets:
        sock.close()
    return code
