"""The ten operations, input rules, idempotency, validity periods, audit: SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cpr_abonnement.errors import (
    FilterInputError,
    InvalidAgeRange,
    InvalidEventCode,
    InvalidFilterGroup,
    InvalidMunicipalityCode,
    InvalidPnrInput,
    InvalidRemoteDir,
    SubscriberExists,
    UnknownSubscriber,
)
from cpr_abonnement.filters import NO_FILTER
from cpr_abonnement.filters.pnr import PnrFilter
from cpr_abonnement.subscriptions.outcomes import Result
from cpr_abonnement.subscriptions.service import SubscriptionService

SYS = "6f1f0b8e-6a55-4f55-9d7b-1c5c1f3a0001"
OTHER = "0d4c3b2a-1111-4222-8333-444455556666"
PNR = "0101901234"


class Clock:
    """Time as a parameter: starts at a fixed instant, moves only when told."""

    def __init__(self) -> None:
        self.now = dt.datetime(2026, 11, 26, 8, 0, 0)

    def __call__(self) -> dt.datetime:
        return self.now

    def tick(self, **kw) -> dt.datetime:
        self.now += dt.timedelta(**kw) if kw else dt.timedelta(seconds=1)
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def svc(engine, clock):
    service = SubscriptionService(engine, caller="test:alice", clock=clock)
    service.add_subscriber(SYS, "Aalborg ESDH", serves="0851 Aalborg",
                           sftp_conn_id="sftp_aalborg")
    service.add_subscriber(OTHER, "Odense Sag")
    return service


def test_pnr_operations_and_result_codes(svc):
    assert svc.add_pnr(SYS, PNR).result is Result.ADDED
    assert svc.add_pnr(SYS, "010190-1234").result is Result.ALREADY_EXISTED
    assert svc.get_all_filters(SYS).pnrs == [PNR]
    assert svc.remove_pnr(SYS, PNR).result is Result.REMOVED
    assert svc.remove_pnr(SYS, PNR).result is Result.NON_EXISTING_PNR
    assert svc.get_all_filters(SYS).pnrs == []


def test_age_range_operations(svc):
    assert svc.add_age_range(SYS, 0, 17).result is Result.ADDED
    assert svc.add_age_range(SYS, 0, 17).result is Result.ALREADY_EXISTED
    assert svc.add_age_range(SYS, 65, 999).result is Result.ADDED
    assert svc.get_all_filters(SYS).age_ranges == [(0, 17), (65, 999)]
    assert svc.remove_age_range(SYS, 0, 17).result is Result.REMOVED
    assert svc.remove_age_range(SYS, 0, 18).result is Result.NON_EXISTING
    assert svc.get_all_filters(SYS).age_ranges == [(65, 999)]


def test_municipality_codes_are_zero_padded(svc):
    assert svc.add_municipality(SYS, "851").result is Result.ADDED
    assert svc.add_municipality(SYS, "0851").result is Result.ALREADY_EXISTED
    assert svc.add_municipality(SYS, 101).result is Result.ADDED
    assert svc.get_all_filters(SYS).municipality_codes == ["0101", "0851"]
    assert svc.remove_municipality(SYS, "0851").result is Result.REMOVED
    assert svc.remove_municipality(SYS, "851").result is Result.NON_EXISTING


def test_change_codes_unknown_code_is_accepted_with_a_warning(svc):
    known = svc.add_change_code(SYS, "A01")
    assert known.result is Result.ADDED and known.warning is None
    unknown = svc.add_change_code(SYS, "z42")
    assert unknown.result is Result.ADDED and "Z42 is not in the known list" in unknown.warning
    assert svc.get_all_filters(SYS).change_codes == ["A01", "Z42"]
    assert svc.remove_change_code(SYS, "A01").result is Result.REMOVED
    assert svc.remove_change_code(SYS, "A01").result is Result.NON_EXISTING


def test_remove_all_counts_and_only_touches_its_group(svc):
    for pnr in (PNR, "1502504321", "2902004000"):
        svc.add_pnr(SYS, pnr)
    svc.add_municipality(SYS, "851")
    svc.add_pnr(OTHER, PNR)
    assert svc.remove_all(SYS, "PNR") == 3
    assert svc.remove_all(SYS, "PNR") == 0
    left = svc.get_all_filters(SYS)
    assert left.pnrs == [] and left.municipality_codes == ["0851"]
    assert svc.get_all_filters(OTHER).pnrs == [PNR]
    assert svc.remove_all(SYS, "MunicipalityCode") == 1
    assert svc.remove_all(SYS, "AgeRange") == 0 and svc.remove_all(SYS, "ChangeCode") == 0


def test_get_all_filters_lists_each_type_sorted_and_only_the_callers(svc):
    """GetAllFilters reads every type in one statement: each listing holds its own
    type's values, sorted by its columns, and none of another subscriber's."""
    for pnr in ("2902004000", PNR, "1502504321"):
        svc.add_pnr(SYS, pnr)
    for start, end in ((65, 999), (18, 64), (18, 30), (0, 17)):
        svc.add_age_range(SYS, start, end)
    for code in ("851", "0101", "461"):
        svc.add_municipality(SYS, code)
    for code in ("Z42", "A01"):
        svc.add_change_code(SYS, code)
    svc.add_pnr(OTHER, "3112994321")
    svc.add_municipality(OTHER, "147")
    svc.add(OTHER, NO_FILTER)
    mine = svc.get_all_filters(SYS)
    assert mine.pnrs == [PNR, "1502504321", "2902004000"]
    assert mine.age_ranges == [(0, 17), (18, 30), (18, 64), (65, 999)]
    assert mine.municipality_codes == ["0101", "0461", "0851"]
    assert mine.change_codes == ["A01", "Z42"]
    assert mine.to_dict()["no_filter"] is False
    theirs = svc.get_all_filters(OTHER)
    assert (theirs.pnrs, theirs.municipality_codes) == (["3112994321"], ["0147"])
    assert theirs.to_dict()["no_filter"] is True and theirs.age_ranges == []


def test_subscriber_without_filters_receives_nothing(svc):
    fs = svc.get_all_filters(SYS)
    assert fs.empty and fs.to_dict()["receives_nothing"] is True
    svc.add_age_range(SYS, 0, 999)
    assert not svc.get_all_filters(SYS).empty


@pytest.mark.parametrize(("call", "args", "error", "message"), [
    ("add_pnr", ("3102901234",), InvalidPnrInput, "not a real date"),
    ("add_pnr", ("01019012",), InvalidPnrInput, "not 10 digits"),
    ("add_pnr", ("01019O1234",), InvalidPnrInput, "not 10 digits"),
    ("remove_pnr", ("2902001234",), InvalidPnrInput, "not a real date"),  # 1900 not leap
    ("add_age_range", (18, 17), InvalidAgeRange, "StartAge 18 is greater than EndAge 17"),
    ("add_age_range", (-1, 17), InvalidAgeRange, "StartAge -1 is outside 0-999"),
    ("add_age_range", (0, 1000), InvalidAgeRange, "outside 0-999"),
    ("add_age_range", (1.5, 2), InvalidAgeRange, "is not a whole number"),
    ("add_municipality", ("12345",), InvalidMunicipalityCode, "not 1-4 digits"),
    ("add_municipality", ("08a1",), InvalidMunicipalityCode, "not 1-4 digits"),
    ("add_change_code", ("A1",), InvalidEventCode, "one letter followed by two digits"),
    ("add_change_code", ("101",), InvalidEventCode, "one letter followed by two digits"),
    ("remove_all", ("Pnr",), InvalidFilterGroup, "is not one of PNR, AgeRange"),
])
def test_input_rules_reject_and_store_nothing(svc, engine, call, args, error, message):
    before = svc.get_all_filters(SYS)
    with pytest.raises(error, match=message) as exc:
        getattr(svc, call)(SYS, *args)
    assert isinstance(exc.value, FilterInputError)
    assert not re.search(r"\d{10}", str(exc.value)), "full PNR in the error"
    after = svc.get_all_filters(SYS)
    assert (after.pnrs, after.age_ranges, after.municipality_codes, after.change_codes) == (
        before.pnrs, before.age_ranges, before.municipality_codes, before.change_codes)
    rejected = [a for a in svc.audit_trail(SYS) if a.result.startswith("REJECTED")]
    assert len(rejected) == 1 and exc.value.rule in rejected[0].result


def test_modulus_11_is_not_a_rule(svc):
    assert svc.add_pnr(SYS, "0101901230").result is Result.ADDED  # fails mod 11


def test_validity_periods_and_as_of(svc, engine, clock):
    t0 = clock.now
    t1 = clock.tick(hours=1)
    svc.add_pnr(SYS, PNR)
    svc.add_municipality(SYS, "851")
    t2 = clock.tick(hours=1)
    t3 = clock.tick(hours=1)
    svc.remove_pnr(SYS, PNR)
    t4 = clock.tick(hours=1)
    t5 = clock.tick(hours=1)
    svc.add_pnr(SYS, PNR)
    t6 = clock.tick(hours=1)
    assert svc.get_all_filters(SYS, as_of=t0).empty
    assert svc.get_all_filters(SYS, as_of=t1).pnrs == [PNR]   # in force from added_at
    assert svc.get_all_filters(SYS, as_of=t2).pnrs == [PNR]
    assert svc.get_all_filters(SYS, as_of=t3).pnrs == []      # not at removed_at
    assert svc.get_all_filters(SYS, as_of=t4).municipality_codes == ["0851"]
    assert svc.get_all_filters(SYS, as_of=t4).pnrs == []
    assert svc.get_all_filters(SYS, as_of=t6).pnrs == [PNR]
    aware = (t2 + dt.timedelta(hours=1)).replace(tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert svc.get_all_filters(SYS, as_of=aware).pnrs == [PNR]  # = t2 in UTC
    with Session(engine) as s:  # history is kept: two periods for the same PNR
        assert s.scalar(select(func.count()).select_from(PnrFilter)) == 2
    assert t5 < t6


def test_audit_trail_records_every_operation_with_pnrs_masked(svc):
    svc.add_pnr(SYS, PNR)
    svc.add_pnr(SYS, PNR)
    svc.add_pnrs(SYS, ["1502504321", "bad"])
    with pytest.raises(InvalidPnrInput):
        svc.add_pnr(SYS, "3102901234")
    svc.get_all_filters(SYS)
    trail = svc.audit_trail(SYS)
    assert [(a.operation, a.result.split(" ")[0].split(":")[0]) for a in trail] == [
        ("AddSubscriber", "ADDED"), ("AddPNRSubscription", "ADDED"),
        ("AddPNRSubscription", "ALREADY_EXISTED"), ("AddPNRSubscriptions", "OK"),
        ("AddPNRSubscription", "REJECTED"), ("GetAllFilters", "OK")]
    assert all(a.caller == "test:alice" and a.subscriber_uuid == SYS for a in trail)
    assert json.loads(trail[1].arguments) == {"pnr": "010190-****"}
    everything = " ".join(f"{a.arguments} {a.result}" for a in trail)
    assert not re.search(r"\d{10}", everything)


def test_unknown_subscriber_is_refused_and_audited(svc):
    with pytest.raises(UnknownSubscriber):
        svc.add_pnr("11111111-2222-3333-4444-555555555555", PNR)
    assert svc.audit_trail("11111111-2222-3333-4444-555555555555")[0].result == (
        "UNKNOWN_SUBSCRIBER")


def test_bulk_pnrs_give_per_item_results(svc):
    svc.add_pnr(SYS, PNR)
    items = [PNR, "1502504321", "1502504321", "3102901234", "2902004000"]
    bulk = svc.add_pnrs(SYS, items)
    assert bulk.results[:3] == ["ALREADY_EXISTED", "ADDED", "ALREADY_EXISTED"]
    assert bulk.results[3].startswith("REJECTED") and bulk.results[4] == "ADDED"
    assert bulk.counts == {"ADDED": 2, "ALREADY_EXISTED": 2, "REJECTED": 1}
    removed = svc.remove_pnrs(SYS, [PNR, "0202020202", PNR])
    assert removed.results == ["REMOVED", "NON_EXISTING_PNR", "NON_EXISTING_PNR"]
    assert svc.get_all_filters(SYS).pnrs == ["1502504321", "2902004000"]


def test_bulk_load_of_many_pnrs(svc):
    pnrs = [f"{d:02d}{m:02d}{y:02d}{s:04d}" for d in range(1, 29) for m in range(1, 13)
            for y in (60, 85) for s in range(0, 10000, 500)]
    bulk = svc.add_pnrs(SYS, pnrs)
    assert bulk.counts == {"ADDED": len(pnrs)}
    assert len(svc.get_all_filters(SYS).pnrs) == len(pnrs)
    assert svc.add_pnrs(SYS, pnrs).counts == {"ALREADY_EXISTED": len(pnrs)}


def test_subscribers(svc):
    with pytest.raises(SubscriberExists):
        svc.add_subscriber(SYS, "again")
    assert [s.name for s in svc.subscribers()] == ["Aalborg ESDH", "Odense Sag"]
    disabled = svc.set_active(OTHER, False)
    assert not disabled.active and disabled.disabled_at is not None
    assert [s.uuid for s in svc.subscribers(active_only=True)] == [SYS]
    svc.add_pnr(OTHER, PNR)  # a disabled subscriber keeps and manages its filters
    assert svc.set_active(OTHER, True).active


# -- issue 10: rejected arguments masked (11), ages (14), remote dirs (15) -----------

@pytest.mark.parametrize(("call", "args"), [
    ("add_municipality", (PNR,)),
    ("remove_municipality", ("010190-1234",)),
    ("add_change_code", (PNR,)),
    ("remove_all", ("010190-1234",)),
    ("add_age_range", (1502504321, 17)),
    ("add_age_range", ("0101901234", 17)),
    ("add_pnr", (PNR + "0",)),
])
def test_a_pnr_in_a_rejected_argument_is_masked_in_the_error_and_the_audit(svc, call, args):
    with pytest.raises(FilterInputError) as exc:
        getattr(svc, call)(SYS, *args)
    rejected = svc.audit_trail(SYS)[-1]
    for text in (str(exc.value), rejected.arguments, rejected.result):
        assert not re.search(r"(?<!\d)\d{6}-?\d{4}(?!\d)", text), "PNR in clear"
        assert "****" in text


@pytest.mark.parametrize(("start", "end"), [(True, 17), (0, False), (True, True)])
def test_booleans_are_not_ages(svc, start, end):
    with pytest.raises(InvalidAgeRange, match="is not a whole number of years"):
        svc.add_age_range(SYS, start, end)
    assert svc.get_all_filters(SYS).age_ranges == []


@pytest.mark.parametrize("remote_dir", [f"../../{OTHER}", "in/../../x", "/cpr/../etc", "..",
                                        "in\\..\\x", "in\x00", "in\x85x"])
def test_a_remote_dir_that_leaves_the_folder_is_refused(svc, remote_dir):
    new = "99999999-8888-4777-8666-555555555555"
    with pytest.raises(InvalidRemoteDir) as exc:
        svc.add_subscriber(new, "Vejle", remote_dir=remote_dir)
    assert exc.value.rule == "remote dir"
    assert new not in {s.uuid for s in svc.subscribers()}


@pytest.mark.parametrize(("given", "stored"), [(".", "."), ("", "."), ("./in//", "in"),
                                               (f"/{SYS}/in/", f"/{SYS}/in"),
                                               ("//cpr/./x", "/cpr/x")])
def test_a_remote_dir_is_stored_normalised(svc, given, stored):
    info = svc.add_subscriber("99999999-8888-4777-8666-555555555555", "Vejle",
                              remote_dir=given)
    assert info.remote_dir == stored
