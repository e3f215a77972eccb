"""The subscription REST API: the ten operations, bulk PNR calls, administration.

One FastAPI application, mounted into Airflow's API server by ``plugins/cpr_api.py``
and runnable on its own (``uvicorn --factory cpr_abonnement.api.app:create_app``) for
deployments that keep the subscriber-facing API apart from Airflow.

Airflow mounts plugin apps without authentication, so this app authenticates every
call itself: ``Authorization: Bearer <token>`` with a token issued per IT system (or to
an administrator). As in SF6002, each request carries an ``invocationContext`` whose
``userSystemUUID`` names the subscriber acted on; it must be the caller's own (403
otherwise), so one system can never read or change another's filters. Administrators
may act on any subscriber and manage subscribers and credentials.

Error responses never contain a stack trace or an unmasked PNR: FastAPI's default
422 body echoes the offending input, so it is replaced here by one naming the field
and the rule only, and every error text is passed through
:func:`cpr_abonnement.cpr_number.scrub` (a PNR typed into a field name or a code field is
masked too).

A request with a body is authenticated before the body is read, and bodies are
capped at ``CPRSUB_API_MAX_BODY_BYTES`` (16 MiB by default; 413 beyond): see
:mod:`cpr_abonnement.api.guard`. A bulk call takes at most :data:`MAX_BULK_PNRS`.
Who may call what is decided by :mod:`cpr_abonnement.api.auth`, the same check the
SOAP endpoint makes; refused calls (another system's filters, an administrator's
operation) are audited as ``DENIED: <check>`` with transport ``rest``.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the dependency
# annotations (``Caller``, ``Admin``) at runtime.
import datetime as dt
import logging
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, StrictInt, create_model
from sqlalchemy import Engine

from cpr_abonnement import filters
from cpr_abonnement.api import person_lookup, persons_rest, soap
from cpr_abonnement.api.auth import REST, CallContext, CallerIdentity, authorise, authorise_admin
from cpr_abonnement.api.databases import Databases, default_engine
from cpr_abonnement.api.docs import mount_offline_docs
from cpr_abonnement.api.guard import PRINCIPAL, UNAUTHENTICATED, BodyGuard, authenticate
from cpr_abonnement.api.scrubbing import ScrubbedPaths
from cpr_abonnement.api.threads import in_thread
from cpr_abonnement.cpr_number import scrub
from cpr_abonnement.errors import (
    FilterInputError,
    NotAuthorised,
    RegisteredToAnotherSystem,
    SubscriberExists,
    UnknownSubscriber,
)
from cpr_abonnement.filters.base import Argument, FilterType
from cpr_abonnement.identities import credentials
from cpr_abonnement.identities.credentials import Principal, Role
from cpr_abonnement.replica.database import replica_engine
from cpr_abonnement.settings import Settings
from cpr_abonnement.subscriptions.outcomes import Registration, SubscriberDetails
from cpr_abonnement.subscriptions.rules import AGREEMENT_SERVICES, DEFAULT_AGREEMENT_SERVICE
from cpr_abonnement.subscriptions.service import SubscriptionService

log = logging.getLogger(__name__)

#: The API's description in Swagger UI and ReDoc, for developers of subscribing IT systems.
OVERVIEW = """
Register which persons your IT system wants to hear about. Every CPR delivery day the
service sends your system one file in CPR's own change-extract format, holding every
record of each person that matches at least one of your filters (PNR, age range,
municipality code, event code, or *no filter* for everyone).

**Authentication.** Send `Authorization: Bearer <token>` with the token issued to your
IT system by the service operator. Every call carries an `invocationContext` whose
`userSystemUUID` is your own IT system's UUID; naming another system is refused (403).

**Results.** Operations answer with SF6002's result words (`ADDED`, `ALREADY_EXISTED`,
`REMOVED`, `NON_EXISTING`...). Adding a filter that is already in force is not an error.
A change takes effect from the next extract processed after it; files already produced
never change. Invalid input is answered 422 with the rule it breaks, and nothing is
stored. CPR numbers are never echoed back in errors.

The same operations are offered as the SF6002 SOAP service (mutual TLS) under
`/service/CPRSubscription/CPRSubscription/1/`.

**Person look-ups**: `GET /v1/persons/{pnr}`, SF1520's content (SOAP under
`/service/CPR/PersonBaseDataExtended/4`); it needs an SF1520 service agreement.
"""
EXAMPLE_UUID = "6f1f0b8e-6a55-4f55-9d7b-1c5c1f3a0001"
#: PNRs per bulk call: 1,000,000 as JSON is about 14 MB, within the default body cap.
MAX_BULK_PNRS = 1_000_000


class InvocationContext(BaseModel):
    userSystemUUID: UUID = Field(examples=[EXAMPLE_UUID])


class _Call(BaseModel):
    model_config = ConfigDict(extra="forbid")
    invocationContext: InvocationContext


class RemoveAllCall(_Call):
    filterGroup: str = Field(examples=["PNR"],
                             description=", ".join(t.group for t in filters.TYPES[:-1])
                             + f" or {filters.TYPES[-1].group}")


class GetAllFiltersCall(_Call):
    asOf: dt.datetime | None = Field(
        default=None, description="filters in force at this instant (default: now)")


class ResultOut(BaseModel):
    result: str = Field(examples=["ADDED"])
    warning: str | None = None


class RemovedOut(BaseModel):
    removed: int


class BulkOut(BaseModel):
    counts: dict[str, int]
    results: list[str]


#: Checked by the service against the registered modes
#: (:mod:`cpr_abonnement.delivery.modes`), so a mode added there is accepted here too.
_MODES_HELP = "a registered delivery mode: push (default) or pickup"


class SubscriberIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    uuid: UUID = Field(examples=[EXAMPLE_UUID])
    name: str = Field(examples=["Aalborg Kommune – ESDH"])
    serves: str | None = Field(default=None, examples=["0851 Aalborg"])
    sftpConnId: str | None = Field(default=None, examples=["sftp_aalborg_esdh"])
    remoteDir: str = "."
    serviceAgreements: list[UUID] = Field(
        default=[], max_length=100, examples=[["11111111-2222-4333-8444-555555555555"]],
        description="ServiceAgreementUUIDs of the IT system (SF6002 over mutual TLS)")
    deliveryMode: str = Field(default="push", max_length=32, description=_MODES_HELP)
    pickupAccount: str | None = Field(default=None, max_length=64,
                                      description="pick-up login (default: the UUID)")
    sshKeys: list[Annotated[str, Field(max_length=8192)]] = Field(
        default=[], max_length=20, description="OpenSSH public key lines of the pick-up account")


class SshKeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str = Field(max_length=8192, description="one OpenSSH public key line (*.pub)",
                     examples=["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA... it@herning"])


class DeliveryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    deliveryMode: str = Field(max_length=32, description=_MODES_HELP)
    pickupAccount: str | None = Field(default=None, max_length=64)
    sftpConnId: str | None = None
    remoteDir: str | None = None


class CertificateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pem: str = Field(max_length=65_536, description="the IT system's client certificate, PEM")


class ServiceAgreementIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    serviceAgreementUUID: UUID = Field(examples=["11111111-2222-4333-8444-555555555555"])
    service: Literal[AGREEMENT_SERVICES] = Field(
        default=DEFAULT_AGREEMENT_SERVICE,
        description="sf6002 (subscriptions) or sf1520 (person look-ups): an agreement "
                    "authorises calls to its own service only")


class CredentialIn(BaseModel):
    label: str = Field(examples=["ESDH production"])


class TokenOut(BaseModel):
    token: str
    note: str = "Shown once; store it in the IT system's secret store."


_bearer = HTTPBearer(auto_error=False)


def _engine(request: Request) -> Engine:
    return request.app.state.cpr.engine


async def _principal(
    request: Request,
    auth: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller; for a request with a body :class:`BodyGuard` has already checked it."""
    found = getattr(request.state, PRINCIPAL, None)
    if found is None and auth:
        found = await authenticate(request.app.state, auth.credentials)
    if found is None:
        raise HTTPException(401, UNAUTHENTICATED, headers={"WWW-Authenticate": "Bearer"})
    return found


Caller = Annotated[Principal, Depends(_principal)]


def _operation(request: Request) -> str:
    """The operation a request names: its route's name (the SF6002 operation name)."""
    route = request.scope.get("route")
    return getattr(route, "name", None) or request.url.path.rsplit("/", 1)[-1]


def _admin(who: Caller, request: Request) -> SubscriptionService:
    """The service for an administrator's operation (:func:`authorise_admin`: anyone
    else gets 403, audited ``DENIED: administrator required``)."""
    return authorise_admin(_engine(request), CallerIdentity(REST, principal=who),
                           _operation(request), request.path_params.get("uuid"))


#: An administrator's operations are run through this service only.
Admin = Annotated[SubscriptionService, Depends(_admin)]


def _service(request: Request, who: Principal, call: _Call) -> tuple[SubscriptionService, str]:
    """The service acting for the call's subscriber, after :func:`authorise` (the same
    check every transport makes; a refusal is audited and answered 403)."""
    system = str(call.invocationContext.userSystemUUID)
    svc = authorise(_engine(request), CallerIdentity(REST, principal=who),
                    CallContext(system), _operation(request))
    return svc, system


T = TypeVar("T")


async def _acting(request: Request, who: Principal, call: _Call,
                  act: Callable[[SubscriptionService, str], T]) -> T:
    """``act(service, system)`` for the call's subscriber, after :func:`_service`'s
    check, both in one thread-pool hand-off (see :data:`ops`)."""
    return await in_thread(request.app.state, lambda: act(*_service(request, who, call)))


def _outcome(o: Any) -> ResultOut:
    return ResultOut(result=o.result.value, warning=o.warning)


def _bulk_out(b: Any) -> BulkOut:
    return BulkOut(counts=b.counts, results=b.results)


#: The operations IT systems call by the ten thousand are ``async`` and hand their
#: database work to the thread pool once: FastAPI runs a plain ``def`` endpoint in one
#: pool thread and validates its answer in another, and under twenty concurrent calls
#: those hand-offs cost the server more than the call's own work.
ops = APIRouter(prefix="/v1", tags=["subscription operations"])
adm = APIRouter(prefix="/v1/admin", tags=["administration"])


#: JSON types of filter arguments. Strict ints: JSON true/false and "5" are not ages
#: (pydantic's lax mode takes true as 1).
_JSON_TYPES: dict[type, Any] = {int: StrictInt, str: str}


def _field(argument: Argument) -> tuple[Any, Any]:
    return (_JSON_TYPES[argument.kind],
            Field(examples=list(argument.examples), description=argument.help))


def _call_model(ftype: FilterType) -> type[_Call]:
    """The request body of a type's Add/Remove operation: its arguments' API names."""
    return create_model(f"{type(ftype).__name__}Call", __base__=_Call,
                        **{a.api: _field(a) for a in ftype.arguments})


def _bulk_model(ftype: FilterType) -> type[_Call]:
    """``Add<group>Subscriptions``' body: the one argument, plural, as a list."""
    (argument,) = ftype.arguments
    kind = _JSON_TYPES[argument.kind]
    return create_model(f"{type(ftype).__name__}BulkCall", __base__=_Call, **{
        argument.api + "s": (list[kind], Field(examples=[list(argument.examples)],
                                               max_length=MAX_BULK_PNRS))})


def _summary(ftype: FilterType, operation: str) -> str:
    """The operation's one-line title in the docs (instead of FastAPI's ``Addpnr...``)."""
    what = (f"{ftype.label} (bulk)" if operation.endswith("s")
            else ftype.noun if ftype.arguments else ftype.label)
    return f"{'Add' if operation.startswith('Add') else 'Remove'} {what}"


def _describe(ftype: FilterType, operation: str) -> str:
    """What an Add/Remove operation does, in the words of a subscribing IT system."""
    plural = operation.endswith("s")
    what = (f"a list of {ftype.label}" if plural
            else f"one {ftype.noun} filter" if ftype.arguments
            else f"the *{ftype.label}* subscription (every person of each extract)")
    args = "; ".join(f"`{a.api}`: {a.help}" for a in ftype.arguments)
    if operation.startswith("Add"):
        text = (f"Subscribe your IT system to {what}. From the next delivery day, persons "
                f"it matches are in your file. Answers `ADDED`, or `ALREADY_EXISTED` when "
                f"it was already in force (not an error).")
    else:
        text = (f"Stop subscribing to {what}. From the next delivery day, persons it "
                f"matched are no longer selected by it. Answers `REMOVED`, or "
                f"`{ftype.missing}` when it was not in force.")
    if plural:
        text += " One transaction: counts per result and one result per value, in order."
    return text + (f"\n\n{args}" if args else "")


def _single_route(router: APIRouter, ftype: FilterType, operation: str,
                  method: Callable[..., Any]) -> None:
    body = _call_model(ftype)

    async def handler(call: body, who: Caller, request: Request) -> ResultOut:
        return await _acting(request, who, call, lambda svc, system: _outcome(
            method(svc, system, ftype, *(getattr(call, a.api) for a in ftype.arguments))))
    router.add_api_route(f"/{operation}", handler, methods=["POST"], name=operation,
                      summary=_summary(ftype, operation),
                      description=_describe(ftype, operation))


def _bulk_route(router: APIRouter, ftype: FilterType, operation: str,
                method: Callable[..., Any]) -> None:
    body = _bulk_model(ftype)
    field = ftype.arguments[0].api + "s"

    async def handler(call: body, who: Caller, request: Request) -> BulkOut:
        return await _acting(request, who, call, lambda svc, system: _bulk_out(
            method(svc, system, ftype, getattr(call, field))))
    router.add_api_route(f"/{operation}", handler, methods=["POST"], name=operation,
                      summary=_summary(ftype, operation),
                      description=_describe(ftype, operation))


def filter_routes() -> APIRouter:
    """``Add<group>Subscription`` and ``Remove<group>Subscription`` (and the plural pair
    for a bulk type) of every filter type registered when the app is built, named as
    the SF6002 operations."""
    router = APIRouter(prefix="/v1", tags=["subscription operations"])
    for ftype in filters.TYPES:
        _single_route(router, ftype, ftype.add_operation, SubscriptionService.add)
        _single_route(router, ftype, ftype.remove_operation, SubscriptionService.remove)
        if ftype.bulk:
            _bulk_route(router, ftype, ftype.add_operation + "s", SubscriptionService.add_many)
            _bulk_route(router, ftype, ftype.remove_operation + "s",
                        SubscriptionService.remove_many)
    return router


@ops.post("/RemoveAll", name="RemoveAll", summary="Remove all filters of one group")
async def remove_all(call: RemoveAllCall, who: Caller, request: Request) -> RemovedOut:
    """Remove every filter of one group (`filterGroup`) from your IT system at once;
    answers how many were removed (0 is not an error)."""
    return await _acting(request, who, call, lambda svc, system: RemovedOut(
        removed=svc.remove_all(system, call.filterGroup)))


@ops.post("/GetAllFilters", name="GetAllFilters", summary="Get all filters")
async def get_all_filters(call: GetAllFiltersCall, who: Caller, request: Request
                          ) -> dict[str, Any]:
    """Every filter of your IT system in force now, or at `asOf` (history is kept): age
    ranges, municipality codes, event codes, PNRs, and whether *no filter* is on."""
    return await _acting(request, who, call,
                         lambda svc, system: svc.get_all_filters(system, call.asOf).to_dict())


@adm.post("/subscribers", status_code=201, name="AddSubscriber")
def create_subscriber(body: SubscriberIn, svc: Admin) -> dict[str, Any]:
    info = svc.add_subscriber(
        str(body.uuid), body.name, serves=body.serves, sftp_conn_id=body.sftpConnId,
        remote_dir=body.remoteDir, service_agreements=[str(a) for a in body.serviceAgreements],
        delivery_mode=body.deliveryMode, pickup_account=body.pickupAccount,
        ssh_keys=body.sshKeys)
    return _subscriber_json(info)


@adm.get("/subscribers", name="ListSubscribers")
def list_subscribers(svc: Admin) -> list[dict[str, Any]]:
    return [_subscriber_json(i) for i in svc.subscribers()]


@adm.post("/subscribers/{uuid}/disable", name="DisableSubscriber")
def disable_subscriber(uuid: UUID, svc: Admin) -> dict[str, Any]:
    return _subscriber_json(svc.set_active(str(uuid), False))


@adm.post("/subscribers/{uuid}/credentials", status_code=201, name="IssueCredential")
def issue_credential(uuid: UUID, body: CredentialIn, svc: Admin, request: Request) -> TokenOut:
    token = credentials.issue(_engine(request), role=Role.SUBSCRIBER, label=body.label,
                              subscriber_uuid=str(uuid), issued_by=svc.caller)
    return TokenOut(token=token)


def _registered(svc: SubscriptionService, uuid: UUID, done: Registration) -> dict[str, Any]:
    """A registration's result and the subscriber as it now is."""
    return {"result": done.result.value, "subscriber": _subscriber_json(svc.subscriber(str(uuid))),
            **({"warning": done.warning} if done.warning else {})}


@adm.post("/subscribers/{uuid}/certificates", name="AddCertificate")
def add_certificate(uuid: UUID, body: CertificateIn, svc: Admin) -> dict[str, Any]:
    """Register a client certificate (PEM) for the IT system; 409 if another has it."""
    return _registered(svc, uuid, svc.add_certificate(str(uuid), body.pem))


@adm.delete("/subscribers/{uuid}/certificates/{sha256}", name="RemoveCertificate")
def remove_certificate(uuid: UUID, sha256: str, svc: Admin) -> dict[str, Any]:
    return _registered(svc, uuid, svc.remove_certificate(str(uuid), sha256))


@adm.post("/subscribers/{uuid}/service-agreements", name="AddServiceAgreement")
def add_service_agreement(uuid: UUID, body: ServiceAgreementIn, svc: Admin) -> dict[str, Any]:
    return _registered(svc, uuid, svc.add_service_agreement(
        str(uuid), str(body.serviceAgreementUUID), body.service))


@adm.delete("/subscribers/{uuid}/service-agreements/{agreement}",
            name="RemoveServiceAgreement")
def remove_service_agreement(uuid: UUID, agreement: UUID, svc: Admin) -> dict[str, Any]:
    return _registered(svc, uuid, svc.remove_service_agreement(str(uuid), str(agreement)))


@adm.post("/subscribers/{uuid}/delivery", name="SetDelivery")
def set_delivery(uuid: UUID, body: DeliveryIn, svc: Admin) -> dict[str, Any]:
    """Switch the IT system between push and pick-up (409 if the account is taken)."""
    return _subscriber_json(svc.set_delivery(
        str(uuid), body.deliveryMode, pickup_account=body.pickupAccount,
        sftp_conn_id=body.sftpConnId, remote_dir=body.remoteDir))


@adm.post("/subscribers/{uuid}/ssh-keys", name="AddSshKey")
def add_ssh_key(uuid: UUID, body: SshKeyIn, svc: Admin) -> dict[str, Any]:
    """Register an SSH public key for pick-up (422 rule ``ssh key``; 409 if another
    system has it)."""
    return _registered(svc, uuid, svc.add_ssh_key(str(uuid), body.key))


@adm.delete("/subscribers/{uuid}/ssh-keys", name="RemoveSshKey")
def remove_ssh_key(uuid: UUID, fingerprint: str, svc: Admin) -> dict[str, Any]:
    """``?fingerprint=SHA256:...`` (a query parameter: base64 holds ``/``)."""
    return _registered(svc, uuid, svc.remove_ssh_key(str(uuid), fingerprint))


async def _body(request: Request) -> bytes:
    """A request's body as sent: a registration is read from its bytes by the same
    function as the command line's file (:func:`~cpr_abonnement.subscriptions.
    registration.read_document`), so both refuse the same things the same way."""
    return await request.body()


#: ``Register``'s body in the API description (read as bytes, so not declared).
_DOCUMENT_BODY = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": {"type": "object", "title": "Registration document",
               "description": "the JSON form of `cprsub subscriber register`'s YAML"}}}}}


@adm.post("/registrations", name="Register", openapi_extra=_DOCUMENT_BODY)
def register(svc: Admin, data: Annotated[bytes, Depends(_body)]) -> dict[str, Any]:
    """Create or update an IT system from its registration document (the JSON form of
    ``cprsub subscriber register``'s YAML, UTF-8); the same document twice changes
    nothing. 422 names the field and rule broken; 409 if another system holds an
    agreement, certificate, key, account or the Airflow connection named. A connection
    is only named here: creating one with credentials is the command line's (run where
    Airflow's database is)."""
    from cpr_abonnement.errors import InvalidRegistration
    from cpr_abonnement.onboarding.registration import read_document

    doc = read_document(data, syntax="json")
    if doc.push and doc.push.login:
        raise InvalidRegistration("the API does not take credentials; create the "
                                  "connection with `cprsub subscriber register` or name an "
                                  "existing one", field="delivery.login", rule="credentials")
    done = svc.register(doc)
    return {"result": done.result, "changes": list(done.changes),
            "document": svc.registration_document(doc.uuid)}


@adm.get("/registrations/{uuid}", name="ShowRegistration")
def show_registration(uuid: UUID, svc: Admin) -> dict[str, Any]:
    return svc.registration_document(str(uuid))


async def _bad_input(_: Request, exc: Exception) -> JSONResponse:
    rule = getattr(exc, "rule", "input")  # registered for FilterInputError only
    where = {"field": exc.field} if getattr(exc, "field", None) else {}  # a registration's
    return JSONResponse({"detail": scrub(str(exc)), "rule": rule, **where}, status_code=422)


async def _schema(_: Request, exc: Exception) -> JSONResponse:
    problems = exc.errors() if isinstance(exc, RequestValidationError) else []
    # Never ``input`` (the offending value); the field path and message are scrubbed
    # too, since an unexpected key or a custom message can carry a PNR.
    errors = [{"field": scrub(".".join(str(p) for p in e.get("loc", ()) if p != "body")),
               "rule": scrub(str(e.get("msg", "invalid")))} for e in problems]
    return JSONResponse({"detail": "request does not match the schema", "errors": errors},
                        status_code=422)


async def _conflict(_: Request, exc: Exception) -> JSONResponse:
    """409: another IT system holds it; a registration document's field is named."""
    where = {"field": exc.field} if getattr(exc, "field", None) else {}
    return JSONResponse({"detail": scrub(str(exc)), "rule": getattr(exc, "rule", "conflict"),
                         **where}, status_code=409)


def _status(code: int) -> Callable[[Request, Exception], Any]:
    async def handler(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": scrub(str(exc))}, status_code=code)
    return handler


async def _internal(_: Request, exc: Exception) -> JSONResponse:
    log.error("internal error in the subscription API: %s", type(exc).__name__)
    return JSONResponse({"detail": "internal error"}, status_code=500)


def create_app(engine_factory: Callable[[], Engine] | None = None, *,
               replica_of: Callable[[Engine], Engine] = replica_engine,
               max_body_bytes: int | None = None,
               client_certificates: soap.ClientCertificates | None = None) -> FastAPI:
    """Build the app; the database engine is created on the first request, not here.

    :param replica_of: the CPR replica's database given the filter database's
        (default: ``CPRSUB_REPLICA_DB_URL``, else the filter database).
    :param max_body_bytes: body cap; default ``CPRSUB_API_MAX_BODY_BYTES`` (16 MiB).
    :param client_certificates: where the SF6002 SOAP endpoint reads the caller's
        certificate; default from ``CPRSUB_API_CLIENT_CERT_HEADER`` /
        ``CPRSUB_API_TRUSTED_PROXIES`` (else only from our own TLS connection).
    """
    app = FastAPI(title="CPR Abonnement subscriptions", version="1", description=OVERVIEW,
                  docs_url=None, redoc_url=None)
    mount_offline_docs(app)
    app.state.cpr = Databases(engine_factory or default_engine, replica_of)
    settings = app.state.settings = Settings.from_env()
    cap = max_body_bytes or settings.api_max_body_bytes
    app.state.soap = soap.SoapConfig(client_certificates
                                     or soap.ClientCertificates.from_settings(settings),
                                     min(cap, soap.MAX_BODY_BYTES))
    app.add_middleware(BodyGuard, max_body_bytes=cap,
                       certificate_paths=(soap.PATH, person_lookup.PATH))
    app.add_middleware(ScrubbedPaths)  # outermost: also the guard's own answers
    # Routes are matched in order: the operations IT systems call (SF6002's three
    # routes, then REST's) before the administration.
    app.include_router(soap.router)
    app.include_router(person_lookup.router)
    app.include_router(filter_routes())
    app.include_router(ops)
    app.include_router(persons_rest.router(_principal))
    app.include_router(adm)
    app.add_exception_handler(FilterInputError, _bad_input)
    app.add_exception_handler(RequestValidationError, _schema)
    app.add_exception_handler(UnknownSubscriber, _status(404))
    app.add_exception_handler(SubscriberExists, _status(409))
    app.add_exception_handler(RegisteredToAnotherSystem, _conflict)
    app.add_exception_handler(NotAuthorised, _status(403))
    for error, code in persons_rest.STATUS.items():
        app.add_exception_handler(error, _status(code))
    app.add_exception_handler(Exception, _internal)

    @app.get("/v1/health", tags=["operations"])
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def _camel(name: str) -> str:
    """``sftp_conn_id`` -> ``sftpConnId``: the REST API's spelling of a field."""
    head, *rest = name.split("_")
    return head + "".join(word.title() for word in rest)


def _subscriber_json(info: SubscriberDetails) -> dict[str, Any]:
    return info.to_json(_camel)
