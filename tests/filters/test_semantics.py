"""product.md §3, one rule at a time, on hand-built extracts (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import xmltodict

from builders import extract, person, rec, write
from cpr_abonnement.errors import ExtractConflict
from cpr_abonnement.extract.index import scan
from cpr_abonnement.filter_step import filter_extract
from cpr_abonnement.subscriptions.service import SubscriptionService

DAY = dt.date(2026, 11, 26)
T0 = dt.datetime(2026, 11, 26, 5, 0)
SUB = "6f1f0b8e-6a55-4f55-9d7b-1c5c1f3a0001"
OTHER = "0d4c3b2a-1111-4222-8333-444455556666"


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def setup(engine, tmp_path):
    clock = Clock(dt.datetime(2026, 11, 25, 12, 0))
    svc = SubscriptionService(engine, caller="test", clock=clock)
    svc.add_subscriber(SUB, "Aalborg ESDH")

    def run(body: list[bytes], *, eol: bytes = b"\n", day: dt.date = DAY) -> dict[str, bytes]:
        src = write(tmp_path, extract(body, eol=eol, day=day,
                                      previous=day - dt.timedelta(days=1)),
                    name=f"D{day:%y%m%d}.L431101")
        out = tmp_path / f"out-{day}"
        filter_extract(src, engine, out, as_of=T0, clock=lambda: T0)
        return {p.parent.name: p.read_bytes() for p in out.glob("*/D*.L431101")}
    return svc, run


def pnrs_in(data: bytes) -> list[str]:
    """PNRs of the person records in a delta, in order of first appearance."""
    seen: dict[str, None] = {}
    for line in data.splitlines()[1:-1]:
        seen[line[3:13].decode()] = None
    return list(seen)


@pytest.mark.parametrize(("birth", "pnr", "selected"), [
    ("2008-11-26", "2611084001", True),    # 18 today: the birthday counts
    ("2008-11-27", "2711084001", False),   # 18 tomorrow: still 17
    ("1956-11-26", "2611561001", True),    # 70 today: upper end inclusive
    ("1955-11-27", "2711551001", True),    # 71 tomorrow: still 70
    ("1955-11-26", "2611551001", False),   # 71 today
])
def test_age_in_completed_years_both_ends_inclusive(setup, birth, pnr, selected):
    svc, run = setup
    svc.add_age_range(SUB, 18, 70)
    assert (pnrs_in(run(person(pnr, birth=birth))[SUB]) == [pnr]) is selected


def test_leap_day_birthday_ages_on_1_march(setup):
    svc, run = setup
    svc.add_age_range(SUB, 23, 23)
    leap = "2902004000"  # born 2000-02-29 (7th digit 4, YY 00 -> 2000)
    assert pnrs_in(run(person(leap, birth=""), day=dt.date(2023, 2, 28))[SUB]) == []
    assert pnrs_in(run(person(leap, birth=""), day=dt.date(2023, 3, 1))[SUB]) == [leap]


def test_birth_date_from_001_else_from_pnr_by_century_digit(setup):
    svc, run = setup
    svc.add_age_range(SUB, 120, 130)
    # 7th digit 5 with YY 99: born 1899 -> 127 years old, only by the century rule
    old, young = "3012995007", "3012994007"  # 4 with 99 -> 1999: 26
    body = [*person(old, birth=""), *person(young, birth="")]
    assert pnrs_in(run(body)[SUB]) == [old]
    svc.remove_age_range(SUB, 120, 130)
    svc.add_age_range(SUB, 26, 26)
    # FOED_DT wins over the PNR where it is a real date; a partial date falls back
    body = [*person(old, birth="1999-12-30"), *person(young, birth="1999-00-00")]
    assert pnrs_in(run(body, day=dt.date(2026, 12, 29))[SUB]) == [old, young]


def test_municipality_current_002_only(setup):
    svc, run = setup
    svc.add_municipality(SUB, "851")
    mover_in = person("0101901234", kom="0851", moved_from="0101")
    mover_out = person("0202801234", kom="0101", moved_from="0851")
    dead = person("0303701234", status="90", kom=None)
    stays = person("0404601234", kom="851")
    got = pnrs_in(run([*mover_in, *mover_out, *dead, *stays])[SUB])
    assert got == ["0101901234", "0404601234"]


def test_change_codes_match_derived_events_too(setup):
    svc, run = setup
    svc.add_change_code(SUB, "A21")
    dead = person("0101301234", status="90", kom=None, events=(("A21", ""),))
    spouse = person("0202321234", events=(("A21", "ÆG"),))
    mover = person("0303801234", events=(("A01", ""),))
    assert pnrs_in(run([*dead, *spouse, *mover])[SUB]) == ["0101301234", "0202321234"]


def test_union_delivers_each_person_once_with_all_records_in_source_order(setup):
    svc, run = setup
    p = "0101901234"
    svc.add_pnr(SUB, p)
    svc.add_municipality(SUB, "851")
    svc.add_change_code(SUB, "A01")
    a, b = person(p, birth="1990-01-01", events=(("A01", ""),)), person("0202801234")
    body = [a[0], a[1], *b, *a[3:], a[2]]  # A's 003 scattered to the end
    data = run(body)[SUB]
    assert data == extract([a[0], a[1], *b, *a[3:], a[2]])
    assert data.count(b"\n001" + p.encode()) == 1


def test_pnr_filter_and_platform_records(setup):
    svc, run = setup
    svc.add_pnr(SUB, "0101901234")
    r910 = rec("910", "0101901234", INDDATA="x", FEJLNR="0001")
    r997 = rec("997", "0101901234", TIMESTAMPU="202611260000", HAENDELSE="A45")
    data = run([*person("0101901234"), r910, r997, *person("0202801234")])[SUB]
    assert data == extract(person("0101901234"))


def test_no_filters_gives_000_and_999_only_and_crlf_and_latin1_survive(setup):
    svc, run = setup
    svc.add_subscriber(OTHER, "Odense Sag")
    svc.add_pnr(OTHER, "0101901234")
    files = run([*person("0101901234"), *person("0202801234")], eol=b"\r\n")
    assert files[SUB] == extract([], eol=b"\r\n")
    assert files[SUB].endswith(b"999999999999900000000\r\n")
    assert files[OTHER] == extract(person("0101901234"), eol=b"\r\n")
    assert "Sørensen,Åse Ærø".encode("latin-1") in files[OTHER]


def test_disabled_subscribers_get_no_file(setup, tmp_path):
    svc, run = setup
    svc.add_subscriber(OTHER, "Odense Sag")
    svc.set_active(OTHER, False)
    assert set(run(person("0101901234"))) == {SUB}


def test_as_of_snapshot_is_kept_and_rerun_is_byte_identical(setup, engine, tmp_path):
    svc, _ = setup
    svc.add_pnr(SUB, "0101901234")
    src = write(tmp_path, extract([*person("0101901234"), *person("0202801234")]))
    first = filter_extract(src, engine, tmp_path / "a", as_of=T0, clock=lambda: T0)
    svc.clock.now = T0 + dt.timedelta(hours=1)
    svc.add_pnr(SUB, "0202801234")  # added after the snapshot: must not change the re-run
    later = T0 + dt.timedelta(hours=2)
    again = filter_extract(src, engine, tmp_path / "b", clock=lambda: later)
    assert again.extract.filters_as_of == first.extract.filters_as_of == T0
    for name in ("D261126.L431101", "D261126.L431101.metadata"):
        assert (tmp_path / "a" / SUB / name).read_bytes() == (
            tmp_path / "b" / SUB / name).read_bytes()
    trigger = xmltodict.parse((tmp_path / "a" / SUB / "D261126.L431101.metadata"
                               ).read_bytes())["ns2:Trigger"]
    meta = trigger["FileContentDescriptor"]
    assert meta["cpr:Persons"] == "1" and meta["cpr:FirstProcessedAt"] == (
        "2026-11-26T05:00:00.000000Z")
    assert meta["cpr:PreviousProductionDate"] == "2026-11-25"
    assert trigger["FileDescriptor"]["Recipients"] == SUB


def test_a_different_file_for_a_processed_day_is_refused(setup, engine, tmp_path):
    src = write(tmp_path, extract(person("0101901234")))
    filter_extract(src, engine, tmp_path / "a", clock=lambda: T0)
    src.write_bytes(extract(person("0202801234")))
    with pytest.raises(ExtractConflict, match="refusing to replace it"):
        filter_extract(src, engine, tmp_path / "b", clock=lambda: T0)
    assert not (tmp_path / "b").exists()


def test_invalid_extract_writes_nothing(setup, engine, tmp_path):
    src = write(tmp_path, extract(person("0101901234"), counter=7))
    with pytest.raises(Exception, match="counter says 7"):
        filter_extract(src, engine, tmp_path / "out", clock=lambda: T0)
    assert not Path(tmp_path / "out").exists()
    assert scan(src).end.counter == 7


def test_subscriber_set_is_part_of_the_snapshot(setup, engine, tmp_path):
    svc, _ = setup
    svc.clock.now = T0 + dt.timedelta(hours=1)
    svc.add_subscriber(OTHER, "added after the snapshot")
    src = write(tmp_path, extract(person("0101901234")))
    first = filter_extract(src, engine, tmp_path / "a", as_of=T0, clock=lambda: T0)
    assert [s.uuid for s in first.subscribers] == [SUB]
    svc.clock.now = T0 + dt.timedelta(hours=2)
    svc.set_active(SUB, False)  # disabled since: a re-run of that day still includes it
    again = filter_extract(src, engine, tmp_path / "b", clock=lambda: T0)
    assert [s.uuid for s in again.subscribers] == [SUB]
