"""``cprsub subscriber`` for pick-up: delivery mode, account, SSH keys (SQLite, PostgreSQL)."""

from __future__ import annotations

import json

import pytest

from cpr_abonnement.identities.ssh_keys import parse_public_key
from support.sshkeys import dsa_line, ed25519_line, rsa_line

SYS = "6f1f0b8e-6a55-4f55-9d7b-1c5c1f3a0001"


def _key(tmp_path, name: str, line: str):
    path = tmp_path / f"{name}.pub"
    path.write_text(line + "\n")
    return str(path)


@pytest.mark.filterwarnings("ignore:SSH DSA key support is deprecated")
def test_pickup_subscriber_keys_and_switching_modes(cli, tmp_path):
    first, second = ed25519_line("laptop"), rsa_line(2048, "server")
    code, out, err = cli("subscriber", "add", "--uuid", SYS, "--name", "Herning Sag",
                         "--delivery", "pickup", "--pickup-user", "herning-sag",
                         "--ssh-key", _key(tmp_path, "a", first))
    assert (code, out) == (0, f"ADDED {SYS} Herning Sag\n"), err
    assert cli("subscriber", "add-ssh-key", "--uuid", SYS,
               "--key", _key(tmp_path, "b", second))[1] == "ADDED\n"
    code, _, err = cli("subscriber", "add-ssh-key", "--uuid", SYS,
                       "--key", _key(tmp_path, "c", dsa_line()))
    assert code == 1 and "DSA keys (ssh-dss) are refused" in err
    code, _, err = cli("subscriber", "add-ssh-key", "--uuid", SYS,
                       "--key", _key(tmp_path, "d", rsa_line(1024)))
    assert code == 1 and "RSA key of 1024 bits refused" in err

    _, out, _ = cli("subscriber", "list")
    fp1, fp2 = (parse_public_key(k).fingerprint for k in (first, second))
    assert "pickup account=herning-sag" in out and fp1 in out and fp2 in out
    listed = json.loads(cli("subscriber", "list", "--json")[1])[0]
    assert (listed["delivery_mode"], listed["pickup_account"]) == ("pickup", "herning-sag")
    assert [k["fingerprint"] for k in listed["ssh_keys"]] == [fp1, fp2]

    assert cli("subscriber", "remove-ssh-key", "--uuid", SYS,
               "--fingerprint", fp1)[1] == "REMOVED\n"
    code, out, _ = cli("subscriber", "set-delivery", "--uuid", SYS, "--delivery", "push",
                       "--sftp-conn-id", "sftp_herning", "--remote-dir", "/in")
    assert code == 0 and out == f"PUSH {SYS} push conn=sftp_herning dir=/in\n"
    code, out, _ = cli("subscriber", "set-delivery", "--uuid", SYS, "--delivery", "pickup")
    assert out == f"PICKUP {SYS} pickup account=herning-sag\n"
    listed = json.loads(cli("subscriber", "list", "--json")[1])[0]
    assert [k["fingerprint"] for k in listed["ssh_keys"]] == [fp2]


def test_a_push_subscriber_cannot_have_a_pickup_user(cli):
    code, _, err = cli("subscriber", "add", "--uuid", SYS, "--name", "A",
                       "--pickup-user", "a")
    assert code == 1 and "pick-up account is for delivery mode pickup" in err


def test_system_and_foreign_unix_account_names_are_refused(cli, foreign_account):
    """Issue 21, item 7: sshd logs a pick-up account in as the Unix account of that
    name, so `root`, `sshd` ... and any account of the machine the sync did not make
    are refused (rule pickup account), when adding and when switching to pick-up."""
    for name in ("root", "daemon", "sshd", "postgres", "cprsub-keys", foreign_account):
        code, _, err = cli("subscriber", "add", "--uuid", SYS, "--name", "A",
                           "--delivery", "pickup", "--pickup-user", name)
        assert code == 1 and f"pick-up account '{name}' is" in err, (name, err)
    assert cli("subscriber", "add", "--uuid", SYS, "--name", "A")[0] == 0
    code, _, err = cli("subscriber", "set-delivery", "--uuid", SYS, "--delivery", "pickup",
                       "--pickup-user", "www-data")
    assert code == 1 and "pick-up account 'www-data' is reserved" in err, err
    code, _, err = cli("subscriber", "set-delivery", "--uuid", SYS, "--delivery", "pickup",
                       "--pickup-user", foreign_account)
    assert code == 1 and "existing Unix account" in err, err
