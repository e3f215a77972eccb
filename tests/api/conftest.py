"""A real SF6002 endpoint for the SOAP tests: our app under uvicorn with mutual TLS on
127.0.0.1, a test CA and client certificates made in the test, SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from cpr_abonnement.api.app import create_app
from cpr_abonnement.api.tls import ServerTls
from support.certs import test_ca  # noqa: F401 - the fixture
from support.servers import uvicorn_server
from support.soapclient import Endpoint, register


@pytest.fixture
def endpoint(engine, test_ca, tmp_path) -> Endpoint:  # noqa: F811
    issued, files = register(engine, test_ca, tmp_path)
    cert, key = test_ca.server().write(tmp_path, "server")
    tls = ServerTls(cert, key, test_ca.write(tmp_path))
    with uvicorn_server(create_app(lambda: engine), **tls.uvicorn_options()) as base:
        yield Endpoint(base, tls.client_ca, files, issued, engine)
