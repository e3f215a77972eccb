"""Age range filter: age in completed years on the production date within
``[start_age, end_age]`` (product.md §2, §3).

The birth date is 001 FOED_DT, else the PNR's century rule (the scanner's
``birth_date``). Someone born 29 February turns a year older on 1 March in non-leap
years: ``(day - birth) // 10000`` on ``YYYYMMDD`` integers gives exactly that.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any

from sqlalchemy import SmallInteger
from sqlalchemy.orm import Mapped, mapped_column

from cpr_abonnement.errors import InvalidAgeRange
from cpr_abonnement.filters.base import Argument, Context, FilterType, Pairs, by_key
from cpr_abonnement.store.models import Base, FilterRow, filter_indexes
from cpr_abonnement.subscriptions.rules import shown

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

MAX_AGE = 999


class AgeRangeFilter(FilterRow, Base):
    __tablename__ = "filter_age_range"
    __table_args__ = filter_indexes("filter_age_range", "start_age", "end_age", lookup=False)

    start_age: Mapped[int] = mapped_column(SmallInteger)
    end_age: Mapped[int] = mapped_column(SmallInteger)


def parse_age_range(start: object, end: object) -> tuple[int, int]:
    """Whole years 0-999 with StartAge <= EndAge.

    >>> parse_age_range(0, "999")
    (0, 999)
    """
    ages = []
    for label, value in (("StartAge", start), ("EndAge", end)):
        if isinstance(value, bool) or not (
            isinstance(value, int) or (isinstance(value, str)
                                       and re.fullmatch(r"[0-9]+", value.strip()))
        ):
            raise InvalidAgeRange(f"{label} {shown(value)} is not a whole number of years")
        number = int(value)
        if not 0 <= number <= MAX_AGE:
            raise InvalidAgeRange(f"{label} {shown(number)} is outside 0-{MAX_AGE}")
        ages.append(number)
    if ages[0] > ages[1]:
        raise InvalidAgeRange(f"StartAge {ages[0]} is greater than EndAge {ages[1]}")
    return ages[0], ages[1]


def ages_on(birth_yyyymmdd: np.ndarray, day: dt.date) -> np.ndarray:
    """Completed years on ``day``; -1 where the birth date is unknown (0).

    >>> import numpy as np
    >>> ages_on(np.array([20000229, 20000229, 19900101, 0]), dt.date(2023, 2, 28)).tolist()
    [22, 22, 33, -1]
    >>> ages_on(np.array([20000229]), dt.date(2023, 3, 1)).tolist()
    [23]
    """
    import numpy as np
    today = day.year * 10_000 + day.month * 100 + day.day
    return np.where(birth_yyyymmdd > 0, (today - birth_yyyymmdd) // 10_000, -1)


class AgeRange(FilterType):
    group = "AgeRange"
    model = AgeRangeFilter
    arguments = (Argument("start_age", "startAge", int, (0,), "whole years 0-999"),
                 Argument("end_age", "endAge", int, (17,), "whole years 0-999, >= startAge"))
    listing, label, noun, cli = "age_ranges", "age ranges", "age range", "age-range"

    def parse(self, *raw: Any) -> dict[str, Any]:
        start, end = parse_age_range(*raw)
        return {"start_age": start, "end_age": end}

    def select(self, rows: pd.DataFrame, context: Context) -> Pairs:
        import numpy as np
        age = ages_on(context.persons["birth_date"].to_numpy(), context.production_date)
        known = np.flatnonzero(age >= 0)
        sub, items = by_key(age[known], rows["sub"].to_numpy(),
                            rows["start_age"].to_numpy(), rows["end_age"].to_numpy())
        return sub, known[items]

    def explain(self, context: Context, rows: pd.DataFrame, who: np.ndarray
                ) -> list[list[str]]:
        ages = ages_on(context.persons["birth_date"].to_numpy()[who], context.production_date)
        spans = list(zip(rows["start_age"].tolist(), rows["end_age"].tolist(), strict=True))
        return [[f"{self.group} {a}-{b} (age {age})" for a, b in spans if a <= age <= b]
                for age in ages.tolist()]


AGE_RANGE = AgeRange()
