"""The great-expectations suite: passes on good data, names failures with masked PNRs."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from builders import extract, person, write
from cpr_abonnement.extract.expectations import run_expectations
from cpr_abonnement.extract.generator import generate
from cpr_abonnement.extract.index import scan


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    path = tmp_path_factory.mktemp("gx") / "D261126.L431101"
    with open(path, "wb") as fh:
        generate(fh, production_date=dt.date(2026, 11, 26), persons=500, seed=8)
    return scan(path)


def test_generated_extract_meets_every_expectation(generated):
    report = run_expectations(generated)
    assert report.success, [str(o) for o in report.failures]
    assert {o.column for o in report.outcomes} == {
        "persons.pnr", "persons.birth_matches_pnr", "persons.status",
        "persons.municipality", "events.code", "events.derived"}


def test_failures_are_counted_and_masked(tmp_path):
    body = [*person("0101901234", birth="1991-01-01", kom="9876"),
            *person("1502504321", status="42", events=(("a1", "XX"),))]
    report = run_expectations(scan(write(tmp_path, extract(body))))
    failed = {o.column: o for o in report.failures}
    assert set(failed) == {"persons.birth_matches_pnr", "persons.municipality",
                           "persons.status", "events.code", "events.derived"}
    assert failed["persons.municipality"].unexpected == 1
    assert failed["persons.municipality"].examples == ("010190-****: '9876'",)
    text = " ".join(str(o) for o in report.outcomes)
    assert not re.search(r"\d{10}", text)


def test_one_odd_person_is_a_warning_not_a_failure(tmp_path):
    path = tmp_path / "D261126.L431101"
    with open(path, "wb") as fh:
        generate(fh, production_date=dt.date(2026, 11, 26), persons=3000, seed=9)
    index = scan(path)
    index.persons.loc[7, "municipality"] = 9876  # an unknown code on one of 3,000
    index.persons.loc[8, "status"] = 42
    report = run_expectations(index)
    assert report.success, [str(o) for o in report.failures]
    warned = {o.column: o for o in report.warnings}
    assert warned["persons.municipality"].unexpected == 1
    assert warned["persons.status"].unexpected == 1
    index.persons.loc[0:20, "status"] = 42  # 21 of 3,000: a systematically wrong file
    assert "persons.status" in {o.column for o in run_expectations(index).failures}
