"""The saved index of a validated extract: the same index back, or a refusal."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pytest

from cpr_abonnement.errors import ExtractNotValidated
from cpr_abonnement.extract import index_store
from cpr_abonnement.extract.generator import generate
from cpr_abonnement.extract.index import scan


@pytest.fixture
def scanned(tmp_path):
    path = tmp_path / "D261126.L431101"
    with open(path, "wb") as fh:
        generate(fh, production_date=dt.date(2026, 11, 26), persons=300, seed=5, crlf=True)
    return scan(path, digest=True)


def test_the_loaded_index_equals_the_scanned_one(scanned):
    index_store.save(scanned)
    loaded = index_store.load(scanned.path, expect_sha256=scanned.sha256)
    for f in dataclasses.fields(scanned):
        ours, theirs = getattr(scanned, f.name), getattr(loaded, f.name)
        if isinstance(ours, np.ndarray):
            assert ours.dtype == theirs.dtype and np.array_equal(ours, theirs), f.name
        elif hasattr(ours, "equals"):
            assert ours.equals(theirs) and ours.dtypes.equals(theirs.dtypes), f.name
        else:
            assert ours == theirs, f.name


def test_a_changed_file_or_another_digest_is_refused(scanned):
    index_store.save(scanned)
    with pytest.raises(ExtractNotValidated, match="another file"):
        index_store.load(scanned.path, expect_sha256="0" * 64)
    data = bytearray(scanned.path.read_bytes())
    data[100] = ord("9") if data[100] != ord("9") else ord("8")
    scanned.path.write_bytes(bytes(data))
    with pytest.raises(ExtractNotValidated, match="changed since it was validated"):
        index_store.load(scanned.path, expect_sha256=scanned.sha256)


def test_the_saved_file_holds_no_pickles(scanned):
    saved = index_store.save(scanned)
    with np.load(saved, allow_pickle=False) as npz:  # would raise on an object array
        assert all(npz[name].dtype != object for name in npz.files)
