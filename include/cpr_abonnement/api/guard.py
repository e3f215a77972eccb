"""ASGI middleware: authenticate before any request body is read, and bound its size.

FastAPI reads and parses a route's JSON body *before* it resolves dependencies, so an
authentication dependency alone lets an anonymous caller make the server read (and
hold in memory) a body of any size. This middleware runs first, on every request
that announces a body (``Content-Length`` > 0 or ``Transfer-Encoding``):

1. no valid bearer token: ``401`` at once, without reading a byte of the body;
2. a declared ``Content-Length`` over the cap: ``413`` at once;
3. otherwise the body is counted as it is received (chunked bodies have no length
   up front), and the read fails with ``413`` as soon as it passes the cap.

The principal found is handed to the route's dependency through the request state,
so a token is checked once per request.

Paths in ``certificate_paths`` (the SF6002 SOAP endpoint) are passed through: their
callers prove who they are with a client certificate, not a bearer token, and that
endpoint checks the certificate before reading the body and caps the body itself,
answering in SOAP faults (:mod:`cpr_abonnement.api.soap`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.datastructures import State
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse

from cpr_abonnement.api.airflow_access import airflow_principal
from cpr_abonnement.api.threads import in_thread
from cpr_abonnement.identities import credentials
from cpr_abonnement.identities.credentials import Principal

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Where the middleware leaves the authenticated caller (``request.state.<this>``).
PRINCIPAL = "cpr_principal"
UNAUTHENTICATED = "missing or invalid bearer token"


def bearer_token(scope: Scope) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, if there is one."""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                return None
            return token.strip()
    return None


async def authenticate(state: State, token: str) -> Principal | None:
    """The caller a bearer token stands for: one of our API tokens, else (inside
    Airflow's API server) an Airflow login, whose roles decide (:mod:`.airflow_access`).
    A token verified moments ago is answered here on the event loop; otherwise the
    database is asked on one of the app's database threads (``state`` is the app's;
    its ``cpr.engine`` is made on first use there)."""
    databases = state.cpr
    engine = databases.made_engine()
    found = credentials.remembered(engine, token) if engine is not None else None
    if found is None:
        found = await in_thread(
            state, lambda: credentials.authenticate(databases.engine, token))
    return found if found is not None else await airflow_principal(token)


def declared_length(scope: Scope) -> int | None:
    """``Content-Length`` as sent, or None for a chunked or unannounced body."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length" and value.strip().isdigit():
            return int(value)
    return None


def route_path(scope: Scope) -> str:
    """The path inside this app (without the prefix it is mounted under)."""
    path, root = scope.get("path", ""), scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path


def has_body(scope: Scope) -> bool:
    names = {name for name, _ in scope.get("headers", ())}
    return (declared_length(scope) or 0) > 0 or b"transfer-encoding" in names


def too_large(limit: int) -> str:
    return (f"request body larger than {limit} bytes (CPRSUB_API_MAX_BODY_BYTES); send "
            "bulk PNR lists in several calls, or load a file with "
            "`cprsub filters add-pnr --from-file`")


class BodyGuard:
    """The middleware; ``max_body_bytes`` is the cap (``CPRSUB_API_MAX_BODY_BYTES``)."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int,
                 certificate_paths: tuple[str, ...] = ()) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.certificate_paths = certificate_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or not has_body(scope)
                or route_path(scope) in self.certificate_paths):
            await self.app(scope, receive, send)
            return
        principal = await self._authenticate(scope)
        if principal is None:
            await JSONResponse({"detail": UNAUTHENTICATED}, status_code=401,
                               headers={"WWW-Authenticate": "Bearer"})(scope, receive, send)
            return
        if (declared_length(scope) or 0) > self.max_body_bytes:
            await JSONResponse({"detail": too_large(self.max_body_bytes)},
                               status_code=413)(scope, receive, send)
            return
        scope.setdefault("state", {})[PRINCIPAL] = principal
        await self.app(scope, self._counted(receive), send)

    async def _authenticate(self, scope: Scope) -> Principal | None:
        token = bearer_token(scope)
        if token is None:
            return None
        return await authenticate(scope["app"].state, token)

    def _counted(self, receive: Receive) -> Receive:
        """``receive`` that fails with 413 once the body passes the cap."""
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body_bytes:
                    # FastAPI re-raises an HTTPException from the body read as is.
                    raise HTTPException(413, too_large(self.max_body_bytes))
            return message
        return counted
