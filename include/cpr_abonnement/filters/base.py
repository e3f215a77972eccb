"""What a filter type is: the one definition the service, API, CLI, snapshot and
selection are driven by.

A filter type (product.md §2, §3) declares, in one class:

* its **arguments** (:class:`Argument`): the names the SF6002 operation, the REST body,
  the CLI and the audit row use, and the storage column each fills;
* its **input rule**: :meth:`FilterType.parse` normalises raw input into column values
  or raises the :class:`~cpr_abonnement.errors.FilterInputError` naming the rule;
* its **storage**: ``model``, a table with :class:`FilterRow`'s validity period;
* its **snapshot query**: :meth:`FilterType.in_force` (rows in force at an instant for
  every subscriber; the default reads the table whole);
* its **selection**: :meth:`FilterType.select`, vectorised, filter rows and the
  extract's persons/events -> (subscriber position, person row) pairs;
* its **explain label**: :meth:`FilterType.explain`;
* its **names**: ``group`` (RemoveAll's group; the operations are
  ``Add<group>Subscription`` / ``Remove<group>Subscription``), ``missing`` (the result
  word of removing what is not there), ``listing`` (GetAllFilters' field), ``cli``.

What selection may read: ``persons`` (one row per person, in extract order:
``pnr`` int64, ``birth_date`` YYYYMMDD int64 or 0, ``municipality`` current KOMKOD int64
or -1) and ``events`` (one row per 099 record: ``person`` row, ``code`` categorical).
A type needing another per-person field needs the scanner to provide it.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, TypeAlias

from sqlalchemy import Connection, and_, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from cpr_abonnement.cpr_number import mask

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

#: (subscriber positions, person rows): what one type's selection returns.
Pairs: TypeAlias = "tuple[np.ndarray, np.ndarray]"


def in_force(model: Any, at: dt.datetime) -> ColumnElement[bool]:
    """Rows of a filter table in force at ``at``: ``added_at <= at < removed_at``."""
    return and_(model.added_at <= at, or_(model.removed_at.is_(None), model.removed_at > at))


@dataclass(frozen=True)
class Argument:
    """One input of a filter operation and the storage column it fills (same name)."""

    #: Python, CLI and audit name, and the table's column.
    name: str
    #: The field's name in the REST body (SF6002 spelling).
    api: str
    #: ``int`` (strict: JSON true or "5" is refused) or ``str``.
    kind: type
    examples: tuple[Any, ...]
    help: str
    #: A PNR: the audit row holds it masked.
    masked: bool = False

    def audited(self, raw: Any) -> Any:
        """The raw value as the audit row keeps it (text masked if PNR-shaped)."""
        if self.masked:
            return mask(str(raw))
        return str(raw) if self.kind is str else raw


class FilterType(ABC):
    """One kind of filter; subclass it once per type and list it in ``filters.TYPES``."""

    group: ClassVar[str]
    model: ClassVar[type]
    arguments: ClassVar[tuple[Argument, ...]]
    #: GetAllFilters' field and the CLI's listing label (e.g. ``age_ranges``, "age ranges").
    listing: ClassVar[str]
    label: ClassVar[str]
    #: How the GetAllFilters audit row counts them (``3 age range, ...``).
    noun: ClassVar[str]
    #: CLI sub-commands ``add-<cli>`` and ``remove-<cli>``.
    cli: ClassVar[str]
    missing: ClassVar[str] = "NON_EXISTING"
    #: Offers ``Add<group>Subscriptions`` (many values in one call; one argument only).
    bulk: ClassVar[bool] = False

    @property
    def add_operation(self) -> str:
        return f"Add{self.group}Subscription"

    @property
    def remove_operation(self) -> str:
        return f"Remove{self.group}Subscription"

    @cached_property
    def columns(self) -> tuple[Any, ...]:
        return tuple(getattr(self.model, a.name) for a in self.arguments)

    def audited(self, raw: tuple[Any, ...]) -> dict[str, Any]:
        return {a.name: a.audited(v) for a, v in zip(self.arguments, raw, strict=True)}

    @abstractmethod
    def parse(self, *raw: Any) -> dict[str, Any]:
        """Raw input -> normalised column values; raises the type's FilterInputError."""

    def warning(self, values: dict[str, Any]) -> str | None:
        """A warning for accepted but unusual values (none by default)."""
        return None

    def listed(self, row: tuple[Any, ...]) -> Any:
        """One GetAllFilters item from a row of column values."""
        return row[0] if len(row) == 1 else tuple(row)

    def as_listing(self, items: list[Any]) -> Any:
        """GetAllFilters' JSON value for this type: a list of :meth:`as_json` items."""
        return [self.as_json(i) for i in items]

    def as_json(self, item: Any) -> Any:
        return dict(zip((a.name for a in self.arguments), item, strict=True)) \
            if len(self.arguments) > 1 else item

    def shown(self, item: Any) -> str:
        return "-".join(map(str, item)) if isinstance(item, tuple) else str(item)

    def summary(self, items: list[Any]) -> str:
        """The CLI's ``get-all`` line for this type."""
        return f"{self.label}: {', '.join(self.shown(i) for i in items) or '-'}"

    def in_force(self, conn: Connection, as_of: dt.datetime, pnrs: np.ndarray
                 ) -> Sequence[Any] | np.ndarray:
        """(subscriber_id, *columns) rows in force at ``as_of``, every subscriber; a type
        with integer columns may give them as one 2-D int64 array.

        ``pnrs`` are the extract's persons, for a type that can narrow its rows to them.
        """
        return conn.execute(select(self.model.subscriber_id, *self.columns)
                            .where(in_force(self.model, as_of))).all()

    def apply_many(self, session: Session, subscriber_id: int, raw: Sequence[Any],
                   now: dt.datetime, *, adding: bool, missing: str) -> list[str]:
        """The bulk form (``bulk`` types only): add or close many values in one
        transaction; per item a result word or ``REJECTED: why``, aligned with ``raw``."""
        raise NotImplementedError(f"{self.group} filters have no bulk form")

    @abstractmethod
    def select(self, rows: pd.DataFrame, context: Context) -> Pairs:
        """The (subscriber, person) pairs ``rows`` (``sub`` + argument columns) select."""

    @abstractmethod
    def explain(self, context: Context, rows: pd.DataFrame, who: np.ndarray
                ) -> list[list[str]]:
        """Per person in ``who`` (selected by this type for the subscriber whose filter
        rows are ``rows``): the label(s) of the filter(s) that selected them."""

    def __repr__(self) -> str:
        return f"<filter type {self.group}>"


@dataclass
class Context:
    """What selection and explanation share for one extract and delivery day."""

    persons: pd.DataFrame
    events: pd.DataFrame
    production_date: dt.date
    _codes: dict[int, set[str]] | None = field(default=None, repr=False)

    @property
    def codes_by_person(self) -> dict[int, set[str]]:
        """Each person's event codes (for explanations; computed once per extract)."""
        if self._codes is None:
            self._codes = self.events.groupby("person", observed=True)["code"].agg(
                set).to_dict()
        return self._codes


def ranges(sorted_keys: np.ndarray, lo_keys: np.ndarray, hi_keys: np.ndarray,
           order: np.ndarray) -> Pairs:
    """For each ``[lo, hi]`` key range: the positions (in ``order``) of matching items.

    Returns (range number, item) pairs; total cost is the number of pairs.
    """
    import numpy as np
    lo = np.searchsorted(sorted_keys, lo_keys, side="left")
    hi = np.searchsorted(sorted_keys, hi_keys, side="right")
    lens = np.maximum(hi - lo, 0)
    which = np.repeat(np.arange(len(lo)), lens)
    flat = np.repeat(lo - np.cumsum(lens) + lens, lens) + np.arange(int(lens.sum()))
    return which, order[flat]


def by_key(keys: np.ndarray, sub: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> Pairs:
    """Items whose key lies in each filter's ``[lo, hi]``: (subscriber, item) pairs.

    Items are sorted once by key; each filter's matches are one contiguous slice, so
    the cost grows with items + filters + matches, never with their product.
    """
    import numpy as np
    order = np.argsort(keys, kind="stable")
    which, items = ranges(keys[order], lo, hi, order)
    return sub[which], items
