"""The console's Replica page: what ``cprsub replica status`` says, and the look-ups per
day as a plot, without a PNR on the page."""

from __future__ import annotations

import datetime as dt
import re

from fastapi.testclient import TestClient

from cpr_abonnement.console.app import create_console_app
from cpr_abonnement.replica.lookups import Caller, look_up
from cpr_abonnement.replica.state import STATUS
from cpr_abonnement.replica.updating import apply_extract
from support.replica import blocks_of, status_extract

NOW = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)


def test_the_replica_page_shows_its_state_and_the_look_ups_per_day(engine, tmp_path):
    path = status_extract(tmp_path, dt.date(2026, 11, 16), 50)
    apply_extract(engine, path, kind=STATUS)
    pnrs = list(blocks_of(path))
    caller = Caller("system", None, "soap")
    for day, count in ((17, 2), (19, 3)):
        for pnr in pnrs[:count]:
            look_up(engine, pnr, caller, key="k", now=lambda d=day: dt.datetime(2026, 11, d, 9))
    app = create_console_app(lambda: engine, access=lambda: None, clock=lambda: NOW)
    with TestClient(app) as client:
        html = client.get("/replica").text
        state = client.get("/api/replica").json()
    assert "replica: 50 person(s); last applied D261116.L431101" in html
    assert "5 look-up(s) in the last 30 days" in html
    bars = re.findall(r'<rect class="bar"[^>]*><title>look-ups, ([0-9-]+): (\d+)', html)
    assert bars == [("2026-11-17", "2"), ("2026-11-19", "3")]
    assert not re.search(r"(?<!\d)\d{10}(?!\d)", html)
    assert (state["persons"], state["loaded"], state["lag_days"]) == (50, True, 0)
