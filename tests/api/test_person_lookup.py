"""SF1520 PersonLookup and ``GET /v1/persons/{pnr}`` against a replica built from a
synthetic status extract: a real server with mutual TLS on 127.0.0.1, certificates
made in the test, zeep from our own ``?wsdl``, and a client posting a Latin-1 envelope
with ``requests`` and no Content-Type, reading the reply with ``xmltodict`` by prefix
and by namespace as the two generations of Magenta's client do."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging

import pytest
import requests
import xmltodict
import zeep
from lxml import etree
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient
from zeep.transports import Transport

from cpr_abonnement.api import person_lookup, soap
from cpr_abonnement.api.app import create_app
from cpr_abonnement.api.persons import danish_today, reply, under_18
from cpr_abonnement.api.tls import ServerTls
from cpr_abonnement.cpr_number import birth_date
from cpr_abonnement.extract.generator import generate
from cpr_abonnement.identities import credentials
from cpr_abonnement.identities.credentials import Role
from cpr_abonnement.replica.lookups import Found, pnr_hash
from cpr_abonnement.replica.person import Relative, read_person, split_block
from cpr_abonnement.replica.updating import apply_extract
from cpr_abonnement.store.models import ReplicaLookup, ReplicaPerson
from cpr_abonnement.subscriptions.service import SubscriptionService
from support.certs import test_ca  # noqa: F401 - the fixture
from support.servers import uvicorn_server
from support.soapclient import (
    AGREEMENT_A,
    AGREEMENT_B,
    LOOKUP_AGREEMENT,
    PNR_1,
    SF1520,
    USER,
    A,
    B,
    register,
)
from support.soapclient import lookup_envelope as envelope

KEY = "a-long-random-secret-for-the-look-up-log"
UNKNOWN = "0101011234"  # a date, not in the replica (the generator never uses 1901)
MALFORMED = "3213901234"  # the 32nd of month 13
TNS = person_lookup.TNS


@pytest.fixture
def db_url(sqlite_url):
    """The transports on SQLite only: the replica's reads and the look-up log on both
    databases are tests/replica's; the same calls twice over TLS would add nothing."""
    return sqlite_url


class Replica:
    """The test's replica: the persons by kind, read back through the replica's reader."""

    def __init__(self, engine) -> None:
        with Session(engine) as s:
            rows = s.execute(select(ReplicaPerson.pnr, ReplicaPerson.block)).all()
        self.persons = {r.pnr: read_person(split_block(r.block)) for r in rows}

    def first(self, test) -> str:
        return next(pnr for pnr, p in sorted(self.persons.items()) if test(p))


@pytest.fixture
def replica(engine, tmp_path) -> Replica:
    path = tmp_path / "D250106.L431101"
    with open(path, "wb") as out:
        generate(out, production_date=dt.date(2025, 1, 6), persons=300, seed=15)
    apply_extract(engine, path, kind="status")
    return Replica(engine)


@pytest.fixture
def lookup(engine, test_ca, tmp_path, monkeypatch, replica):  # noqa: F811
    """A running server: A holds an SF6002 and an SF1520 agreement, B only SF6002's."""
    monkeypatch.setenv("CPRSUB_LOOKUP_KEY", KEY)
    issued, files = register(engine, test_ca, tmp_path)
    SubscriptionService(engine, caller="setup").add_service_agreement(
        A, LOOKUP_AGREEMENT, "sf1520")
    cert, key = test_ca.server().write(tmp_path, "server")
    tls = ServerTls(cert, key, test_ca.write(tmp_path))
    with uvicorn_server(create_app(lambda: engine), **tls.uvicorn_options()) as base:
        yield Lookup(base, str(tls.client_ca), files, issued, engine, replica)


class Lookup:
    def __init__(self, base, ca, files, issued, engine, replica) -> None:
        self.base, self.ca, self.files, self.issued = base, ca, files, issued
        self.engine, self.replica = engine, replica
        self.url = base + person_lookup.PATH

    def post(self, body: bytes, who: str | None = "a") -> requests.Response:
        """As Magenta's client: ``requests.post(url, data=..., cert=...)``, no headers."""
        session = requests.Session()
        session.trust_env = False
        cert = tuple(map(str, self.files[who])) if who else None
        return session.post(self.url, data=body, cert=cert, verify=self.ca, timeout=30)


def lookup_rows(engine) -> list[tuple[str | None, str, str, str]]:
    with Session(engine) as s:
        return [(r.system, r.transport, r.pnr_hash, r.result) for r in s.scalars(
            select(ReplicaLookup).order_by(ReplicaLookup.id))]


def fault_of(response) -> dict:
    assert response.status_code == 500, response.text
    return xmltodict.parse(response.content)["soap:Envelope"]["soap:Body"]["soap:Fault"]


def denied_audit(engine) -> list[tuple[str, str]]:
    return [(r.operation, r.result) for r in
            SubscriptionService(engine, caller="t").audit_trail()
            if r.result.startswith("DENIED")]


def _resident(p) -> bool:
    return p.address is not None and p.name is not None and p.status == "01"


# -- replies ----------------------------------------------------------------------------
def test_a_resident_read_by_prefix_and_by_namespace(lookup, caplog):
    caplog.set_level(logging.DEBUG)
    pnr = lookup.replica.first(_resident)
    person = lookup.replica.persons[pnr]
    r = lookup.post(envelope(pnr))
    assert r.status_code == 200, r.text
    by_prefix = xmltodict.parse(r.content)["soap:Envelope"]["soap:Body"][
        "ns5:PersonLookupResponse"]
    data = by_prefix["ns5:persondata"]
    assert data["ns5:personnummer"] == pnr and data["ns5:gaeldendePersonnummer"] == pnr
    assert data["ns5:navn"]["ns5:efternavn"] == person.name.last
    assert data["ns5:navn"]["ns5:personadresseringsnavn"] == person.name.addressing
    assert data["ns5:koen"] == person.sex
    assert data["ns5:foedselsdato"]["ns5:dato"] == birth_date(pnr).isoformat()
    assert int(data["ns5:alder"]) == person.age(danish_today())
    assert data["ns5:status"]["ns5:status"] == "1"
    assert data["ns5:adressebeskyttelse"]["ns5:beskyttet"] in ("true", "false")
    address = by_prefix["ns5:adresse"]["ns5:aktuelAdresse"]
    assert int(address["ns5:kommunekode"]) == int(person.address.municipality)
    assert "ns5:udrejseoplysninger" not in by_prefix["ns5:adresse"]

    names = xmltodict.parse(r.content, process_namespaces=True, namespaces={
        soap.SOAP_ENV: None, TNS: None})
    reply = names["Envelope"]["Body"]["PersonLookupResponse"]
    assert reply["persondata"]["navn"]["fornavn"] == person.name.first
    assert reply["adresse"]["aktuelAdresse"]["vejadresseringsnavn"] == \
        person.address.road_addressing_name
    assert pnr not in caplog.text


def test_the_reply_validates_against_our_schema(lookup):
    for test in (_resident, lambda p: p.emigration is not None, lambda p: p.children,
                 lambda p: p.spouse is not None, lambda p: p.status == "90"):
        r = lookup.post(envelope(lookup.replica.first(test)))
        response = etree.fromstring(r.content)[0][0]
        assert etree.QName(response).localname == "PersonLookupResponse"
        assert person_lookup.schema().validate(response), \
            person_lookup.schema().error_log.last_error
        assert response.nsmap == {"soap": soap.SOAP_ENV, "ns5": TNS}


def test_an_emigrated_person_has_emigration_and_no_current_address(lookup):
    pnr = lookup.replica.first(lambda p: p.emigration is not None)
    body = xmltodict.parse(lookup.post(envelope(pnr)).content, process_namespaces=True,
                           namespaces={soap.SOAP_ENV: None, TNS: None})
    address = body["Envelope"]["Body"]["PersonLookupResponse"]["adresse"]
    assert "aktuelAdresse" not in address
    assert address["udrejseoplysninger"]["udrejselandekode"] == "5110"
    assert address["udrejseoplysninger"]["udlandsadresse1"] == "Storgatan 1"


def test_relations_and_children_under_18(lookup):
    pnr = lookup.replica.first(lambda p: p.children)
    person = lookup.replica.persons[pnr]
    body = xmltodict.parse(lookup.post(envelope(pnr)).content, process_namespaces=True,
                           namespaces={soap.SOAP_ENV: None, TNS: None}, force_list=("barn",))
    reply = body["Envelope"]["Body"]["PersonLookupResponse"]
    assert [b["personnummer"] for b in reply["relationer"]["barn"]] == list(person.children)
    today = danish_today()
    expected = sum(birth_date(c) > dt.date(today.year - 18, today.month, min(today.day, 28))
                   for c in person.children)
    assert int(reply["persondata"]["antalBoernUnder18"]) == expected == \
        under_18(person.children, today)
    assert ("mor" in reply["relationer"]) == (person.mother is not None)


def test_a_relative_without_a_number_is_birth_date_and_name(replica):
    """CPR writes a parent it has no number for as birth date and name (015)."""
    pnr = replica.first(_resident)
    person = dataclasses.replace(replica.persons[pnr], mother=Relative(
        None, dt.date(1950, 3, 1), "Jørgine Ærø"), father=Relative("0101501234"))
    tree = reply(Found(person, dt.date(2025, 1, 6)), dt.date(2025, 6, 15))
    assert tree["relationer"]["mor"] == {"foedselsdato": {"dato": "1950-03-01"},
                                         "navn": "Jørgine Ærø"}
    assert tree["relationer"]["far"] == {"personnummer": "0101501234"}
    response = etree.fromstring(person_lookup.response(tree))[0][0]
    assert person_lookup.schema().validate(response), person_lookup.schema().error_log


def test_under_18_counts_by_the_childs_number():
    today = dt.date(2025, 6, 15)
    assert under_18(("1506074234", "1606074234", "0101254234", "3213901234"), today) == 2


def test_zeep_from_our_wsdl(lookup):
    session = requests.Session()
    session.trust_env = False
    session.verify = lookup.ca
    session.cert = tuple(map(str, lookup.files["a"]))
    client = zeep.Client(lookup.url + "?wsdl", transport=Transport(session=session))
    pnr = lookup.replica.first(_resident)
    result = client.service.PersonLookup(
        InvocationContext={"ServiceAgreementUUID": LOOKUP_AGREEMENT, "UserSystemUUID": A,
                           "UserUUID": USER, "ServiceUUID": SF1520}, PNR=pnr)
    assert result.persondata.personnummer == pnr
    assert result.persondata.navn.efternavn == lookup.replica.persons[pnr].name.last
    with pytest.raises(zeep.exceptions.Fault) as raised:
        client.service.PersonLookup(
            InvocationContext={"ServiceAgreementUUID": LOOKUP_AGREEMENT,
                               "UserSystemUUID": A, "UserUUID": USER, "ServiceUUID": SF1520},
            PNR=UNKNOWN)
    assert "in the CPR replica" in raised.value.message and UNKNOWN not in str(
        raised.value.message)


def test_the_wsdl_points_at_the_url_it_was_fetched_from(lookup):
    with requests.get(lookup.url + "?wsdl", verify=lookup.ca,
                      cert=tuple(map(str, lookup.files["a"])), timeout=30) as r:
        text = r.text
    assert f'location="{lookup.url}"' in text
    assert f'location="{lookup.url}/ServiceplatformFaultMessage.wsdl"' in text


# -- refusals ---------------------------------------------------------------------------
def test_an_unknown_pnr_is_the_contracts_fault_without_the_number(lookup):
    r = lookup.post(envelope(UNKNOWN))
    fault = fault_of(r)
    assert fault["faultcode"] == "soap:Server"
    error = fault["detail"]["ns4:ServiceplatformFault"]["ns4:ErrorList"]["ns4:Error"]
    assert error["ns4:ErrorCode"] == "PERSON_NOT_FOUND"
    assert "010101-****" in error["ns4:ErrorText"] and UNKNOWN not in r.text
    detail = etree.fromstring(r.content).find(f".//{{{person_lookup.SPF}}}ServiceplatformFault")
    assert person_lookup.fault_schema().validate(detail)
    assert lookup_rows(lookup.engine) == [(A, "soap", pnr_hash(UNKNOWN, KEY), "NOT FOUND")]


def test_a_malformed_pnr_is_a_client_fault_and_names_nobody(lookup):
    r = lookup.post(envelope(MALFORMED))
    fault = fault_of(r)
    assert fault["faultcode"] == "soap:Client" and "not a real date" in fault["faultstring"]
    assert MALFORMED not in r.text
    assert lookup_rows(lookup.engine) == []


def test_an_sf6002_agreement_does_not_authorise_look_ups(lookup):
    pnr = lookup.replica.first(_resident)
    r = lookup.post(envelope(pnr, agreement=AGREEMENT_A))
    assert "not authorised: service agreement" in fault_of(r)["faultstring"]
    r = lookup.post(envelope(pnr, system=B, agreement=AGREEMENT_B), who="b")
    assert "not authorised: service agreement" in fault_of(r)["faultstring"]
    assert pnr not in r.text
    assert denied_audit(lookup.engine) == [("PersonLookup", "DENIED: service agreement")] * 2
    digest = pnr_hash(pnr, KEY)
    assert lookup_rows(lookup.engine) == [(A, "soap", digest, "DENIED: service agreement"),
                                          (B, "soap", digest, "DENIED: service agreement")]


def test_the_wrong_service_uuid_is_refused(lookup):
    r = lookup.post(envelope(lookup.replica.first(_resident), service=soap.auth.SF6002.uuid))
    assert "not authorised: service uuid" in fault_of(r)["faultstring"]


def test_another_systems_certificate_is_refused(lookup):
    pnr = lookup.replica.first(_resident)
    r = lookup.post(envelope(pnr), who="b")
    assert "not authorised: certificate of another IT system" in fault_of(r)["faultstring"]
    assert [row[3] for row in lookup_rows(lookup.engine)] == [
        "DENIED: certificate of another IT system"]


def test_no_certificate_is_refused_in_the_handshake(lookup):
    with pytest.raises(requests.exceptions.RequestException):
        lookup.post(envelope(lookup.replica.first(_resident)), who=None)
    assert lookup_rows(lookup.engine) == []


def test_xxe_is_refused(lookup):
    body = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
            + envelope("&e;").split(b"?>", 1)[1])
    r = lookup.post(body)
    assert "DTDs and entity declarations are not allowed" in fault_of(r)["faultstring"]
    assert "root:" not in r.text and lookup_rows(lookup.engine) == []


def test_an_sf1520_agreement_does_not_authorise_subscriptions(lookup):
    body = (f'<soapenv:Envelope xmlns:soapenv="{soap.SOAP_ENV}" xmlns:ns="{soap.TNS}" '
            f'xmlns:ctx="{soap.CTX}" xmlns:cpr="{soap.CPR}"><soapenv:Body>'
            f"<ns:AddPNRSubscription><ctx:InvocationContext>"
            f"<ctx:ServiceAgreementUUID>{LOOKUP_AGREEMENT}</ctx:ServiceAgreementUUID>"
            f"<ctx:UserSystemUUID>{A}</ctx:UserSystemUUID><ctx:UserUUID>{USER}</ctx:UserUUID>"
            f"<ctx:ServiceUUID>{soap.auth.SF6002.uuid}</ctx:ServiceUUID>"
            f"</ctx:InvocationContext><cpr:PNR>{PNR_1}</cpr:PNR></ns:AddPNRSubscription>"
            f"</soapenv:Body></soapenv:Envelope>").encode()
    r = requests.post(lookup.base + soap.PATH, data=body, verify=lookup.ca,
                      cert=tuple(map(str, lookup.files["a"])), timeout=30)
    assert "not authorised: service agreement" in fault_of(r)["faultstring"]
    assert SubscriptionService(lookup.engine, caller="t").get_all_filters(A).empty


def test_every_look_up_is_logged_with_the_hmac_only(lookup):
    pnr = lookup.replica.first(_resident)
    lookup.post(envelope(pnr))
    lookup.post(envelope(UNKNOWN))
    lookup.post(envelope(pnr, agreement=AGREEMENT_A))
    rows = lookup_rows(lookup.engine)
    assert [r[3] for r in rows] == ["FOUND", "NOT FOUND", "DENIED: service agreement"]
    assert [r[2] for r in rows] == [pnr_hash(pnr, KEY), pnr_hash(UNKNOWN, KEY),
                                    pnr_hash(pnr, KEY)]
    with Session(lookup.engine) as s:
        stored = [str(v) for row in s.execute(select(ReplicaLookup)).scalars()
                  for v in vars(row).values()]
    assert not any(pnr in v or UNKNOWN in v for v in stored)


# -- REST -------------------------------------------------------------------------------
@pytest.fixture
def rest(engine, replica, monkeypatch):
    monkeypatch.setenv("CPRSUB_LOOKUP_KEY", KEY)
    svc = SubscriptionService(engine, caller="setup")
    svc.add_subscriber(A, "Aalborg ESDH", service_agreements=[AGREEMENT_A])
    svc.add_subscriber(B, "Odense Sag", service_agreements=[AGREEMENT_B])
    svc.add_service_agreement(A, LOOKUP_AGREEMENT, "sf1520")
    tokens = {who: credentials.issue(engine, role=Role.SUBSCRIBER, label=who,
                                     subscriber_uuid=system)
              for who, system in (("a", A), ("b", B))}
    tokens["admin"] = credentials.issue(engine, role=Role.ADMIN, label="ops")
    with TestClient(create_app(lambda: engine)) as client:
        def get(pnr: str, who: str = "a"):
            return client.get(f"/v1/persons/{pnr}",
                              headers={"Authorization": f"Bearer {tokens[who]}"})
        yield get


def test_rest_answers_the_soap_content_as_json(rest, replica, caplog):
    pnr = replica.first(lambda p: _resident(p) and p.children)
    person = replica.persons[pnr]
    r = rest(pnr)
    assert r.status_code == 200, r.text
    body = r.json()
    assert list(body) == ["persondata", "adresse", "relationer"]
    assert body["persondata"]["personnummer"] == pnr
    assert body["persondata"]["navn"]["efternavn"] == person.name.last
    assert body["persondata"]["alder"] == person.age(danish_today())
    assert body["persondata"]["status"] == {"status": 1, "statusdato": {
        "dato": f"{person.status_date.isoformat()}T00:00:00"}}
    assert body["adresse"]["aktuelAdresse"]["kommunekode"] == int(person.address.municipality)
    assert body["relationer"]["barn"] == [{"personnummer": c} for c in person.children]
    assert pnr not in caplog.text


def test_rest_refusals_and_errors(rest, replica, engine):
    pnr = replica.first(_resident)
    r = rest(pnr, who="b")
    assert r.status_code == 403 and "SF1520" in r.json()["detail"] and pnr not in r.text
    r = rest(pnr, who="admin")
    assert r.status_code == 403
    r = rest(UNKNOWN)
    assert r.status_code == 404 and UNKNOWN not in r.text and "010101-****" in r.text
    r = rest(MALFORMED)
    assert r.status_code == 422 and MALFORMED not in r.text
    assert lookup_rows(engine) == [(B, "rest", pnr_hash(pnr, KEY), "DENIED: service agreement"),
                                   (None, "rest", pnr_hash(pnr, KEY), "DENIED: IT system token"),
                                   (A, "rest", pnr_hash(UNKNOWN, KEY), "NOT FOUND")]


def test_rest_without_a_look_up_key_answers_503(rest, replica, monkeypatch, engine):
    monkeypatch.delenv("CPRSUB_LOOKUP_KEY")
    with TestClient(create_app(lambda: engine)) as client:
        token = credentials.issue(engine, role=Role.SUBSCRIBER, label="c", subscriber_uuid=A)
        r = client.get(f"/v1/persons/{replica.first(_resident)}",
                       headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 503 and "CPRSUB_LOOKUP_KEY" in r.json()["detail"]


def test_an_administrator_grants_look_ups_through_the_admin_api(engine, replica, monkeypatch):
    monkeypatch.setenv("CPRSUB_LOOKUP_KEY", KEY)
    SubscriptionService(engine, caller="setup").add_subscriber(
        B, "Odense Sag", service_agreements=[AGREEMENT_B])
    admin = credentials.issue(engine, role=Role.ADMIN, label="ops")
    token = credentials.issue(engine, role=Role.SUBSCRIBER, label="b", subscriber_uuid=B)
    pnr = replica.first(_resident)
    with TestClient(create_app(lambda: engine)) as client:
        def look() -> int:
            return client.get(f"/v1/persons/{pnr}",
                              headers={"Authorization": f"Bearer {token}"}).status_code
        assert look() == 403
        r = client.post(f"/v1/admin/subscribers/{B}/service-agreements",
                        headers={"Authorization": f"Bearer {admin}"},
                        json={"serviceAgreementUUID": LOOKUP_AGREEMENT, "service": "sf1520"})
        assert r.status_code == 200 and r.json()["result"] == "ADDED"
        assert r.json()["subscriber"]["serviceAgreementServices"] == {
            AGREEMENT_B: "sf6002", LOOKUP_AGREEMENT: "sf1520"}
        assert look() == 200
        r = client.post(f"/v1/admin/subscribers/{B}/service-agreements",
                        headers={"Authorization": f"Bearer {admin}"},
                        json={"serviceAgreementUUID": LOOKUP_AGREEMENT, "service": "sf9"})
        assert r.status_code == 422
