"""The compose proxy's nginx configuration, run by a real nginx on 127.0.0.1 (issue 12,
item 5): ``nginx -t`` accepts it, and a zeep client with a client certificate reaches our
app through it (mutual TLS at nginx, the certificate passed on in the header)."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
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
from support.servers import api_serve, free_port
from support.soapclient import CTX, PNR_1, A, register

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "deploy/nginx/templates/cpr-abonnement.conf.template"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
pytestmark = pytest.mark.skipif(not Path(NGINX).exists(),
                                reason="nginx not installed (scripts/test.sh installs it)")


def render(variables: dict[str, str]) -> str:
    """What the nginx image's envsubst step does: ``${NAME}`` of the given names only."""
    return re.sub(r"\$\{([A-Z_]+)\}", lambda m: variables[m.group(1)], TEMPLATE.read_text())


def nginx_conf(tmp: Path, upstream: str, port: int) -> Path:
    server = tmp / "server.conf"
    server.write_text(render({"CPRSUB_API_UPSTREAM": upstream, "CPRSUB_PROXY_PORT":
                              f"127.0.0.1:{port}", "CPRSUB_PROXY_TLS_DIR": str(tmp)}))
    conf = tmp / "nginx.conf"
    temp = "".join(f"{k}_temp_path {tmp}/{k};\n" for k in
                   ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    conf.write_text(f"daemon off; pid {tmp}/nginx.pid; error_log {tmp}/error.log;\n"
                    f"events {{}}\nhttp {{\naccess_log off;\n{temp}include {server};\n}}\n")
    return conf


@pytest.fixture
def proxy_pki(test_ca, tmp_path):  # noqa: F811
    cert, key = test_ca.server().write(tmp_path, "server")
    assert (cert, key) == (tmp_path / "server.pem", tmp_path / "server.key")
    test_ca.write(tmp_path, "client-ca")
    return tmp_path


def test_nginx_accepts_the_configuration(proxy_pki):
    conf = nginx_conf(proxy_pki, "127.0.0.1:9", free_port())
    done = subprocess.run([NGINX, "-t", "-c", str(conf)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.fixture
def nginx(proxy_pki):
    def start(upstream: str) -> str:
        port = free_port()
        process = subprocess.Popen([NGINX, "-c", str(nginx_conf(proxy_pki, upstream, port))],
                                   stderr=subprocess.PIPE)
        started.append(process)
        deadline = time.monotonic() + 10
        while not (proxy_pki / "nginx.pid").exists():
            assert process.poll() is None and time.monotonic() < deadline, \
                process.stderr.read().decode() if process.stderr else "nginx died"
            time.sleep(0.05)
        return f"https://127.0.0.1:{port}"
    started: list[subprocess.Popen] = []
    yield start
    for process in started:
        process.terminate()
        process.wait(timeout=10)


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
