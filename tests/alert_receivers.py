"""A local webhook receiver for alert tests: checks signatures, can fail or hang on demand."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class WebhookReceiver:
    """Accepts POSTs; `mode` is 'ok', 'fail' (HTTP 500) or 'hang' (never answers)."""

    secret: str | None = None
    mode: str = "ok"
    accepted: list[dict[str, Any]] = field(default_factory=list)
    bad_signatures: int = 0
    requests: int = 0
    arrived: threading.Event = field(default_factory=threading.Event)
    url: str = ""

    def start(self) -> str:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests += 1
                receiver.arrived.set()
                if receiver.mode == "hang":
                    threading.Event().wait(60)
                    return
                if receiver.secret is not None:
                    expected = (
                        "sha256="
                        + hmac.new(receiver.secret.encode(), body, hashlib.sha256).hexdigest()
                    )
                    given = self.headers.get("X-Catalog-Signature-256") or ""
                    if not hmac.compare_digest(expected, given):
                        receiver.bad_signatures += 1
                        self.send_response(401)
                        self.end_headers()
                        return
                if receiver.mode == "fail":
                    self.send_response(500)
                    self.end_headers()
                    return
                payload = json.loads(body)
                assert self.headers.get("X-Catalog-Event-Id") == payload["event_id"]
                receiver.accepted.append(payload)
                self.send_response(204)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        return self.url

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def duplicates(self) -> list[str]:
        """Event ids accepted more than once."""
        return [e for e, n in Counter(p["event_id"] for p in self.accepted).items() if n > 1]
