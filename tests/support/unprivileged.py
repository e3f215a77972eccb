"""Processes as the compose services run them: uid ``AIRFLOW_UID`` (50000), group 0, no
supplementary groups (the official Airflow image's convention). scripts/test.sh lets that
uid reach this checkout's Python."""

from __future__ import annotations

import os
import shutil

AIRFLOW_UID = 50000


def can_switch() -> bool:
    """Root with util-linux's setpriv: the tests can drop to the services' user."""
    return os.geteuid() == 0 and shutil.which("setpriv") is not None


def as_airflow_user(argv: list[str]) -> list[str]:
    """``argv`` run as ``AIRFLOW_UID:0``."""
    return ["setpriv", f"--reuid={AIRFLOW_UID}", "--regid=0", "--clear-groups", "--", *argv]
