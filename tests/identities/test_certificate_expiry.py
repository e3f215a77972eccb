"""Client certificates near expiry (issue 21 item 13): 90, 30 and 7 days ahead each
alerted once, an expired one too; ``cprsub health`` and the console's Subscribers page
list them all along, with a clock the test controls."""

from __future__ import annotations

import datetime as dt

from cpr_abonnement.console import views
from cpr_abonnement.health import check
from cpr_abonnement.identities import expiry
from cpr_abonnement.subscriptions.service import SubscriptionService
from support.certs import TestCA

A = "6f1f0b8e-6a55-4f55-9d7b-1c5c1f3a0001"
B = "0d4c3b2a-1111-4222-8333-444455556666"


def test_each_threshold_alerts_once_and_health_and_console_show_it(engine):
    ca = TestCA()
    svc = SubscriptionService(engine, caller="ops")
    svc.add_subscriber(A, "Aalborg ESDH")
    svc.add_subscriber(B, "Odense Sag")
    soon, later = ca.client("Aalborg ESDH", days=100), ca.client("Odense Sag", days=400)
    svc.add_certificate(A, soon.pem)
    svc.add_certificate(B, later.pem)
    expires = soon.cert.not_valid_after_utc.replace(tzinfo=None)

    def due_at(days_before: float) -> list[tuple[str, int]]:
        now = expires - dt.timedelta(days=days_before)
        found = expiry.due(engine, now)
        expiry.record(engine, found, now, caller="test")
        return [(e.subscriber_uuid, e.threshold) for e in found]

    assert due_at(90.5) == []                      # not yet inside 90 days
    assert due_at(89.9) == [(A, 90)]
    assert due_at(60) == []                        # 90 was alerted, 30 not reached
    assert due_at(29.9) == [(A, 30)]
    assert due_at(6.9) == [(A, 7)]
    assert due_at(1) == []
    assert due_at(-0.5) == [(A, 0)]                # expired and still registered
    assert due_at(-3) == []

    now = expires - dt.timedelta(days=20)
    (line,) = check(engine, now=now.replace(tzinfo=dt.UTC)).expiring_certificates
    assert "Aalborg ESDH" in line and "in 20 day(s)" in line and "register its successor" \
        in line
    rows = {r.uuid: r for r in views.subscribers(engine, now=now)}
    assert rows[A].certificates[0].endswith("— expires in 20 day(s)")
    assert "expires in" not in rows[B].certificates[0]
    assert f"valid until {later.cert.not_valid_after_utc:%Y-%m-%d}" in rows[B].certificates[0]

    successor = ca.client("Aalborg ESDH", days=500)  # the rotation runbook's first step
    svc.add_certificate(A, successor.pem)
    (line,) = check(engine, now=now.replace(tzinfo=dt.UTC)).expiring_certificates
    assert "a newer certificate is registered: remove this one" in line
    svc.remove_certificate(A, soon.sha256)          # its last step
    assert check(engine, now=now.replace(tzinfo=dt.UTC)).expiring_certificates == []
