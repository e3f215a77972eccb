"""README command 1 as a newcomer runs it, and the setup it leaves for the Airflow UI."""

from __future__ import annotations

import json
import os
import re
import shlex
import smtplib
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import xmltodict

from cpr_abonnement.extract.index import scan
from support.servers import free_port

pytestmark = pytest.mark.slow
VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    work = tmp_path_factory.mktemp("demo")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AIRFLOW", "CPRSUB_"))}
    env["CPRSUB_DEMO_DIR"] = str(work)
    done = subprocess.run([sys.executable, "-m", "cpr_abonnement.demo"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return work, done.stdout + done.stderr


def _extract_pnrs(work: Path) -> list[str]:
    """The demo extract's PNRs, read from its archive in staging (processed, it left the
    inbound folder)."""
    (extract,) = [p for p in (work / "staging").glob("*/extract/D*.L*")
                  if re.fullmatch(r"D\d{6}\.L\d{6}", p.name)]
    assert not list((work / "inbound").glob("D*.L*"))
    return scan(extract).pnr_text().tolist()


def test_task_log_holds_the_business_lines_at_info(demo):
    work, _ = demo
    (log,) = (work / "logs").glob("dag-test-*.log")
    text = log.read_text(encoding="utf-8", errors="replace")
    deliveries = re.findall(r"delivery subscriber=(\S+) file=D\d{6}\.L\d{6} records=\d+ "
                            r"sha256=[0-9a-f]{64} outcome=DELIVERED", text)
    assert len(set(deliveries)) == 7, "one INFO delivery line per demo subscriber"
    assert re.search(r"filtered D\d{6}\.L\d{6}: \d+ persons, 7 subscriber", text)


def test_the_pickup_subscriber_finds_its_files_and_key(demo):
    """One demo subscriber picks up: both files in its account's IN/, Serviceplatformen's
    .metadata naming the account, and the login key written for `sftp -i`."""
    work, terminal = demo
    inbox = work / "pickup" / "demo-pickup" / "IN"
    (data,) = [p for p in inbox.iterdir() if not p.name.endswith(".metadata")]
    meta = xmltodict.parse((inbox / f"{data.name}.metadata").read_bytes())["ns2:Trigger"]
    assert meta["FileDescriptor"]["Recipients"] == "demo-pickup"
    assert (work / "pickup-key").stat().st_mode & 0o777 == 0o600
    assert (work / "pickup-key.pub").read_text().startswith("ssh-ed25519 ")
    assert "pick-up demo-pickup:IN/" in terminal


def test_no_pnr_in_terminal_or_task_log(demo):
    work, terminal = demo
    (log,) = (work / "logs").glob("dag-test-*.log")
    texts = {"terminal": terminal, "task log": log.read_text(encoding="utf-8",
                                                             errors="replace")}
    pnrs = _extract_pnrs(work)
    assert len(pnrs) > 1000
    for where, text in texts.items():
        leaked = [p for p in pnrs if p in text or f"{p[:6]}-{p[6:]}" in text]
        assert not leaked, f"{len(leaked)} PNR(s) of the extract in the {where}"


def test_terminal_shows_the_summary_not_the_log(demo):
    _, terminal = demo
    assert "== run success" in terminal
    assert "[DAG TEST]" not in terminal


def test_env_file_lets_airflow_standalone_find_airflow(demo):
    """`airflow standalone` spawns `airflow ...` from PATH; sourcing the env file in a
    shell without the venv on PATH must make that the venv's airflow, at INFO level."""
    work, _ = demo
    script = (f"set -a; source '{work / 'airflow.env'}'; set +a; command -v airflow; "
              "airflow config get-value logging logging_level")
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                          timeout=120, env={"PATH": "/usr/bin:/bin", "HOME": str(work)})
    assert done.returncode == 0, done.stderr[-2000:]
    found, level = done.stdout.split()[-2:]
    assert Path(found) == VENV_BIN / "airflow"
    assert level == "INFO"


def _pickup_serve_command(work: Path, port: int) -> list[str]:
    """The pick-up server command the env file gives for the UI, on ``port`` instead of
    the fixed one (which another test or a newcomer's server may hold)."""
    (line,) = [ln for ln in (work / "airflow.env").read_text().splitlines()
               if ln.startswith("# Pick-up SFTP for the UI: ")]
    argv = shlex.split(line.removeprefix("# Pick-up SFTP for the UI: "))
    assert argv[1:3] == ["pickup", "serve"]
    assert argv[argv.index("--port") + 1] == "2223"
    argv[argv.index("--port") + 1] = str(port)
    return argv


def test_env_file_pickup_server_serves_the_inbox_to_openssh_sftp(demo):
    """The README's third terminal: start the pick-up server exactly as airflow.env says,
    then OpenSSH's sftp with the demo key lists both files of the account's IN/."""
    work, _ = demo
    port = free_port()
    server = subprocess.Popen(_pickup_serve_command(work, port), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        banner = server.stdout.readline()
        assert f"pick-up SFTP on 127.0.0.1:{port}" in banner, banner
        batch = work / "ls-in.batch"
        batch.write_text("ls -1 IN\n")
        done = subprocess.run(
            ["sftp", "-b", str(batch), "-i", str(work / "pickup-key"), "-P", str(port),
             "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
             "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "demo-pickup@127.0.0.1"],
            capture_output=True, text=True, timeout=60)
    finally:
        server.kill()
        server.wait(10)
    assert done.returncode == 0, done.stderr[-2000:]
    listed = {Path(name).name for name in done.stdout.split() if name.startswith("IN/")}
    (data,) = [n for n in listed if re.fullmatch(r"D\d{6}\.L\d{6}", n)]
    assert listed == {data, f"{data}.metadata"}


def test_demo_itself_logs_in_to_the_pickup_server(demo):
    """The summary's proof: the demo's own paramiko login as demo-pickup lists IN/."""
    _, terminal = demo
    proof = terminal[terminal.index("demo-pickup logged in with"):]
    assert re.search(r"sftp> ls IN\n  D\d{6}\.L\d{6}\n  D\d{6}\.L\d{6}\.metadata\n", proof)


def _sourced(work: Path, command: str) -> subprocess.CompletedProcess:
    """``command`` in a shell that sourced airflow.env, as the README's terminals do."""
    script = f"set -a; source '{work / 'airflow.env'}'; set +a; {command}"
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                          timeout=120, env={"PATH": "/usr/bin:/bin", "HOME": str(work)})


def test_sftp_connections_are_in_the_metadata_database_for_admin_connections(demo):
    """Issue 14, item 5: the UI lists (and edits) only connections stored in Airflow's
    database, not environment variables: airflow.env must not define them, and Airflow
    must find them there, pointing at the UI's SFTP server (port 2222)."""
    work, _ = demo
    assert "AIRFLOW_CONN_SFTP" not in (work / "airflow.env").read_text()
    export = work / "connections.json"  # `connections export` reads the database only
    done = _sourced(work, f"airflow connections export '{export}' --file-format json")
    assert done.returncode == 0, done.stderr[-2000:]
    stored = json.loads(export.read_text())
    for i in range(6):
        conn = stored[f"sftp_demo_{i}"]
        assert conn["conn_type"] == "sftp" and conn["port"] == 2222
        assert "host_key" in json.loads(conn["extra"])


def test_env_file_mail_sink_writes_alert_mails_as_eml_files(demo):
    """Issue 14, item 3: the mail sink command airflow.env gives (on a free port) takes
    a mail sent through Airflow's smtp_default of airflow.env and leaves an .eml file."""
    work, _ = demo
    (line,) = [ln for ln in (work / "airflow.env").read_text().splitlines()
               if ln.startswith("# Mail sink for the UI")]
    argv = shlex.split(line.split(": ", 1)[1])
    assert argv[1:3] == ["-m", "cpr_abonnement.dev.mailsink"]
    assert argv[argv.index("--port") + 1] == "2525"
    port = free_port()
    argv[argv.index("--port") + 1] = str(port)
    argv[0] = sys.executable
    sink = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert f"mail sink on 127.0.0.1:{port}" in sink.stdout.readline()
        send = ("python -c \"import json, os; c = json.loads(os.environ["
                "'AIRFLOW_CONN_SMTP_DEFAULT']); print(c['host'], c['port'], "
                "os.environ['CPRSUB_ALERT_EMAIL'])\"")
        done = _sourced(work, send.replace("python", str(sys.executable), 1))
        assert done.returncode == 0, done.stderr[-2000:]
        host, smtp_port, to = done.stdout.split()
        assert (host, smtp_port) == ("127.0.0.1", "2525")
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            smtp.sendmail("cpr-abonnement@localhost", [to],
                          b"Subject: [CPR Abonnement] test\r\n\r\nhello\r\n")
    finally:
        sink.terminate()
        sink.wait(10)
    (mail,) = (work / "mail").glob("*.eml")
    assert b"[CPR Abonnement] test" in mail.read_bytes()


def test_env_file_runs_standalone_on_the_preloaded_executor(demo):
    """Issue 16, item 3: `airflow standalone` from airflow.env forks each delivery from
    workers that hold the task side (PreloadedLocalExecutor); standalone keeps it, as it
    keeps any executor that says it is local, instead of forcing Airflow's own."""
    work, _ = demo
    done = _sourced(work, "python -c 'from airflow.executors.executor_loader import "
                          "ExecutorLoader as L; c, _ = L.import_default_executor_cls(); "
                          "print(c.__module__ + \".\" + c.__name__, c.is_local)'")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-2:] == [
        "cpr_abonnement.airflow_side.executor.PreloadedLocalExecutor", "True"]


def test_admin_password_file_is_readable_by_its_owner_only(demo):
    """Issue 21, item 14: `airflow standalone` (README terminal 2) writes the admin
    password in clear to airflow/simple_auth_manager_passwords.json.generated; it must be
    0600 like the keys, and the password still printed. Airflow's own code writes it
    here, as standalone and then its api-server do, in a shell that sourced airflow.env."""
    work, _ = demo
    done = _sourced(work, "python -c 'from airflow.cli.commands.standalone_command import "
                          "StandaloneCommand; from airflow.api_fastapi.app import "
                          "create_auth_manager; StandaloneCommand().find_user_info(); "
                          "create_auth_manager().init()'")
    assert done.returncode == 0, done.stderr[-2000:]
    path = work / "airflow" / "simple_auth_manager_passwords.json.generated"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    password = json.loads(path.read_text())["admin"]
    assert f"Password for user 'admin': {password}" in done.stdout
