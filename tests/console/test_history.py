"""The audit trail worded for the Subscribers page (console/history.py)."""

from __future__ import annotations

import pytest

from cpr_abonnement.console.history import sentence


@pytest.mark.parametrize(("operation", "arguments", "result", "expected"), [
    ("AddMunicipalityCodeSubscription", '{"code": "851"}', "ADDED",
     "added municipality 0851 Aalborg"),
    ("RemoveAgeRangeSubscription", '{"start_age": 0, "end_age": 17}', "REMOVED",
     "removed age range 0–17"),
    ("AddPNRSubscription", '{"pnr": "010190-****"}', "ALREADY_EXISTED",
     "added PNR 010190-**** → ALREADY_EXISTED"),
    ("AddPNRSubscriptions", '{"count": 2, "sample": ["010190-****"]}',
     'OK: {"ADDED": 1}', 'added 2 PNRs (one call) → OK: {"ADDED": 1}'),
    ("AddNoFilterSubscription", "{}", "ADDED", "added no filter"),
    ("SetDelivery", '{"delivery_mode": "pickup", "pickup_account": null}', "PICKUP x",
     "switched to pick-up → PICKUP x"),
    ("RemoveAll", '{"group": "PNR"}', "REMOVED 2", "removed all PNR filters → REMOVED 2"),
    ("RemoveSshKey", '{"fingerprint": "SHA256:abc"}', "REMOVED",
     "remove ssh key: fingerprint SHA256:abc"),
    ("ReadinessCheck", "{}", "READY: contact a@b.example mailed",
     "readiness check → READY: contact a@b.example mailed"),
    ("Odd", "not json", "", "odd"),
])
def test_each_operation_reads_as_a_sentence(operation, arguments, result, expected):
    assert sentence(operation, arguments, result) == expected
