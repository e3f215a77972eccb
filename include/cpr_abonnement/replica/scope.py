"""``lookup_scope: subscribed``: an IT system may look up only the persons its own
subscriptions select today.

The rule is the filter step's own (:func:`cpr_abonnement.filters.selection.select`),
run on one person as if they were in today's extract: a PNR filter, a municipality
filter on the person's current municipality, an age range on today's age. An
event-code filter selects persons by the day's events, and a look-up has none, so it
selects nobody here: a system that subscribes by events only and wants look-ups keeps
``lookup_scope: all``.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from cpr_abonnement.errors import InvalidSubscriber
from cpr_abonnement.replica.person import Person

if TYPE_CHECKING:
    import pandas as pd

ALL, SUBSCRIBED = "all", "subscribed"
SCOPES = (ALL, SUBSCRIBED)


def validate_scope(value: str) -> str:
    """A system's ``lookup_scope``, one of :data:`SCOPES` (:class:`InvalidSubscriber`
    otherwise): the one check the command line, the API and registration documents share."""
    if value not in SCOPES:
        raise InvalidSubscriber(f"lookup_scope is one of {', '.join(SCOPES)}, "
                                f"not {str(value)[:20]!r}")
    return value


def _as_extract_row(person: Person) -> pd.DataFrame:
    """The person as one row of an extract index's ``persons`` frame."""
    import numpy as np
    import pandas as pd

    birth = person.birth_date
    return pd.DataFrame({
        "pnr": np.array([int(person.pnr)], dtype=np.int64),
        "birth_date": np.array([int(f"{birth:%Y%m%d}") if birth else 0], dtype=np.int64),
        "birth_from_pnr": np.array([False]),
        "status": np.array([int(person.status)], dtype=np.int64),
        "municipality": np.array([int(person.address.municipality) if person.address
                                  else -1], dtype=np.int64),
        "has_001": np.array([True]), "records": np.array([1], dtype=np.int64),
        "first_line": np.array([1], dtype=np.int64)})


def selected_by(engine: Engine, system: str, person: Person, now: dt.datetime) -> bool:
    """Whether ``system``'s filters in force at ``now`` (naive UTC) select ``person``.
    NumPy and pandas are imported here, not with the module: the API server imports
    it for every look-up and needs them only for a scoped system's."""
    import numpy as np
    import pandas as pd

    from cpr_abonnement.filters.selection import select
    from cpr_abonnement.filters.snapshot import load_snapshot

    rows = _as_extract_row(person)
    snapshot = load_snapshot(engine, now, rows["pnr"].to_numpy())
    position = next((i for i, r in enumerate(snapshot.subscribers) if r.uuid == system), None)
    if position is None:
        return False
    events = pd.DataFrame({"person": np.empty(0, dtype=np.int64),
                           "code": pd.Categorical([]), "derived": pd.Categorical([])})
    selection = select(rows, events, snapshot, now.date())
    return bool(np.any(selection.sub == position))
