"""``cprsub db / subscriber / filters`` through main(), printing the result codes."""

from __future__ import annotations

import json

import pytest

from cpr_abonnement.cli import main
from cpr_abonnement.store.db import head_revision

SYS = "6f1f0b8e-6a55-4f55-9d7b-1c5c1f3a0001"


@pytest.fixture
def cli(db_url, capsys):
    def run(*args: str) -> tuple[int, str, str]:
        code = main([*args[:2], "--db", db_url, *args[2:]] if args[0] != "filters" else
                    [args[0], args[1], "--db", db_url, "--system", SYS, *args[2:]])
        out = capsys.readouterr()
        return code, out.out, out.err
    assert run("db", "upgrade")[1].strip() == f"filter database at revision {head_revision()}"
    assert run("db", "upgrade")[0] == 0
    return run


def test_subscribers_and_filters(cli, tmp_path):
    assert cli("subscriber", "add", "--uuid", SYS, "--name", "Aalborg ESDH",
               "--sftp-conn-id", "sftp_aalborg", "--remote-dir", "/in")[1].startswith("ADDED")
    assert cli("filters", "add-pnr", "0101901234")[1] == "ADDED\n"
    assert cli("filters", "add-pnr", "0101901234")[1] == "ALREADY_EXISTED\n"
    bulk = tmp_path / "pnrs.txt"
    bulk.write_text("1502504321\n0101901234\n3102901234\n")
    code, out, _ = cli("filters", "add-pnr", "--from-file", str(bulk))
    assert code == 1 and out.splitlines() == ["ADDED 1", "ALREADY_EXISTED 1", "REJECTED 1"]
    assert cli("filters", "add-age-range", "0", "17")[1] == "ADDED\n"
    assert cli("filters", "add-municipality", "851")[1] == "ADDED\n"
    code, out, err = cli("filters", "add-change-code", "Q01")
    assert out == "ADDED\n" and "warning" in err
    code, out, _ = cli("filters", "get-all", "--json")
    data = json.loads(out)
    assert data["municipality_codes"] == ["0851"] and len(data["pnrs"]) == 2
    code, out, _ = cli("filters", "get-all")
    assert "010190-****" in out and "0101901234" not in out
    assert cli("filters", "remove-all", "--group", "PNR")[1] == "REMOVED 2\n"
    assert cli("filters", "remove-pnr", "0101901234")[1] == "NON_EXISTING_PNR\n"
    for group, op, args in [("AgeRange", "remove-age-range", ["0", "17"]),
                            ("MunicipalityCode", "remove-municipality", ["0851"]),
                            ("ChangeCode", "remove-change-code", ["Q01"])]:
        assert cli("filters", op, *args)[1] == "REMOVED\n", group
    _, out, _ = cli("filters", "get-all")
    assert "receives no persons" in out
    code, out, _ = cli("subscriber", "list", "--json")
    assert json.loads(out)[0]["remote_dir"] == "/in"
    assert cli("subscriber", "disable", "--uuid", SYS)[1].startswith("DISABLED")


def test_errors_name_the_rule(cli):
    cli("subscriber", "add", "--uuid", SYS, "--name", "x")
    code, _, err = cli("filters", "add-age-range", "10", "5")
    assert code == 1 and "StartAge 10 is greater than EndAge 5" in err
    code, _, err = cli("filters", "add-pnr", "3102901234")
    assert code == 1 and "310290-****" in err and "3102901234" not in err
    code, _, err = cli("subscriber", "add", "--uuid", "not-a-uuid", "--name", "x")
    assert code == 1 and "is not a UUID" in err


def test_the_cli_refuses_a_remote_dir_that_leaves_the_folder(cli):
    """Issue 10, item 15: the CLI shares the service's rule with the admin API."""
    code, out, err = cli("subscriber", "add", "--uuid", SYS, "--name", "Aalborg ESDH",
                         "--remote-dir", "../../0d4c3b2a-1111-4222-8333-444455556666")
    assert code == 1 and out == ""
    assert "has a '..' segment; it must stay inside the subscriber's folder" in err
    code, out, _ = cli("subscriber", "list")
    assert SYS not in out


def test_a_token_is_revoked_from_the_command_line(cli, db_url):
    """Tokens "can be revoked" (README): by the operator, at once, by the token's id."""
    from cpr_abonnement.identities import credentials
    from cpr_abonnement.store.db import make_engine

    uuid = "6f1f0b8e-6a55-4f55-9d7b-1c5c1f3a0001"
    assert cli("subscriber", "add", "--uuid", uuid, "--name", "Aalborg ESDH")[0] == 0
    code, token, _ = cli("subscriber", "token", "--uuid", uuid)
    token = token.strip()
    engine = make_engine(db_url)
    assert credentials.authenticate(engine, token) is not None
    assert cli("subscriber", "revoke-token", token.split("_")[1])[:2] == (0, "REVOKED\n")
    assert credentials.authenticate(engine, token) is None
    code, out, _ = cli("subscriber", "revoke-token", token.split("_")[1])
    assert code == 1 and out.startswith("NOT_FOUND")
    engine.dispose()
