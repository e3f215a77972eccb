"""Issue 14, item 5: ``cprsub subscriber update`` re-points a subscriber (name, SFTP
connection, remote directory), audited with what it was and what it became; filters,
tokens and history stay (SQLite and PostgreSQL)."""

from __future__ import annotations

import json

from sqlalchemy import select
from sqlalchemy.orm import Session

from cpr_abonnement.store.db import make_engine
from cpr_abonnement.store.models import AuditEntry

SYS = "6f1f0b8e-6a55-4f55-9d7b-1c5c1f3a0002"


def _listed(cli) -> dict:
    code, out, _ = cli("subscriber", "list", "--json")
    assert code == 0
    (sub,) = json.loads(out)
    return sub


def test_update_repoints_a_subscriber_and_audits_before_and_after(cli, db_url):
    assert cli("subscriber", "add", "--uuid", SYS, "--name", "Aalborg ESDH",
               "--sftp-conn-id", "sftp_old", "--remote-dir", "/in")[0] == 0
    assert cli("filters", "add-municipality", "--system", SYS, "851")[0] == 0
    code, out, _ = cli("subscriber", "update", "--uuid", SYS, "--sftp-conn-id", "sftp_new",
                       "--remote-dir", "/cpr/in", "--name", "Aalborg Kommune – ESDH")
    assert code == 0, out
    assert out.strip() == (f"UPDATED {SYS} Aalborg Kommune – ESDH: name, sftp_conn_id, "
                           "remote_dir (push conn=sftp_new dir=/cpr/in)")
    sub = _listed(cli)
    assert (sub["name"], sub["sftp_conn_id"], sub["remote_dir"]) == (
        "Aalborg Kommune – ESDH", "sftp_new", "/cpr/in")
    code, out, _ = cli("filters", "get-all", "--system", SYS)
    assert code == 0 and "851" in out  # the filters stay
    with Session(make_engine(db_url)) as s:
        row = s.scalars(select(AuditEntry).where(AuditEntry.operation == "UpdateSubscriber")
                        ).one()
    assert row.result == "UPDATED: name, sftp_conn_id, remote_dir"
    assert row.caller.startswith("cli:") and row.transport == "cli"
    args = json.loads(row.arguments)
    assert args["before"] == {"name": "Aalborg ESDH", "sftp_conn_id": "sftp_old",
                              "remote_dir": "/in"}
    assert args["after"]["sftp_conn_id"] == "sftp_new"
    # The same again changes nothing, and says so.
    code, out, _ = cli("subscriber", "update", "--uuid", SYS, "--remote-dir", "/cpr/in")
    assert code == 0 and out.startswith(f"UNCHANGED {SYS}")


def test_update_refuses_bad_input_and_unknown_subscribers(cli):
    assert cli("subscriber", "add", "--uuid", SYS, "--name", "Odense",
               "--sftp-conn-id", "sftp_o")[0] == 0
    code, _, err = cli("subscriber", "update", "--uuid", SYS, "--remote-dir", "../etc")
    assert code != 0 and "remote" in err.lower()
    code, _, err = cli("subscriber", "update", "--uuid", SYS, "--name", "  ")
    assert code != 0 and "name" in err
    code, _, err = cli("subscriber", "update", "--uuid", SYS)
    assert code != 0 and "nothing to update" in err
    other = "6f1f0b8e-6a55-4f55-9d7b-1c5c1f3a0009"
    code, _, err = cli("subscriber", "update", "--uuid", other, "--name", "X")
    assert code != 0 and other in err
