"""The layout tables against the spec: shape, and hand-written lines from cpr-format.md."""

from __future__ import annotations

import pytest

from cpr_abonnement.extract.layouts import LAYOUTS, PERSON_TYPES, PLATFORM_TYPES

EXPECTED_LENGTHS = {  # cpr-format.md §1.4
    "000": 35, "001": 106, "002": 306, "003": 249, "004": 37, "005": 200, "006": 203,
    "007": 26, "008": 193, "009": 37, "010": 30, "011": 25, "012": 95, "013": 36, "014": 23,
    "015": 147, "016": 58, "017": 272, "018": 60, "019": 75, "020": 47, "021": 63, "022": 45,
    "023": 96, "024": 218, "025": 40, "026": 173, "027": 44, "028": 36, "029": 109, "030": 48,
    "050": 29, "052": 287, "099": 45, "910": 157, "997": 43, "999": 21,
}


def test_every_documented_record_type_has_a_layout():
    assert {c: lay.length for c, lay in LAYOUTS.items()} == EXPECTED_LENGTHS


@pytest.mark.parametrize("code", sorted(LAYOUTS))
def test_fields_are_contiguous_without_gaps_or_overlaps(code):
    layout = LAYOUTS[code]
    position = 1
    for f in layout.fields:
        assert f.start == position, f"{code} {f.name} starts at {f.start}, expected {position}"
        assert f.end >= f.start
        position = f.end + 1
    # 050's fields are unpublished: only the common prefix is laid out.
    covered = position - 1
    assert covered == (13 if code == "050" else layout.length)


def test_person_and_platform_types():
    assert {c for c in EXPECTED_LENGTHS if "001" <= c <= "099"} == PERSON_TYPES
    assert {"910", "997"} == PLATFORM_TYPES


def test_start_record_example_from_cpr():
    line = b"00000000000009070012022022520220224"  # CPR-EX, cpr-format.md §1.2
    assert LAYOUTS["000"].parse(line) == {
        "RECORDTYPE": "000", "SORTFELT": "0000000000", "OPGAVENR": "907001",
        "PRODDTO": "20220225", "PRODDTOFORRIG": "20220224",
    }


def test_end_record():
    assert LAYOUTS["999"].field(b"999999999999900001098", "TAELLER") == "00001098"


def test_record_001_positions():
    line = (b"001" b"0101901234" b"          " b"01" b"199001010000" b" " b"M"
            b"1990-01-01" b" " b"1990-01-01" b" " b"          " b" " b"T\xf8mrer").ljust(106)
    assert len(line) == 106
    f = LAYOUTS["001"].parse(line)
    assert (f["PNR"], f["STATUS"], f["KOEN"], f["FOED_DT"]) == ("0101901234", "01", "M",
                                                               "1990-01-01")
    assert f["STILLING"].rstrip() == "Tømrer"


def test_record_002_municipality_and_moved_from():
    line = bytearray(b" " * 306)
    line[0:13] = b"0020101901234"
    line[13:17] = b"0851"          # KOMKOD 14-17
    line[95:99] = b"0101"          # FRAFLYKOMKOD 96-99
    f = LAYOUTS["002"].parse(bytes(line))
    assert (f["KOMKOD"], f["FRAFLYKOMKOD"]) == ("0851", "0101")


def test_record_099_event_and_latin1_derived_marking():
    line = b"0990101901234201003150915A21\xc6G" + b" " * 15
    f = LAYOUTS["099"].parse(line)
    assert (f["TIMESTAMPU"], f["HAENDELSE"], f["AFLEDTMRK"]) == ("201003150915", "A21", "ÆG")


def test_short_line_reads_as_space_padded_and_long_line_keeps_fields():
    short = b"0010101901234"
    assert LAYOUTS["001"].field(short, "FOED_DT") == " " * 10
    long_002 = b"0020101901234" + b"0851" + b" " * (306 - 17) + b"Vejnavn".ljust(40) + b"u" * 36
    assert LAYOUTS["002"].field(long_002, "KOMKOD") == "0851"


def test_render_pads_by_kind_and_rejects_overflow():
    line = LAYOUTS["999"].render({"SORTFELT": "9999999999", "TAELLER": "14"})
    assert line == b"999999999999900000014"
    with pytest.raises(ValueError, match="TAELLER"):
        LAYOUTS["999"].render({"TAELLER": "123456789"})
