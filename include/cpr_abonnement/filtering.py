"""Who gets which person: product.md §3 as pure, vectorised functions.

A subscriber's filters are a positive filter, the union of all of them:

* PNR: the person's PNR is in the subscriber's list;
* age range: age in completed years on the production date within ``[start, end]``,
  birth date from 001 FOED_DT else the PNR's century rule (someone born 29 February
  turns a year older on 1 March in non-leap years: ``(day - birth) // 10000`` on
  ``YYYYMMDD`` integers gives exactly that);
* municipality: the *current* 002 KOMKOD (movers in match, movers out and persons
  without 002 do not);
* change code: any of the person's 099 records carries the code, derived or not.

Cost grows with persons + filters + matches, never with their product: persons are
sorted once by age, municipality and event code, and each filter picks its matches as
one contiguous slice of that order. There is no pass over the extract per subscriber.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import IntFlag

import numpy as np
import pandas as pd

from cpr_abonnement.subscriptions.snapshot import FilterSnapshot


class Reason(IntFlag):
    """Which filter type(s) selected a person (bits, so a union keeps them all)."""

    PNR = 1
    AGE_RANGE = 2
    MUNICIPALITY_CODE = 4
    CHANGE_CODE = 8


@dataclass
class Selection:
    """Pairs (subscriber, person), sorted by subscriber then person, without duplicates."""

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

    def counts(self) -> np.ndarray:
        return np.diff(self.bounds())


def ages_on(birth_yyyymmdd: np.ndarray, day: dt.date) -> np.ndarray:
    """Completed years on ``day``; -1 where the birth date is unknown (0).

    >>> ages_on(np.array([20000229, 20000229, 19900101, 0]), dt.date(2023, 2, 28)).tolist()
    [22, 22, 33, -1]
    >>> ages_on(np.array([20000229]), dt.date(2023, 3, 1)).tolist()
    [23]
    """
    today = day.year * 10_000 + day.month * 100 + day.day
    return np.where(birth_yyyymmdd > 0, (today - birth_yyyymmdd) // 10_000, -1)


def _ranges(sorted_keys: np.ndarray, lo_keys: np.ndarray, hi_keys: np.ndarray,
            order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each ``[lo, hi]`` key range: the positions (in ``order``) of matching items.

    Returns (range number, item) pairs; total cost is the number of pairs.
    """
    lo = np.searchsorted(sorted_keys, lo_keys, side="left")
    hi = np.searchsorted(sorted_keys, hi_keys, side="right")
    lens = np.maximum(hi - lo, 0)
    which = np.repeat(np.arange(len(lo)), lens)
    flat = np.repeat(lo - np.cumsum(lens) + lens, lens) + np.arange(int(lens.sum()))
    return which, order[flat]


def _by_key(keys: np.ndarray, sub: np.ndarray, lo: np.ndarray, hi: np.ndarray,
            ) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(keys, kind="stable")
    which, items = _ranges(keys[order], lo, hi, order)
    return sub[which], items


def select(persons: pd.DataFrame, events: pd.DataFrame, snapshot: FilterSnapshot,
           production_date: dt.date) -> Selection:
    """Every (subscriber, person) pair the snapshot's filters select."""
    n = len(persons)
    parts: list[tuple[np.ndarray, np.ndarray, int]] = []

    hits = snapshot.pnr_hits
    if len(hits):
        person = pd.Index(persons["pnr"].to_numpy()).get_indexer(hits["pnr"].to_numpy())
        found = person >= 0
        parts.append((hits["sub"].to_numpy()[found], person[found], Reason.PNR))

    ages = snapshot.age_ranges
    if len(ages):
        age = ages_on(persons["birth_date"].to_numpy(), production_date)
        known = np.flatnonzero(age >= 0)
        sub, items = _by_key(age[known], ages["sub"].to_numpy(), ages["start"].to_numpy(),
                             ages["end"].to_numpy())
        parts.append((sub, known[items], Reason.AGE_RANGE))

    kom = snapshot.municipalities
    if len(kom):
        codes = kom["code"].to_numpy()
        sub, items = _by_key(persons["municipality"].to_numpy(), kom["sub"].to_numpy(),
                             codes, codes)
        parts.append((sub, items, Reason.MUNICIPALITY_CODE))

    wanted = snapshot.change_codes
    if len(wanted) and len(events):
        cats = pd.Index(events["code"].cat.categories)
        event_code = events["code"].cat.codes.to_numpy().astype(np.int64)
        key = cats.get_indexer(wanted["code"].to_numpy())
        ok = key >= 0
        sub, items = _by_key(event_code, wanted["sub"].to_numpy()[ok], key[ok], key[ok])
        parts.append((sub, events["person"].to_numpy()[items], Reason.CHANGE_CODE))

    return _union(parts, n, len(snapshot.subscribers))


def _union(parts, n_persons: int, n_subs: int) -> Selection:
    if not parts or not sum(len(p[0]) for p in parts):
        empty = np.empty(0, dtype=np.int64)
        return Selection(n_subs, empty, empty, np.empty(0, dtype=np.uint8))
    sub = np.concatenate([p[0] for p in parts]).astype(np.int64)
    person = np.concatenate([p[1] for p in parts]).astype(np.int64)
    reason = np.concatenate([np.full(len(p[0]), int(p[2]), dtype=np.uint8) for p in parts])
    key = sub * max(n_persons, 1) + person
    order = np.argsort(key, kind="stable")
    key, reason = key[order], reason[order]
    first = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1])))
    reasons = np.bitwise_or.reduceat(reason, first)
    pair = key[first]
    return Selection(n_subs, pair // max(n_persons, 1), pair % max(n_persons, 1), reasons)


def codes_by_person(events: pd.DataFrame) -> dict[int, set[str]]:
    """Each person's event codes (for :func:`explain`; computed once per extract)."""
    return events.groupby("person", observed=True)["code"].agg(set).to_dict()


def explain(persons: pd.DataFrame, codes_of: dict[int, set[str]], snapshot: FilterSnapshot,
            selection: Selection, s: int, production_date: dt.date) -> list[str]:
    """Which filter(s) selected each of subscriber ``s``'s persons, in words."""
    rows = selection.bounds()
    who = selection.person[rows[s] : rows[s + 1]]
    why = selection.reasons[rows[s] : rows[s + 1]]
    ranges = snapshot.age_ranges[snapshot.age_ranges["sub"] == s]
    wanted = set(snapshot.change_codes.loc[snapshot.change_codes["sub"] == s, "code"])
    ages = ages_on(persons["birth_date"].to_numpy()[who], production_date)
    kom = persons["municipality"].to_numpy()[who]
    out = []
    for i, person in enumerate(who.tolist()):
        labels = []
        if why[i] & Reason.PNR:
            labels.append("PNR")
        if why[i] & Reason.AGE_RANGE:
            labels += [f"AgeRange {a}-{b} (age {ages[i]})" for a, b in
                       zip(ranges["start"], ranges["end"], strict=True) if a <= ages[i] <= b]
        if why[i] & Reason.MUNICIPALITY_CODE:
            labels.append(f"MunicipalityCode {kom[i]:04d}")
        if why[i] & Reason.CHANGE_CODE:
            labels += [f"ChangeCode {c}" for c in sorted(wanted & codes_of.get(person, set()))]
        out.append("; ".join(labels))
    return out
