"""The Airflow connection of a push subscriber, created or updated by its registration.

A registration document names the connection delivery uses (``delivery.connection``);
when it also gives ``login`` and ``password_env`` the connection is written here, in
Airflow's metadata database (the password encrypted by Airflow's Fernet key), with the
document's host, port and pinned host key. The password is read from the environment
variable the document names, so it is never in the document, the audit or the output.
Run where Airflow's metadata database is configured (the ``airflow`` containers).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

from cpr_abonnement.errors import InvalidRegistration
from cpr_abonnement.onboarding.registration import PushTarget

#: The connection's SSH options beside the pinned host key: no key files searched (the
#: password is the credential) and no zlib compression. A day's file is kilobytes to a
#: few megabytes; compressing it, and its read-back, cost a delivery 6 ms of CPU in
#: ``bench/deliver_many.py`` and save little on any link. An operator may set
#: ``"compress": true`` on a connection to a slow link (a registration keeps it).
SSH_OPTIONS = {"look_for_keys": False, "compress": False}


def _wanted(push: PushTarget) -> dict[str, object]:
    """The connection's fields as the registration declares them (password aside)."""
    return {"conn_type": "sftp", "host": push.host, "port": push.port, "login": push.login,
            "extra": {"host_key": push.host_key, **SSH_OPTIONS}}


def ensure_push_connection(push: PushTarget, *, environ: Mapping[str, str] = os.environ
                           ) -> str | None:
    """Create or update the Airflow connection ``push.connection``; the change made, as
    one line for the audit, or None when it already was exactly so."""
    password = environ.get(push.password_env or "")
    if not password:
        raise InvalidRegistration(f"the environment variable {push.password_env} holding "
                                  "the SFTP password is not set", field="delivery.password_env",
                                  rule="credentials")
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session
    from sqlalchemy import select

    wanted = _wanted(push)
    with create_session() as session:
        conn = session.scalar(select(Connection).where(Connection.conn_id == push.connection))
        if conn is None:
            session.add(Connection(conn_id=push.connection, password=password,
                                   **{**wanted, "extra": json.dumps(wanted["extra"])}))
            return f"created Airflow connection {push.connection}"
        if "compress" in conn.extra_dejson:  # the operator's choice for this link
            wanted["extra"]["compress"] = conn.extra_dejson["compress"]
        same = (all(getattr(conn, k) == v for k, v in wanted.items() if k != "extra")
                and conn.extra_dejson == wanted["extra"] and conn.password == password)
        if same:
            return None
        for key, value in wanted.items():
            setattr(conn, key, json.dumps(value) if key == "extra" else value)
        conn.password = password
        return f"updated Airflow connection {push.connection}"
