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
    assert len(exc.value.problems) == 9  # incl. the name's task number vs OPGAVENR 43110X
    assert "named D261126.L431101 but OPGAVENR 43110X" in text
    digits = set(re.findall(r"\d{10}", text))
    assert not digits & {p for p in pnrs}, f"full PNR in error text: {digits}"
    assert "010190-****" in text or "150250-****" in text


def test_mixed_line_endings_name_the_first_offending_line(tmp_path):
    data = extract(GOOD).replace(b"\n", b"\r\n", 3)  # lines 1-3 CRLF, line 4 on LF
    err = problems(tmp_path, data)["consistent line endings"].examples[0]
    assert err.line == 4, str(err)
    assert "line 4" in str(err) and "CRLF" in str(err)


def test_mixed_line_endings_found_in_a_later_block(tmp_path):
    body = [*GOOD] * 40
    lines = [start(), *body, end(len(body))]
    data = b"\n".join(lines[:30]) + b"\n" + b"\r\n".join(lines[30:]) + b"\r\n"
    ix = scan(write(tmp_path, data), chunk_size=700)  # many blocks
    found = {v.rule: v for v in violations(ix)}
    err = found["consistent line endings"].examples[0]
    assert err.line == 31, str(err)  # the first line ending in CRLF after 30 LF lines


def test_two_person_blocks_for_one_pnr_are_rejected_naming_both_lines(tmp_path):
    data = extract([*person(A), *person(B), *person(A)])
    err = problems(tmp_path, data)["one 001 per person"].examples[0]
    assert isinstance(err, RecordFormatError) and err.record_type == "001"
    assert err.line == 10  # the second 001 of the person
    assert "lines 2 and 10" in str(err) and "010190-****" in str(err)
    assert A not in str(err)


def test_a_person_split_around_other_persons_with_one_001_is_fine(tmp_path):
    data = extract([*person(A)[:2], *person(B), *person(A)[2:]])
    assert "one 001 per person" not in problems(tmp_path, data)


@pytest.mark.parametrize("byte", [0x00, 0x01, 0x09, 0x0D, 0x1F, 0x7F, 0x80, 0x85, 0x9F])
def test_control_bytes_are_rejected_with_line_and_column(tmp_path, byte):
    lines = extract(GOOD).split(b"\n")
    lines[3] = lines[3][:40] + bytes([byte]) + lines[3][41:]  # line 4, column 41
    err = problems(tmp_path, b"\n".join(lines))["no control characters"].examples[0]
    assert isinstance(err, RecordFormatError)
    assert err.line == 4 and err.record_type == lines[3][:3].decode()
    assert f"0x{byte:02X}" in str(err) and "column 41" in str(err)


def test_control_bytes_counted_in_every_block_and_latin1_letters_allowed(tmp_path):
    body = [*GOOD] * 40
    body[-1] = body[-1][:50] + b"\x00" + body[-1][51:]
    body[5] = body[5][:60] + b"\x9b" + body[5][61:]
    data = extract(body, eol=b"\r\n")
    ix = scan(write(tmp_path, data), chunk_size=1000)
    found = {v.rule: v for v in violations(ix)}
    assert found["no control characters"].count == 2
    assert [e.line for e in found["no control characters"].examples] == [7, len(body) + 1]
    clean = extract([rec("008", A, FORNVN="ÆØÅ æøå ÿ")], eol=b"\r\n")
    assert "no control characters" not in problems(tmp_path, clean)


@pytest.mark.parametrize(("name", "rule_text"), [
    ("D261126.L999999", "OPGAVENR 431101"),
    ("D261127.L431101", "PRODDTO 2026-11-26"),
    ("d261126.l999999", "OPGAVENR 431101"),
])
def test_file_name_must_match_the_start_record(tmp_path, name, rule_text):
    ix = scan(write(tmp_path, extract(GOOD), name=name))
    found = {v.rule: v for v in violations(ix)}
    err = found["file name matches 000"].examples[0]
    assert rule_text in str(err) and name in str(err) and err.line == 1


def test_a_file_name_matching_the_start_record_is_fine(tmp_path):
    for name in ("D261126.L431101", "d261126.l431101"):
        ix = scan(write(tmp_path, extract(GOOD), name=name))
        assert not violations(ix)
