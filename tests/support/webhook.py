"""A Slack Incoming Webhook stand-in: a real HTTP server on 127.0.0.1 that keeps what
it is sent and answers as Slack does (``ok``), or with a chosen error status."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Webhook:
    url: str
    status: int = 200
    posts: list[dict] = field(default_factory=list)

    def connection(self) -> str:
        """The Airflow connection (JSON) of a Slack Incoming Webhook with this URL."""
        return json.dumps({"conn_type": "slackwebhook", "password": self.url})


@contextmanager
def slack_webhook(path: str = "/services/T0000/B0000/test-only") -> Iterator[Webhook]:
    hook: Webhook

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.path == path:
                hook.posts.append(json.loads(body))
            status = hook.status if self.path == path else 404
            self.send_response(status)
            self.end_headers()
            self.wfile.write(b"ok" if status == 200 else b"invalid_token")

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook = Webhook(f"http://127.0.0.1:{server.server_address[1]}{path}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()
