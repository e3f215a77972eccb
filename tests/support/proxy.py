"""The compose file's nginx proxy, run by a real nginx on 127.0.0.1: its templates
rendered as the nginx image renders them, for the proxy's tests and the API benches."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "deploy/nginx/templates/cpr-abonnement.conf.template"
UI_TEMPLATE = ROOT / "deploy/nginx/templates/airflow-ui.conf.template"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def render(variables: dict[str, str], template: Path = TEMPLATE) -> str:
    """What the nginx image's envsubst step does: ``${NAME}`` of the given names only."""
    return re.sub(r"\$\{([A-Z_]+)\}", lambda m: variables[m.group(1)], template.read_text())


def nginx_conf(tmp: Path, upstream: str, port: int, *, prefix: str = "",
               ui_port: int | None = None, worker_processes: str = "1") -> Path:
    """nginx.conf with the IT systems' server (the API mounted at ``prefix`` upstream)
    and, given ``ui_port``, the UI's server in front of the same upstream. ``tmp`` holds
    the proxy's server.pem, server.key and client-ca.pem."""
    server = tmp / "server.conf"
    text = render({"CPRSUB_API_UPSTREAM": upstream, "CPRSUB_PROXY_PORT": f"127.0.0.1:{port}",
                   "CPRSUB_PROXY_TLS_DIR": str(tmp), "CPRSUB_API_PREFIX": prefix})
    if ui_port:
        text += render({"CPRSUB_UI_UPSTREAM": upstream, "CPRSUB_UI_PORT":
                        f"127.0.0.1:{ui_port}", "CPRSUB_UI_TLS_DIR": str(tmp)}, UI_TEMPLATE)
    server.write_text(text)
    conf = tmp / "nginx.conf"
    temp = "".join(f"{k}_temp_path {tmp}/{k};\n" for k in
                   ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    conf.write_text(f"daemon off; pid {tmp}/nginx.pid; error_log {tmp}/error.log;\n"
                    f"worker_processes {worker_processes};\n"
                    f"events {{}}\nhttp {{\naccess_log off;\n{temp}include {server};\n}}\n")
    return conf


@contextmanager
def nginx(tmp: Path, upstream: str, **options) -> Iterator[tuple[str, subprocess.Popen]]:
    """nginx in front of ``upstream`` (host:port) until the block ends; yields its
    https base URL and its master process."""
    port = free_port()
    conf = nginx_conf(tmp, upstream, port, **options)
    process = subprocess.Popen([NGINX, "-c", str(conf)], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while not (tmp / "nginx.pid").exists():
            assert process.poll() is None and time.monotonic() < deadline, \
                process.stderr.read().decode() if process.stderr else "nginx died"
            time.sleep(0.05)
        yield f"https://127.0.0.1:{port}", process
    finally:
        process.terminate()
        process.wait(timeout=10)
        (tmp / "nginx.pid").unlink(missing_ok=True)
