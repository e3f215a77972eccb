"""Hostile XML is refused cheaply (issue 12, item 6): each a soap:Client fault naming the
problem, HTTP 500, in bounded time, nothing stored, no PNR in the fault or the log."""

from __future__ import annotations

import time

import pytest
import xmltodict

from cpr_abonnement.subscriptions.service import SubscriptionService
from support.soapclient import PNR_1, A, envelope, post

pytestmark = pytest.mark.slow

XXE = ('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
       + envelope("AddPNRSubscription", "<cpr:PNR>&x;</cpr:PNR>"))
LAUGHS = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol0 "lol">'
          + "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
          + "]>" + envelope("AddPNRSubscription", "<cpr:PNR>&lol9;</cpr:PNR>"))
XINCLUDE = envelope("AddPNRSubscription", '<xi:include xmlns:xi="http://www.w3.org/2001/'
                    'XInclude" href="file:///etc/passwd" parse="text"/>')
DEEP = envelope("AddPNRSubscription", "<a>" * 100_000 + "</a>" * 100_000)
NOT_A_DATE = "3213901234"  # 32nd of the 13th month: breaks the PNR rule
SPACED, DASHED = f"{PNR_1[:6]} {PNR_1[6:]}", f"{PNR_1[:6]}-{PNR_1[6:]}"


def age_range(start: str) -> str:
    return envelope("AddAgeRangeSubscription", f"<ns:AgeRange><ns:StartAge>{start}</ns:StartAge>"
                                               "<ns:EndAge>5</ns:EndAge></ns:AgeRange>")

CASES = {
    "xxe": (XXE, "text/xml", "DTDs and entity declarations are not allowed"),
    "billion laughs": (LAUGHS, "text/xml", "DTDs and entity declarations are not allowed"),
    "external reference": (XINCLUDE, "text/xml", "does not match the schema"),
    "deep nesting": (DEEP, "text/xml", "not well-formed"),
    "non-XML": (f"AddPNRSubscription {PNR_1}", "text/xml", "not well-formed"),
    "JSON content type": (f'{{"pnr": "{PNR_1}"}}', "application/json", "is not text/xml"),
    "SOAP 1.2": (envelope("GetAllFilters"), "application/soap+xml", "SOAP 1.2"),
    "unknown operation": (envelope("DropAllTables"), "text/xml", "unknown operation"),
    "schema-invalid PNR": (envelope("AddPNRSubscription", f"<cpr:PNR>{PNR_1}5</cpr:PNR>"),
                           "text/xml", "does not match the schema"),
    "missing argument": (envelope("AddPNRSubscription"), "text/xml",
                         "does not match the schema"),
    "uppercase UUID": (envelope("AddPNRSubscription", f"<cpr:PNR>{PNR_1}</cpr:PNR>",
                                system=A.upper()), "text/xml", "does not match the schema"),
    "UTF-16": (envelope("GetAllFilters").encode("utf-16"), "text/xml", "not supported"),
    "PNR rule": (envelope("AddPNRSubscription", f"<cpr:PNR>{NOT_A_DATE}</cpr:PNR>"),
                 "text/xml", "PNR"),
    # Issue 21 item 12: a PNR typed with a space or a dash into another field.
    "spaced PNR as an age": (age_range(SPACED), "text/xml", "is not a valid value"),
    "dashed PNR as an age": (age_range(DASHED), "text/xml", "is not a valid value"),
}


def fault_of(response) -> dict:
    assert response.status_code == 500, response.text
    return xmltodict.parse(response.content)["soap:Envelope"]["soap:Body"]["soap:Fault"]


@pytest.mark.parametrize("case", CASES)
def test_hostile_request_is_a_client_fault(endpoint, case, caplog):
    body, content_type, named = CASES[case]
    started = time.monotonic()
    r = post(endpoint, body if isinstance(body, bytes) else body.encode(),
             content_type=content_type)
    assert time.monotonic() - started < 5
    fault = fault_of(r)
    assert fault["faultcode"] == ("soap:VersionMismatch" if case == "SOAP 1.2"
                                  else "soap:Client")
    assert named in fault["faultstring"]
    for pnr in (PNR_1, NOT_A_DATE, SPACED, DASHED, "root:"):
        assert pnr not in r.text and pnr not in caplog.text
    assert SubscriptionService(endpoint.engine, caller="t").get_all_filters(A).empty


def test_huge_bodies_are_refused_before_they_are_read(endpoint):
    huge = b"<" + b"x" * (11 * 1024 * 1024)
    started = time.monotonic()
    r = post(endpoint, huge)
    assert "larger than" in fault_of(r)["faultstring"]

    def chunks():  # no Content-Length: counted as it arrives
        yield envelope("GetAllFilters").encode()[:50]
        for _ in range(200):
            yield b" " * 65536
    with endpoint.client() as http:
        r = http.post(endpoint.url, content=chunks(), headers={"Content-Type": "text/xml"})
    assert "larger than" in fault_of(r)["faultstring"]
    assert time.monotonic() - started < 10
