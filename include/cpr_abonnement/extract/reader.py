"""Record-at-a-time reading of a change extract.

This is the plain, obviously-correct reader: one :class:`Record` per line, in file
order, holding the original bytes. Memory is one line at a time. The pipeline itself
uses the vectorised :func:`cpr_abonnement.extract.index.scan`, which reads the same
bytes in large blocks; tests hold the two against each other.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from cpr_abonnement.extract.layouts import LAYOUTS, Layout


@dataclass(frozen=True, slots=True)
class Record:
    """One line of an extract: its position and its exact bytes."""

    line_no: int
    offset: int
    #: The record without its line terminator.
    raw: bytes
    #: ``b"\\n"``, ``b"\\r\\n"`` or ``b""`` (last line without a terminator).
    terminator: bytes

    @property
    def record_type(self) -> str:
        return self.raw[:3].decode("iso-8859-1")

    @property
    def key(self) -> str:
        """Columns 4-13: the PNR for person records, the sort field for 000/999/910."""
        return self.raw[3:13].decode("iso-8859-1")

    @property
    def layout(self) -> Layout | None:
        return LAYOUTS.get(self.record_type)

    def field(self, name: str) -> str:
        layout = self.layout
        if layout is None:
            raise KeyError(f"record type {self.record_type!r} has no layout")
        return layout.field(self.raw, name)


def iter_records(source: str | Path | BinaryIO) -> Iterator[Record]:
    """Yield every line of ``source`` as a :class:`Record`, keeping LF or CRLF as found."""
    if isinstance(source, (str, Path)):
        with open(source, "rb") as fh:
            yield from iter_records(fh)
        return
    offset = 0
    for line_no, line in enumerate(source, start=1):
        if line.endswith(b"\r\n"):
            raw, term = line[:-2], b"\r\n"
        elif line.endswith(b"\n"):
            raw, term = line[:-1], b"\n"
        else:
            raw, term = line, b""
        yield Record(line_no, offset, raw, term)
        offset += len(line)
