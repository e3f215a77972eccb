"""SF1520 PersonBaseDataExtended v4 over SOAP 1.1: ``PersonLookup`` against the CPR replica.

IT systems fetch a subscribed person's data with this service before the daily
extracts keep them up to date (serviceplatformen-compat.md §4). To move here they
change only the URL and the certificate they trust, so this adapter speaks the
contract and nothing else: parse (with :mod:`cpr_abonnement.api.soap`'s hardened
reader) -> :func:`~cpr_abonnement.api.persons.look_up_person` (authorisation and the
look-up log) -> serialise :func:`~cpr_abonnement.api.persons.reply`.

**Endpoint** ``POST /service/CPR/PersonBaseDataExtended/4`` (any SOAPAction),
``GET ...?wsdl`` our own WSDL (address and imports rewritten to the URL asked),
``GET .../4/<name>`` the documents it imports.

**Replies** as JAX-WS writes them, since one client generation indexed replies by
prefix (``reply["soap:Envelope"]["soap:Body"]["ns5:PersonLookupResponse"]
["ns5:persondata"]``): envelope ``soap:``, the service namespace ``ns5:`` on the
response and every element in it; a fault's ``ServiceplatformFault`` detail ``ns4:``.

**Faults** (``soap:Fault``, HTTP 500): an unknown PNR is ``soap:Server``'s
``ServiceplatformFault`` with one ``Error`` (code ``PERSON_NOT_FOUND``); a malformed
PNR, a refused caller and hostile input are ``soap:Client`` faults naming the problem,
no look-up key configured ``soap:Server`` (``LOOKUP_KEY_MISSING``). No fault or log
line holds a full PNR: the messages carry :func:`~cpr_abonnement.masking.mask`'s
form, and :func:`~cpr_abonnement.api.soap.fault` scrubs them again.
"""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path

from fastapi import APIRouter, Request
from lxml import etree
from starlette.responses import Response

from cpr_abonnement.api import soap
from cpr_abonnement.api.auth import CallerIdentity
from cpr_abonnement.api.persons import Tree, danish_today, look_up_person, reply
from cpr_abonnement.api.threads import in_thread
from cpr_abonnement.errors import (
    InvalidPnr,
    LookupKeyMissing,
    NotAuthorised,
    PersonNotFound,
    SoapFault,
)
from cpr_abonnement.masking import scrub
from cpr_abonnement.settings import Settings

log = logging.getLogger(__name__)

PATH = "/service/CPR/PersonBaseDataExtended/4"
TNS = "http://serviceplatformen.dk/xml/wsdl/soap11/CPR/PersonBaseDataExtended/4/"
SPF = "http://serviceplatformen.dk/xml/schemas/ServiceplatformFault/1/"
OPERATION = "PersonLookup"
#: Prefixes of the reply (see the module docstring).
PREFIX, FAULT_PREFIX = "ns5", "ns4"
HERE = Path(__file__).with_name("wsdl") / "sf1520"
WSDL = "PersonBaseDataExtendedService.wsdl"
#: The documents the WSDL imports, by the name it imports them under. The invocation
#: context is SF6002's own file (the same schema); the rest are SF1520's.
DOCUMENTS = {
    "ServiceplatformFaultMessage.wsdl": HERE / "ServiceplatformFaultMessage.wsdl",
    "PersonBaseDataExtendedServiceMsg.xsd": HERE / "PersonBaseDataExtendedServiceMsg.xsd",
    "PersonBaseDataExtendedServiceTypes.xsd": HERE / "PersonBaseDataExtendedServiceTypes.xsd",
    "InvocationContext.xsd": soap.WSDL_DIR / "InvocationContext.xsd",
    "CallContext.xsd": HERE / "CallContext.xsd",
    "AuthorityContext.xsd": HERE / "AuthorityContext.xsd",
    "PNR.xsd": HERE / "PNR.xsd",
    "ServiceplatformFault.xsd": HERE / "ServiceplatformFault.xsd",
}


class _Documents(etree.Resolver):
    """Resolves an import by its file name to :data:`DOCUMENTS`: the schemas load from
    the package, never from the network, wherever a file lives."""

    def resolve(self, url: str, pubid: str, context: object) -> object:
        path = DOCUMENTS.get(url.rsplit("/", 1)[-1]) if url else None
        return self.resolve_filename(str(path), context) if path else None


def _schema(name: str) -> etree.XMLSchema:
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    parser.resolvers.add(_Documents())
    return etree.XMLSchema(etree.parse(str(DOCUMENTS[name]), parser))


@cache
def schema() -> etree.XMLSchema:
    """The request and response schema (``PersonBaseDataExtendedServiceMsg.xsd``)."""
    return _schema("PersonBaseDataExtendedServiceMsg.xsd")


@cache
def fault_schema() -> etree.XMLSchema:
    """The fault detail's schema."""
    return _schema("ServiceplatformFault.xsd")


# -- replies ---------------------------------------------------------------------------
def _fill(parent: etree._Element, tree: Tree) -> None:
    """``tree``'s elements under ``parent``, in order, all in the service namespace
    (the contract's local elements are qualified)."""
    add = etree.SubElement
    for name, value in tree.items():
        for item in value if isinstance(value, list) else [value]:
            child = add(parent, f"{{{TNS}}}{name}")
            if isinstance(item, dict):
                _fill(child, item)
            elif isinstance(item, bool):
                child.text = "true" if item else "false"
            else:
                child.text = str(item)


def response(tree: Tree) -> bytes:
    """The whole reply envelope for ``tree`` (:func:`~cpr_abonnement.api.persons.reply`)."""
    element = etree.SubElement(soap.body_element(), f"{{{TNS}}}PersonLookupResponse",
                               nsmap={PREFIX: TNS})
    _fill(element, tree)
    return soap.serialised(element)


def _error_detail(code: str, text: str):
    def fill(detail: etree._Element) -> None:
        spf = etree.SubElement(detail, f"{{{SPF}}}ServiceplatformFault",
                               nsmap={FAULT_PREFIX: SPF})
        error = etree.SubElement(etree.SubElement(spf, f"{{{SPF}}}ErrorList"),
                                 f"{{{SPF}}}Error")
        etree.SubElement(error, f"{{{SPF}}}ErrorCode").text = code
        etree.SubElement(error, f"{{{SPF}}}ErrorText").text = scrub(text)
    return fill


def platform_fault(code: str, message: str, error: str) -> Response:
    """A fault with the contract's ``ServiceplatformFault`` detail (one ``Error``)."""
    return soap.fault(code, message, _error_detail(error, message))


# -- the call --------------------------------------------------------------------------
def _pnr(op: etree._Element) -> str:
    return op.findtext(f"{{{soap.CPR}}}PNR") or ""


def _call(state, settings: Settings, caller: CallerIdentity, op: etree._Element) -> bytes:
    if op.find(f"{{{soap.CTX}}}InvocationContext") is None:
        raise SoapFault("an InvocationContext is required: it names the IT system and the "
                        "service agreement the look-up is made under")
    found = look_up_person(state.engine, caller, soap.call_context(op), _pnr(op),
                           settings=settings, replica=state.replica)
    return response(reply(found, danish_today()))


router = APIRouter(tags=["SF1520 SOAP"])


@router.post(PATH, name="SF1520", include_in_schema=False)
async def lookup_call(request: Request) -> Response:
    try:
        caller, op = await soap.read_call(request, TNS, ("PersonLookupRequest",), schema())
        state = request.app.state
        return Response(await in_thread(state, _call, state.cpr, state.settings, caller, op),
            media_type=soap.XML)
    except SoapFault as e:
        log.info("SF1520 request refused: %s", e)
        return soap.fault(e.code, str(e))
    except NotAuthorised as e:
        log.info("SF1520 look-up not authorised: %s", e.check)
        return soap.fault("Client", f"not authorised: {e.check}")
    except InvalidPnr as e:
        return soap.fault("Client", f"PNR: {e}")
    except PersonNotFound as e:
        return platform_fault("Server", str(e), "PERSON_NOT_FOUND")
    except LookupKeyMissing as e:
        log.error("SF1520 look-up refused: %s", e)
        return platform_fault("Server", str(e), "LOOKUP_KEY_MISSING")
    except Exception as e:  # anything else: a fault, never a stack trace
        log.error("internal error in the SF1520 endpoint: %s", type(e).__name__)
        return soap.fault("Server", "internal error")


@router.get(PATH, name="SF1520 WSDL", include_in_schema=False)
def wsdl(request: Request) -> Response:
    """``?wsdl``: our WSDL with this URL as the address and its imports beside it."""
    if "wsdl" not in request.query_params:
        return soap.fault("Client", "GET serves ?wsdl; PersonLookup is POSTed")
    scheme = request.app.state.soap.certificates.public_scheme(request.scope)
    address = str(request.url.replace(query="", scheme=scheme)).rstrip("/")
    text = (HERE / WSDL).read_text(encoding="utf-8").replace(
        f'location="https://localhost{PATH}"', f'location="{address}"')
    for name in DOCUMENTS:
        text = text.replace(f'ocation="{name}"', f'ocation="{address}/{name}"')
    return Response(text.encode("utf-8"), media_type="text/xml")


@router.get(PATH + "/{name}", name="SF1520 document", include_in_schema=False)
def document(name: str) -> Response:
    """A document the WSDL imports; their own imports are relative, so resolve here."""
    path = DOCUMENTS.get(name)
    if path is None:
        return Response(f"no document {name[:80]!r}", status_code=404,
                        media_type="text/plain")
    return Response(path.read_bytes(), media_type="text/xml")
