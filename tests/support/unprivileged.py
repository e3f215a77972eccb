"""Processes as the compose services run them: uid ``AIRFLOW_UID`` (50000), group 0, no
supplementary groups (the official Airflow image's convention). scripts/test.sh lets that
uid reach this checkout's Python."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess

AIRFLOW_UID = 50000


def can_switch() -> bool:
    """Root with util-linux's setpriv: the tests can drop to the services' user."""
    return os.geteuid() == 0 and shutil.which("setpriv") is not None


def as_airflow_user(argv: list[str]) -> list[str]:
    """``argv`` run as ``AIRFLOW_UID:0``, which has a passwd entry as in the image
    (Airflow asks for its user's name)."""
    ensure_airflow_user()
    return ["setpriv", f"--reuid={AIRFLOW_UID}", "--regid=0", "--clear-groups", "--", *argv]


def ensure_airflow_user() -> None:
    """The image's ``airflow`` user (uid 50000, group 0) on this machine, made once and
    kept (parallel test workers may race to make it)."""
    try:
        pwd.getpwuid(AIRFLOW_UID)
    except KeyError:
        subprocess.run(["useradd", "--uid", str(AIRFLOW_UID), "--gid", "0", "--no-create-home",
                        "--shell", "/usr/sbin/nologin", "--comment", "Airflow (tests)",
                        "cprsub-airflow"], capture_output=True)
        pwd.getpwuid(AIRFLOW_UID)  # made here or by a parallel worker
