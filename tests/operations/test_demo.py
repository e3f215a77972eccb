"""README command 1 as a newcomer runs it, and the setup it leaves for the Airflow UI."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import xmltodict

from cpr_abonnement.extract.index import scan

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
    (extract,) = (work / "inbound").glob("D*.L*")
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
