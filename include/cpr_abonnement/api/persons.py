"""A person look-up for either transport: authorise, look up (recorded), and the reply in
SF1520 PersonBaseDataExtended's own names.

The SOAP endpoint (:mod:`cpr_abonnement.api.person_lookup`) and the REST route
(``GET /v1/persons/{pnr}``) both call :func:`look_up_person` and render :func:`reply`,
so the two cannot disagree on who may look up or on what a person looks like: the
REST JSON is the SOAP reply's tree with the same names (serviceplatformen-compat.md
§4), and a client can move between them without a second mapping.

**Every look-up leaves a row** in the look-up log (:mod:`cpr_abonnement.replica.lookups`):
found, not found, and refused (``DENIED: <check>``) alike, the PNR as an HMAC. A
refusal is written only for a well-formed PNR and with the key configured: a
malformed number names nobody, and without the key nothing can be written (the
refusal's audit row is there either way).

**What the reply holds** is what the change extract carries; fields from registers
the extract does not carry (``distrikter``, ``kommuneCvr``, ``vejnavn``, the
``...Myndighedsnavn`` texts, custody, guardianship, notes, address history) are left
out. Choices where the contract is silent: ``gaeldendePersonnummer`` is the number in
force (the person's own unless replaced); a protection the person does not have is
``{beskyttet: false}``; ``antalBoernUnder18`` counts the children registered under the
person (014) whose number's birth date makes them under 18 today (the extract does
not say whether a child is alive, so a dead child under 18 counts); a house number
loses CPR's leading zeros (``012B`` -> ``12B``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

from cpr_abonnement.api import auth
from cpr_abonnement.api.auth import CallContext, CallerIdentity
from cpr_abonnement.cpr_number import age_on, birth_date, is_valid, validate
from cpr_abonnement.delivery_calendar import DANISH_TIME
from cpr_abonnement.errors import InvalidPnr, NotAuthorised
from cpr_abonnement.replica import lookups
from cpr_abonnement.replica.lookups import Found
from cpr_abonnement.replica.person import (
    LOCAL_DIRECTORY,
    MARKETING,
    NAME_AND_ADDRESS,
    Address,
    Emigration,
    Person,
    Protection,
    Relative,
)
from cpr_abonnement.settings import Settings

#: The statuses the contract's ``statusTypeType`` enumerates.
STATUSES = {1, 3, 5, 7, 20, 30, 50, 60, 70, 80, 90}
#: The civil statuses its ``civilstandTypeType`` enumerates.
CIVIL_STATUSES = set("UGFEPOLD")
#: A tree in the contract's names: a dict per element, a list for a repeated one.
Tree = dict[str, Any]


def utc_now() -> dt.datetime:
    """Naive UTC, as every stored timestamp."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def danish_today() -> dt.date:
    """Ages are counted on the Danish calendar day, as CPR counts them."""
    return dt.datetime.now(DANISH_TIME).date()


def look_up_person(engine: Engine, caller: CallerIdentity, context: CallContext | None,
                   pnr: str, *, settings: Settings, replica: Engine | None = None,
                   now: Callable[[], dt.datetime] = utc_now) -> Found:
    """The person with number ``pnr`` for ``caller``, after SF1520's authorisation.

    Raises :class:`NotAuthorised` (audited, and logged as a look-up ``DENIED: <check>``),
    :class:`~cpr_abonnement.errors.InvalidPnr`,
    :class:`~cpr_abonnement.errors.LookupKeyMissing` or
    :class:`~cpr_abonnement.errors.PersonNotFound` (logged). ``replica``: the replica's
    database when it is not the filter database ``engine``.
    """
    user = context.user_uuid if context is not None else None
    try:
        system = auth.authorise_lookup(engine, caller, context,
                                       auth.sf1520(settings.sf1520_service_uuid))
    except NotAuthorised as refused:
        if settings.lookup_key and is_valid(pnr):
            lookups.record(replica or engine,
                           lookups.Caller(refused.system, user, caller.transport),
                           validate(pnr), f"DENIED: {refused.check}", settings.lookup_key, now)
        raise
    return lookups.look_up(engine, pnr, lookups.Caller(system, user, caller.transport),
                           key=settings.lookup_key, now=now, replica=replica)


# -- the reply -------------------------------------------------------------------------
def _date(day: dt.date | None) -> str | None:
    return day.isoformat() if day else None


def _dated(day: dt.date | None) -> Tree | None:
    """``usikkerhedDatoType``: a date (CPR's uncertainty markings are not kept)."""
    return {"dato": day.isoformat()} if day else None


def _timed(day: dt.date | None) -> Tree | None:
    """``usikkerhedDatoTidType``: the same as a dateTime, midnight (CPR keeps the day)."""
    return {"dato": f"{day.isoformat()}T00:00:00"} if day else None


def _number(code: str | None) -> int | None:
    """A CPR code as the contract's integer (``0851`` -> 851); None when blank or 0."""
    code = (code or "").strip()
    return int(code) if code.isdigit() and int(code) else None


def _pruned(tree: Tree) -> Tree | None:
    """``tree`` without empty values; None when nothing is left."""
    kept = {k: v for k, v in tree.items() if v not in (None, "", [], {}, ())}
    return kept or None


def _lines(prefix: str, lines: tuple[str, ...]) -> Tree:
    return {f"{prefix}{i}": line for i, line in enumerate(lines, 1)}


def under_18(children: tuple[str, ...], today: dt.date) -> int:
    """How many of ``children`` (PNRs) are under 18 on ``today``, by their number's
    birth date (a number that is no date is not counted)."""
    count = 0
    for child in children:
        try:
            born = birth_date(child)
        except InvalidPnr:
            continue
        count += born <= today and age_on(born, today) < 18
    return count


def _protection(person: Person, kind: str, today: dt.date) -> Tree:
    """``beskyttelseType`` for the protection of ``kind`` most recently started."""
    found: list[Protection] = [p for p in person.protections if p.kind == kind]
    latest = max(found, key=lambda p: p.start or dt.date.min, default=None)
    return _pruned({"startdato": _date(latest.start) if latest else None,
                    "slutdato": _date(latest.end) if latest else None,
                    "beskyttet": person.protected(kind, today)}) or {}


def _persondata(person: Person, today: dt.date) -> Tree:
    name = person.name
    addressing = (name.addressing if name else "") or person.addressing_name
    status = _number(person.status)
    return _pruned({
        "personnummer": person.pnr,
        "gaeldendePersonnummer": person.current_pnr or person.pnr,
        "navn": _pruned({
            "personadresseringsnavn": addressing,
            "fornavn": name.first if name else None,
            "mellemnavn": name.middle if name else None,
            "efternavn": name.last if name else None,
            "navnestartdato": _timed(name.since) if name else None,
        }) if addressing else None,
        "foedselsdato": _dated(person.birth_date),
        "startdato": _dated(person.start_date),
        "slutdato": _dated(person.end_date),
        "alder": person.age(today),
        "koen": person.sex if person.sex in ("K", "M") else None,
        "antalBoernUnder18": under_18(person.children, today),
        "stilling": person.occupation,
        "status": _pruned({"status": status if status in STATUSES else None,
                           "statusdato": _timed(person.status_date)}),
        "civilstand": _pruned({
            "civilstand": person.civil_status if person.civil_status in CIVIL_STATUSES
            else None,
            "civilstandsdato": _timed(person.civil_status_date)}),
        "statsborgerskab": _pruned({"landekode": _number(person.citizenship),
                                    "statsborgerskabDato": _timed(person.citizenship_date)}),
        "forsvindingsdato": _timed(person.disappeared),
        "adressebeskyttelse": _protection(person, NAME_AND_ADDRESS, today),
        "vejviserbeskyttelse": _protection(person, LOCAL_DIRECTORY, today),
        "markedsfoeringsbeskyttelse": _protection(person, MARKETING, today),
    }) or {}


def _current_address(a: Address, addressing_name: str) -> Tree | None:
    return _pruned({
        "kommunekode": _number(a.municipality), "vejkode": _number(a.road),
        "husnummer": a.house_number.lstrip("0") or a.house_number, "etage": a.floor,
        "sidedoer": a.door, "bygningsnummer": a.building, "conavn": a.care_of,
        "lokalitet": a.locality, "bynavn": a.town, "postnummer": a.postcode,
        "postdistrikt": a.post_district, "standardadresse": a.standard_address,
        "adresseringsnavn": addressing_name, "vejadresseringsnavn": a.road_addressing_name,
        "tilflytningsdato": _timed(a.moved_in),
        **{f"adr{i}-supladr": line for i, line in enumerate(a.supplementary, 1)},
    })


def _emigration(e: Emigration) -> Tree | None:
    return _pruned({"udrejselandekode": _number(e.country), "udrejsedato": _timed(e.date),
                    **_lines("udlandsadresse", e.address)})


def _relative(r: Relative | None) -> Tree | None:
    """``personRelationType``: the number, or birth date and name when CPR has none."""
    if r is None:
        return None
    if r.pnr:
        return {"personnummer": r.pnr}
    return _pruned({"foedselsdato": _dated(r.birth_date), "navn": r.name})


def reply(found: Found, today: dt.date) -> Tree:
    """``PersonLookupResponse``'s content for ``found``, in the contract's element names
    and order; ages on ``today``."""
    person = found.person
    return _pruned({
        "persondata": _persondata(person, today),
        "adresse": _pruned({
            "aktuelAdresse": _current_address(person.address, person.addressing_name)
            if person.address else None,
            "udrejseoplysninger": _emigration(person.emigration) if person.emigration
            else None,
            "kontaktAdresse": _pruned(_lines("kontaktAdr", person.contact_address)),
        }),
        "relationer": _pruned({
            "aegtefaelle": _relative(person.spouse),
            "barn": [{"personnummer": c} for c in person.children],
            "mor": _relative(person.mother), "far": _relative(person.father),
        }),
    }) or {}
