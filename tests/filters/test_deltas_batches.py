"""Every subscriber's delta is written in one pass over the extract (issue 16), in as
many passes as the process may open files for: the files do not depend on how the
subscribers were batched, and a failed pass leaves neither half files nor temporaries."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from cpr_abonnement import deltas
from cpr_abonnement.extract.generator import generate
from cpr_abonnement.extract.index import scan
from cpr_abonnement.filters.selection import Selection
from cpr_abonnement.subscriptions.recipient import Recipient

WHEN = dt.datetime(2026, 11, 26, 5)


@pytest.fixture
def day(tmp_path):
    path = tmp_path / "D261126.L431101"
    with open(path, "wb") as fh:
        generate(fh, production_date=dt.date(2026, 11, 26), persons=400, seed=8)
    index = scan(path, digest=True)
    rng = np.random.default_rng(4)
    n = len(index.persons)
    chosen = [np.array([], dtype=np.int64), np.arange(n), *(
        np.sort(rng.choice(n, k, replace=False)) for k in (1, 30, 200, 399, 5))]
    sub = np.concatenate([np.full(len(p), s) for s, p in enumerate(chosen)])
    selection = Selection(len(chosen), sub.astype(np.int64), np.concatenate(chosen),
                          np.ones(len(sub), dtype=np.uint32))
    subscribers = [Recipient(f"00000000-0000-4000-8000-{s:012x}", f"system {s}", None, "/")
                   for s in range(len(chosen))]
    return index, selection, subscribers


def _write(day, out):
    index, selection, subscribers = day
    return deltas.write_deltas(index, selection, subscribers, out, first_processed_at=WHEN,
                               filters_as_of=WHEN, sender="test")


def _contents(out):
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file()}


def test_files_do_not_depend_on_the_batches(day, tmp_path, monkeypatch):
    whole = _write(day, tmp_path / "whole")
    monkeypatch.setattr(deltas, "_files_at_once", lambda: 3)
    batched = _write(day, tmp_path / "batched")
    assert [d.sha256 for d in batched] == [d.sha256 for d in whole]
    assert _contents(tmp_path / "batched") == _contents(tmp_path / "whole")
    index = day[0]
    assert (tmp_path / "whole" / whole[1].subscriber / whole[1].name).read_bytes() == \
        index.path.read_bytes()


def test_a_failed_pass_leaves_no_deltas_and_no_temporaries(day, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(deltas, "write_many", broken)
    with pytest.raises(OSError):
        _write(day, tmp_path / "out")
    assert [p for p in (tmp_path / "out").rglob("*") if p.is_file()] == []
