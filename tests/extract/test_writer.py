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
from cpr_abonnement.extract.writer import write_many, write_persons

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



def test_many_deltas_in_one_pass_equal_each_written_alone_whatever_the_window(tmp_path):
    """One pass over the extract for every delta (issue 16): records cut by a window's
    end, including records longer than a whole window, are joined again byte for byte."""
    path = tmp_path / "D261126.L431101"
    with open(path, "wb") as fh:
        generate(fh, production_date=dt.date(2026, 11, 26), persons=300, seed=5)
    ix = scan(path)
    rng = np.random.default_rng(11)
    n = len(ix.persons)
    selections = [np.array([], dtype=np.int64), np.arange(n), np.array([0, n - 1]),
                  *(np.sort(rng.choice(n, k, replace=False)) for k in (1, 7, 150))]
    alone = []
    for persons in selections:
        out = io.BytesIO()
        write_persons(ix, persons, out)
        alone.append(out.getvalue())
    assert alone[1] == path.read_bytes()
    for window in (7, 1000, 64 << 10, ix.size, ix.size + 1):
        outs = [io.BytesIO() for _ in selections]
        stats = write_many(ix, selections, outs, window=window)
        assert [o.getvalue() for o in outs] == alone, window
        assert [s.sha256 for s in stats] == [hashlib.sha256(a).hexdigest() for a in alone]
        assert [s.persons for s in stats] == [len(p) for p in selections]


def test_one_pass_keeps_memory_at_two_windows_not_the_extract(tmp_path):
    """The deltas are copied from two window buffers, never from a map of the whole
    file: a map counted every page any delta touched (up to the whole extract, 1.3 GB at
    national scale) in the process's resident memory (issue 16)."""
    path = tmp_path / "D261126.L431101"
    with open(path, "wb") as fh:
        generate(fh, production_date=dt.date(2026, 11, 26), persons=4000, seed=6)
    ix = scan(path)
    maps_before = _mapped(path)
    seen = []

    class Probe(io.BytesIO):
        def write(self, data):
            seen.append(_mapped(path))
            return super().write(data)

    write_many(ix, [np.arange(len(ix.persons))] * 3, [Probe() for _ in range(3)],
               window=ix.size // 5)
    assert seen and max(seen) == maps_before == 0


def _mapped(path) -> int:
    """How many mappings of ``path`` this process has."""
    with open("/proc/self/maps") as fh:
        return sum(line.rstrip().endswith(str(path)) for line in fh)
