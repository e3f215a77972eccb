"""Receiving an extract, without Airflow: quarantine, chain, one validation per run.

Completeness (still arriving vs complete but broken) is in ``test_sensing.py``; here
files are taken at first sight (settle time 0).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from builders import extract, person
from cpr_abonnement.errors import ExtractRejected
from cpr_abonnement.inbound.sensing import find_extract
from cpr_abonnement.settings import Settings
from cpr_abonnement.tasks import daily

DAY = dt.date(2026, 11, 19)
NAME = "D261119.L431101"


def test_two_files_for_one_day_are_refused(settings, tmp_path):
    data = extract(person("0101901234"), day=DAY, previous=DAY - dt.timedelta(1))
    (tmp_path / "inbound" / NAME).write_bytes(data)
    assert find_extract(settings, DAY) == NAME
    (tmp_path / "inbound" / NAME.lower()).write_bytes(data)
    with pytest.raises(ExtractRejected, match="several extracts"):
        find_extract(settings, DAY)


def test_a_file_that_is_not_line_based_is_quarantined(settings, tmp_path, engine):
    broken = b"000" + b"0" * 100_000
    (tmp_path / "inbound" / NAME).write_bytes(broken)
    with pytest.raises(ExtractRejected, match="no line terminator"):
        daily.receive(settings, DAY, NAME, engine, allow_gap=False)
    kept = [p for p in (tmp_path / "quarantine").iterdir() if not p.name.endswith(".txt")]
    assert [p.read_bytes() for p in kept] == [broken]
    assert not (tmp_path / "inbound" / NAME).exists()


def test_sftp_inbound(tmp_path, monkeypatch, engine):
    from cpr_abonnement.dev.devsftp import EmbeddedSftpServer

    root = tmp_path / "sftp-root"
    (root / "cpr" / "out").mkdir(parents=True)
    data = extract(person("0101901234"), day=DAY, previous=DAY - dt.timedelta(1))
    with EmbeddedSftpServer(root, {"cpr": "pw"}) as server:
        monkeypatch.setenv("AIRFLOW_CONN_CPR_INBOUND", server.airflow_connection("cpr"))
        for d in ("staging", "quarantine"):
            (tmp_path / d).mkdir()
            monkeypatch.setenv(f"CPRSUB_{d.upper()}", f"file://{tmp_path / d}")
        monkeypatch.setenv("CPRSUB_INBOUND", "sftp://cpr_inbound/cpr/out")
        monkeypatch.setenv("CPRSUB_SETTLE_SECONDS", "0")
        settings = Settings.from_env()
        assert find_extract(settings, DAY) is None
        (root / "cpr" / "out" / NAME).write_bytes(data)
        assert find_extract(settings, DAY) == NAME
        received = daily.receive(settings, DAY, NAME, engine, allow_gap=False)
        assert received.persons == 1
        assert (tmp_path / "staging" / "2026-11-19" / "extract" / NAME).read_bytes() == data
        (root / "cpr" / "out" / NAME).write_bytes(data.replace(b"\n999", b"\n998"))
        with pytest.raises(ExtractRejected, match="unknown record type '998'"):
            daily.receive(settings, DAY, NAME, engine, allow_gap=False)
        assert not (root / "cpr" / "out" / NAME).exists()
        assert len(list((root / "cpr" / "out" / "quarantine").iterdir())) == 1


def _stage_and_receive(settings, tmp_path, engine):
    data = extract(person("0101901234"), day=DAY, previous=DAY - dt.timedelta(1))
    (tmp_path / "inbound" / NAME).write_bytes(data)
    return daily.receive(settings, DAY, NAME, engine, allow_gap=False)


def test_a_run_validates_the_extract_once(settings, tmp_path, engine, monkeypatch):
    from cpr_abonnement.extract import validation

    calls = []

    def counted(index, **kw):  # calls through: only counts
        calls.append(index.path.name)
        return real(index, **kw)

    real = validation.violations
    monkeypatch.setattr(validation, "violations", counted)
    monkeypatch.setattr(daily, "violations", counted)
    received = _stage_and_receive(settings, tmp_path, engine)
    daily.filter_day(settings, received, engine, as_of=None)
    assert calls == [NAME]


def test_the_filter_step_refuses_a_staged_extract_changed_since_validation(
        settings, tmp_path, engine):
    from cpr_abonnement.errors import ExtractNotValidated

    received = _stage_and_receive(settings, tmp_path, engine)
    staged = tmp_path / "staging" / "2026-11-19" / "extract" / NAME
    staged.write_bytes(staged.read_bytes().replace(b"0101901234", b"0202801234"))
    with pytest.raises(ExtractNotValidated, match=f"{NAME} changed since it was validated"):
        daily.filter_day(settings, received, engine, as_of=None)
    assert not (tmp_path / "staging" / "2026-11-19" / "deltas").exists()


def test_a_run_scans_the_extract_once(settings, tmp_path, engine, monkeypatch):
    """Issue 10, item 10: the filter step works from the index receive saved."""
    from cpr_abonnement.extract import index

    calls = []

    def counted(path, **kw):  # calls through: only counts
        calls.append(Path(path).name)
        return real(path, **kw)

    real = index.scan
    monkeypatch.setattr(daily, "scan", counted)
    monkeypatch.setattr("cpr_abonnement.filter_step.scan", counted)
    received = _stage_and_receive(settings, tmp_path, engine)
    daily.filter_day(settings, received, engine, as_of=None)
    assert calls == [NAME]


def test_the_filter_step_refuses_a_staged_extract_without_its_index(
        settings, tmp_path, engine):
    from cpr_abonnement.errors import ExtractNotValidated

    received = _stage_and_receive(settings, tmp_path, engine)
    staged = tmp_path / "staging" / "2026-11-19" / "extract" / f"{NAME}.index.npz"
    staged.unlink()
    with pytest.raises(ExtractNotValidated, match="run parse_and_validate again"):
        daily.filter_day(settings, received, engine, as_of=None)


def test_a_file_named_for_another_task_is_quarantined(settings, tmp_path, engine):
    """``D261119.L999999`` whose 000 says task 431101 would be checked against task
    999999's chain: the name and record 000 must agree."""
    from builders import start

    data = extract(person("0101901234"), day=DAY, previous=DAY - dt.timedelta(1))
    assert data.startswith(start(DAY, DAY - dt.timedelta(1), task="431101"))
    renamed = "D261119.L999999"
    (tmp_path / "inbound" / renamed).write_bytes(data)
    with pytest.raises(ExtractRejected, match=r"named D261119\.L999999 but OPGAVENR "
                                                       "431101"):
        daily.receive(settings, DAY, renamed, engine, allow_gap=False)
    assert not (tmp_path / "inbound" / renamed).exists()
    assert len(list((tmp_path / "quarantine").glob("D261119.L999999.*.reason.txt"))) == 1


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_second_arrival_is_recognised_and_a_different_one_quarantined(settings, tmp_path,
                                                                         engine):
    """Issue 27: a processed extract leaves the inbound folder; its staged copy is the
    archive. The same file arriving again is recognised by its SHA-256 and removed; a
    different file with that name is quarantined and never replaces the archive."""
    inbound, staged = tmp_path / "inbound" / NAME, tmp_path / "staging" / "2026-11-19" / "extract"
    data = extract(person("0101901234"), day=DAY, previous=DAY - dt.timedelta(1))
    inbound.write_bytes(data)
    received = daily.receive(settings, DAY, NAME, engine, allow_gap=True)
    daily.filter_day(settings, received, engine, as_of=None)  # the registry's first record
    assert not inbound.exists() and (staged / NAME).read_bytes() == data

    inbound.write_bytes(data)  # CPR sends it again
    again = daily.receive(settings, DAY, NAME, engine, allow_gap=True)
    assert again.sha256 == received.sha256 and not inbound.exists()
    assert not any((tmp_path / "quarantine").iterdir())

    other = extract(person("0101901234") + person("0202801234"), day=DAY,
                    previous=DAY - dt.timedelta(1))
    inbound.write_bytes(other)
    with pytest.raises(ExtractRejected, match="different from the one processed"):
        daily.receive(settings, DAY, NAME, engine, allow_gap=True)
    assert (staged / NAME).read_bytes() == data  # the archive is what was delivered
    kept = [p for p in (tmp_path / "quarantine").iterdir() if not p.name.endswith(".txt")]
    assert [p.read_bytes() for p in kept] == [other]
