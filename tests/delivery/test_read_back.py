"""The read-back that checks an upload before it is renamed into place: one read request
for a file that fits one (a ``.metadata`` file, most days' deltas), paramiko's read-ahead
for a larger one. Either way it reports the SHA-256 and size of what the server holds."""

from __future__ import annotations

import hashlib
import os

import paramiko
import pytest

from cpr_abonnement.delivery.sftp_push import _remote_sha256
from cpr_abonnement.dev.devsftp import EmbeddedSftpServer


@pytest.fixture(scope="module")
def sftp(tmp_path_factory):
    """One server and session for the module: each start costs a host key."""
    root = tmp_path_factory.mktemp("read-back")
    with EmbeddedSftpServer(root, {"bench": "only-here"}) as server:
        transport = paramiko.Transport(("127.0.0.1", server.port))
        transport.connect(username="bench", password="only-here")
        client = paramiko.SFTPClient.from_transport(transport)
        try:
            yield client, root
        finally:
            client.close()
            transport.close()


@pytest.mark.parametrize("size", [0, 1_414, 32_768, 32_769, 200_000])
def test_the_read_back_gives_what_the_server_holds(sftp, size):
    client, root = sftp
    data = os.urandom(size)
    (root / "f").write_bytes(data)
    expected = (hashlib.sha256(data).hexdigest(), size)
    assert _remote_sha256(client, "/f", size) == expected  # size from the listing
    assert _remote_sha256(client, "/f") == expected  # size unknown: read-ahead


@pytest.mark.parametrize("listed", [1_414, 200_000])
def test_a_file_shorter_than_listed_reads_back_as_it_is(sftp, listed):
    """The listing said ``listed`` bytes, but the file now holds 100: the read-back says
    100 and their digest, so the upload check refuses it."""
    client, root = sftp
    (root / "f").write_bytes(b"x" * 100)
    assert _remote_sha256(client, "/f", listed) == (
        hashlib.sha256(b"x" * 100).hexdigest(), 100)
