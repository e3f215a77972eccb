"""No PNR in access logs: request paths and query strings are masked before they are
logged.

Access logs are written by the server around our app, from the request's scope:
uvicorn's (``cprsub api serve``) when the response starts, Airflow's API server's
``HttpAccessLogMiddleware`` when the request is done, both from ``scope["path"]`` and
``scope["query_string"]``. A PNR can be in either (``/v1/admin/subscribers/<PNR>/…``
typed by mistake, ``?fingerprint=<PNR>``). Neither server offers a hook, so this
middleware masks them in the scope itself once routing no longer needs them: when the
response starts, before either log line is written. Both servers hand the app the same
scope object they log from.
"""

from __future__ import annotations

from urllib.parse import quote, unquote_plus

from cpr_abonnement.api.guard import ASGIApp, Message, Receive, Scope, Send
from cpr_abonnement.masking import scrub


def scrub_scope(scope: Scope) -> None:
    """Mask PNR-shaped text in the scope's path and query (decoded first, so a space
    written ``%20`` or ``+`` does not hide a PNR)."""
    scope["path"] = scrub(scope.get("path", ""))
    if "raw_path" in scope:
        scope["raw_path"] = quote(scope["path"]).encode("ascii")
    query = scope.get("query_string", b"").decode("latin-1")
    if query:
        masked = scrub(unquote_plus(query))
        scope["query_string"] = quote(masked, safe="=&/:,;*-_.~").encode("ascii")


class ScrubbedPaths:
    """ASGI middleware: the scope's path and query masked when the response starts."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_scrubbed(message: Message) -> None:
            if message["type"] == "http.response.start":
                scrub_scope(scope)
            await send(message)
        await self.app(scope, receive, send_scrubbed)
