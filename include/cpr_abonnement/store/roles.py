"""The filter database's roles: who may do what (``cprsub db upgrade --grant-roles``).

The owner (``cprsub`` in docker-compose.yml) runs the migrations and nothing else runs
as it: the subscription API, the Airflow workers, the pick-up server's key look-up and
its download tracker each connect with a role of their own, holding only the rights the
statements of that code need (``grants.postgresql.sql``, docs/deployment-roles.md). A
leaked look-up password (the one process reachable by anyone who opens an SSH
connection) then reads SSH public keys, not PNRs, and the API cannot drop a table or
rewrite the audit trail.

PostgreSQL only: SQLite has no roles (the file's permissions are its access control).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources

from sqlalchemy import Connection, Engine, text

from cpr_abonnement.errors import InvalidRolePassword, RolesNotApplicable

#: The roles, in the order they are made; each one's grants are in the SQL file.
ROLES = ("cprsub_api", "cprsub_worker", "cprsub_keys", "cprsub_pickup")
GRANTS_FILE = "grants.postgresql.sql"
#: Passwords go into connection URLs in docker-compose.yml, so only URL-safe characters
#: (what ``secrets.token_urlsafe`` gives), and enough of them to resist guessing.
_PASSWORD = re.compile(r"[A-Za-z0-9._~-]{16,}")


@dataclass(frozen=True)
class RoleChange:
    """What :func:`grant_roles` did to one role: ``created`` (LOGIN or NOLOGIN),
    ``password set`` or ``unchanged``."""

    role: str
    action: str

    def line(self) -> str:
        return f"{self.role}: {self.action}"


def grants_sql() -> str:
    """The grants, as shipped in the package."""
    return resources.files("cpr_abonnement.store").joinpath(GRANTS_FILE).read_text("utf-8")


def check_password(role: str, password: str) -> str:
    """``password`` if it is URL-safe and at least 16 characters; never echoes it."""
    if not _PASSWORD.fullmatch(password):
        raise InvalidRolePassword(
            f"the password for {role} must be at least 16 of A-Z, a-z, 0-9, '.', '_', "
            "'~', '-' (it goes into a connection URL); make one with python -c "
            "\"import secrets; print(secrets.token_urlsafe(24))\"")
    return password


def grant_roles(engine: Engine, passwords: Mapping[str, str | None]) -> list[RoleChange]:
    """Make the roles that are missing, set the passwords given, then apply the grants.

    Run as the owner after the migrations (it needs CREATEROLE to make roles and set
    their passwords). A role without a password is created NOLOGIN (it exists, so the
    grants apply, but nobody can log in as it until a password is given); an existing
    role given none keeps the password it has, so re-running an upgrade without the
    variables never locks out a running service. Passwords are sent as SCRAM-SHA-256
    verifiers made by libpq on this side, so the clear text never reaches the server
    (nor its statement log). One transaction: the grants apply all or not at all.
    """
    if engine.dialect.name != "postgresql":
        raise RolesNotApplicable(
            f"--grant-roles applies to PostgreSQL only; {engine.dialect.name} has no "
            "database roles (protect the file instead)")
    for role, password in passwords.items():
        if password is not None:
            check_password(role, password)
    changes = []
    with engine.begin() as conn:
        for role in ROLES:
            changes.append(_ensure_role(conn, role, passwords.get(role)))
        # The file holds format()'s %I and %L: sent as is, without parameters (through
        # SQLAlchemy, psycopg would take them for placeholders). Same transaction.
        with conn.connection.dbapi_connection.cursor() as cur:
            cur.execute(grants_sql())
    return changes


def _ensure_role(conn: Connection, role: str, password: str | None) -> RoleChange:
    exists = conn.scalar(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role})
    if password is None:
        if exists:
            return RoleChange(role, "unchanged (no password given)")
        conn.exec_driver_sql(f"CREATE ROLE {role} NOLOGIN NOSUPERUSER NOCREATEDB "
                             "NOCREATEROLE NOREPLICATION")
        return RoleChange(role, "created NOLOGIN (no password given)")
    verifier = _scram_verifier(conn, role, password)
    head = "ALTER ROLE %I LOGIN PASSWORD %L" if exists else (
        "CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD %L")
    statement = conn.scalar(text("SELECT format(CAST(:f AS text), CAST(:r AS text), "
                                 "CAST(:p AS text))"), {"f": head, "r": role, "p": verifier})
    conn.exec_driver_sql(statement)
    return RoleChange(role, "password set" if exists else "created with LOGIN")


def _scram_verifier(conn: Connection, role: str, password: str) -> str:
    """libpq's ``PQencryptPasswordConn``: what ``psql``'s ``\\password`` sends."""
    pgconn = conn.connection.dbapi_connection.pgconn
    return pgconn.encrypt_password(password.encode(), role.encode(),
                                   b"scram-sha-256").decode()
