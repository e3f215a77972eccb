"""The delta writer: byte identity, counter, platform records, line ends, source order."""

from __future__ import annotations

import datetime as dt
import hashlib
import io

import numpy as np
import pytest

from builders import extract, person, rec, write
from cpr_abonnement.extract.generator import generate
from cpr_abonnement.extract.index import scan
from cpr_abonnement.extract.writer import write_persons

A, B, C = "0101901234", "1502504321", "2902004000"


def delta(ix, chosen: set[str]) -> tuple[bytes, object]:
    rows = np.flatnonzero(ix.pnr_text().isin(chosen).to_numpy())
    out = io.BytesIO()
    stats = write_persons(ix, rows, out)
    return out.getvalue(), stats


@pytest.mark.parametrize("crlf", [False, True])
def test_all_persons_reproduce_the_input_byte_for_byte(tmp_path, crlf):
    path = tmp_path / "D261126.L431101"
    with open(path, "wb") as fh:
        generate(fh, production_date=dt.date(2026, 11, 26), persons=500, seed=2, crlf=crlf)
    ix = scan(path)
    data, stats = delta(ix, set(ix.pnr_text()))
    assert data == path.read_bytes()
    assert stats.sha256 == hashlib.sha256(data).hexdigest() and stats.nbytes == len(data)


def test_subset_keeps_source_order_scattered_records_and_recounts(tmp_path):
    a, b, c = person(A), person(B), person(C)
    body = [*a[:2], *b, *c, a[2], *a[3:]]
    ix = scan(write(tmp_path, extract(body)))
    data, stats = delta(ix, {A, C})
    expected = extract([*a[:2], *c, a[2], *a[3:]])
    assert data == expected
    assert (stats.persons, stats.records) == (2, len(a) + len(c))


def test_platform_records_are_never_copied_and_not_counted(tmp_path):
    r910 = rec("910", A, INDDATA="input", FEJLNR="0012", FEJLTXT_UDTRAEK="Ukendt PNR")
    r997 = rec("997", B, TIMESTAMPU="202611260000", HAENDELSE="A45")
    body = [*person(A), r910, *person(B), r997]
    ix = scan(write(tmp_path, extract(body)))
    assert ix.platform_records == {"910": 1, "997": 1}
    data, _ = delta(ix, {A, B})
    assert data == extract([*person(A), *person(B)])
    assert b"\n910" not in data and b"\n997" not in data


def test_no_persons_gives_000_and_999_with_zero_counter(tmp_path):
    ix = scan(write(tmp_path, extract(person(A), eol=b"\r\n")))
    data, stats = delta(ix, set())
    assert data == extract([], eol=b"\r\n")
    assert data.endswith(b"999999999999900000000\r\n")
    assert (stats.persons, stats.records) == (0, 0)


def test_missing_final_terminator_is_kept(tmp_path):
    ix = scan(write(tmp_path, extract(person(A), final_eol=False)))
    data, _ = delta(ix, {A})
    assert data == extract(person(A), final_eol=False)


def test_latin1_and_unknown_trailing_columns_survive(tmp_path):
    long_001 = rec("001", A, FOED_DT="1990-01-01", STILLING="Tømrer") + b"NGLKONST-15CHAR"
    ix = scan(write(tmp_path, extract([long_001, *person(A)[1:]])))
    data, _ = delta(ix, {A})
    assert long_001 + b"\n" in data and "Tømrer".encode("latin-1") in data

