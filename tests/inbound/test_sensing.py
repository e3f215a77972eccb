"""Sensing the day's extract: still arriving vs complete but broken (issue 10, item 5).

Both inbound kinds behave the same: a local folder (``file://``) and an SFTP directory
served by a real SFTP server on 127.0.0.1. Time is passed in (``now``), so "stable for
the settle time" is tested without sleeping.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from builders import extract, person
from cpr_abonnement.dev.devsftp import EmbeddedSftpServer
from cpr_abonnement.errors import ExtractRejected
from cpr_abonnement.inbound.sensing import find_extract
from cpr_abonnement.settings import Settings

DAY = dt.date(2026, 11, 19)
NAME = "D261119.L431101"
T0 = dt.datetime(2026, 11, 19, 20, 0, tzinfo=dt.UTC)
SETTLE = dt.timedelta(seconds=600)
DATA = extract(person("0101901234"), day=DAY, previous=DAY - dt.timedelta(1))
CUT_IN_999 = DATA[: DATA.rindex(b"\n999") + 12]  # caught mid-way through its 999 line

BROKEN = {  # what a stable file holds -> the broken rule its reason names
    "empty": (b"", "the file is empty"),
    "truncated": (DATA[: len(DATA) // 2], "999 last"),
    "no 999": (DATA[: DATA.rindex(b"999")], "999 last"),
    "999 cut short": (CUT_IN_999, "999 end record has 11 of its"),
    "999 without line end": (DATA[:-1], "999 end record has no line end"),
    "binary": (bytes(range(256)) * 64, "control character 0x"),
}


@pytest.fixture(params=["file", "sftp"])
def inbound(request, tmp_path, monkeypatch):
    """(settings, inbound folder on disk, quarantine folder) for each inbound kind."""
    for d in ("staging", "quarantine"):
        (tmp_path / d).mkdir()
        monkeypatch.setenv(f"CPRSUB_{d.upper()}", f"file://{tmp_path / d}")
    monkeypatch.setenv("CPRSUB_SETTLE_SECONDS", str(SETTLE.total_seconds()))
    if request.param == "file":
        folder = tmp_path / "inbound"
        folder.mkdir()
        monkeypatch.setenv("CPRSUB_INBOUND", f"file://{folder}")
        yield Settings.from_env(), folder
        return
    root = tmp_path / "sftp-root"
    folder = root / "cpr" / "out"
    folder.mkdir(parents=True)
    with EmbeddedSftpServer(root, {"cpr": "pw"}) as server:
        monkeypatch.setenv("AIRFLOW_CONN_CPR_INBOUND", server.airflow_connection("cpr"))
        monkeypatch.setenv("CPRSUB_INBOUND", "sftp://cpr_inbound/cpr/out")
        yield Settings.from_env(), folder


def _write(path: Path, data: bytes, mtime: int) -> None:
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))


def test_a_complete_file_is_taken_once_stable_for_the_settle_time(inbound):
    settings, folder = inbound
    assert find_extract(settings, DAY, now=T0) is None  # nothing there
    _write(folder / NAME, DATA, 1_000)
    assert find_extract(settings, DAY, now=T0) is None  # first seen
    assert find_extract(settings, DAY, now=T0 + SETTLE / 2) is None  # settling
    assert find_extract(settings, DAY, now=T0 + SETTLE) == NAME


def test_a_file_still_growing_is_never_quarantined(inbound):
    settings, folder = inbound
    for i, size in enumerate((10, len(DATA) // 2, len(CUT_IN_999))):
        _write(folder / NAME, CUT_IN_999[:size], 1_000 + i)
        assert find_extract(settings, DAY, now=T0 + i * SETTLE) is None
    _write(folder / NAME, DATA, 1_010)  # the writer finishes its 999 line
    assert find_extract(settings, DAY, now=T0 + 3 * SETTLE) is None
    assert find_extract(settings, DAY, now=T0 + 4 * SETTLE) == NAME
    assert (folder / NAME).read_bytes() == DATA


def test_a_file_touched_without_growing_is_still_arriving(inbound):
    settings, folder = inbound
    _write(folder / NAME, CUT_IN_999, 1_000)
    assert find_extract(settings, DAY, now=T0) is None
    _write(folder / NAME, CUT_IN_999, 1_005)  # same size, newer mtime
    assert find_extract(settings, DAY, now=T0 + SETTLE) is None
    assert (folder / NAME).exists()


@pytest.mark.parametrize("kind", list(BROKEN))
def test_a_stable_broken_file_is_quarantined_naming_the_rule(inbound, kind, tmp_path):
    settings, folder = inbound
    data, rule = BROKEN[kind]
    _write(folder / NAME, data, 1_000)
    assert find_extract(settings, DAY, now=T0) is None
    with pytest.raises(ExtractRejected, match=rule) as exc:
        find_extract(settings, DAY, now=T0 + SETTLE)
    assert "not received" not in str(exc.value)
    assert not (folder / NAME).exists()
    kept = [p for p in (tmp_path / "quarantine").iterdir() if not p.name.endswith(".txt")]
    assert [p.read_bytes() for p in kept] == [data]
    reason = next((tmp_path / "quarantine").glob("*.reason.txt")).read_text()
    assert rule in reason
    # What the sensor task records for the console: the file, where it went, the rule.
    rejected = exc.value
    assert (rejected.file_name, rejected.quarantined_to, rejected.size_bytes) == \
        (NAME, str(kept[0]), len(data))
    assert rule in f"rule '{rejected.rule}': {rejected.error.detail}"
    # A broken end is located at the file's last line (counted in the quarantined copy).
    last_line = data.count(b"\n") + (not data.endswith(b"\n"))
    assert rejected.error.line == (last_line if rejected.error.record_type == "999"
                                   else None)


def test_settle_time_zero_takes_a_whole_file_at_once(inbound, monkeypatch):
    _, folder = inbound
    monkeypatch.setenv("CPRSUB_SETTLE_SECONDS", "0")
    _write(folder / NAME, DATA, 1_000)
    assert find_extract(Settings.from_env(), DAY, now=T0) == NAME
