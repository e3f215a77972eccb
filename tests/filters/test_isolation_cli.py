"""Each subscriber's file holds exactly its own matches; ``cprsub filter`` end to end."""

from __future__ import annotations

import csv
import datetime as dt
import re

from cpr_abonnement.cli import main
from cpr_abonnement.extract.generator import generate
from cpr_abonnement.extract.index import scan
from cpr_abonnement.extract.reader import iter_records
from cpr_abonnement.subscriptions.service import SubscriptionService

SUBS = {
    "aaaaaaaa-0000-4000-8000-000000000001": ("municipality", "0101"),
    "bbbbbbbb-0000-4000-8000-000000000002": ("municipality", "0851"),
    "cccccccc-0000-4000-8000-000000000003": ("code", "A21"),
    "dddddddd-0000-4000-8000-000000000004": ("none", ""),
}


def test_isolation_and_cli(tmp_path, sqlite_url, capsys):
    src = tmp_path / "D261126.L431101"
    with open(src, "wb") as fh:
        generate(fh, production_date=dt.date(2026, 11, 26), persons=3000, seed=11)
    assert main(["db", "upgrade", "--db", sqlite_url]) == 0
    from cpr_abonnement.store.db import make_engine

    svc = SubscriptionService(make_engine(sqlite_url), caller="test")
    for uuid, (kind, value) in SUBS.items():
        svc.add_subscriber(uuid, f"sub {kind} {value}")
        if kind == "municipality":
            svc.add_municipality(uuid, value)
        elif kind == "code":
            svc.add_change_code(uuid, value)
    capsys.readouterr()
    assert main(["filter", str(src), "--out", str(tmp_path / "out"), "--db", sqlite_url,
                 "--explain"]) == 0
    printed = capsys.readouterr().out
    assert "4 subscriber file(s) written" in printed

    ix = scan(src)
    p = ix.persons.assign(pnr_text=ix.pnr_text())
    events = ix.events.assign(pnr=ix.pnr_text(ix.events["person"].to_numpy()).to_numpy())
    expected = {
        "0101": set(p.loc[p["municipality"] == 101, "pnr_text"]),
        "0851": set(p.loc[p["municipality"] == 851, "pnr_text"]),
        "A21": set(events.loc[events["code"] == "A21", "pnr"]),
        "": set(),
    }
    for uuid, (_, value) in SUBS.items():
        got = {r.key for r in iter_records(tmp_path / "out" / uuid / src.name)
               if r.record_type not in ("000", "999")}
        assert got == expected[value], uuid
        assert f"{len(expected[value]):>9,} persons" in printed
        with open(tmp_path / "out" / uuid / f"{src.name}.explain.csv") as fh:
            rows = list(csv.DictReader(fh))
        assert len(rows) == len(expected[value])
        assert all(not re.search(r"\d{10}", ",".join(r.values())) for r in rows)
    assert expected["A21"] and expected["0101"], "the sample exercises the filters"
