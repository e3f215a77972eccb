"""The daily DAG's sensor, ``wait_for_extract``: one poke for the run's delivery day.

Each poke decides one of four things: the run's day is one no run may have (fail at
once, freeing the slot for the right run); the extract is complete (done, its name for
``parse_and_validate``); it is missing past the deadline (fail, alert); or wait. A file
that is there but still arriving is waited for past the deadline (until the sensor's
timeout): it did arrive, and will be taken or rejected. The sensor pokes every
``CPRSUB_POKE_SECONDS`` in reschedule mode, so a poke imports only what it needs.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import PokeReturnValue
from airflow.sdk.exceptions import AirflowFailException

from cpr_abonnement.errors import ExtractRejected, ExtractRetired, RunDateRefused
from cpr_abonnement.extract.naming import wildcard
from cpr_abonnement.inbound.sensing import sense
from cpr_abonnement.settings import Settings
from cpr_abonnement.tasks.run_dates import delivery_day, refuse_future


def poke(context: Any, settings: Settings, now: dt.datetime) -> PokeReturnValue:
    """One poke of ``wait_for_extract`` at ``now`` (aware UTC)."""
    try:
        day = delivery_day(context, settings.calendar())
        refuse_future(day, now)
    except RunDateRefused as exc:  # no retry can fix it: fail, free the slot
        raise AirflowFailException(str(exc)) from exc
    # Complete = unchanged for CPRSUB_SETTLE_SECONDS across pokes; a complete but broken
    # file is quarantined and fails this task naming the broken rule.
    try:
        found = sense(settings, day, now=now)
    except ExtractRejected as exc:  # kept for the console's Extracts page too
        # The filter step's module, imported on a rejection only (not on every poke).
        from cpr_abonnement.tasks.daily import record_rejected_arrival

        record_rejected_arrival(day, exc)
        raise
    except ExtractRetired as exc:  # a re-run after retention: waiting cannot help
        raise AirflowFailException(str(exc)) from exc
    deadline = settings.extract_deadline(day)
    if found.complete:
        from cpr_abonnement.tasks.metrics import extract_arrived  # once per run

        extract_arrived(deadline=deadline, arrived=found.first_seen or now)
        return PokeReturnValue(is_done=True, xcom_value=found.name)
    if found.name is None and now > deadline:
        raise AirflowFailException(
            f"extract for {day} not received by {deadline:%Y-%m-%d %H:%M %Z} "
            f"(looked for {wildcard(day)} in {settings.inbound})")
    return PokeReturnValue(is_done=False)
