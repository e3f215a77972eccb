"""The operator console tests' data: a few days of deliveries, checks and filter history."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cpr_abonnement import filters
from cpr_abonnement.records import extract_checks, extract_runs, ledger
from cpr_abonnement.records.extract_checks import CheckRecord, Expectation, Problem
from cpr_abonnement.settings import Settings
from cpr_abonnement.store.db import make_engine, upgrade
from cpr_abonnement.subscriptions.service import SubscriptionService
from support.sshkeys import ed25519_line

MON, TUE, WED, THU = (dt.date(2026, 11, d) for d in (16, 17, 18, 19))
TODAY = dt.date(2026, 11, 23)  # a Monday: Thursday's pick-up is 2 delivery days old
AALBORG = "aaaaaaaa-0000-4000-8000-000000000001"
ODENSE = "bbbbbbbb-0000-4000-8000-000000000002"
HERNING = "dddddddd-0000-4000-8000-000000000004"
#: A synthetic PNR; it must never appear in any console output.
PNR = "0101901234"
TASK = "431101"


@dataclass
class Console:
    engine: object
    settings: Settings


def _deliver(engine, day, uuid, *, outcome="DELIVERED", target="sftp://c/x", persons=10,
             size=4000, attempts=1):
    name = f"D{day:%y%m%d}.L{TASK}"
    row = dict(task_number=TASK, production_date=day, subscriber_uuid=uuid, file_name=name,
               sha256=f"{day:%d}" * 32, persons=persons, records=persons * 3, target=target,
               now=dt.datetime.combine(day, dt.time(21, 5)))
    for _ in range(attempts):
        ledger.start_delivery(engine, **row)
    ledger.finish_delivery(engine, **row, outcome=outcome,
                           detail=f"{outcome} for PNR {PNR}", size_bytes=size)


def _check(engine, day, verdict, **kw):
    extract_checks.record(engine, CheckRecord(
        file_name=f"D{day:%y%m%d}.L{TASK}", verdict=verdict,
        checked_at=dt.datetime.combine(day, dt.time(21)), size_bytes=50_000 + day.day * 1000,
        task_number=TASK, production_date=day,
        previous_date=kw.pop("previous", None), persons=400, records=1200, **kw))


def build_console(tmp_path, monkeypatch) -> Console:
    """Mon and Thu processed, Tue rejected, Wed missing; Odense failed on Thu; Herning
    picks up and has not fetched Monday's file."""
    monkeypatch.setenv("CPRSUB_PICKUP_ALERT_DAYS", "3")
    engine = make_engine(f"sqlite:///{tmp_path / 'filters.db'}")
    upgrade(engine)
    svc = SubscriptionService(engine, caller="operator@test",
                              clock=lambda: dt.datetime(2026, 11, 1))
    svc.add_subscriber(AALBORG, "Aalborg ESDH", sftp_conn_id="sftp_aalborg", remote_dir="/in")
    svc.add_subscriber(ODENSE, "Odense Sag", sftp_conn_id="sftp_odense", remote_dir="/in")
    svc.add_subscriber(HERNING, "Herning Pick", delivery_mode="pickup",
                       ssh_keys=[ed25519_line("it@herning")])
    svc.add_pnr(AALBORG, PNR)
    svc.add_municipality(AALBORG, "851")
    svc.add_change_code(ODENSE, "A21")
    svc.add(HERNING, filters.NO_FILTER)
    for day, previous in ((MON, dt.date(2026, 11, 13)), (THU, MON)):
        extract_runs.register(engine, task_number=TASK, production_date=day,
                              previous_date=previous, file_name=f"D{day:%y%m%d}.L{TASK}",
                              sha256="ab" * 32, persons=400, records=1200,
                              clock=lambda d=day: dt.datetime.combine(d, dt.time(21)))
        _check(engine, day, extract_checks.ACCEPTED, previous=previous, expectations=(
            Expectation("ExpectColumnValuesToBeUnique", "persons.pnr", True, 0),
            Expectation("ExpectColumnValuesToBeInSet", "persons.status", True, 1,
                        ("010190-****: '99'",))))
    _check(engine, TUE, extract_checks.REJECTED, previous=MON,
           problems=(Problem("999 counter", "line 1203, record 999: counter is 1199", 1,
                             1203, "999", "ANTAL"),),
           quarantined_to="/var/quarantine/D261117.L431101.20261117T210000Z")
    _deliver(engine, MON, AALBORG, persons=12, size=4100)
    _deliver(engine, MON, ODENSE, persons=3, size=1100)
    _deliver(engine, MON, HERNING, target="pickup://herning/IN", persons=400, size=90_000)
    _deliver(engine, THU, AALBORG, persons=15, size=5200)
    _deliver(engine, THU, ODENSE, outcome="FAILED", attempts=2, persons=4)
    _deliver(engine, THU, HERNING, target="pickup://herning/IN", persons=380, size=85_000)
    ledger.record_pickup_event(engine, account=HERNING, file_name=f"IN/D{THU:%y%m%d}.L{TASK}",
                               event="downloaded", at=dt.datetime(2026, 11, 20, 8))
    return Console(engine, Settings.from_env())
