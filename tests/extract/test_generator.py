"""The synthetic generator: deterministic, valid, realistic in the ways tests rely on."""

from __future__ import annotations

import datetime as dt
import hashlib
import io

from cpr_abonnement.extract.generator import generate
from cpr_abonnement.extract.index import scan
from cpr_abonnement.extract.validation import violations
from cpr_abonnement.reference import municipalities

DAY = dt.date(2026, 11, 26)


def make(persons: int, seed: int, **kw) -> bytes:
    out = io.BytesIO()
    generate(out, production_date=DAY, persons=persons, seed=seed, **kw)
    return out.getvalue()


def test_same_seed_same_bytes_other_seed_other_bytes():
    assert make(300, 1) == make(300, 1)
    assert hashlib.sha256(make(300, 1)).digest() != hashlib.sha256(make(300, 2)).digest()


def test_large_sample_is_valid_and_realistic(tmp_path):
    path = tmp_path / "D261126.L431101"
    with open(path, "wb") as fh:
        result = generate(fh, production_date=DAY, persons=3000, seed=4)
    ix = scan(path)
    assert violations(ix) == []
    assert len(ix.persons) == result.persons >= 3000
    assert ix.end.counter == result.records == ix.person_records
    assert ix.start.previous_date == dt.date(2026, 11, 25)
    p = ix.persons
    digit7 = set((p["pnr"] // 1000 % 10).tolist())
    assert digit7 == set(range(10)), "every century digit occurs"
    assert (p["birth_date"] < 19000101).any() and (p["birth_date"] >= 20000101).any()
    assert {1, 80, 90} <= set(p["status"].tolist())
    no_002 = p["municipality"] < 0
    assert no_002.any() and (p.loc[no_002, "status"] >= 30).all()
    assert set(p.loc[~no_002, "municipality"].map("{:04d}".format)) <= set(municipalities())
    assert (ix.events["derived"] == "ÆG").any() and (ix.events["derived"] == "").any()
    assert len(ix.span_offset) > len(p), "some 003 records are scattered"
    data = path.read_bytes()
    assert "ø".encode("latin-1") in data and "Æ".encode("latin-1") in data
    assert ix.record_counts["002"] > 0 and b"0000000000000000" in data  # moved-from blank


def test_crlf_and_explicit_chain():
    data = make(50, 1, crlf=True, previous_date=dt.date(2026, 11, 20), task_number="123456")
    assert data.count(b"\r\n") == data.count(b"\n")
    assert data.startswith(b"000000000000012345620261126" b"20261120")


def test_a_change_extract_drawn_from_a_population_changes_its_persons_and_is_valid(tmp_path):
    """The replica's benchmark and tests: a status extract of a population, then a day
    whose events happen to persons of it; each person's block comes once."""
    import datetime as dt

    from cpr_abonnement.extract.generator import generate
    from cpr_abonnement.extract.index import scan
    from cpr_abonnement.extract.validation import violations

    status, change = tmp_path / "status", tmp_path / "change"
    with open(status, "wb") as fh:
        made = generate(fh, production_date=dt.date(2026, 11, 16), persons=3000,
                        kind="status", population_seed=4)
    with open(change, "wb") as fh:
        generate(fh, production_date=dt.date(2026, 11, 17), persons=1500, seed=9,
                 population=3000, population_seed=4)
    known, changed = (set(scan(p).pnr_text()) for p in (status, change))
    assert len(known) == made.persons and made.persons > 2900
    assert violations(scan(status)) == [] and violations(scan(change)) == []
    assert len(changed & known) > 700  # the rest: relatives, and new persons
    assert scan(status).events.empty  # a status extract carries no events
