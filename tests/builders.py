"""Hand-built extracts for tests: every line made through the layout tables."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cpr_abonnement.extract.layouts import LAYOUTS


def rec(code: str, pnr: str = "", **fields: str) -> bytes:
    """A full-length record of type ``code`` for ``pnr`` with the given fields."""
    values = dict(fields)
    if code in ("000", "999", "910"):
        values.setdefault("SORTFELT", {"000": "0000000000", "999": "9999999999"}.get(code, pnr))
    else:
        values["PNR"] = pnr
    return LAYOUTS[code].render(values)


def start(day: dt.date = dt.date(2026, 11, 26), previous: dt.date = dt.date(2026, 11, 25),
          task: str = "431101") -> bytes:
    return rec("000", OPGAVENR=task, PRODDTO=f"{day:%Y%m%d}", PRODDTOFORRIG=f"{previous:%Y%m%d}")


def end(counter: int) -> bytes:
    return rec("999", TAELLER=str(counter))


def person(pnr: str, *, birth: str | None = None, status: str = "01", kom: str | None = "0851",
           events: tuple[tuple[str, str], ...] = (), moved_from: str = "0000") -> list[bytes]:
    """A minimal realistic block: 001, 002 (when ``kom``), 003, 008, 099 per event."""
    lines = [rec("001", pnr, STATUS=status, KOEN="M", FOED_DT=birth if birth is not None
                 else "", STATUSHAENSTART="000000000000")]
    if kom is not None:
        lines.append(rec("002", pnr, KOMKOD=kom, VEJKOD="1234", HUSNR="012",
                         FRAFLYKOMKOD=moved_from))
    lines.append(rec("003", pnr, ADRNVN="Sørensen,Åse Ærø"))
    lines.append(rec("008", pnr, FORNVN="Åse", EFTERNVN="Sørensen"))
    lines += [rec("099", pnr, TIMESTAMPU="202611260915", HAENDELSE=c, AFLEDTMRK=m)
              for c, m in events]
    return lines


def extract(body: list[bytes], *, eol: bytes = b"\n", day: dt.date = dt.date(2026, 11, 26),
            previous: dt.date = dt.date(2026, 11, 25), counter: int | None = None,
            final_eol: bool = True) -> bytes:
    """000 + body + 999 with the right counter (unless given), joined by ``eol``."""
    lines = [start(day, previous), *body, end(len(body) if counter is None else counter)]
    return eol.join(lines) + (eol if final_eol else b"")


def write(tmp_path: Path, data: bytes, name: str = "D261126.L431101") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path
