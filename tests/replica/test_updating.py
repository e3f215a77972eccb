"""Applying extracts to the replica: a block replaces the person, production-date order,
backfills that never overwrite, the same file twice, a gap, no change before a load."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cpr_abonnement.errors import ReplicaChainGap, ReplicaNotLoaded
from cpr_abonnement.replica.lookups import find
from cpr_abonnement.replica.state import CHANGE, STATUS
from cpr_abonnement.replica.updating import apply_extract
from cpr_abonnement.store.models import ReplicaPerson
from support.replica import blocks_of, change_extract, edit, fields, status_extract

MON, TUE, WED, THU = (dt.date(2026, 11, d) for d in (16, 17, 18, 19))


@pytest.fixture
def loaded(engine, tmp_path):
    """A replica loaded from a 200-person status extract of Monday; its blocks."""
    path = status_extract(tmp_path, MON, 200)
    applied = apply_extract(engine, path, kind=STATUS)
    assert (applied.persons, applied.written, applied.kept_newer) == (200, 200, 0)
    return blocks_of(path)


def _resident(blocks):
    """A person living at a Danish address (status 01, a 002 record)."""
    pnr = next(p for p, b in blocks.items()
               if fields(b, "001")["STATUS"] == "01" and fields(b, "002"))
    return pnr, blocks[pnr]


def test_every_person_of_the_status_extract_is_found_as_received(engine, loaded):
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(ReplicaPerson)) == len(loaded)
    pnr, block = next(iter(loaded.items()))
    with Session(engine) as s:
        assert s.get(ReplicaPerson, pnr).block == b"\n".join(block) + b"\n"


def test_a_change_replaces_the_whole_person_and_the_same_file_again_changes_nothing(
        engine, loaded, tmp_path):
    pnr, block = _resident(loaded)
    moved = edit(block, "002", KOMKOD="0851")
    path = change_extract(tmp_path, TUE, MON, [moved])
    assert apply_extract(engine, path, kind=CHANGE).written == 1
    assert find(engine, pnr).person.address.municipality == "0851"
    assert find(engine, pnr).production_date == TUE
    again = apply_extract(engine, path, kind=CHANGE)
    assert again.already and "nothing changed" in again.line()


def test_an_older_day_applied_later_never_overwrites_newer_data(engine, loaded, tmp_path):
    pnr, block = _resident(loaded)
    other, other_block = next((p, b) for p, b in loaded.items() if p != pnr)
    for day in ("tue", "wed"):
        (tmp_path / day).mkdir()
    wednesday = change_extract(tmp_path / "wed", WED, TUE, [edit(block, "002", KOMKOD="0101")])
    # Tuesday's update failed; Wednesday was let through (allow_gap) and Tuesday redone.
    assert apply_extract(engine, wednesday, kind=CHANGE, allow_gap=True).written == 1
    tuesday = change_extract(tmp_path / "tue", TUE, MON,
                             [edit(block, "002", KOMKOD="0851"), other_block])
    late = apply_extract(engine, tuesday, kind=CHANGE)  # the missed day, backfilled
    assert (late.written, late.kept_newer) == (1, 1)
    assert find(engine, pnr).person.address.municipality == "0101"
    assert find(engine, other).production_date == TUE


def test_a_gap_in_the_chain_stops_the_update_unless_accepted(engine, loaded, tmp_path):
    pnr, block = _resident(loaded)
    thursday = change_extract(tmp_path, THU, WED, [edit(block, "002", KOMKOD="0851")])
    with pytest.raises(ReplicaChainGap, match="2026-11-18 but the last processed") as err:
        apply_extract(engine, thursday, kind=CHANGE)
    assert pnr not in str(err.value)
    assert find(engine, pnr).person.address.municipality != "0851"
    assert apply_extract(engine, thursday, kind=CHANGE, allow_gap=True).written == 1


def test_nothing_is_applied_before_a_status_load(engine, tmp_path):
    from builders import person

    path = change_extract(tmp_path, TUE, MON, [person("0101701234", birth="1970-01-01")])
    with pytest.raises(ReplicaNotLoaded, match="cprsub replica load"):
        apply_extract(engine, path, kind=CHANGE)
    assert find(engine, "0101701234") is None


def test_health_turns_unhealthy_when_the_replica_lags(engine, loaded, tmp_path):
    """Two delivery days processed by the pipeline, none of them in the replica."""
    from cpr_abonnement.health import check
    from cpr_abonnement.records import extract_runs
    from cpr_abonnement.replica.state import state

    def healthy_replica() -> bool:
        return not any("replica" in p for p in check(
            engine, now=dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)).problems)

    assert healthy_replica()
    for day, previous in ((TUE, MON), (WED, TUE)):
        extract_runs.register(engine, task_number="431101", production_date=day,
                              previous_date=previous, file_name=f"D{day:%y%m%d}.L431101",
                              sha256=f"{day:%d}" * 32, persons=1, records=1)
    now = state(engine)
    assert (now.lag_days, now.newest_processed, now.last_day) == (2, WED, MON)
    assert "2 delivery day(s) behind" in now.line()
    assert not healthy_replica()


def test_pages_released_behind_the_reader_are_read_again_when_a_record_lies_there(
        engine, tmp_path, monkeypatch):
    """The file's pages are released as the reader passes them; a person's record
    scattered to the end of the file (003, as some files do) or back into a released
    stretch is still read whole: every stored block equals the person's records."""
    import mmap

    from cpr_abonnement.replica import updating

    monkeypatch.setattr(updating, "RELEASE", mmap.PAGESIZE)
    path = status_extract(tmp_path, MON, 400)
    apply_extract(engine, path, kind=STATUS)
    with Session(engine) as s:
        stored = dict(s.execute(select(ReplicaPerson.pnr, ReplicaPerson.block)).tuples().all())
    expected = {p: b"\n".join(sorted(b, key=lambda line: line[:3])) + b"\n"
                for p, b in blocks_of(path).items()}
    assert {p: b"\n".join(sorted(b.rstrip(b"\n").split(b"\n"), key=lambda line: line[:3]))
            + b"\n" for p, b in stored.items()} == expected
