"""``[core] hostname_callable`` for several Celery workers on one machine: each worker
process names itself through ``CPRSUB_WORKER_NAME``, so a task instance's ``hostname``
tells which worker ran it."""

from __future__ import annotations

import os
import socket


def worker_hostname() -> str:
    return os.environ.get("CPRSUB_WORKER_NAME") or socket.getfqdn()
