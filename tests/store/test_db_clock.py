"""Issue 10, item 16: filter validity and snapshot instants come from one clock, the database's.

The API host and the pipeline host are simulated in one process by skewing the
process clock (``datetime.now`` as the service module sees it) while each "host"
acts. Filter rows and snapshot instants must not depend on that clock: a filter
committed before the snapshot is in it, one committed after is not, and a re-run
of the day reproduces the first run's selection.
"""

from __future__ import annotations

import datetime as dt
import types
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from builders import extract, person, write
from cpr_abonnement.cpr_number import mask
from cpr_abonnement.filter_step import filter_extract
from cpr_abonnement.filters.pnr import PnrFilter
from cpr_abonnement.store import clock
from cpr_abonnement.store.clock import lock_filters
from cpr_abonnement.subscriptions import administration, base, operations, registering
from cpr_abonnement.subscriptions.service import SubscriptionService

SUB = "6f1f0b8e-6a55-4f55-9d7b-1c5c1f3a0001"
EARLY, LATE = "0101901234", "1502504321"   # synthetic
SKEW = dt.timedelta(milliseconds=500)


class SkewedDatetime(dt.datetime):
    """``datetime`` whose ``now`` is off by :attr:`offset`: a host with a wrong clock."""

    offset = dt.timedelta(0)

    @classmethod
    def now(cls, tz=None):
        return dt.datetime.now(tz) + cls.offset


SERVICE_MODULES = (clock, base, operations, administration, registering)


@pytest.fixture
def host_clock(monkeypatch):
    """A context manager running a block on a "host" whose clock is off by ``offset``."""
    skewed = types.SimpleNamespace(**{k: getattr(dt, k) for k in dir(dt) if not k.startswith("__")})
    skewed.datetime = SkewedDatetime
    for module in SERVICE_MODULES:  # every module of the service that could read a clock
        monkeypatch.setattr(module, "dt", skewed)

    @contextmanager
    def host(offset: dt.timedelta) -> Iterator[None]:
        SkewedDatetime.offset = offset
        try:
            yield
        finally:
            SkewedDatetime.offset = dt.timedelta(0)
    return host


@pytest.fixture
def day(tmp_path):
    body = [*person(EARLY), *person(LATE)]
    return write(tmp_path, extract(body))


def selected(out) -> set[str]:
    """Who the delta holds, by name (``EARLY``, ``LATE``), so no PNR reaches test output."""
    names = {EARLY: "EARLY", LATE: "LATE"}
    found = set()
    for f in out.glob(f"{SUB}/D*.L431101"):
        found |= {line[3:13].decode() for line in f.read_bytes().splitlines()[1:-1]}
    return {names.get(p, mask(p)) for p in found}


@pytest.mark.parametrize("api_offset", [SKEW, -SKEW], ids=["api-ahead", "api-behind"])
def test_snapshot_selection_does_not_depend_on_host_clocks(engine, host_clock, day, tmp_path,
                                                           api_offset):
    api = SubscriptionService(engine, caller="api")
    with host_clock(api_offset):
        api.add_subscriber(SUB, "Aalborg ESDH")
        api.add_pnr(SUB, EARLY)                       # committed before the snapshot
    with host_clock(dt.timedelta(0)):                  # the pipeline host
        first = filter_extract(day, engine, tmp_path / "first")
    with host_clock(api_offset):
        api.add_pnr(SUB, LATE)                        # committed after the snapshot
    with host_clock(-api_offset):                      # a re-run on another host
        again = filter_extract(day, engine, tmp_path / "again")

    assert again.extract.filters_as_of == first.extract.filters_as_of
    assert selected(tmp_path / "first") == {"EARLY"}
    assert selected(tmp_path / "again") == {"EARLY"}


def test_a_change_after_a_snapshot_instant_is_stamped_after_it(engine):
    """Even within one tick of a coarse clock (SQLite: milliseconds), a change made
    after a snapshot instant was chosen is stamped strictly after it, and one made
    before is not after it."""
    svc = SubscriptionService(engine, caller="api")
    svc.add_subscriber(SUB, "Aalborg ESDH")
    svc.add_pnr(SUB, EARLY)
    with Session(engine) as s, s.begin():
        instant = lock_filters(s)                     # as a snapshot registration does
    svc.add_pnr(SUB, LATE)
    with Session(engine) as s:
        stamps = list(s.scalars(select(PnrFilter.added_at).order_by(PnrFilter.id)))
    assert stamps[0] <= instant < stamps[1]


def test_database_now_is_the_servers_utc_time(engine):
    from cpr_abonnement.store.clock import database_now

    with Session(engine) as s:
        now = database_now(s)
    wall = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    assert now.tzinfo is None and abs(now - wall) < dt.timedelta(seconds=5)
