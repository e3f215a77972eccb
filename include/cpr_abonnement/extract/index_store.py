"""Keeping a validated extract's index beside the staged file, so a run scans it once.

``parse_and_validate`` scans and validates the extract; ``filter_for_subscribers`` runs
later, maybe on another worker, and needs the same index. Rescanning would cost a full
pass over the file (and used to re-run validation with other error types). Instead the
index is saved next to the staged extract as one ``.npz`` (plain arrays and a JSON header,
``allow_pickle=False``: loading it can never execute code) and loaded by the filter step.

The filter step still proves that the staged file is the one validated: the index
records the file's size and SHA-256, and :func:`load` compares them with the file, which
is one sequential read instead of a scan.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from cpr_abonnement.errors import ExtractNotValidated
from cpr_abonnement.extract.model import EndRecord, ExtractIndex, StartRecord

SUFFIX = ".index.npz"
#: Bumped whenever the saved layout changes; an index of another version is refused.
FORMAT = 1
_SPANS = ("span_offset", "span_nbytes", "span_records", "span_person")
_CHUNK = 1 << 20


def index_path(extract: Path) -> Path:
    return extract.with_name(extract.name + SUFFIX)


def _record_json(rec: StartRecord | EndRecord | None) -> dict | None:
    if rec is None:
        return None
    out = {}
    for f in dataclasses.fields(rec):
        value = getattr(rec, f.name)
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        elif isinstance(value, dt.date):
            value = value.isoformat()
        out[f.name] = value
    return out


def _record(cls, data: dict | None):
    if data is None:
        return None
    values = {}
    for f in dataclasses.fields(cls):
        value = data[f.name]
        if f.name in ("raw", "terminator"):
            value = value.encode("latin-1")
        elif f.name in ("production_date", "previous_date") and value is not None:
            value = dt.date.fromisoformat(value)
        values[f.name] = value
    return cls(**values)


def save(index: ExtractIndex, target: Path | None = None) -> Path:
    """Write ``index`` (of a validated extract, with its SHA-256) next to its file."""
    if index.sha256 is None:
        raise ValueError("only an index with the file's SHA-256 can be saved")
    if index.violations:
        raise ValueError("an index with rule violations is never saved")
    target = target or index_path(index.path)
    header = {
        "format": FORMAT, "size": index.size, "lines": index.lines,
        "line_ending": index.line_ending.decode("latin-1"),
        "ends_with_terminator": index.ends_with_terminator,
        "start": _record_json(index.start), "end": _record_json(index.end),
        "start_lines": index.start_lines, "end_lines": index.end_lines,
        "record_counts": index.record_counts, "sha256": index.sha256,
        "persons": list(index.persons.columns), "events": list(index.events.columns),
    }
    arrays: dict[str, np.ndarray] = {name: getattr(index, name) for name in _SPANS}
    for col in index.persons.columns:
        arrays[f"persons.{col}"] = index.persons[col].to_numpy()
    for col in index.events.columns:
        values = index.events[col]
        if isinstance(values.dtype, pd.CategoricalDtype):
            arrays[f"events.{col}.codes"] = values.cat.codes.to_numpy()
            arrays[f"events.{col}.categories"] = values.cat.categories.to_numpy(dtype=str)
        else:
            arrays[f"events.{col}"] = values.to_numpy()
    arrays["header"] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    tmp.replace(target)
    return target


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def load(extract: Path, saved: Path | None = None, *, expect_sha256: str) -> ExtractIndex:
    """The saved index of ``extract``, after proving the file is the one validated.

    Raises :class:`ExtractNotValidated` when the index is missing, of another format,
    of another file, or the file changed since (size or SHA-256).
    """
    saved = saved or index_path(extract)
    if not saved.is_file():
        raise ExtractNotValidated(f"{extract.name}: no validated index beside it "
                                  f"({saved.name}); run parse_and_validate again")
    with np.load(saved, allow_pickle=False) as npz:
        header = json.loads(npz["header"].tobytes().decode("utf-8"))
        if header.get("format") != FORMAT or header.get("sha256") != expect_sha256:
            raise ExtractNotValidated(
                f"{extract.name}: the saved index is of another file or format")
        size = extract.stat().st_size
        if size != header["size"] or _digest(extract) != expect_sha256:
            raise ExtractNotValidated(
                f"{extract.name} changed since it was validated (SHA-256 "
                f"{expect_sha256[:12]}…); refusing to filter it")
        persons = pd.DataFrame({c: npz[f"persons.{c}"] for c in header["persons"]})
        events = {}
        for col in header["events"]:
            if f"events.{col}.codes" in npz:
                events[col] = pd.Categorical.from_codes(
                    npz[f"events.{col}.codes"], categories=npz[f"events.{col}.categories"])
            else:
                events[col] = npz[f"events.{col}"]
        return ExtractIndex(
            path=extract, size=size, lines=header["lines"],
            line_ending=header["line_ending"].encode("latin-1"),
            ends_with_terminator=header["ends_with_terminator"],
            start=_record(StartRecord, header["start"]), end=_record(EndRecord, header["end"]),
            start_lines=header["start_lines"], end_lines=header["end_lines"],
            record_counts=header["record_counts"],
            **{name: npz[name] for name in _SPANS},
            persons=persons, events=pd.DataFrame(events, columns=header["events"]),
            violations={}, sha256=expect_sha256)
