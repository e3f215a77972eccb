"""``cprsub pickup probe``, the pick-up and SFTP services' health check (issue 22 item 6):
it passes only for a server that sends its banner and completes a key exchange, not for
one that merely accepts TCP connections."""

from __future__ import annotations

import socket

from cpr_abonnement.cli import main
from cpr_abonnement.dev.devsftp import EmbeddedSftpServer
from support.servers import free_port


def probe(port: int, capsys) -> tuple[int, str]:
    code = main(["pickup", "probe", "--port", str(port), "--timeout", "1"])
    out = capsys.readouterr()
    return code, out.out + out.err


def test_an_ssh_server_answers(tmp_path, capsys):
    with EmbeddedSftpServer(tmp_path, {"cpr": "pw"}) as sftp:
        code, said = probe(sftp.port, capsys)
    assert code == 0 and "answers, host key SHA256:" in said


def test_a_listener_that_never_speaks_ssh_fails(capsys):
    with socket.socket() as mute:
        mute.bind(("127.0.0.1", 0))
        mute.listen(8)
        code, said = probe(mute.getsockname()[1], capsys)  # accepted by the kernel, silent
    assert code == 1 and "no SSH banner and key exchange" in said
    code, said = probe(free_port(), capsys)
    assert code == 1 and "no TCP connection" in said
