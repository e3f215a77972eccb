"""The SQL every filter operation runs, built once per filter type and dialect.

Building a statement and its cache key costs more Python time than running it on
SQLite, and under load each call's transaction holds the writer lock meanwhile, so the
statements of the operations API calls make are made here once, not per call."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    Integer,
    SmallInteger,
    String,
    and_,
    bindparam,
    cast,
    exists,
    insert,
    literal,
    literal_column,
    null,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql

from cpr_abonnement.filters.base import FilterType, in_force
from cpr_abonnement.store.clock import NOW_SQL
from cpr_abonnement.store.models import (
    AuditEntry,
    Subscriber,
)

if TYPE_CHECKING:
    pass


_SUBSCRIBERS = Subscriber.__table__
#: A subscriber's id and UUID: all a filter operation needs of it (no ORM object).
SUBSCRIBER_REF = select(_SUBSCRIBERS.c.id, _SUBSCRIBERS.c.uuid).where(
    _SUBSCRIBERS.c.uuid == bindparam("p_system"))
#: The same and the database's time in one statement (for a read, which takes no lock).
SUBSCRIBER_REF_AND_NOW = {
    dialect: SUBSCRIBER_REF.add_columns(literal_column(now).label("now"))
    for dialect, now in NOW_SQL.items()}
AUDIT_INSERT = insert(AuditEntry.__table__)


@dataclass(frozen=True)
class _FilterStatements:
    """One filter type's statements for the single-value operations, with bind
    parameters ``p_subscriber``, ``p_now``/``p_at`` and ``p_<argument>``."""

    #: Insert the filter unless it is in force (a row back: ADDED, none: ALREADY_EXISTED;
    #: RETURNING, since psycopg's rowcount of an INSERT ... SELECT is not reliable).
    add: Any
    #: Close the filter in force (rowcount 1: REMOVED, 0: not there).
    remove: Any


@cache
def filter_statements(ftype: FilterType, dialect: str) -> _FilterStatements:
    """The statements of ``ftype`` for ``dialect``, built on first use. Check and write
    are one statement each. On SQLite the filter lock (held by the caller) makes them
    race-free; on PostgreSQL single-filter changes hold it shared, so two may add the
    same filter at once, and the insert leaves it to the unique index on current rows
    (``uq_<table>_current``): the loser waits for the winner's commit and adds nothing."""
    table = ftype.model.__table__
    names = [a.name for a in ftype.arguments]
    subscriber = bindparam("p_subscriber", type_=Integer)
    now = bindparam("p_now", type_=DateTime)
    values = [bindparam(f"p_{n}", type_=table.c[n].type) for n in names]
    columns = [table.c[n] for n in names]
    current = and_(table.c.subscriber_id == subscriber, table.c.removed_at.is_(None),
                   *[table.c[n] == v for n, v in zip(names, values, strict=True)])
    add = insert(table) if dialect != "postgresql" else (
        postgresql.insert(table).on_conflict_do_nothing(
            index_elements=[table.c.subscriber_id, *columns],
            index_where=table.c.removed_at.is_(None)))
    return _FilterStatements(
        add=add.from_select(["subscriber_id", "added_at", *names],
                            select(subscriber, now, *values).where(~exists().where(current)))
        .returning(table.c.id),
        remove=update(table).where(current).values(removed_at=now))


@dataclass(frozen=True)
class _Listing:
    """GetAllFilters in one statement: every type's filters in force for subscriber
    ``p_subscriber`` at ``p_at`` (one round trip instead of one per type). Each row is
    ``(type's position in TYPES, *slots)``; a type's columns sit in the number or the
    text slots, in their order, so ``ORDER BY`` position and slots sorts each type by
    its columns as its own listing would."""

    types: tuple[FilterType, ...]
    statement: Any
    #: Per type, the row positions of its columns.
    positions: tuple[tuple[int, ...], ...]

    def split(self, rows: Sequence[Any]) -> dict[FilterType, list[Any]]:
        found: dict[FilterType, list[Any]] = {t: [] for t in self.types}
        for row in rows:
            kind = row[0]
            ftype = self.types[kind]
            found[ftype].append(ftype.listed(tuple(row[i] for i in self.positions[kind])))
        return found


def _is_number(column: Any) -> bool:
    return isinstance(column.type, Integer)


def _slots(table: Any, columns: list[Any], width: int, slot_type: Any, prefix: str
           ) -> list[Any]:
    """``columns`` cast to ``slot_type``, padded with typed NULLs to ``width``, each
    labelled (unlabelled, equal NULL casts would collapse into one column)."""
    values = [cast(table.c[c.key], slot_type) for c in columns]
    values += [cast(null(), slot_type)] * (width - len(columns))
    return [v.label(f"{prefix}{i}") for i, v in enumerate(values)]


@cache
def filter_listing(types: tuple[FilterType, ...]) -> _Listing:
    """The listing of ``types`` (``filters.TYPES``: a type registered later gets a
    statement of its own)."""
    numbers = max(sum(map(_is_number, t.columns)) for t in types)
    texts = max(sum(not _is_number(c) for c in t.columns) for t in types)
    selects, positions = [], []
    for kind, ftype in enumerate(types):
        table = ftype.model.__table__
        number_columns = [c for c in ftype.columns if _is_number(c)]
        text_columns = [c for c in ftype.columns if not _is_number(c)]
        if list(ftype.columns) != number_columns + text_columns:
            raise TypeError(f"{ftype.group}: number columns must come before text columns")
        positions.append(tuple(1 + i for i in range(len(number_columns)))
                         + tuple(1 + numbers + i for i in range(len(text_columns))))
        selects.append(select(
            literal(kind, SmallInteger).label("kind"),
            *_slots(table, number_columns, numbers, BigInteger, "number"),
            *_slots(table, text_columns, texts, String, "text"),
        ).where(table.c.subscriber_id == bindparam("p_subscriber", type_=Integer),
                in_force(table.c, bindparam("p_at", type_=DateTime))))
    everything = union_all(*selects).subquery()
    return _Listing(types, select(everything).order_by(*everything.c), tuple(positions))


def filter_parameters(sub: Any, values: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    return {"p_subscriber": sub.id, "p_now": now, **{f"p_{k}": v for k, v in values.items()}}
