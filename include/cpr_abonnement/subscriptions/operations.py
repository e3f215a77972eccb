"""The SF6002 operations (product.md §2) for any filter type, and their bulk variants.

Every operation acts on the filters of one subscriber, named by its UserSystemUUID,
runs in one transaction, and leaves one audit row (caller, time, subscriber, operation,
arguments with PNRs masked, result), also when the input is rejected, the subscriber
is unknown or the caller was refused (``DENIED``). Removal closes a filter's validity
period instead of deleting it; adding a filter that is already in force changes nothing
(``ALREADY_EXISTED``). "Filters in force at T" is ``added_at <= T < removed_at``."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    update,
)
from sqlalchemy.orm import Session

from cpr_abonnement import filters
from cpr_abonnement.filters import AGE_RANGE, CHANGE_CODE, MUNICIPALITY_CODE, PNR
from cpr_abonnement.filters.base import FilterType
from cpr_abonnement.store.db import as_naive_utc
from cpr_abonnement.store.models import (
    Subscriber,
)
from cpr_abonnement.subscriptions.base import AUDIT_SAMPLE, ServiceBase
from cpr_abonnement.subscriptions.outcomes import BulkOutcome, FilterSet, Outcome, Result
from cpr_abonnement.subscriptions.statements import filter_listing

if TYPE_CHECKING:
    pass


class FilterOperations(ServiceBase):
    """Add, remove and list a subscriber's filters."""

    # -- the SF6002 operations, for any filter type ---------------------------------
    def add(self, system: str, ftype: FilterType, *raw: Any) -> Outcome:
        """``Add<group>Subscription``: ``raw`` are the type's arguments, as given."""
        return self._run(system, ftype.add_operation, ftype.audited(raw),
                         lambda: ftype.parse(*raw), self._add(ftype), self._describe,
                         shared=True, whole=False)

    def remove(self, system: str, ftype: FilterType, *raw: Any) -> Outcome:
        """``Remove<group>Subscription``; a filter not in force gives ``ftype.missing``."""
        return self._run(system, ftype.remove_operation, ftype.audited(raw),
                         lambda: ftype.parse(*raw), self._remove(ftype), self._describe,
                         shared=True, whole=False)

    def add_pnr(self, system: str, pnr: str) -> Outcome:
        return self.add(system, PNR, pnr)

    def remove_pnr(self, system: str, pnr: str) -> Outcome:
        return self.remove(system, PNR, pnr)

    def add_age_range(self, system: str, start_age: int, end_age: int) -> Outcome:
        return self.add(system, AGE_RANGE, start_age, end_age)

    def remove_age_range(self, system: str, start_age: int, end_age: int) -> Outcome:
        return self.remove(system, AGE_RANGE, start_age, end_age)

    def add_municipality(self, system: str, code: str | int) -> Outcome:
        return self.add(system, MUNICIPALITY_CODE, code)

    def remove_municipality(self, system: str, code: str | int) -> Outcome:
        return self.remove(system, MUNICIPALITY_CODE, code)

    def add_change_code(self, system: str, code: str) -> Outcome:
        return self.add(system, CHANGE_CODE, code)

    def remove_change_code(self, system: str, code: str) -> Outcome:
        return self.remove(system, CHANGE_CODE, code)

    def remove_all(self, system: str, group: str) -> int:
        def apply(s: Session, sub: Subscriber, ftype: FilterType, now: dt.datetime) -> int:
            model = ftype.model
            done = s.execute(update(model).where(model.subscriber_id == sub.id,
                                                 model.removed_at.is_(None))
                             .values(removed_at=now))
            return int(done.rowcount or 0)
        return self._run(system, "RemoveAll", {"group": str(group)},
                         lambda: filters.by_group(group), apply,
                         lambda n: f"REMOVED {n}")

    def get_all_filters(self, system: str, as_of: dt.datetime | None = None) -> FilterSet:
        def apply(s: Session, sub: Any, at: dt.datetime, now: dt.datetime) -> FilterSet:
            at = at or now
            listing = filter_listing(filters.TYPES)
            rows = s.connection().execute(listing.statement,
                                          {"p_subscriber": sub.id, "p_at": at})
            return FilterSet(sub.uuid, at, {t.listing: items
                                            for t, items in listing.split(rows.all()).items()})

        def describe(f: FilterSet) -> str:
            counts = ", ".join(f"{len(f.listings[t.listing])} {t.noun}" for t in filters.TYPES)
            return f"OK: {counts} filters" + (" (receives nothing)" if f.empty else "")
        at = as_naive_utc(as_of) if as_of else None
        return self._run(system, "GetAllFilters", {"as_of": at.isoformat() if at else None},
                         lambda: at, apply, describe, locked=False, whole=False)

    # -- bulk variants (one call, many values: PNR) ---------------------------------
    def add_pnrs(self, system: str, pnrs: Sequence[str]) -> BulkOutcome:
        """Add many PNRs in one transaction; invalid items are rejected individually."""
        return self.add_many(system, PNR, pnrs)

    def remove_pnrs(self, system: str, pnrs: Sequence[str]) -> BulkOutcome:
        return self.remove_many(system, PNR, pnrs)

    def add_many(self, system: str, ftype: FilterType, values: Sequence[Any]) -> BulkOutcome:
        return self._bulk(system, ftype, values, adding=True)

    def remove_many(self, system: str, ftype: FilterType, values: Sequence[Any]
                    ) -> BulkOutcome:
        return self._bulk(system, ftype, values, adding=False)

    def _bulk(self, system: str, ftype: FilterType, raw: Sequence[Any], *, adding: bool
              ) -> BulkOutcome:
        """``Add<group>Subscriptions``: one transaction, the type's vectorised rule."""
        (argument,) = ftype.arguments
        operation = (ftype.add_operation if adding else ftype.remove_operation) + "s"
        sample = [argument.audited(v) for v in raw[:AUDIT_SAMPLE]]

        def apply(s: Session, sub: Subscriber, _: None, now: dt.datetime) -> BulkOutcome:
            missing = Result(ftype.missing).value
            results = ftype.apply_many(s, sub.id, raw, now, adding=adding,
                                       missing=missing)
            return BulkOutcome(results)

        return self._run(system, operation, {"count": len(raw), "sample": sample},
                         lambda: None, apply,
                         lambda b: "OK: " + json.dumps(b.counts, sort_keys=True))
