"""The index is the same however the file is cut into blocks and however many threads
index them; the word-at-a-time field parsing agrees with a plain parse."""

from __future__ import annotations

import datetime as dt
import random

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from builders import end, person, rec, start, write
from cpr_abonnement.errors import RecordFormatError
from cpr_abonnement.extract.bytefields import number
from cpr_abonnement.extract.generator import generate
from cpr_abonnement.extract.index import MAX_LINE, scan
from cpr_abonnement.extract.layouts import LAYOUTS
from cpr_abonnement.extract.validation import violations

A = "0101901234"


@given(st.lists(st.binary(min_size=16, max_size=16), min_size=1, max_size=50),
       st.integers(0, 15), st.integers(1, 10))
def test_word_parsing_agrees_with_a_plain_parse(rows, start_byte, width):
    width = min(width, 16 - start_byte)
    # Mostly digits, so both outcomes are exercised.
    rows = [bytes(b if i % 3 else 48 + b % 10 for i, b in enumerate(r)) for r in rows]
    words = np.frombuffer(b"".join(rows), dtype="<u8").reshape(len(rows), 2)
    value, ok = number(words, start_byte, width)
    for r, v, good in zip(rows, value.tolist(), ok.tolist(), strict=True):
        field = r[start_byte : start_byte + width]
        assert good == (all(48 <= b <= 57 for b in field))
        if good:
            assert v == int(field)


def test_every_record_type_is_known_and_look_alikes_are_not(tmp_path):
    codes = sorted(c for c in LAYOUTS if c not in ("000", "999"))
    body = [rec(code, A) for code in codes]
    # Same low nibbles as a real type ('P' is 0x50, 'p' 0x70: nibble 0, like '0').
    fakes = [b"P01" + body[0][3:], b"0p1" + body[0][3:], b"00\x01" + body[0][3:]]
    data = b"\n".join([start(), *body, *fakes, end(len(body) + len(fakes))]) + b"\n"
    ix = scan(write(tmp_path, data))
    assert sorted(ix.record_counts) == sorted([*codes, "000", "999"])
    unknown = ix.violations["known record type"]
    assert unknown.count == 3
    assert [e.line for e in unknown.examples] == [len(body) + 2, len(body) + 3, len(body) + 4]


def _broken_extract(tmp_path, seed: int, crlf: bool):
    """A generated extract with faults sprinkled through it (every kind the scan records)."""
    path = tmp_path / "good"
    with open(path, "wb") as fh:
        generate(fh, production_date=dt.date(2026, 11, 26), persons=400, seed=seed, crlf=crlf)
    eol = b"\r\n" if crlf else b"\n"
    lines = path.read_bytes().split(eol)[:-1]
    rng = random.Random(seed)
    for i in sorted(rng.sample(range(1, len(lines) - 1), 12)):
        kind = rng.choice(["unknown", "pnr", "long", "empty", "ending"])
        if kind == "unknown":
            lines[i] = b"X" + lines[i][1:]
        elif kind == "pnr":
            lines[i] = lines[i][:5] + b"A" + lines[i][6:]
        elif kind == "long":
            lines[i] = lines[i] + b" " * 600
        elif kind == "empty":
            lines[i] = b""
        else:
            lines[i] = lines[i] + (b"" if crlf else b"\r")
    data = b"".join(line + (b"\n" if line.endswith(b"\r") else eol) for line in lines)
    return write(tmp_path, data, "broken")


def _covered(ix) -> list[tuple[int, int]]:
    """Byte ranges the spans cover, adjacent ones joined (blocks may split a span)."""
    out: list[tuple[int, int]] = []
    for s, e in sorted(zip(ix.span_offset.tolist(),
                           (ix.span_offset + ix.span_nbytes).tolist(), strict=True)):
        if out and out[-1][1] == s:
            out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


def _comparable(ix):
    return {
        "persons": ix.persons.to_dict("list"),
        "events": ix.events.astype(str).to_dict("list"),
        "counts": ix.record_counts,
        "lines": ix.lines,
        "ending": (ix.line_ending, ix.ends_with_terminator),
        "frames": (ix.start, ix.end, ix.start_lines, ix.end_lines),
        "violations": {rule: (v.count, [str(e) for e in v.examples])
                       for rule, v in ix.violations.items()},
        "records": ix.person_records,
        "spans": _covered(ix),
    }


@pytest.mark.parametrize("crlf", [False, True])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_workers_and_block_size_do_not_change_the_index(tmp_path, seed, crlf):
    path = _broken_extract(tmp_path, seed, crlf)
    one = scan(path, workers=1)
    assert one.violations  # the faults were seen
    for workers, chunk in ((3, 997), (2, 4096), (4, 65_536)):
        other = scan(path, workers=workers, chunk_size=chunk)
        assert _comparable(other) == _comparable(one), (workers, chunk)
        assert other.persons.equals(one.persons) and other.events.equals(one.events)


def test_violation_line_numbers_point_at_the_faulty_lines(tmp_path):
    path = _broken_extract(tmp_path, 7, False)
    lines = path.read_bytes().split(b"\n")
    ix = scan(path, workers=3, chunk_size=997)
    for rule, v in ix.violations.items():
        for error in v.examples:
            if error.line is None:
                continue
            line = lines[error.line - 1].rstrip(b"\r")
            if rule == "known record type":
                assert not line[:3].isdigit() or line[:3].decode() not in LAYOUTS
            elif rule == "10-digit PNR":
                assert not line[3:13].isdigit()
            elif rule == "record length":
                assert len(line) > LAYOUTS[line[:3].decode()].length


def test_a_person_split_across_blocks_keeps_one_row(tmp_path):
    body = person(A)  # blocks smaller than a line cut inside every record
    data = b"\n".join([start(), *body, end(len(body))]) + b"\n"
    whole = scan(write(tmp_path, data))
    cut = scan(write(tmp_path, data), workers=3, chunk_size=len(body[0]) // 2 + 7)
    assert len(cut.persons) == len(whole.persons) == 1
    assert cut.persons.to_dict("list") == whole.persons.to_dict("list")
    assert int(cut.span_nbytes.sum()) == int(whole.span_nbytes.sum())


@pytest.mark.parametrize("extra", [0, 1, 5_000])
def test_the_line_length_limit_does_not_depend_on_the_block_size(tmp_path, extra):
    body = person(A)
    line = b"001" + A.encode() + b" " * (MAX_LINE - 13 + extra)  # MAX_LINE + extra bytes
    data = b"\n".join([start(), *body, line, end(len(body) + 1)]) + b"\n"
    path = write(tmp_path, data)
    for chunk in (997, 65_536, 70_000, 1 << 24):
        if extra == 0:  # at the limit: a record-length violation, not a broken file
            ix = scan(path, chunk_size=chunk, workers=2)
            assert [e.line for e in ix.violations["record length"].examples] == [len(body) + 2]
        else:
            with pytest.raises(RecordFormatError, match="no line terminator") as err:
                scan(path, chunk_size=chunk, workers=2)
            assert err.value.line == len(body) + 2, chunk


def test_an_overlong_unfinished_last_line_is_reported_at_its_line(tmp_path):
    data = b"\n".join([start(), *person(A)]) + b"\n" + b"9" * (MAX_LINE + 500)
    for chunk in (997, 1 << 24):
        with pytest.raises(RecordFormatError) as err:
            scan(write(tmp_path, data), chunk_size=chunk)
        assert err.value.line == len(person(A)) + 2


def test_superscript_digits_are_not_digits(tmp_path):
    body = person(A)
    first = start().replace(b"431101", b"43110\xb2")
    last = end(len(body))[:-1] + b"\xb3"
    ix = scan(write(tmp_path, b"\n".join([first, *body, last]) + b"\n"))
    assert ix.end.counter is None
    assert {"000 task number", "999 counter"} <= {v.rule for v in violations(ix)}


def test_block_size_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="chunk_size"):
        scan(write(tmp_path, b"\n".join([start(), end(0)]) + b"\n"), chunk_size=0)


@pytest.mark.parametrize("workers, chunk", [(1, 1 << 20), (3, 997), (2, 61), (4, 4096)])
def test_the_digest_is_the_files_sha256_however_it_is_read(tmp_path, workers, chunk):
    """Hashed as blocks are read into reused buffers: every byte once, in file order,
    also when a block holds no line end (chunk 61 < a line) and its bytes are carried."""
    import hashlib

    path = _broken_extract(tmp_path, 5, False)
    ix = scan(path, workers=workers, chunk_size=chunk, digest=True)
    assert ix.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
