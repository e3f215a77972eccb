"""One domain shape of a subscriber (issue 11 item 7): what the daily run loads for every
active subscriber and what operators are shown of one are the same :class:`Recipient`,
so the delivery target and the ``.metadata`` recipient cannot disagree between them."""

from __future__ import annotations

import dataclasses
import datetime as dt

from cpr_abonnement import delivery
from cpr_abonnement.subscriptions.active import subscribers_at
from cpr_abonnement.subscriptions.recipient import Recipient
from cpr_abonnement.subscriptions.service import SubscriptionService

PUSHED = "0a1b2c3d-0000-4000-8000-000000000001"
PICKED = "0a1b2c3d-0000-4000-8000-000000000002"


def _recipient_part(value: Recipient) -> Recipient:
    return Recipient(**{f.name: getattr(value, f.name) for f in dataclasses.fields(Recipient)})


def test_operators_and_the_daily_run_see_the_same_recipient(engine):
    svc = SubscriptionService(engine, caller="test")
    svc.add_subscriber(PUSHED, "Pushed to", sftp_conn_id="sftp_a", remote_dir="/in/a")
    svc.add_subscriber(PICKED, "Picks up", delivery_mode="pickup", pickup_account="picker")
    with engine.connect() as conn:
        _, loaded = subscribers_at(conn, dt.datetime(2100, 1, 1))
    shown = [svc.subscriber(PUSHED), svc.subscriber(PICKED)]
    assert all(isinstance(s, Recipient) for s in shown)
    assert [_recipient_part(s) for s in shown] == loaded
    assert [delivery.target_of(s) for s in shown] == [delivery.target_of(r) for r in loaded]
    assert [r.metadata_recipient for r in loaded] == [PUSHED, "picker"]
