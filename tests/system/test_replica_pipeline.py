"""The replica kept by the real daily DAG (``dag.test()``): a status load, then three
delivery days of changes (a move, a death, a name change, an emigration, a changed
PNR, a new child, a protected address); a look-up after each day shows that day's state.
And the replica and the deliveries do not stop each other."""

from __future__ import annotations

import datetime as dt

import pytest

from cpr_abonnement.replica.lookups import Caller, find, look_up, lookups_of
from cpr_abonnement.replica.person import NAME_AND_ADDRESS
from cpr_abonnement.replica.state import STATUS, state
from cpr_abonnement.replica.updating import apply_extract
from support.deployment import task_states
from support.replica import (
    blocks_of,
    change_extract,
    drop,
    edit,
    event,
    fields,
    renumber,
    status_extract,
)

pytestmark = pytest.mark.slow

MON, TUE, WED, THU = (dt.date(2026, 11, d) for d in (16, 17, 18, 19))
KEY = "test-lookup-key"
CALLER = Caller("aaaaaaaa-0000-4000-8000-000000000001", None, "rest")


@pytest.fixture
def replica(deployment, tmp_path, monkeypatch):
    """The deployment with a replica loaded from Monday's status extract (300 persons);
    returns the status blocks by PNR."""
    monkeypatch.setenv("CPRSUB_LOOKUP_KEY", KEY)
    (tmp_path / "status").mkdir()
    path = status_extract(tmp_path / "status", MON, 300)
    apply_extract(deployment.engine, path, kind=STATUS)
    return blocks_of(path)


def _adults_at_home(blocks, count):
    found = [p for p, b in blocks.items() if fields(b, "001")["STATUS"] == "01"
             and fields(b, "002") and fields(b, "001")["FOED_DT"] < "2000-01-01"]
    assert len(found) >= count
    return found[:count]


def _look(engine, pnr):
    return look_up(engine, pnr, CALLER, key=KEY,
                   now=lambda: dt.datetime(2026, 12, 6, 12)).person


def _run(deployment, day, previous, blocks):
    change_extract(deployment.inbound, day, previous, blocks)
    states = task_states(deployment.run(day))
    assert states["update_replica"] == "success", states
    assert states["report"] == "success", states
    return states


def test_three_days_of_changes_reach_the_look_ups(deployment, replica):
    engine = deployment.engine
    mover, dying, renamed, leaving, renumbered, parent, hidden = _adults_at_home(replica, 7)
    b = replica

    # Tuesday: a move to Aalborg, a death.
    _run(deployment, TUE, MON, [
        [*edit(b[mover], "002", KOMKOD="0851", TILFLYDTO=f"{TUE:%Y%m%d}0000"),
         event(mover, TUE, "A01")],
        edit(drop(b[dying], "002"), "001", STATUS="90", STATUSHAENSTART=f"{TUE:%Y%m%d}0000")])
    assert _look(engine, mover).address.municipality == "0851"
    assert _look(engine, mover).address.moved_in == TUE
    dead = _look(engine, dying)
    assert (dead.status, dead.status_date, dead.address) == ("90", TUE, None)
    assert _look(engine, renamed).name.last != "Testesen"  # not yet

    # Wednesday: a new name, an emigration to Sweden, a protected address.
    _run(deployment, WED, TUE, [
        edit(b[renamed], "008", EFTERNVN="Testesen", ADRNVN="Testesen,Ny"),
        edit(edit(drop(b[leaving], "002"), "001", STATUS="80"), "005", UDR_LANDEKOD="5110",
             UDRDTO=f"{WED:%Y%m%d}0000", UDLANDADR1="Storgatan 1", UDLANDADR2="Malmö"),
        edit(b[hidden], "004", BESKYTTYPE=NAME_AND_ADDRESS, START_DT_BESKYTTELSE=f"{WED}")])
    assert _look(engine, renamed).name.last == "Testesen"
    gone = _look(engine, leaving)
    assert (gone.status, gone.address, gone.emigration.country) == ("80", None, "5110")
    assert gone.emigration.address == ("Storgatan 1", "Malmö")
    assert _look(engine, hidden).protected(NAME_AND_ADDRESS, WED)
    assert not _look(engine, mover).protected(NAME_AND_ADDRESS, WED)

    # Thursday: a changed PNR (the old number says which is in force), a new child.
    new_number = _free_number(replica, renumbered)
    child = f"{THU:%d%m%y}4002"  # born Thursday (7th digit 4: 2000s for year 26)
    _run(deployment, THU, WED, [
        edit(b[renumbered], "001", STATUS="60", PNRGAELD=new_number),
        renumber(b[renumbered], new_number),
        edit(b[parent], "014", PNRBARN=child),
        edit(edit(renumber(b[parent][:1], child), "001", FOED_DT=f"{THU}", STATUS="01"),
             "015", PNRMOR=parent, MOR_DT=f"{THU}")])
    old = _look(engine, renumbered)
    assert (old.status, old.current_pnr) == ("60", new_number)
    assert _look(engine, new_number).pnr == new_number
    assert child in _look(engine, parent).children
    assert _look(engine, child).mother.pnr == parent

    # Still there, with their status, whatever happened to them; the log knows who asked.
    assert find(engine, dying).person.status == "90"
    asked = lookups_of(engine, mover, KEY, dt.datetime(2026, 12, 1), dt.datetime(2026, 12, 7))
    assert len(asked) == 3 and {r.result for r in asked} == {"FOUND"}
    assert all(mover not in r.pnr_hash for r in asked)
    now = state(engine)
    assert (now.last_day, now.lag_days, now.persons) == (THU, 0, 300 + 2)


def _free_number(blocks, like: str, serial: str = "4001") -> str:
    """A valid PNR of ``like``'s birth date not in the population (the serial differs)."""
    number = like[:6] + serial
    assert number not in blocks
    return number


def test_a_replica_gap_fails_its_own_task_and_the_deliveries_go_out(deployment, replica):
    """Tuesday's extract never reached the replica: Wednesday's update fails at once
    (no retry) with the replica's runbook step; the subscribers still get Wednesday."""
    (mover,) = _adults_at_home(replica, 1)
    change_extract(deployment.inbound, WED, TUE, [edit(replica[mover], "002", KOMKOD="0851")])
    states = task_states(deployment.run(WED))
    assert states["update_replica"] == "failed"
    assert all(v == "success" for k, v in states.items() if k.startswith("deliver["))
    assert _look(deployment.engine, mover).address.municipality != "0851"
    (alert,) = [t for t in deployment.inbox.texts() if "update_replica" in t
                or "replica" in t.splitlines()[0]]
    assert "Replica update failed" in alert and mover not in alert


def test_without_a_status_load_the_replica_task_is_skipped(deployment):
    deployment.extract(TUE)
    states = task_states(deployment.run(TUE))
    assert states["update_replica"] == "skipped" and states["report"] == "success"


def test_a_replica_of_its_own_database_is_kept_there(deployment, tmp_path, monkeypatch,
                                                      capsys):
    """``CPRSUB_REPLICA_DB_URL``: the daily task, the look-ups, their log and `cprsub
    replica status` use the replica's own database; the filter database holds none of
    it, and the lag is still measured against the extracts processed there."""
    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    from cpr_abonnement.cli import main
    from cpr_abonnement.replica.database import replica_engine
    from cpr_abonnement.store.db import make_engine, upgrade
    from cpr_abonnement.store.models import ReplicaLookup, ReplicaPerson

    url = f"sqlite:///{tmp_path / 'replica.db'}"
    upgrade(make_engine(url))
    monkeypatch.setenv("CPRSUB_REPLICA_DB_URL", url)
    monkeypatch.setenv("CPRSUB_LOOKUP_KEY", KEY)
    replica = replica_engine(deployment.engine)
    assert replica is not deployment.engine
    (tmp_path / "status").mkdir()
    blocks = blocks_of(status_extract(tmp_path / "status", MON, 50))
    apply_extract(replica, tmp_path / "status" / "D261116.L431101", kind=STATUS)
    (mover,) = _adults_at_home(blocks, 1)
    _run(deployment, TUE, MON, [edit(blocks[mover], "002", KOMKOD="0851")])
    found = look_up(deployment.engine, mover, CALLER, key=KEY, replica=replica,
                    now=lambda: dt.datetime(2026, 12, 6, 12))
    assert found.person.address.municipality == "0851"
    for engine, persons, logged in ((replica, 50, 1), (deployment.engine, 0, 0)):
        with Session(engine) as s:
            assert s.scalar(select(func.count()).select_from(ReplicaPerson)) == persons
            assert s.scalar(select(func.count()).select_from(ReplicaLookup)) == logged
    assert main(["replica", "status", "--json", "--db", str(deployment.engine.url)]) == 0
    shown = capsys.readouterr().out
    assert '"newest_processed": "2026-11-17"' in shown and '"persons": 50' in shown
    assert '"lag_days": 0' in shown
