"""What ``parse_and_validate`` records for the console: every verdict, rule and line,
great-expectations results, never a full PNR."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from builders import extract, person
from cpr_abonnement.errors import ExtractRejected
from cpr_abonnement.records import extract_checks
from cpr_abonnement.store.models import ExtractCheck
from cpr_abonnement.tasks import daily

DAY = dt.date(2026, 11, 19)
NAME = "D261119.L431101"
PNRS = ("0101901234", "0202851234")


@pytest.fixture
def sqlite_engine(sqlite_url):
    from cpr_abonnement.store.db import make_engine, upgrade

    engine = make_engine(sqlite_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def _stored(engine) -> str:
    with Session(engine) as s:
        return json.dumps([[getattr(r, c.name) for c in ExtractCheck.__table__.columns]
                           for r in s.scalars(select(ExtractCheck))], default=str)


def test_an_accepted_extract_keeps_its_expectation_results(settings, tmp_path, sqlite_engine):
    data = extract(person(PNRS[0]) + person(PNRS[1]), day=DAY, previous=DAY - dt.timedelta(1))
    (tmp_path / "inbound" / NAME).write_bytes(data)
    daily.receive(settings, DAY, NAME, sqlite_engine, allow_gap=False)
    (check,) = extract_checks.recent(sqlite_engine)
    assert (check.verdict, check.production_date, check.previous_date, check.size_bytes,
            check.persons) == ("accepted", DAY, DAY - dt.timedelta(1), len(data), 2)
    names = {(e.name, e.column): e.state for e in check.expectations}
    assert names[("ExpectColumnValuesToBeUnique", "persons.pnr")] == "passed"
    assert len(names) == 7 and check.problems == ()
    assert not any(p in _stored(sqlite_engine) for p in PNRS)


def test_a_rejected_extract_keeps_each_broken_rule_with_its_line(settings, tmp_path,
                                                                sqlite_engine):
    data = extract(person(PNRS[0]), day=DAY, previous=DAY - dt.timedelta(1), counter=99)
    (tmp_path / "inbound" / NAME).write_bytes(data)
    with pytest.raises(ExtractRejected):
        daily.receive(settings, DAY, NAME, sqlite_engine, allow_gap=False)
    (check,) = extract_checks.recent(sqlite_engine)
    assert check.verdict == "rejected" and check.quarantined_to.startswith(
        str(tmp_path / "quarantine"))
    (problem,) = check.problems
    assert problem.record_type == "999" and problem.line == data.count(b"\n")
    assert "counter" in problem.rule or "999" in problem.rule, problem
    assert check.expectations == ()  # not run on a structurally invalid file
    assert not any(p in _stored(sqlite_engine) for p in PNRS)


def test_a_chain_gap_is_recorded_as_held(settings, tmp_path, sqlite_engine):
    first = extract(person(PNRS[0]), day=DAY, previous=DAY - dt.timedelta(1))
    (tmp_path / "inbound" / NAME).write_bytes(first)
    received = daily.receive(settings, DAY, NAME, sqlite_engine, allow_gap=False)
    from cpr_abonnement.records import extract_runs

    extract_runs.register(sqlite_engine, task_number=received.task_number, production_date=DAY,
                          previous_date=received.previous_date, file_name=NAME,
                          sha256=received.sha256, persons=1, records=1)
    monday = dt.date(2026, 11, 23)  # Friday 20th is missing
    name = "D261123.L431101"
    (tmp_path / "inbound" / name).write_bytes(
        extract(person(PNRS[1]), day=monday, previous=dt.date(2026, 11, 20)))
    with pytest.raises(Exception, match="allow_gap"):
        daily.receive(settings, monday, name, sqlite_engine, allow_gap=False)
    held = extract_checks.recent(sqlite_engine)[0]
    assert held.verdict == "held" and held.problems[0].field == "PRODDTOFORRIG"


def test_a_rejected_arrival_stays_listed_after_its_correction(settings, tmp_path,
                                                             sqlite_engine):
    """The corrected file has the same name; the console still shows what was wrong with
    the first one, marked as received again, and the summary of the data checks."""
    from cpr_abonnement.console import views

    bad = extract(person(PNRS[0]), day=DAY, previous=DAY - dt.timedelta(1), counter=99)
    (tmp_path / "inbound" / NAME).write_bytes(bad)
    with pytest.raises(ExtractRejected):
        daily.receive(settings, DAY, NAME, sqlite_engine, allow_gap=False)
    good = extract(person(PNRS[0]), day=DAY, previous=DAY - dt.timedelta(1))
    (tmp_path / "inbound" / NAME).write_bytes(good)
    daily.receive(settings, DAY, NAME, sqlite_engine, allow_gap=False)
    rows = views.extracts(sqlite_engine)
    assert [(r.file_name, r.verdict, r.superseded) for r in rows] == [
        (NAME, "accepted", False), (NAME, "rejected", True)]
    assert rows[0].expectations_summary == "7/7 passed" and rows[1].checks == 2
    assert rows[1].problems and rows[1].problems[0].record_type == "999"
    from cpr_abonnement.settings import Settings

    (day,) = [t for t in views.chain_timeline(rows, Settings.from_env(), today=DAY)
              if t.day == DAY]
    assert day.state == "processed"  # the corrected file decides the day
