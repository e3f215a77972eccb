"""Which names are an attempt's temporary file: the clean-up of both delivery modes removes
exactly those, never the data file, its ``.metadata`` or another file's temporaries."""

from __future__ import annotations

import pytest

from cpr_abonnement.delivery.files import is_temporary_of, temporary_name

NAME = "D261126.L431101"


def test_each_attempts_name_is_a_temporary_of_its_file_only():
    names = {temporary_name(NAME) for _ in range(20)}
    assert len(names) == 20  # unique per attempt
    for part in names:
        assert is_temporary_of(part, NAME)
        assert not is_temporary_of(part, NAME + ".metadata")
        assert not is_temporary_of(part, NAME[:-1])


@pytest.mark.parametrize("entry, expected", [
    (f".{NAME}.part", True),                         # the fixed name of earlier versions
    (f".{NAME}.0123456789abcdef.part", True),
    (f".{NAME}.0123456789ABCDEF.part", False),       # tokens are lower-case hex
    (f".{NAME}.0123456789abcde.part", False),        # one digit short
    (f".{NAME}.0123456789abcdef0.part", False),
    (f".{NAME}.metadata.part", False),               # the metadata file's temporary
    (f".{NAME}.metadata.0123456789abcdef.part", False),
    (f"{NAME}.0123456789abcdef.part", False),        # not hidden
    (NAME, False),
    (f"{NAME}.metadata", False),
    (f".{NAME}.0123456789abcdef.partial", False),
])
def test_names_that_are_and_are_not_temporaries(entry, expected):
    assert is_temporary_of(entry, NAME) is expected


def test_a_name_that_ends_like_the_suffix_is_not_its_own_temporary():
    # ".x.part" starts with ".x.p" and ends with ".part": not a temporary of "x.p".
    assert not is_temporary_of(".x.part", "x.p")
    assert is_temporary_of(".x.p.part", "x.p")
