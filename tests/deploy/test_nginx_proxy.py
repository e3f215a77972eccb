"""The compose proxy's nginx configuration, run by a real nginx on 127.0.0.1 (issue 12,
item 5): ``nginx -t`` accepts it, and a zeep client with a client certificate reaches our
app through it (mutual TLS at nginx, the certificate passed on in the header)."""

from __future__ import annotations

import http.client
import re
import ssl
import subprocess
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
import zeep
from requests.adapters import HTTPAdapter
from zeep.transports import Transport

from cpr_abonnement.api import soap
from cpr_abonnement.api.tls import TLS12_CIPHERS
from cpr_abonnement.subscriptions.service import SubscriptionService
from support.certs import test_ca  # noqa: F401 - the fixture
from support.proxy import NGINX, TEMPLATE, nginx_conf
from support.proxy import nginx as running_nginx
from support.servers import api_serve, free_port
from support.soapclient import CTX, PNR_1, A, register

pytestmark = pytest.mark.skipif(not Path(NGINX).exists(),
                                reason="nginx not installed (scripts/test.sh installs it)")


@pytest.fixture
def proxy_pki(test_ca, tmp_path):  # noqa: F811
    cert, key = test_ca.server().write(tmp_path, "server")
    assert (cert, key) == (tmp_path / "server.pem", tmp_path / "server.key")
    test_ca.server().write(tmp_path, "ui")  # the UI's server (airflow-ui.conf.template)
    test_ca.write(tmp_path, "client-ca")
    return tmp_path


def test_nginx_accepts_the_configuration(proxy_pki):
    conf = nginx_conf(proxy_pki, "127.0.0.1:9", free_port())
    done = subprocess.run([NGINX, "-t", "-c", str(conf)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.fixture
def nginx(proxy_pki):
    def start(upstream: str, **options) -> str:
        base, _ = stack.enter_context(running_nginx(proxy_pki, upstream, **options))
        return base
    with ExitStack() as stack:
        yield start


class FromAddress(HTTPAdapter):
    """Connections from another loopback address than the proxy's own."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, source_address=(self.address, 0), **kwargs)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_zeep_through_nginx_mutual_tls_to_the_app(engine, db_url, test_ca, tmp_path,  # noqa: F811
                                                  nginx):
    """The compose shape on one host: nginx terminates mutual TLS and sends the
    certificate header and ``X-Forwarded-For: <client>`` to ``cprsub api serve``, which
    trusts 127.0.0.1 (issue 21 item 4: the forwarded address used to be taken for the
    peer, and every call was refused)."""
    issued, files = register(engine, test_ca, tmp_path)
    with api_serve(["--db", db_url, "--client-cert-header", "X-SSL-Client-Cert",
                    "--trusted-proxy", "127.0.0.1/32"], tmp_path / "api.log") as (app_url, _):
        base = nginx(app_url.removeprefix("http://"))
        session = requests.Session()
        session.trust_env = False
        session.mount("https://", FromAddress("127.0.0.2"))  # the client is not the proxy
        session.verify = str(tmp_path / "client-ca.pem")
        session.cert = tuple(map(str, files["a"]))
        client = zeep.Client(base + soap.PATH + "?wsdl", transport=Transport(session=session))
        assert client.service.AddPNRSubscription(CTX, PNR_1) == "ADDED"
        assert client.service.GetAllFilters(CTX).PNR == [PNR_1]
        # The WSDL's address is the proxy's https URL (X-Forwarded-Proto from nginx).
        assert client.wsdl.services["CprSubscriptionWebService"].ports[
            "CprSubscriptionWebServicePort"].binding_options["address"] == base + soap.PATH
        # nginx answers a caller without a certificate itself (400), never the app.
        anonymous = requests.Session()
        anonymous.trust_env = False
        refused = anonymous.get(base + soap.PATH + "?wsdl", verify=session.verify, timeout=10)
        assert refused.status_code == 400 and "SSL certificate" in refused.text
    rows = SubscriptionService(engine, caller="t").audit_trail(A)
    assert rows[-1].certificate_sha256 == issued["a"].sha256


def test_nginx_and_api_serve_share_one_tls_policy():
    """Issue 21 item 5: a client meets the same suites at the proxy and at our server."""
    assert re.search(rf"\n\s*ssl_ciphers\s+{re.escape(TLS12_CIPHERS)};", TEMPLATE.read_text())


@contextmanager
def catch_all() -> Iterator[tuple[str, list[tuple[str, dict[str, str]]]]]:
    """An upstream that answers 200 to everything and records (path, headers) of each
    request it got: what passes the proxy is what reaches it."""
    seen: list[tuple[str, dict[str, str]]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
            body = f"upstream {self.path}".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_GET

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()


def raw_get(base: str, path: str, context: ssl.SSLContext, **headers: str) -> int:
    """GET ``path`` exactly as written (no dot-segment clean-up a client library does)."""
    host, port = base.removeprefix("https://").rsplit(":", 1)
    conn = http.client.HTTPSConnection(host, int(port), context=context, timeout=10)
    try:
        conn.request("GET", path, headers=headers)
        return conn.getresponse().status
    finally:
        conn.close()


def test_only_the_it_systems_endpoints_pass_and_the_ui_is_behind_tls(proxy_pki, nginx,
                                                                     test_ca):  # noqa: F811
    """Issue 22 item 3: the mutual-TLS server passes SF6002 (and ?wsdl) and the REST
    operations under the Airflow mount, nothing else: not the administration, Airflow's
    UI, /api/v2 or the task execution API. The UI's own TLS server passes the UI and
    /api/v2 but not /execution/, and never a client-certificate header."""
    client, _ = test_ca.client("Aalborg ESDH").write(proxy_pki, "client")
    it_system = ssl.create_default_context(cafile=str(proxy_pki / "client-ca.pem"))
    it_system.load_cert_chain(str(client), str(proxy_pki / "client.key"))
    browser = ssl.create_default_context(cafile=str(proxy_pki / "client-ca.pem"))
    ui_port = free_port()
    with catch_all() as (upstream, seen):
        base = nginx(upstream, prefix="/cpr-abonnement", ui_port=ui_port)
        ui = f"https://127.0.0.1:{ui_port}"
        soap_path = "/cpr-abonnement" + soap.PATH
        passed = {path: raw_get(base, path, it_system) for path in (
            soap_path, soap_path + "?wsdl", "/cpr-abonnement/v1/GetAllFilters")}
        refused = {path: raw_get(base, path, it_system) for path in (
            "/", "/api/v2/dags", "/execution/task-instances/x/run", "/auth/login",
            "/cpr-abonnement/v1/admin/subscribers", "/cpr-abonnement/console/health",
            "/cpr-abonnement/v1/../../api/v2/dags", "/cpr-abonnement/v1/%2e%2e/admin/x",
            "/cpr-abonnement/docs")}
        reached = len(seen)
        ui_passed = {path: raw_get(ui, path, browser, **{"X-SSL-Client-Cert": "forged"})
                     for path in ("/", "/api/v2/dags", "/cpr-abonnement/v1/admin/subscribers")}
        ui_refused = {path: raw_get(ui, path, browser) for path in (
            "/execution/task-instances/x/run", soap_path)}
    assert set(passed.values()) == {200}, passed
    assert set(refused.values()) == {404}, refused
    assert [p for p, _ in seen[:reached]] == list(passed)  # nothing refused reached it
    assert set(ui_passed.values()) == {200} and set(ui_refused.values()) == {404}
    assert [p for p, _ in seen[reached:]] == list(ui_passed)
    assert all("x-ssl-client-cert" not in headers for _, headers in seen[reached:])
