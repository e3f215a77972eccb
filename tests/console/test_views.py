"""The console's view models, read from a filter database with known history."""

from __future__ import annotations

import json
import re

from cpr_abonnement.console import views
from support.console import AALBORG, HERNING, MON, ODENSE, PNR, THU, TODAY, TUE, WED

PNR_SHAPED = re.compile(r"(?<!\d)\d{10}(?!\d)")


def test_matrix_has_a_cell_per_subscriber_and_delivery_day(console):
    m = views.delivery_matrix(console.engine, console.settings, today=TODAY)
    assert len(m.days) == views.PAGE_DAYS and m.days[0] == TODAY and TUE in m.days
    rows = {r.uuid: r for r in m.rows}
    assert set(rows) == {AALBORG, ODENSE, HERNING}
    failed = rows[ODENSE].cells[THU]
    assert (failed.outcome, failed.attempts, failed.state, failed.mode) == (
        "FAILED", 2, "failed", "push")
    ok = rows[AALBORG].cells[MON]
    assert (ok.persons, ok.records, ok.size_bytes, ok.sha256) == (12, 36, 4100, "16" * 6)
    assert WED not in rows[AALBORG].cells  # no extract that day: no cell
    assert PNR not in failed.detail and "010190-****" in failed.detail


def test_pickup_cells_say_picked_up_or_late(console):
    rows = {r.uuid: r for r in views.delivery_matrix(console.engine, console.settings,
                                                     today=TODAY).rows}
    monday, thursday = rows[HERNING].cells[MON], rows[HERNING].cells[THU]
    assert (monday.mode, monday.picked_up, monday.late, monday.state) == (
        "pick-up", False, True, "late")  # Mon → Thu is 3 delivery days
    assert (thursday.picked_up, thursday.late, thursday.state) == (True, False, "ok")


def test_matrix_filters_failed_late_and_one_subscriber(console):
    def uuids(**kw):
        return [r.uuid for r in views.delivery_matrix(console.engine, console.settings,
                                                      today=TODAY, **kw).rows]
    assert uuids(failed_only=True) == [ODENSE]
    assert uuids(late_only=True) == [HERNING]
    assert uuids(subscriber=AALBORG) == [AALBORG]
    assert uuids(page=3) == []  # 30 delivery days earlier none was registered yet


def test_cells_carry_the_task_links_given_for_their_day_and_name(console):
    asked = []

    def links(days):
        asked.append(days)
        return {(THU, "Odense Sag"): "/dags/x/runs/r/tasks/deliver/mapped/1"}
    rows = {r.uuid: r for r in views.delivery_matrix(console.engine, console.settings,
                                                     today=TODAY, links=links).rows}
    assert rows[ODENSE].cells[THU].link == "/dags/x/runs/r/tasks/deliver/mapped/1"
    assert rows[AALBORG].cells[THU].link is None
    assert asked and THU in asked[0]


def test_extracts_show_checks_rejections_and_the_chain_with_its_gap(console):
    rows = views.extracts(console.engine)
    assert [(r.production_date, r.verdict) for r in rows] == [
        (THU, "accepted"), (TUE, "rejected"), (MON, "accepted")]
    rejected = rows[1]
    assert rejected.problems[0].rule == "999 counter" and rejected.problems[0].line == 1203
    assert rejected.quarantined_to.endswith("20261117T210000Z")
    states = {e.name.split("ToBe")[-1]: e.state for e in rows[0].expectations}
    assert states == {"Unique": "passed", "InSet": "warned"}
    assert rows[2].processed is False  # the ledger of MON says delivered, report never ran
    timeline = {t.day: t for t in views.chain_timeline(rows, console.settings, today=TODAY)}
    assert min(timeline) == MON  # starts at the first extract
    assert [timeline[d].state for d in (MON, TUE, WED, THU)] == [
        "processed", "rejected", "missing", "processed"]
    assert timeline[THU].chained  # PRODDTOFORRIG = Monday, the last processed


def test_subscribers_show_filters_keys_last_delivery_and_masked_history(console):
    rows = {r.uuid: r for r in views.subscribers(console.engine)}
    aalborg = rows[AALBORG]
    assert aalborg.filter_counts == {"PNRs": 1, "age ranges": 0, "municipality codes": 1,
                                     "change codes": 0, "no filter": 0}
    assert aalborg.last_delivery == f"{THU} DELIVERED"
    assert rows[ODENSE].last_delivery == f"{THU} FAILED"
    assert rows[HERNING].mode == "pick-up" and rows[HERNING].ssh_keys[0].startswith(
        "ssh-ed25519 SHA256:")
    assert [h.operation for h in aalborg.history][:2] == [
        "AddMunicipalityCodeSubscription", "AddPNRSubscription"]
    # ... read as sentences, not JSON.
    sentences = [h.sentence for h in aalborg.history]
    assert sentences[:2] == ["added municipality 0851 Aalborg", "added PNR 010190-****"]
    assert sentences[-1] == "registered (push)"
    assert (aalborg.contact, aalborg.readiness) == (None, None)
    dumped = json.dumps(views.to_json(list(rows.values())))
    assert "010190-****" in dumped and not PNR_SHAPED.search(dumped)
