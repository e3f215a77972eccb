"""SF6002 CprSubscriptionService over SOAP 1.1: a thin adapter onto the one service.

Existing IT systems (CPR Broker, OS2sofd, Magenta's clients) manage their filters by
posting SOAP envelopes to Serviceplatformen's endpoint; to move to us they change only
the URL and the certificate they trust. So this module speaks that contract
(``serviceplatformen-compat.md`` §1) and nothing else: parse -> authorise -> call the
:class:`~cpr_abonnement.subscriptions.service.SubscriptionService` -> serialise. The
rules (input, results, audit) live in the service, the checks in
:func:`cpr_abonnement.api.auth.authorise`, exactly as for REST.

**Endpoint** ``POST /service/CPRSubscription/CPRSubscription/1/`` (``soapAction=""``),
``GET ...?wsdl`` our own WSDL, ``GET .../<name>.xsd`` (or ``?xsd=<name>``) its schemas,
written from the documented contract: same target namespace, service, port, binding and
portType names, message parts ``p1``/``r1``; version 1.1 (``Add``/``RemoveNoFilterSubscription``).

**Replies** are written the way the real service writes them, because clients index
them by prefix (``reply["soap:Envelope"]["soap:Body"]["ns3:AddPNRSubscriptionResponse"]
["ns3:Result"]``): envelope ``soap:``, response and children ``ns3:``, PNRs ``ns2:PNR``,
the invocation-context namespace as the default namespace of the response element.
``GetAllFiltersResponse`` lists AgeRange, ChangeCode, MunicipalityCode (without leading
zeros: ``851``), PNR, then ``noFilter``.

**Result strings.** Seen on the real service: ``ADDED``, ``ALREADY_EXISTED``, ``REMOVED``,
``NON_EXISTING_PNR``. Not documented anywhere, so ours (product.md §2): removing an age
range, municipality code, change code or the no-filter subscription that is not there
gives ``NON_EXISTING``; ``RemoveAll`` gives ``REMOVED <n>`` (the number of filters
closed); input that breaks a rule (a PNR that is no date, StartAge > EndAge, ...) is a
``soap:Client`` fault naming the rule, and nothing is stored. A warning the REST API
returns beside the result (an unknown change code) has no field in the contract: it is
logged, not sent.

**Tolerance** where real clients are sloppy: the invocation context's children and the
operation's argument are matched by local name (one production client puts them in the
PNR namespace); the request's encoding is the HTTP ``charset``, else the XML
declaration's, else UTF-8, else ISO-8859-1 (a body that is not valid UTF-8 and says
nothing); whitespace around values is ignored. Only UTF-8, ISO-8859-1 and US-ASCII are
accepted.

**Hostile input is refused cheaply**, each as a ``soap:Client`` fault (HTTP 500, as
SOAP 1.1 over HTTP prescribes) naming the problem, before anything is stored: no client
certificate (refused before the body is read), a body over :data:`MAX_BODY_BYTES`
(declared or counted), a content type other than ``text/xml``/``application/xml``,
DTDs and entity declarations (XXE, billion laughs: refused by a byte scan before
parsing; the parser also never loads DTDs, resolves entities or touches the network),
nesting deeper than libxml2's limit, non-XML, a SOAP 1.2 envelope
(``soap:VersionMismatch``), an unknown operation, a request invalid against our
schemas. Fault strings and log lines pass through :func:`cpr_abonnement.masking.scrub`
and never quote the offending value.

**Who calls** is the client certificate: presented on the TLS connection (the ASGI TLS
extension, which :mod:`cpr_abonnement.api.tls` adds to uvicorn) or, behind a
TLS-terminating proxy, in a header carrying the URL-escaped PEM (nginx's
``$ssl_client_escaped_cert``) accepted only from :class:`ClientCertificates`'
trusted addresses.
"""

from __future__ import annotations

import codecs
import hashlib
import ipaddress
import logging
import re
import ssl
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from fastapi import APIRouter, Request
from lxml import etree
from starlette.responses import Response

from cpr_abonnement import filters
from cpr_abonnement.api import auth
from cpr_abonnement.api.auth import CallContext, CallerIdentity
from cpr_abonnement.api.guard import declared_length
from cpr_abonnement.api.threads import in_thread
from cpr_abonnement.errors import (
    CprAbonnementError,
    FilterInputError,
    NotAuthorised,
    SoapFault,
    UnknownSubscriber,
)
from cpr_abonnement.filters.base import FilterType
from cpr_abonnement.masking import scrub
from cpr_abonnement.settings import Settings

log = logging.getLogger(__name__)

PATH = "/service/CPRSubscription/CPRSubscription/1/"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_ENV = "http://www.w3.org/2003/05/soap-envelope"
TNS = "http://serviceplatformen.dk/xml/wsdl/soap11/CprSubscriptionService/1/"
CTX = "http://serviceplatformen.dk/xml/schemas/InvocationContext/1/"
CPR = "http://serviceplatformen.dk/xml/schemas/cpr/PNR/1/"
WSDL_DIR = Path(__file__).with_name("wsdl")
WSDL = "CprSubscriptionService.wsdl"
SCHEMAS = ("CprSubscriptionServiceMsg.xsd", "InvocationContext.xsd", "PNR.xsd")
#: The largest legitimate request is under 2 kB; anything near this is not a client.
MAX_BODY_BYTES = 1024 * 1024
CONTENT_TYPES = ("text/xml", "application/xml")
ENCODINGS = {"utf-8", "iso8859-1", "ascii"}  # codecs' names of what we accept
#: The operations' argument elements, by local name, and the namespace they belong in.
ARGUMENT_NAMESPACE = {"PNR": CPR, "AgeRange": TNS, "MunicipalityCode": TNS,
                      "ChangeCode": TNS, "FilterGroup": TNS}
#: RemoveAll's FilterGroup (contract spelling first) -> our filter group.
FILTER_GROUPS = {"PNR": "PNR", "AgeRange": "AgeRange", "MunicipalityCode": "MunicipalityCode",
                 "EventChangeCode": "ChangeCode", "ChangeCode": "ChangeCode",
                 "NoFilter": "NoFilter"}


# -- who is calling --------------------------------------------------------------------
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class ClientCertificates:
    """Where the caller's certificate is read from.

    On a TLS connection our server terminates, from the connection itself (ASGI TLS
    extension). Behind a TLS-terminating proxy, from ``header`` (URL-escaped PEM), and
    only when the request comes from one of ``trusted_proxies``: anyone else could
    write that header, so from elsewhere it is refused, not ignored.
    """

    header: str | None = None
    trusted_proxies: tuple[Network, ...] = field(default=())

    @classmethod
    def parse(cls, header: str | None, proxies: list[str] | tuple[str, ...] = ()
              ) -> ClientCertificates:
        try:
            nets = tuple(ipaddress.ip_network(p.strip(), strict=False) for p in proxies
                         if p.strip())
        except ValueError as e:
            raise CprAbonnementError(f"trusted proxy: {e}") from e
        if header and not nets:
            raise CprAbonnementError("a client certificate header needs --trusted-proxy")
        return cls(header.lower() if header else None, nets)

    @classmethod
    def from_settings(cls, settings: Settings) -> ClientCertificates:
        """From the deployment's settings: the Airflow API server mount has no command
        line (``CPRSUB_API_CLIENT_CERT_HEADER``, ``CPRSUB_API_TRUSTED_PROXIES``)."""
        return cls.parse(settings.api_client_cert_header, settings.api_trusted_proxies)

    def _trusted(self, scope: dict[str, Any]) -> bool:
        client = scope.get("client")
        if not client:
            return False
        try:
            address = ipaddress.ip_address(client[0])
        except ValueError:
            return False
        return any(address in net for net in self.trusted_proxies)

    @staticmethod
    def _header_named(scope: dict[str, Any], name: str) -> str | None:
        wanted = name.encode("latin-1")
        for key, value in scope.get("headers", ()):
            if key == wanted:
                return value.decode("latin-1")
        return None

    def _header(self, scope: dict[str, Any]) -> str | None:
        return self._header_named(scope, self.header) if self.header else None

    def public_scheme(self, scope: dict[str, Any]) -> str:
        """The scheme clients use: a trusted proxy's ``X-Forwarded-Proto`` (it terminates
        TLS), else the connection's. For the WSDL's address."""
        forwarded = self._header_named(scope, "x-forwarded-proto")
        if forwarded in ("http", "https") and self.header and self._trusted(scope):
            return forwarded
        return scope.get("scheme", "http")

    def fingerprint(self, scope: dict[str, Any]) -> str:
        """Lowercase hex SHA-256 of the caller's DER certificate; SoapFault if none."""
        forwarded = self._header(scope) if self.header else None
        if forwarded is not None:
            if not self._trusted(scope):
                log.warning("client certificate header %s from untrusted address refused",
                            self.header)
                raise SoapFault(f"client certificate header {self.header} is accepted only "
                                "from a trusted proxy")
            if forwarded.strip():
                return pem_fingerprint(unquote(forwarded), "the client certificate header")
        chain = (scope.get("extensions") or {}).get("tls", {}).get("client_cert_chain")
        if chain:
            return pem_fingerprint(chain[0], "the TLS client certificate")
        raise SoapFault("no client certificate: SF6002 callers authenticate with their "
                        "certificate over mutual TLS")


def pem_fingerprint(pem: str, what: str) -> str:
    try:
        return _pem_sha256(pem)
    except ValueError as e:
        raise SoapFault(f"{what} is not a PEM certificate") from e


@lru_cache(maxsize=1024)
def _pem_sha256(pem: str) -> str:
    """A keep-alive connection presents the same certificate on every call: decoded
    once per certificate, not per call (a pure function of the PEM text)."""
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem.strip())).hexdigest()


# -- reading a request -----------------------------------------------------------------
_DECLARED = re.compile(rb"\A\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]{1,40})[\"']")
_QUOTED_VALUE = re.compile(r"(value|[Cc]ontent) '[^']*'")
#: "Element '{ns}StartAge': '010744 1234' is not a valid value of …": the value as typed.
_ECHOED_VALUE = re.compile(r"(': )'[^']*'( is not a valid value)")


def _codec(name: str, where: str) -> str:
    try:
        codec = codecs.lookup(name).name
    except LookupError:
        codec = ""
    if codec not in ENCODINGS:
        raise SoapFault(f"{where} {name!r} is not supported: send UTF-8 or ISO-8859-1")
    return codec


def encoding_of(body: bytes, charset: str | None) -> str:
    """HTTP charset, else the XML declaration's, else UTF-8 if the bytes are, else Latin-1."""
    if charset:
        return _codec(charset, "charset")
    declared = _DECLARED.match(body)
    if declared:
        return _codec(declared.group(1).decode("ascii"), "XML encoding")
    if body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise SoapFault("UTF-16 is not supported: send UTF-8 or ISO-8859-1")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return "iso8859-1"
    return "utf-8"


def content_charset(content_type: str | None) -> str | None:
    """Refuse what is not SOAP 1.1's content type; the charset parameter if any.

    No ``Content-Type`` at all is taken as SOAP 1.1 XML: integrations that post the
    envelope as a plain string (``requests.post(url, data=envelope)``) send none, and
    Serviceplatformen answered them. An explicit non-XML type is still refused.
    """
    if not content_type or not content_type.strip():
        return None
    media, *params = (p.strip() for p in content_type.split(";"))
    if media.lower() == "application/soap+xml":
        raise SoapFault("SOAP 1.2 (application/soap+xml) is not supported: SF6002 is SOAP 1.1",
                        code="VersionMismatch")
    if media.lower() not in CONTENT_TYPES:
        raise SoapFault(f"content type {media[:60]!r} is not text/xml")
    for p in params:
        key, _, value = p.partition("=")
        if key.strip().lower() == "charset":
            return value.strip().strip("\"'") or None
    return None


def _safe(message: str) -> str:
    """An lxml message without the offending value (it may be personal data)."""
    return _ECHOED_VALUE.sub(r"\1the value\2", _QUOTED_VALUE.sub(r"\1", message))


_PARSERS = threading.local()


def _parser(encoding: str) -> etree.XMLParser:
    """This thread's parser for ``encoding`` (lxml parsers may not be shared between
    threads; building one per request cost as much as a third of the parse)."""
    parsers = _PARSERS.__dict__.setdefault("by_encoding", {})
    if encoding not in parsers:
        parsers[encoding] = etree.XMLParser(
            encoding=encoding, resolve_entities=False, no_network=True, load_dtd=False,
            dtd_validation=False, huge_tree=False, remove_comments=True, remove_pis=True,
            collect_ids=False)
    return parsers[encoding]


def parse_envelope(body: bytes, charset: str | None) -> etree._Element:
    """The envelope, parsed without DTDs, entities, network or huge-tree allowances."""
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise SoapFault("DTDs and entity declarations are not allowed")
    encoding = encoding_of(body, charset)
    if body.startswith(codecs.BOM_UTF8):
        body = body[len(codecs.BOM_UTF8):]
    try:
        root = etree.fromstring(body, _parser(encoding))
    except etree.XMLSyntaxError as e:
        raise SoapFault(f"request is not well-formed XML: {_safe(str(e))}") from e
    if root.getroottree().docinfo.doctype:
        raise SoapFault("DTDs and entity declarations are not allowed")
    return root


def operation_element(envelope: etree._Element, namespace: str = TNS,
                      known: Collection[str] | None = None) -> etree._Element:
    """The one element in the SOAP 1.1 Body, an operation ``known`` (default: SF6002's)
    in ``namespace``; SF1520's endpoint passes its own."""
    if envelope.tag == f"{{{SOAP12_ENV}}}Envelope":
        raise SoapFault("SOAP 1.2 envelope: SF6002 is SOAP 1.1", code="VersionMismatch")
    if envelope.tag != f"{{{SOAP_ENV}}}Envelope":
        raise SoapFault("not a SOAP 1.1 envelope")
    bodies = [e for e in envelope if e.tag == f"{{{SOAP_ENV}}}Body"]
    if len(bodies) != 1:
        raise SoapFault("the envelope needs exactly one soap:Body")
    children = [e for e in bodies[0] if isinstance(e.tag, str)]
    if len(children) != 1:
        raise SoapFault("soap:Body must hold exactly one operation element")
    op = children[0]
    name = etree.QName(op)
    if name.namespace != namespace or name.localname not in (
            operations() if known is None else known):
        raise SoapFault(f"unknown operation {name.localname[:80]} (namespace "
                        f"{(name.namespace or '')[:120]})")
    return op


def normalise(op: etree._Element) -> None:
    """Sloppy-client tolerance: namespaces by local name, values stripped."""
    for child in op:
        if not isinstance(child.tag, str):
            continue
        local = etree.QName(child).localname
        if local == "InvocationContext":
            child.tag = f"{{{CTX}}}InvocationContext"
            for item in child:
                if isinstance(item.tag, str):
                    item.tag = f"{{{CTX}}}{etree.QName(item).localname}"
        elif local in ARGUMENT_NAMESPACE:
            child.tag = f"{{{ARGUMENT_NAMESPACE[local]}}}{local}"
    for element in op.iter():
        if isinstance(element.tag, str) and len(element) == 0 and element.text:
            element.text = element.text.strip()
        if element is not op:
            element.tail = None


@cache
def schema() -> etree.XMLSchema:
    """Our message schemas (imports resolved from the package, never the network)."""
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    return etree.XMLSchema(etree.parse(str(WSDL_DIR / SCHEMAS[0]), parser))


def validate(op: etree._Element, checker: etree.XMLSchema | None = None) -> None:
    """``op`` against our schemas (``checker``, default SF6002's); lxml validates an
    element that is not its document's root as the root of its own document (no copy
    through text)."""
    checker = checker or schema()
    if not checker.validate(op):
        error = checker.error_log.last_error
        raise SoapFault(f"request does not match the schema: {_safe(error.message)} "
                        f"(line {error.line})")


# -- the call --------------------------------------------------------------------------
def _text(element: etree._Element, namespace: str, name: str) -> str | None:
    found = element.find(f"{{{namespace}}}{name}")
    return found.text if found is not None else None


def call_context(op: etree._Element) -> CallContext:
    ctx = op.find(f"{{{CTX}}}InvocationContext")

    def get(name: str) -> str | None:
        return _text(ctx, CTX, name)
    return CallContext(user_system_uuid=get("UserSystemUUID") or "",
                       service_agreement_uuid=get("ServiceAgreementUUID"),
                       user_uuid=get("UserUUID"), service_uuid=get("ServiceUUID"),
                       callers_service_call_identifier=get("CallersServiceCallIdentifier"))


def arguments(ftype: FilterType, op: etree._Element) -> tuple[Any, ...]:
    """The filter type's raw arguments from the operation element (schema-valid)."""
    if ftype.group == "PNR":
        return (_text(op, CPR, "PNR"),)
    if ftype.group == "AgeRange":
        age = op.find(f"{{{TNS}}}AgeRange")
        return int(_text(age, TNS, "StartAge")), int(_text(age, TNS, "EndAge"))
    if ftype.arguments:
        return (_text(op, TNS, ftype.group),)
    return ()




#: What an operation does: (service, system, request element, response element to fill).
Operation = Callable[[Any, str, etree._Element, etree._Element], None]


def _filter_operations() -> dict[str, Operation]:
    def single(ftype: FilterType, adding: bool) -> Operation:
        def run(svc, system: str, op: etree._Element, response: etree._Element) -> None:
            method = svc.add if adding else svc.remove
            outcome = method(system, ftype, *arguments(ftype, op))
            if outcome.warning:
                log.info("%s for %s: %s", op_name(op), system, scrub(outcome.warning))
            result(response, outcome.result.value)
        return run
    found: dict[str, Operation] = {}
    for ftype in filters.TYPES:
        found[ftype.add_operation] = single(ftype, True)
        found[ftype.remove_operation] = single(ftype, False)
    return found


def op_name(op: etree._Element) -> str:
    return etree.QName(op).localname


def result(response: etree._Element, text: str) -> None:
    etree.SubElement(response, f"{{{TNS}}}Result").text = text


def remove_all(svc, system: str, op: etree._Element, response: etree._Element) -> None:
    group = FILTER_GROUPS[_text(op, TNS, "FilterGroup")]
    result(response, f"REMOVED {svc.remove_all(system, group)}")


def get_all_filters(svc, system: str, op: etree._Element, response: etree._Element) -> None:
    """AgeRange, ChangeCode, MunicipalityCode (no leading zeros), PNR, noFilter.

    Children are made in place (``SubElement`` under the element that declares the
    namespaces), which for 10,000 PNRs is several times faster than building and
    appending them.
    """
    listings = svc.get_all_filters(system).listings
    add = etree.SubElement
    for start, end in listings.get("age_ranges", []):
        age = add(response, f"{{{TNS}}}AgeRange")
        add(age, f"{{{TNS}}}StartAge").text = str(start)
        add(age, f"{{{TNS}}}EndAge").text = str(end)
    for tag, values in ((f"{{{TNS}}}ChangeCode", listings.get("change_codes", [])),
                        (f"{{{TNS}}}MunicipalityCode",
                         [str(int(c)) for c in listings.get("municipality_codes", [])]),
                        (f"{{{CPR}}}PNR", listings.get("pnrs", []))):
        for value in values:
            add(response, tag).text = str(value)
    add(response, f"{{{TNS}}}noFilter").text = "true" if listings.get("no_filter") else "false"


@cache
def operations() -> dict[str, Operation]:
    """Operation name -> what it does with the service; every name the WSDL offers."""
    return {**_filter_operations(), "RemoveAll": remove_all, "GetAllFilters": get_all_filters}


# -- replies ---------------------------------------------------------------------------
_NSMAP_REPLY = {None: CTX, "ns2": CPR, "ns3": TNS}


def body_element() -> etree._Element:
    """``soap:Body`` of a new ``soap:Envelope``: replies are built inside it, never
    moved there (moving 10,000 children re-resolves each one's namespace)."""
    env = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"soap": SOAP_ENV})
    return etree.SubElement(env, f"{{{SOAP_ENV}}}Body")


def serialised(element: etree._Element) -> bytes:
    """The whole envelope ``element`` is in, as UTF-8 with a declaration."""
    return etree.tostring(element.getroottree(), xml_declaration=True, encoding="UTF-8")


def response_element(operation: str) -> etree._Element:
    """``ns3:<operation>Response`` in a new envelope, declaring the prefixes clients
    index by."""
    return etree.SubElement(body_element(), f"{{{TNS}}}{operation}Response",
                            nsmap=_NSMAP_REPLY)


def fault(code: str, message: str,
          detail: Callable[[etree._Element], None] | None = None) -> Response:
    """A ``soap:Fault`` (HTTP 500); ``detail`` fills the fault's ``detail`` element,
    for a service whose contract declares one (SF1520's ServiceplatformFault)."""
    element = etree.SubElement(body_element(), f"{{{SOAP_ENV}}}Fault")
    etree.SubElement(element, "faultcode").text = f"soap:{code}"
    etree.SubElement(element, "faultstring").text = scrub(message)
    if detail is not None:
        detail(etree.SubElement(element, "detail"))
    return Response(serialised(element), status_code=500, media_type=XML)


XML = "text/xml; charset=utf-8"


# -- the endpoint ----------------------------------------------------------------------
router = APIRouter(tags=["SF6002 SOAP"])


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused as soon as it passes ``limit`` (declared or as received)."""
    if (declared_length(request.scope) or 0) > limit:
        raise SoapFault(f"request body larger than {limit} bytes")
    chunks, seen = [], 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > limit:
            raise SoapFault(f"request body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _config(request: Request) -> SoapConfig:
    return request.app.state.soap


@dataclass(frozen=True)
class SoapConfig:
    """What the endpoint needs from the app: certificate source and body cap."""

    certificates: ClientCertificates = field(default_factory=ClientCertificates)
    max_body_bytes: int = MAX_BODY_BYTES


def _call(engine, caller: CallerIdentity, op: etree._Element) -> bytes:
    name = op_name(op)
    context = call_context(op)
    svc = auth.authorise(engine, caller, context, name)
    response = response_element(name)
    operations()[name](svc, context.user_system_uuid, op, response)
    return serialised(response)


async def read_call(request: Request, namespace: str = TNS,
                    known: Collection[str] | None = None,
                    checker: etree.XMLSchema | None = None
                    ) -> tuple[CallerIdentity, etree._Element]:
    """Who calls (the client certificate) and the operation element, parsed, normalised
    and valid against ``checker``: what every SOAP endpoint here does before its own
    work (defaults: SF6002's namespace, operations and schema). Raises
    :class:`SoapFault`."""
    config = _config(request)
    fingerprint = config.certificates.fingerprint(request.scope)
    charset = content_charset(request.headers.get("content-type"))
    body = await read_body(request, config.max_body_bytes)
    op = operation_element(parse_envelope(body, charset), namespace, known)
    normalise(op)
    validate(op, checker)
    return CallerIdentity(transport="soap", certificate_sha256=fingerprint), op


@router.post(PATH, name="SF6002", include_in_schema=False)
async def soap_call(request: Request) -> Response:
    try:
        caller, op = await read_call(request)
        engine = request.app.state.cpr.engine
        return Response(await in_thread(request.app.state, _call, engine, caller, op),
                        media_type=XML)
    except SoapFault as e:
        log.info("SF6002 request refused: %s", e)
        return fault(e.code, str(e))
    except NotAuthorised as e:
        log.info("SF6002 call not authorised: %s", e.check)
        return fault("Client", f"not authorised: {e.check}")
    except FilterInputError as e:
        return fault("Client", f"{e.rule}: {e}")
    except UnknownSubscriber as e:
        return fault("Client", str(e))
    except Exception as e:  # anything else: a fault, never a stack trace
        log.error("internal error in the SF6002 endpoint: %s", type(e).__name__)
        return fault("Server", "internal error")


def _document(name: str) -> bytes:
    return (WSDL_DIR / name).read_bytes()


@router.get(PATH, name="SF6002 WSDL", include_in_schema=False)
def wsdl(request: Request) -> Response:
    """``?wsdl``: our WSDL with this URL as the address; ``?xsd=<name>``: a schema."""
    xsd = request.query_params.get("xsd")
    if xsd is not None:
        return schema_document(xsd)
    if "wsdl" not in request.query_params:
        return fault("Client", "GET serves ?wsdl or ?xsd=<name>; operations are POSTed")
    scheme = _config(request).certificates.public_scheme(request.scope)
    address = str(request.url.replace(query="", scheme=scheme))
    text = _document(WSDL).replace(
        b'location="https://localhost/service/CPRSubscription/CPRSubscription/1/"',
        f'location="{address}"'.encode())
    return Response(text, media_type="text/xml")


@router.get(PATH + "{name}", name="SF6002 schema", include_in_schema=False)
def schema_document(name: str) -> Response:
    if name not in SCHEMAS:
        return Response(f"no schema {name[:80]!r}", status_code=404, media_type="text/plain")
    return Response(_document(name), media_type="text/xml")
