"""The filter database as production has it: owned by ``cprsub`` (not a superuser, with
CREATEROLE), migrated and granted by ``cprsub db upgrade --grant-roles`` run as that
owner; URLs to reach it as each role.

The test server trusts every local connection, so a role is reached by naming it in
the URL; what a role may do is decided by its grants, which is what these tests prove
(that the passwords are set is checked separately, in the catalogue)."""

from __future__ import annotations

import itertools
import os

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from cpr_abonnement.cli import main

OWNER = "cprsub"
_names = itertools.count()


def owned_database(postgres_url: str) -> str:
    """A new, empty database owned by :data:`OWNER` (made once per server, as
    deploy/postgres-init.sh makes it); the owner's URL."""
    name = f"roles{os.getpid()}x{next(_names)}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if conn.scalar(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": OWNER}) is None:
            conn.execute(text(f"CREATE ROLE {OWNER} LOGIN CREATEROLE"))
        conn.execute(text(f"CREATE DATABASE {name} OWNER {OWNER}"))
    admin.dispose()
    return as_role(postgres_url.rsplit("/", 1)[0] + f"/{name}", OWNER)


def as_role(url: str, role: str) -> str:
    """``url`` with ``role`` as its user."""
    return make_url(url).set(username=role, password=None).render_as_string(
        hide_password=False)


def upgrade_with_roles(owner_url: str, monkeypatch=None, **passwords: str) -> int:
    """``cprsub db upgrade --grant-roles`` as the owner; ``passwords`` by role suffix
    (``api="..."``) become the CPRSUB_DB_PASSWORD_* variables."""
    for suffix in ("API", "WORKER", "KEYS", "PICKUP"):
        if monkeypatch is not None:
            monkeypatch.delenv(f"CPRSUB_DB_PASSWORD_{suffix}", raising=False)
    for suffix, value in passwords.items():
        assert monkeypatch is not None, "passwords need monkeypatch"
        monkeypatch.setenv(f"CPRSUB_DB_PASSWORD_{suffix.upper()}", value)
    return main(["db", "upgrade", "--db", owner_url, "--grant-roles"])
