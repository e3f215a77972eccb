"""Mutual TLS for ``cprsub api serve``: uvicorn, and the client certificate for the app.

uvicorn (0.54, pinned) verifies client certificates (``ssl_cert_reqs``,
``ssl_ca_certs``) but does not tell the application which certificate was presented:
the ASGI TLS extension (``scope["extensions"]["tls"]``) is only in open uvicorn pull
requests, and hypercorn (0.18) does not provide it either. The SF6002 endpoint needs
it to know which IT system calls. So :class:`ClientCertHttpToolsProtocol` (and the
pure-Python :class:`ClientCertH11Protocol`) subclass uvicorn's HTTP protocols and
override only ``connection_made``: they read the peer certificate from the connection's
``SSLObject`` once per connection and add the standard extension to every request's
scope on that connection. The app reads the standard key, so when uvicorn ships the
extension itself these classes can be dropped without touching the app. Chosen over
swapping the server (hypercorn lacks it too) and over an external proxy only (the
proxy stays supported: :class:`cpr_abonnement.api.soap.ClientCertificates`).

The protocol floor is TLS 1.2 with Mozilla's "intermediate" TLS 1.2 suites (ECDHE with
AES-GCM or ChaCha20-Poly1305; the DHE ones left out, as we ship no DH parameters): the
same as the compose proxy's nginx, so a client sees one policy whichever end it meets.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


def tls_extension(transport: Any) -> dict[str, Any] | None:
    """The ASGI TLS extension for a connection, or None when it is not TLS."""
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    return {"tls_version": None, "cipher_suite": None,
            "client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)] if der else [],
            "client_cert_name": None, "client_cert_error": None, "server_cert": None}


def with_extension(app: Any, extension: dict[str, Any]) -> Any:
    """``app`` with the TLS extension added to each scope (one connection's requests)."""
    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        scope.setdefault("extensions", {})["tls"] = extension
        await app(scope, receive, send)
    return wrapped


class _ClientCert:
    app: Any

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        extension = tls_extension(transport)
        if extension is not None:
            self.app = with_extension(self.app, extension)


class ClientCertHttpToolsProtocol(_ClientCert, HttpToolsProtocol):
    """uvicorn's httptools protocol, passing the client certificate to the app."""


class ClientCertH11Protocol(_ClientCert, H11Protocol):
    """uvicorn's h11 protocol, passing the client certificate to the app."""


#: Mozilla's "intermediate" configuration's TLS 1.2 suites, ECDHE only (TLS 1.3 suites are
#: OpenSSL's defaults, all of them AEAD). Also in deploy/nginx's template.
TLS12_CIPHERS = ":".join((
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305"))
MINIMUM_TLS = ssl.TLSVersion.TLSv1_2


def hardened_context(_config: Any, default_factory: Callable[[], ssl.SSLContext]
                     ) -> ssl.SSLContext:
    """uvicorn's context (certificates, client CA, the ciphers above) with TLS 1.2 as
    the floor: uvicorn has no option for the minimum version, only this hook. A
    module-level function, so ``--workers`` processes can be handed it."""
    context = default_factory()
    context.minimum_version = MINIMUM_TLS
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    return context


def server_options(tls: ServerTls | None) -> dict[str, Any]:
    """uvicorn's options for ``cprsub api serve``.

    ``proxy_headers`` is off: uvicorn's default rewrites the request's client address
    from ``X-Forwarded-For`` for any peer in ``forwarded_allow_ips`` (127.0.0.1), so a
    local process could pose as a trusted proxy, and a trusted proxy on the same host
    would be taken for its client. The address that decides trust in a client
    certificate header is the TCP peer's (:class:`~cpr_abonnement.api.soap.ClientCertificates`).
    """
    return {"proxy_headers": False, **(tls.uvicorn_options() if tls else {})}


@dataclass(frozen=True)
class ServerTls:
    """``--tls-cert``, ``--tls-key`` and ``--client-ca``: require client certificates."""

    cert: Path
    key: Path
    client_ca: Path

    def uvicorn_options(self) -> dict[str, Any]:
        for what, path in (("--tls-cert", self.cert), ("--tls-key", self.key),
                           ("--client-ca", self.client_ca)):
            if not path.is_file():
                raise FileNotFoundError(f"{what} {path} does not exist")
        return {"ssl_certfile": str(self.cert), "ssl_keyfile": str(self.key),
                "ssl_ca_certs": str(self.client_ca), "ssl_cert_reqs": ssl.CERT_REQUIRED,
                "ssl_ciphers": TLS12_CIPHERS, "ssl_context_factory": hardened_context,
                "http": ClientCertHttpToolsProtocol}
