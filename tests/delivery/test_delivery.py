"""SFTP delivery against the embedded server and against OpenSSH's sshd."""

from __future__ import annotations

import json

import pytest

from cpr_abonnement.delivery import sftp_push
from cpr_abonnement.dev.devsftp import EmbeddedSftpServer
from cpr_abonnement.errors import DeliveryConflict, DeliveryRefused
from support.sshd import openssh_server


@pytest.fixture
def files(tmp_path):
    data = tmp_path / "out" / "D261126.L431101"
    data.parent.mkdir()
    data.write_bytes("000…æøå\n".encode("latin-1", "replace") * 5000)
    meta = data.with_name(data.name + ".metadata")
    meta.write_text('{"persons": 0}\n')
    return [data, meta]


def test_atomic_verified_idempotent_delivery_to_openssh(tmp_path, files, monkeypatch):
    with openssh_server(tmp_path / "sshd") as server:
        monkeypatch.setenv("AIRFLOW_CONN_SFTP_OPENSSH", server["connection"])
        target = tmp_path / "inbound" / "subscriber-a"
        first = sftp_push.deliver("sftp_openssh", str(target), files, subscriber="A")
        assert [o.already_there for o in first] == [False, False]
        assert (target / files[0].name).read_bytes() == files[0].read_bytes()
        assert sorted(p.name for p in target.iterdir()) == sorted(f.name for f in files)
        again = sftp_push.deliver("sftp_openssh", str(target), files, subscriber="A")
        assert [o.already_there for o in again] == [True, True]
        files[0].write_bytes(b"something else\n")
        with pytest.raises(DeliveryConflict, match="already exists with different content"):
            sftp_push.deliver("sftp_openssh", str(target), files, subscriber="A")
        assert (target / files[0].name).read_bytes() != b"something else\n"  # untouched


def test_a_changed_host_key_is_refused_without_retrying(tmp_path, files, monkeypatch):
    with EmbeddedSftpServer(tmp_path / "root", {"u": "p"}) as real, \
            EmbeddedSftpServer(tmp_path / "other", {"u": "p"}) as impostor:
        conn = json.loads(real.airflow_connection("u"))
        conn["extra"]["host_key"] = impostor.host_key_line
        monkeypatch.setenv("AIRFLOW_CONN_SFTP_X", json.dumps(conn))
        with pytest.raises(DeliveryRefused, match="BadHostKeyException"):
            sftp_push.deliver("sftp_x", "/in", files, subscriber="A")
        assert not (tmp_path / "root" / "in").exists()


def test_an_unreachable_server_is_a_delivery_error_naming_subscriber_and_target(
        tmp_path, files, monkeypatch):
    """Issue 11 item 6: socket and SSH errors become delivery errors with context (still
    retried by the task's policy, which fails at once only on refusals and conflicts)."""
    import socket

    from cpr_abonnement.errors import DeliveryError

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("AIRFLOW_CONN_SFTP_GONE", json.dumps({
        "conn_type": "sftp", "host": "127.0.0.1", "port": port, "login": "u",
        "password": "p", "extra": {"no_host_key_check": True, "conn_timeout": 5}}))
    with pytest.raises(DeliveryError, match=r"connection sftp_gone: ") as exc:
        sftp_push.deliver("sftp_gone", "/in", files, subscriber="Aalborg ESDH")
    assert exc.type is DeliveryError
    assert exc.value.subscriber == "Aalborg ESDH" and exc.value.file_name == files[0].name
