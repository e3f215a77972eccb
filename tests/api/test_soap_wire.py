"""The SF6002 wire contract (issue 12, items 1-3): served WSDL, zeep, raw client envelopes,
replies read back by prefix as the real clients do, over real mutual TLS."""

from __future__ import annotations

import requests
import xmltodict

from cpr_abonnement.api import soap
from support.soapclient import (
    CTX,
    PNR_1,
    PNR_2,
    envelope,
    parsed,
    post,
    result_of,
    zeep_client,
)


def test_zeep_builds_a_client_from_our_url_and_runs_every_operation(endpoint):
    client = zeep_client(endpoint)
    service = client.service
    assert {o for o in client.wsdl.bindings[
        f"{{{soap.TNS}}}CprSubscriptionWebServiceBinding"]._operations} == \
        set(soap.operations())
    assert service.AddPNRSubscription(CTX, PNR_1) == "ADDED"
    assert service.AddPNRSubscription(CTX, PNR_1) == "ALREADY_EXISTED"
    assert service.AddPNRSubscription(CTX, PNR_2) == "ADDED"
    assert service.AddAgeRangeSubscription(CTX, {"StartAge": 60, "EndAge": 67}) == "ADDED"
    assert service.AddMunicipalityCodeSubscription(CTX, 851) == "ADDED"
    assert service.AddMunicipalityCodeSubscription(CTX, 101) == "ADDED"
    assert service.AddChangeCodeSubscription(CTX, "A01") == "ADDED"
    assert service.AddNoFilterSubscription(CTX) == "ADDED"
    assert service.AddNoFilterSubscription(CTX) == "ALREADY_EXISTED"

    everything = service.GetAllFilters(CTX)
    assert [(a.StartAge, a.EndAge) for a in everything.AgeRange] == [(60, 67)]
    assert everything.ChangeCode == ["A01"]
    assert everything.MunicipalityCode == [101, 851]
    assert everything.PNR == [PNR_1, PNR_2]
    assert everything.noFilter is True

    assert service.RemovePNRSubscription(CTX, PNR_1) == "REMOVED"
    assert service.RemovePNRSubscription(CTX, PNR_1) == "NON_EXISTING_PNR"
    assert service.RemoveAgeRangeSubscription(CTX, {"StartAge": 60, "EndAge": 67}) == "REMOVED"
    assert service.RemoveAgeRangeSubscription(CTX, {"StartAge": 60, "EndAge": 67}) \
        == "NON_EXISTING"
    assert service.RemoveMunicipalityCodeSubscription(CTX, 851) == "REMOVED"
    assert service.RemoveChangeCodeSubscription(CTX, "A01") == "REMOVED"
    assert service.RemoveChangeCodeSubscription(CTX, "A01") == "NON_EXISTING"
    assert service.RemoveNoFilterSubscription(CTX) == "REMOVED"
    assert service.RemoveNoFilterSubscription(CTX) == "NON_EXISTING"
    assert service.RemoveAll(CTX, "MunicipalityCode") == "REMOVED 1"
    assert service.RemoveAll(CTX, "EventChangeCode") == "REMOVED 0"
    assert service.RemoveAll(CTX, "PNR") == "REMOVED 1"
    left = service.GetAllFilters(CTX)
    assert (left.AgeRange, left.ChangeCode, left.MunicipalityCode, left.PNR, left.noFilter) \
        == ([], [], [], [], False)


def test_wsdl_names_and_address(endpoint):
    with endpoint.client() as http:
        text = http.get(endpoint.url + "?wsdl").text
        schema = http.get(endpoint.url + "?xsd=InvocationContext.xsd")
        missing = http.get(endpoint.url + "secrets.xsd")
    for name in ('name="CprSubscriptionWebService"', 'name="CprSubscriptionWebServicePort"',
                 'name="CprSubscriptionWebServicePortType"',
                 'name="CprSubscriptionWebServiceBinding"', 'part name="p1"',
                 'part name="r1"', f'targetNamespace="{soap.TNS}"', 'soapAction=""',
                 f'location="{endpoint.url}"'):
        assert name in text, name
    assert schema.status_code == 200 and soap.CTX in schema.text
    assert missing.status_code == 404


def test_replies_carry_the_real_services_prefixes(endpoint):
    r = post(endpoint, envelope("AddPNRSubscription", f"<cpr:PNR>{PNR_1}</cpr:PNR>"))
    assert r.status_code == 200, r.text
    assert result_of(r, "AddPNRSubscription") == "ADDED"
    response = parsed(r)["soap:Envelope"]["soap:Body"]["ns3:AddPNRSubscriptionResponse"]
    assert response["@xmlns"] == soap.CTX  # the context namespace as default
    post(endpoint, envelope("AddMunicipalityCodeSubscription",
                            "<ns:MunicipalityCode>0706</ns:MunicipalityCode>"))
    post(endpoint, envelope("AddChangeCodeSubscription", "<ns:ChangeCode>A01</ns:ChangeCode>"))
    post(endpoint, envelope("AddAgeRangeSubscription",
                            "<ns:AgeRange><ns:StartAge>0</ns:StartAge><ns:EndAge>17</ns:EndAge>"
                            "</ns:AgeRange>"))
    r = post(endpoint, envelope("GetAllFilters"))
    everything = parsed(r)["soap:Envelope"]["soap:Body"]["ns3:GetAllFiltersResponse"]
    assert list(everything) == ["@xmlns", "@xmlns:ns2", "@xmlns:ns3", "ns3:AgeRange",
                                "ns3:ChangeCode", "ns3:MunicipalityCode", "ns2:PNR",
                                "ns3:noFilter"]
    assert everything["ns3:MunicipalityCode"] == "706"  # no leading zeros on the wire
    assert everything["ns2:PNR"] == PNR_1
    assert everything["ns3:AgeRange"] == {"ns3:StartAge": "0", "ns3:EndAge": "17"}
    assert everything["ns3:noFilter"] == "false"


def test_sloppy_real_clients_are_understood(endpoint):
    """Context children in the PNR namespace, ISO-8859-1 without a declaration (HTTP
    charset) and with one (no charset), whitespace around values, ChangeCode group."""
    sloppy = envelope("AddPNRSubscription", f"<cpr:PNR> {PNR_1}\n</cpr:PNR>", prefix="cpr",
                      pad=" ")
    r = post(endpoint, sloppy.replace("<soapenv:Header/>", "<soapenv:Header/><!-- æøå -->")
             .encode("iso-8859-1"), content_type="text/xml; charset=ISO-8859-1")
    assert r.status_code == 200, r.text
    assert result_of(r, "AddPNRSubscription") == "ADDED"
    declared = ('<?xml version="1.0" encoding="ISO-8859-1"?>' + envelope(
        "AddChangeCodeSubscription", "<ns:ChangeCode>A01</ns:ChangeCode>")
        .replace("<soapenv:Header/>", "<soapenv:Header/><!-- Ærø -->")).encode("iso-8859-1")
    r = post(endpoint, declared, content_type="text/xml")
    assert result_of(r, "AddChangeCodeSubscription") == "ADDED"
    undeclared = envelope("AddMunicipalityCodeSubscription",
                          "<ns:MunicipalityCode>851</ns:MunicipalityCode>").replace(
        "<soapenv:Header/>", "<soapenv:Header/><!-- Ærø -->").encode("iso-8859-1")
    r = post(endpoint, undeclared, content_type="text/xml")
    assert result_of(r, "AddMunicipalityCodeSubscription") == "ADDED"
    r = post(endpoint, envelope("RemoveAll", "<ns:FilterGroup>ChangeCode</ns:FilterGroup>"))
    assert result_of(r, "RemoveAll") == "REMOVED 1"


def test_an_envelope_posted_as_a_plain_string_is_answered(endpoint):
    """Issue 21 item 2: integrations post the envelope with ``requests.post(url,
    data=envelope, cert=...)``: no Content-Type, no SOAPAction. Serviceplatformen
    answered them, so do we; the reply is read by prefix as those clients read it."""
    session = requests.Session()
    session.trust_env = False
    r = session.post(endpoint.url, data=envelope("AddPNRSubscription",
                                                 f"<cpr:PNR>{PNR_1}</cpr:PNR>"),
                     cert=tuple(map(str, endpoint.clients["a"])), verify=str(endpoint.ca))
    assert "Content-Type" not in r.request.headers and "SOAPAction" not in r.request.headers
    assert r.status_code == 200, r.text
    body = xmltodict.parse(r.content)["soap:Envelope"]["soap:Body"]
    assert body["ns3:AddPNRSubscriptionResponse"]["ns3:Result"] == "ADDED"


def test_an_explicit_non_xml_content_type_is_still_refused(endpoint):
    r = post(endpoint, envelope("AddPNRSubscription", f"<cpr:PNR>{PNR_1}</cpr:PNR>"),
             content_type="text/plain")
    assert r.status_code == 500 and "'text/plain' is not text/xml" in r.text
