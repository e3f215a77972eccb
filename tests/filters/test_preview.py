"""``cprsub filter-preview``: the figures equal what ``cprsub filter`` delivers for the
same extracts, no file is written, extracts gone from staging are named."""

from __future__ import annotations

import datetime as dt
import re

from cpr_abonnement.cli import main
from cpr_abonnement.extract.generator import generate
from cpr_abonnement.filter_step import filter_extract
from cpr_abonnement.store.db import make_engine, upgrade
from cpr_abonnement.subscriptions.service import SubscriptionService

SYS = "aaaaaaaa-0000-4000-8000-000000000001"
OTHER = "bbbbbbbb-0000-4000-8000-000000000002"
DAYS = (dt.date(2026, 11, 17), dt.date(2026, 11, 18), dt.date(2026, 11, 19))


def test_preview_matches_what_filter_delivers(tmp_path, monkeypatch, capsys):
    staging = tmp_path / "staging"
    monkeypatch.setenv("CPRSUB_STAGING", f"file://{staging}")
    url = f"sqlite:///{tmp_path / 'filters.db'}"
    engine = make_engine(url)
    upgrade(engine)
    svc = SubscriptionService(engine, caller="test")
    svc.add_subscriber(SYS, "Aalborg ESDH")
    svc.add_subscriber(OTHER, "Odense Sag")
    svc.add_municipality(SYS, "851")
    svc.add_age_range(SYS, 0, 17)
    svc.add_change_code(OTHER, "A21")
    delivered = {}
    previous = None
    for seed, day in enumerate(DAYS, 3):
        extract = staging / f"{day:%Y-%m-%d}" / "extract" / f"D{day:%y%m%d}.L431101"
        extract.parent.mkdir(parents=True)
        with open(extract, "wb") as fh:
            generate(fh, production_date=day, persons=600, seed=seed, previous_date=previous)
        previous = day
        result = filter_extract(extract, engine, tmp_path / "out" / str(day))
        mine = next(f for f in result.files if f.subscriber == SYS)
        delivered[day] = (mine.persons, mine.records)
    (staging / f"{DAYS[0]:%Y-%m-%d}" / "extract" / f"D{DAYS[0]:%y%m%d}.L431101").unlink()
    before = sorted(p for p in tmp_path.rglob("*") if p.is_file())

    capsys.readouterr()
    assert main(["filter-preview", "--db", url, "--system", SYS, "--days", "10"]) == 0
    out = capsys.readouterr().out
    for day in DAYS[1:]:
        persons, records = delivered[day]
        assert persons > 0
        assert re.search(rf"{day}  D\S+\s+{persons:,} persons\s+{records:,} records", out), out
    assert f"{DAYS[0]}  D{DAYS[0]:%y%m%d}.L431101  not in staging any more" in out
    assert sorted(p for p in tmp_path.rglob("*") if p.is_file()) == before  # nothing written
    assert not re.search(r"\b\d{10}\b", out)  # no PNR
