"""The streaming index: grouping, line ends, padding, summary fields (block boundaries and
threads: test_index_blocks.py)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from builders import end, extract, person, rec, start, write
from cpr_abonnement.extract.generator import generate
from cpr_abonnement.extract.index import scan
from cpr_abonnement.extract.reader import iter_records

A, B, C = "0101901234", "1502504321", "2902004000"


def test_scattered_records_group_by_pnr_not_adjacency(tmp_path):
    a, b = person(A), person(B)
    body = [*a[:2], *b, a[2], *a[3:]]  # A's 003 and 008 come after all of B
    ix = scan(write(tmp_path, extract(body)))
    assert ix.pnr_text().tolist() == [A, B]
    assert ix.persons["records"].tolist() == [len(a), len(b)]
    assert len(ix.span_offset) == 3  # A, B, A again
    assert ix.span_person.tolist() == [0, 1, 0]


@pytest.mark.parametrize("eol", [b"\n", b"\r\n"])
def test_line_ending_is_detected_and_spans_include_it(tmp_path, eol):
    data = extract(person(A), eol=eol)
    ix = scan(write(tmp_path, data))
    assert ix.line_ending == eol
    first = int(ix.span_offset[0])
    span = data[first : first + int(ix.span_nbytes[0])]
    assert span.endswith(eol) and span.count(eol) == len(person(A))
    assert ix.start.raw == start() and ix.end.raw == end(len(person(A)))


def test_summary_fields(tmp_path):
    body = [*person(A, birth="1990-01-01", kom="851", events=(("A01", ""),)),
            *person(B, birth="", status="90", kom=None, events=(("A21", ""),)),
            *person(C, birth="2000-00-00", events=(("A21", "ÆG"), ("A19", "ÆG")))]
    ix = scan(write(tmp_path, extract(body)))
    p = ix.persons.set_index(ix.pnr_text())
    assert p.loc[A, "birth_date"] == 19900101 and not p.loc[A, "birth_from_pnr"]
    # blank FOED_DT and a partial date (month 00) both fall back to the century rule
    assert p.loc[B, "birth_date"] == 19500215 and p.loc[B, "birth_from_pnr"]
    assert p.loc[C, "birth_date"] == 20000229 and p.loc[C, "birth_from_pnr"]
    assert p.loc[A, "municipality"] == 851 and p.loc[B, "municipality"] == -1
    assert (p.loc[A, "status"], p.loc[B, "status"]) == (1, 90)
    ev = ix.events.assign(pnr=ix.pnr_text(ix.events["person"].to_numpy()).to_numpy())
    assert sorted(map(tuple, ev[["pnr", "code", "derived"]].to_numpy().tolist())) == [
        (A, "A01", ""), (B, "A21", ""), (C, "A19", "ÆG"), (C, "A21", "ÆG")]


def test_short_lines_are_padded_and_long_lines_kept(tmp_path):
    short_001 = f"001{A}          01".encode()
    long_002 = rec("002", A, KOMKOD="0101") + b"Vejnavn".ljust(40) + b"u" * 36
    ix = scan(write(tmp_path, extract([short_001, long_002])))
    assert ix.persons.loc[0, "birth_date"] == 19900101  # from the PNR
    assert ix.persons.loc[0, "municipality"] == 101
    assert ix.violations == {}


def test_last_line_without_terminator(tmp_path):
    ix = scan(write(tmp_path, extract(person(A), final_eol=False)))
    assert not ix.ends_with_terminator and ix.end.terminator == b""
    assert ix.end.counter == len(person(A))


def test_index_agrees_with_the_plain_reader(tmp_path):
    path = tmp_path / "x"
    with open(path, "wb") as fh:
        generate(fh, production_date=dt.date(2026, 11, 26), persons=200, seed=9)
    ix = scan(path, chunk_size=4096)
    by_pnr: dict[str, int] = {}
    for r in iter_records(path):
        if r.record_type not in ("000", "999"):
            by_pnr[r.key] = by_pnr.get(r.key, 0) + 1
    assert dict(zip(ix.pnr_text(), ix.persons["records"], strict=True)) == by_pnr
    assert ix.lines == sum(1 for _ in iter_records(path))
    data = path.read_bytes()
    for off, n, who in zip(ix.span_offset, ix.span_nbytes, ix.span_person, strict=True):
        chunk = data[off : off + n]
        assert {line[3:13] for line in chunk.splitlines()} == {
            ix.pnr_text(np.array([who])).iloc[0].encode()}
