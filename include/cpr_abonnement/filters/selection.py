"""Who gets which person: product.md §3 as vectorised functions over the registry.

A subscriber's filters are a positive filter, the union of all of them: each filter
type (:mod:`cpr_abonnement.filters`) selects its (subscriber, person) pairs, and the
union keeps each pair once, with a bit per type that selected it (for explanations).

Cost grows with persons + filters + matches, never with their product: each type
sorts persons once and picks every filter's matches as one contiguous slice. There is
no pass over the extract per subscriber.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cpr_abonnement.filters.base import Context
from cpr_abonnement.filters.snapshot import FilterSnapshot


@dataclass
class Selection:
    """Pairs (subscriber, person), sorted by subscriber then person, without duplicates.

    ``reasons`` has bit ``i`` set where ``snapshot.types[i]`` selected the pair.
    """

    subscribers: int
    sub: np.ndarray
    person: np.ndarray
    reasons: np.ndarray

    def bounds(self) -> np.ndarray:
        """``bounds[s]:bounds[s + 1]`` are subscriber ``s``'s rows."""
        return np.searchsorted(self.sub, np.arange(self.subscribers + 1))

    def persons_of(self, s: int) -> np.ndarray:
        b = np.searchsorted(self.sub, [s, s + 1])
        return self.person[b[0] : b[1]]


def select(persons: pd.DataFrame, events: pd.DataFrame, snapshot: FilterSnapshot,
           production_date: dt.date) -> Selection:
    """Every (subscriber, person) pair the snapshot's filters select."""
    context = Context(persons, events, production_date)
    parts = [(*t.select(rows, context), bit)
             for bit, (t, rows) in enumerate(snapshot.filters.items()) if len(rows)]
    return _union(parts, len(persons), len(snapshot.subscribers))


#: Low bits of a packed pair that hold the number of the filter type that selected it.
TYPE_BITS = 5


def _union(parts: list[tuple[np.ndarray, np.ndarray, int]], n_persons: int, n_subs: int
           ) -> Selection:
    if not parts or not sum(len(p[0]) for p in parts):
        empty = np.empty(0, dtype=np.int64)
        return Selection(n_subs, empty, empty, np.empty(0, dtype=np.uint32))
    if max(p[2] for p in parts) >= 1 << TYPE_BITS:
        raise ValueError(f"more than {1 << TYPE_BITS} filter types")
    width = max(n_persons, 1)
    # Each pair packed with its type's number below it, in one int64 sorted by value:
    # NumPy sorts int64 with SIMD, where a stable argsort of the pairs and gathering
    # the types in its order took ten times as long (0.34 s against 0.03 for two
    # million pairs). Equal pairs end up adjacent whatever their types' order.
    packed = np.sort(np.concatenate([
        (np.asarray(sub, dtype=np.int64) * width + np.asarray(person, dtype=np.int64))
        << TYPE_BITS | bit for sub, person, bit in parts]))
    pair = packed >> TYPE_BITS
    first = np.flatnonzero(np.concatenate(([True], pair[1:] != pair[:-1])))
    reasons = np.bitwise_or.reduceat(
        np.left_shift(1, packed & ((1 << TYPE_BITS) - 1)).astype(np.uint32), first)
    pair = pair[first]
    return Selection(n_subs, pair // width, pair % width, reasons)


def explain(context: Context, snapshot: FilterSnapshot, selection: Selection, s: int
            ) -> list[str]:
    """Which filter(s) selected each of subscriber ``s``'s persons, in words."""
    rows = selection.bounds()
    who = selection.person[rows[s] : rows[s + 1]]
    why = selection.reasons[rows[s] : rows[s + 1]]
    labels: list[list[str]] = [[] for _ in range(len(who))]
    for bit, (t, frame) in enumerate(snapshot.filters.items()):
        mine = np.flatnonzero(why & (1 << bit))
        if not len(mine):
            continue
        own = frame[frame["sub"] == s]
        for i, words in zip(mine.tolist(), t.explain(context, own, who[mine]), strict=True):
            labels[i] += words
    return ["; ".join(words) for words in labels]
