"""Every validation rule with a broken file; every problem reported; no full PNR leaks."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from builders import end, extract, person, rec, start, write
from cpr_abonnement.errors import (
    ExtractValidationFailed,
    ProductionDateGap,
    ProductionDateMismatch,
    RecordFormatError,
    TrailerCountMismatch,
    UnknownRecordType,
)
from cpr_abonnement.extract.index import scan
from cpr_abonnement.extract.validation import check, violations

A, B = "0101901234", "1502504321"
GOOD = [*person(A, birth="1990-01-01"), *person(B)]


def problems(tmp_path, data: bytes, **kw) -> dict[str, list]:
    ix = scan(write(tmp_path, data))
    return {v.rule: v for v in violations(ix, **kw)}


def test_a_good_file_is_valid(tmp_path):
    check(scan(write(tmp_path, extract(GOOD))), expect_date=dt.date(2026, 11, 26),
          expect_previous=dt.date(2026, 11, 25))


def test_empty_file(tmp_path):
    assert list(problems(tmp_path, b"")) == ["not empty"]


def test_truncated_file_has_no_999(tmp_path):
    data = extract(GOOD)
    found = problems(tmp_path, data[: data.rindex(b"\n999")])
    assert "999 last" in found
    assert "line 9" in str(found["999 last"].examples[0])  # the last line it has


def test_cut_in_the_middle_of_a_line(tmp_path):
    data = extract(GOOD)
    found = problems(tmp_path, data[: data.index(b"\n008") + 8])
    assert {"999 last", "record length"} <= set(found)


def test_wrong_counter(tmp_path):
    found = problems(tmp_path, extract(GOOD, counter=3))
    err = found["999 counter"].examples[0]
    assert isinstance(err, TrailerCountMismatch)
    assert "counter says 3 records, the file has 8" in str(err)
    assert err.line == 10 and err.field == "TAELLER"


def test_bad_pnr(tmp_path):
    bad = rec("008", "01019O1234", FORNVN="Ole")
    found = problems(tmp_path, extract([*GOOD, bad]))
    err = found["10-digit PNR"].examples[0]
    assert isinstance(err, RecordFormatError) and err.line == 10 and err.record_type == "008"


def test_unknown_record_type_and_blank_line(tmp_path):
    found = problems(tmp_path, extract([*GOOD, b"0420101901234xyz", b""]))
    msgs = [str(e) for e in found["known record type"].examples]
    assert found["known record type"].count == 2
    assert isinstance(found["known record type"].examples[0], UnknownRecordType)
    assert msgs == ["line 10: unknown record type '042'", "line 11: empty line"]


@pytest.mark.parametrize(("prod", "prev", "rule"), [
    ("20261131", "20261125", "000 production date"),
    ("2026112X", "20261125", "000 production date"),
    ("20261126", "20261126", "000 previous production date"),
    ("20261126", "00000000", "000 previous production date"),
])
def test_start_record_dates(tmp_path, prod, prev, rule):
    first = rec("000", OPGAVENR="431101", PRODDTO=prod, PRODDTOFORRIG=prev)
    data = b"\n".join([first, *GOOD, end(len(GOOD))]) + b"\n"
    assert rule in problems(tmp_path, data)


def test_expected_date_and_chain(tmp_path):
    found = problems(tmp_path, extract(GOOD), expect_date=dt.date(2026, 11, 27),
                     expect_previous=dt.date(2026, 11, 24))
    assert isinstance(found["expected production date"].examples[0], ProductionDateMismatch)
    gap = found["production date chain"].examples[0]
    assert isinstance(gap, ProductionDateGap) and "an extract is missing" in str(gap)


def test_000_must_be_first_and_unique(tmp_path):
    data = b"\n".join([*GOOD[:1], start(), *GOOD[1:], start(), end(len(GOOD) + 1)]) + b"\n"
    found = problems(tmp_path, data)
    assert {"000 first", "one 000"} <= set(found)


def test_999_must_be_unique(tmp_path):
    data = b"\n".join([start(), *GOOD[:3], end(3), *GOOD[3:], end(len(GOOD) + 1)]) + b"\n"
    assert "one 999" in problems(tmp_path, data)


def test_person_without_001(tmp_path):
    found = problems(tmp_path, extract([*GOOD, rec("008", "0202021111", FORNVN="Bo")]))
    err = found["001 per person"].examples[0]
    assert "020202-****" in str(err) and err.line == 10


def test_implausible_lengths(tmp_path):
    too_long = rec("099", A, HAENDELSE="A01") + b" " * 200
    too_short = b"0080101"
    found = problems(tmp_path, extract([*GOOD, too_long, too_short]))
    assert found["record length"].count == 2


def test_mixed_line_endings(tmp_path):
    data = extract(GOOD).replace(b"\n", b"\r\n", 3)
    assert "consistent line endings" in problems(tmp_path, data)


def test_not_line_based_at_all(tmp_path):
    with pytest.raises(RecordFormatError, match="no line terminator within"):
        scan(write(tmp_path, b"000" + b"0" * 200_000))


def test_every_broken_rule_is_named_and_no_full_pnr_leaks(tmp_path):
    pnrs = ["0101901234", "1502504321", "0202021111", "3112991234"]
    body = [*person(pnrs[0]), rec("008", pnrs[2]), rec("099", pnrs[1]) + b"x" * 300,
            b"0420101901234", rec("004", "31129912X4")]
    data = b"\n".join([rec("000", OPGAVENR="43110X", PRODDTO="20261126",
                           PRODDTOFORRIG="20261199"), *body, end(99)]) + b"\n"
    ix = scan(write(tmp_path, data))
    with pytest.raises(ExtractValidationFailed) as exc:
        check(ix, expect_date=dt.date(2026, 11, 27))
    text = str(exc.value)
    for rule in ["UnknownRecordType", "TrailerCountMismatch", "ProductionDateMismatch",
                 "RecordFormatError"]:
        assert rule in text
    assert len(exc.value.problems) == 8
    digits = set(re.findall(r"\d{10}", text))
    assert not digits & {p for p in pnrs}, f"full PNR in error text: {digits}"
    assert "010190-****" in text or "150250-****" in text
