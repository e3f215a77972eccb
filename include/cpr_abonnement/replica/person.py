"""A person's current data, read from the person's block of records.

A change extract carries the whole person every time it carries the person at all
(``cpr-format.md`` §1.1), and a status extract carries every person that way, so the
replica keeps each person's latest block as received and this module reads it when
someone looks the person up. Reading goes through the record layouts
(:data:`cpr_abonnement.extract.layouts.LAYOUTS`), field by field, like every other
reader in the package; what a look-up reply calls each field is the adapter's business
(:mod:`cpr_abonnement.api.person_lookup`).

Historical records (022-030), events (099) and records the look-up does not return
(009, 011, 013, 017-021) are kept in the block but not read here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from cpr_abonnement.cpr_number import age_on
from cpr_abonnement.extract.layouts import LAYOUTS

#: A PNR field that says "no such person has a number" rather than naming one.
NO_PNR = "0000000000"
#: Statuses of persons whose number was replaced (001 PNRGAELD holds the new one).
REPLACED = {"50", "60"}
#: BESKYTTYPE codes (004) and what they protect.
NAME_AND_ADDRESS, LOCAL_DIRECTORY, MARKETING = "0001", "0002", "0003"


def _date(text: str) -> dt.date | None:
    """A D10 (``YYYY-MM-DD``) or TS12 (``YYYYMMDDHHMM``) value; None when blank, zero or
    partial (CPR writes unknown parts as 00, ``cpr-format.md`` §5)."""
    text = text.strip()
    try:
        if len(text) == 10 and text[4] == "-":
            return dt.date.fromisoformat(text)
        if len(text) == 12 and text.isdigit():
            return dt.date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return None
    return None


def _pnr(text: str) -> str | None:
    text = text.strip()
    return text if text and text != NO_PNR else None


@dataclass(frozen=True, slots=True)
class Name:
    first: str
    middle: str
    last: str
    #: ADRNVN: the name as CPR addresses the person ("Jensen,Anne").
    addressing: str
    since: dt.date | None


@dataclass(frozen=True, slots=True)
class Address:
    """The current Danish address (002, with 003's readable form)."""

    municipality: str
    road: str
    house_number: str
    floor: str
    door: str
    building: str
    care_of: str
    locality: str
    standard_address: str
    town: str
    postcode: str
    post_district: str
    road_addressing_name: str
    moved_in: dt.date | None
    supplementary: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Emigration:
    country: str
    date: dt.date | None
    address: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Protection:
    kind: str
    start: dt.date | None
    end: dt.date | None


@dataclass(frozen=True, slots=True)
class Relative:
    """A relation: the relative's PNR, or (when CPR has none) birth date and name."""

    pnr: str | None
    birth_date: dt.date | None = None
    name: str = ""


@dataclass(frozen=True, slots=True)
class Person:
    pnr: str
    #: The number now in force when this one was replaced (status 50/60), else None.
    current_pnr: str | None
    status: str
    status_date: dt.date | None
    sex: str
    birth_date: dt.date | None
    start_date: dt.date | None
    end_date: dt.date | None
    occupation: str
    name: Name | None
    address: Address | None
    #: 003's addressing name: present for every person, with or without an address.
    addressing_name: str
    emigration: Emigration | None
    contact_address: tuple[str, ...]
    disappeared: dt.date | None
    citizenship: str | None
    citizenship_date: dt.date | None
    civil_status: str | None
    civil_status_date: dt.date | None
    spouse: Relative | None
    children: tuple[str, ...]
    mother: Relative | None
    father: Relative | None
    protections: tuple[Protection, ...]

    def age(self, on: dt.date) -> int | None:
        return age_on(self.birth_date, on) if self.birth_date else None

    def protected(self, kind: str, on: dt.date) -> bool:
        """Whether a protection of ``kind`` is in force on ``on``."""
        return any(p.kind == kind and (p.start is None or p.start <= on)
                   and (p.end is None or p.end > on) for p in self.protections)


#: The record types a person is read from (the others stay in the block unread).
READ = ("001", "002", "003", "004", "005", "006", "007", "008", "010", "012", "014", "015")
_LAYOUTS = {code.encode(): LAYOUTS[code] for code in READ}


def _records(lines: Iterable[bytes]) -> dict[str, list[dict[str, str]]]:
    """The records of the :data:`READ` types, parsed; a look-up parses only these."""
    out: dict[str, list[dict[str, str]]] = {}
    for line in lines:
        layout = _LAYOUTS.get(line[:3])
        if layout is not None:
            out.setdefault(layout.code, []).append(layout.parse(line))
    return out


def _lines(record: dict[str, str], prefix: str) -> tuple[str, ...]:
    found = (record.get(f"{prefix}{i}", "").strip() for i in range(1, 6))
    return tuple(line for line in found if line)


def _address(a: dict[str, str], c: dict[str, str] | None) -> Address:
    c = c or {}
    text = lambda name: c.get(name, "").strip()  # noqa: E731 (the readable form, 003)
    return Address(
        municipality=a["KOMKOD"], road=a["VEJKOD"], house_number=a["HUSNR"].strip(),
        floor=a["ETAGE"].strip(), door=a["SIDEDOER"].strip(), building=a["BNR"].strip(),
        care_of=a["CONVN"].strip(), locality=text("LOKALITET"),
        standard_address=text("STANDARDADR"), town=text("BYNVN"),
        postcode=text("POSTNR") if text("POSTNR").strip("0") else "",  # 0000: none
        post_district=text("POSTDISTTXT"), road_addressing_name=text("VEJADRNVN"),
        moved_in=_date(a["TILFLYDTO"]), supplementary=_lines(a, "ADR"))


def _parent(r: dict[str, str], who: str) -> Relative | None:
    pnr = _pnr(r[f"PNR{who}"])
    birth, name = _date(r[f"{who}_FOED_DT"]), r[f"{who}NVN"].strip()
    if pnr is None and birth is None and not name:
        return None
    return Relative(pnr, None if pnr else birth, "" if pnr else name)


def read_person(lines: Iterable[bytes]) -> Person:
    """The person whose records ``lines`` are (one person's block, any order).

    Raises :class:`ValueError` when the block has no 001 record: the replica only ever
    stores blocks that validation accepted, which requires one.
    """
    rec = _records(lines)
    if "001" not in rec:
        raise ValueError("a person block without its 001 record")
    p = rec["001"][0]
    one = lambda code: rec[code][0] if code in rec else None  # noqa: E731
    names, address, readable = one("008"), one("002"), one("003")
    emigrated, contact, gone = one("005"), one("006"), one("007")
    citizen, civil, parents = one("010"), one("012"), one("015")
    spouse = None
    if civil and (civil["AEGTEPNR"].strip() or civil["AEGTENVN"].strip()):
        spouse_pnr = _pnr(civil["AEGTEPNR"])
        spouse = Relative(spouse_pnr, None if spouse_pnr else _date(civil["AEGTEFOED_DT"]),
                          "" if spouse_pnr else civil["AEGTENVN"].strip())
    return Person(
        pnr=p["PNR"], current_pnr=_pnr(p["PNRGAELD"]) if p["STATUS"] in REPLACED else None,
        status=p["STATUS"], status_date=_date(p["STATUSHAENSTART"]), sex=p["KOEN"].strip(),
        birth_date=_date(p["FOED_DT"]), start_date=_date(p["START_DT_PERSON"]),
        end_date=_date(p["SLUT_DT_PERSON"]), occupation=p["STILLING"].strip(),
        name=Name(names["FORNVN"].strip(), names["MELNVN"].strip(),
                  names["EFTERNVN"].strip(), names["ADRNVN"].strip(),
                  _date(names["NVNHAENSTART"])) if names else None,
        address=_address(address, readable) if address else None,
        addressing_name=(readable["ADRNVN"].strip() if readable else "")
        or (names["ADRNVN"].strip() if names else ""),
        emigration=Emigration(emigrated["UDR_LANDEKOD"], _date(emigrated["UDRDTO"]),
                              _lines(emigrated, "UDLANDADR")) if emigrated else None,
        contact_address=_lines(contact, "ADR_KONTAKTADR") if contact else (),
        disappeared=_date(gone["FORSVINDDTO"]) if gone else None,
        citizenship=citizen["LANDEKOD"] if citizen else None,
        citizenship_date=_date(citizen["HAENSTART_STATSBORGERSKAB"]) if citizen else None,
        civil_status=civil["CIVST"].strip() or None if civil else None,
        civil_status_date=_date(civil["HAENSTART_CIVILSTAND"]) if civil else None,
        spouse=spouse,
        children=tuple(c for c in (_pnr(r["PNRBARN"]) for r in rec.get("014", [])) if c),
        mother=_parent(parents, "MOR") if parents else None,
        father=_parent(parents, "FAR") if parents else None,
        protections=tuple(Protection(r["BESKYTTYPE"], _date(r["START_DT_BESKYTTELSE"]),
                                     _date(r["SLET_DT_BESKYTTELSE"]))
                          for r in rec.get("004", [])),
    )


def split_block(block: bytes) -> list[bytes]:
    """A stored block (records joined by line ends) as its records."""
    return [line.rstrip(b"\r") for line in block.split(b"\n") if line.strip()]
