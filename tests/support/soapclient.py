"""The SF6002 test client side: IDs, a running endpoint's handle, request envelopes shaped
like the real clients' (compat page §1), and replies read back as those clients do."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import httpx
import requests
import xmltodict
import zeep
from zeep.transports import Transport

from cpr_abonnement.api import soap
from cpr_abonnement.subscriptions.service import SubscriptionService
from support.certs import Issued, TestCA

A = "6f1f0b8e-6a55-4f55-9d7b-1c5c1f3a0001"
B = "0d4c3b2a-1111-4222-8333-444455556666"
AGREEMENT_A = "1a2b3c4d-0000-4000-8000-00000000000a"
AGREEMENT_B = "1a2b3c4d-0000-4000-8000-00000000000b"
USER = "2b3c4d5e-0000-4000-8000-000000000001"
SERVICE = "9cdccc2f-3243-11e2-8fef-d4bed98c5934"
#: SF1520 PersonBaseDataExtended: its ServiceUUID, and A's agreement for it.
LOOKUP_NS = "http://serviceplatformen.dk/xml/wsdl/soap11/CPR/PersonBaseDataExtended/4/"
SF1520 = "e6be2436-bf35-4df2-83fe-925142825dc2"
LOOKUP_AGREEMENT = "1a2b3c4d-0000-4000-8000-0000000015a0"


@dataclass(frozen=True)
class Endpoint:
    """A running endpoint and what a client needs: URL, CA file, client cert files."""

    base: str
    ca: Path
    clients: dict[str, tuple[Path, Path]]
    issued: dict[str, Issued]
    engine: object

    @property
    def url(self) -> str:
        return self.base + soap.PATH

    def tls(self, who: str | None = "a") -> ssl.SSLContext:
        """Trust our CA; present ``who``'s certificate (none for None)."""
        context = ssl.create_default_context(cafile=str(self.ca))
        if who:
            context.load_cert_chain(*map(str, self.clients[who]))
        return context

    def client(self, who: str | None = "a", **kwargs) -> httpx.Client:
        return httpx.Client(verify=self.tls(who), **kwargs)


def register(engine, ca: TestCA, tmp_path: Path) -> tuple[dict, dict]:
    """Subscribers A and B, each with its service agreement and registered certificate;
    a third certificate from the same CA registered for nobody."""
    svc = SubscriptionService(engine, caller="setup")
    svc.add_subscriber(A, "Aalborg ESDH", service_agreements=[AGREEMENT_A])
    svc.add_subscriber(B, "Odense Sag", service_agreements=[AGREEMENT_B])
    issued = {"a": ca.client("Aalborg ESDH"), "b": ca.client("Odense Sag"),
              "stranger": ca.client("Not registered")}
    svc.add_certificate(A, issued["a"].pem)
    svc.add_certificate(B, issued["b"].pem)
    return issued, {k: v.write(tmp_path, k) for k, v in issued.items()}


PNR_1, PNR_2 = "0101901234", "1502504321"  # synthetic


def context_xml(*, prefix: str = "ctx", system: str = A, agreement: str = AGREEMENT_A,
                service: str = SERVICE, pad: str = "") -> str:
    """An InvocationContext whose children use ``prefix`` (one client uses the PNR one)."""
    return (f"<ctx:InvocationContext>"
            f"<{prefix}:ServiceAgreementUUID>{pad}{agreement}{pad}</{prefix}:ServiceAgreementUUID>"
            f"<{prefix}:UserSystemUUID>{pad}{system}{pad}</{prefix}:UserSystemUUID>"
            f"<{prefix}:UserUUID>{USER}</{prefix}:UserUUID>"
            f"<{prefix}:ServiceUUID>{service}</{prefix}:ServiceUUID>"
            f"</ctx:InvocationContext>")


def envelope(operation: str, argument: str = "", **context) -> str:
    """A request as magenta-aps/cpr_abonnement's template shapes it: no XML declaration,
    ``soapenv``/``ns``/``ns1``-style prefixes, an empty header."""
    return (f'<soapenv:Envelope xmlns:soapenv="{soap.SOAP_ENV}" xmlns:ns="{soap.TNS}" '
            f'xmlns:ctx="{soap.CTX}" xmlns:cpr="{soap.CPR}"><soapenv:Header/><soapenv:Body>'
            f"<ns:{operation}>{context_xml(**context)}{argument}</ns:{operation}>"
            f"</soapenv:Body></soapenv:Envelope>")


def post(endpoint, body: str | bytes, *, content_type: str = "text/xml; charset=utf-8",
         who: str | None = "a"):
    with endpoint.client(who) as http:
        return http.post(endpoint.url, content=body if isinstance(body, bytes) else body.encode(),
                         headers={"Content-Type": content_type, "SOAPAction": '""'})


def parsed(response) -> dict:
    """The reply as the clients read it: xmltodict, keys with the wire's prefixes."""
    return xmltodict.parse(response.content)


def result_of(response, operation: str) -> str:
    body = parsed(response)["soap:Envelope"]["soap:Body"]
    return body[f"ns3:{operation}Response"]["ns3:Result"]


def zeep_client(endpoint, who: str = "a") -> zeep.Client:
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify (requests #3829)
    session.verify = str(endpoint.ca)
    session.cert = tuple(map(str, endpoint.clients[who]))
    return zeep.Client(endpoint.url + "?wsdl", transport=Transport(session=session))


CTX = {"ServiceAgreementUUID": AGREEMENT_A, "UserSystemUUID": A, "UserUUID": USER,
       "ServiceUUID": SERVICE}


def lookup_envelope(pnr: str, *, system: str = A, agreement: str = LOOKUP_AGREEMENT,
             service: str = SF1520) -> bytes:
    """A request shaped like a rendered template: Latin-1 bytes, its own prefixes."""
    text = (f'<?xml version="1.0" encoding="ISO-8859-1"?>'
            f'<soapenv:Envelope xmlns:soapenv="{soap.SOAP_ENV}" xmlns:ns="{LOOKUP_NS}" '
            f'xmlns:inv="{soap.CTX}" xmlns:pnr="{soap.CPR}"><soapenv:Header/><soapenv:Body>'
            f"<ns:PersonLookupRequest><inv:InvocationContext>"
            f"<inv:ServiceAgreementUUID>{agreement}</inv:ServiceAgreementUUID>"
            f"<inv:UserSystemUUID>{system}</inv:UserSystemUUID>"
            f"<inv:UserUUID>{USER}</inv:UserUUID>"
            f"<inv:ServiceUUID>{service}</inv:ServiceUUID>"
            f"</inv:InvocationContext><pnr:PNR>{pnr}</pnr:PNR></ns:PersonLookupRequest>"
            f"<!-- søgning --></soapenv:Body></soapenv:Envelope>")
    return text.encode("latin-1")
