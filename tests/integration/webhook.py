"""A real HTTP server on 127.0.0.1 standing in for a Slack incoming webhook (test helper, not a test)."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ALERT_ID = re.compile(r"alert `([0-9a-f]+)`")


@dataclass
class Hit:
    """One request the server received, and what it answered."""

    at: float  # time.monotonic() at arrival
    path: str
    body: bytes
    status: int

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def alert_id(self) -> str | None:
        m = ALERT_ID.search(self.body.decode("utf-8", "replace"))
        return m.group(1) if m else None


@dataclass
class WebhookServer:
    """``respond(n) -> (status, headers)`` scripts the answer to the n-th request (0-based)."""

    respond: Callable[[int], tuple[int, dict[str, str]]] = lambda n: (200, {})
    port: int = 0
    delay: Callable[[], float] = lambda: 0.0
    hits: list[Hit] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> WebhookServer:
        srv = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with srv._lock:
                    n = len(srv.hits)
                    # a body cut short (the sender was killed mid-request) is no message: Slack answers 400
                    # invalid_payload to it, so it is not accepted
                    status, headers = srv.respond(n) if len(body) == length else (400, {})
                    hit = Hit(time.monotonic(), self.path, body, status)
                    srv.hits.append(hit)
                pause = srv.delay()
                if pause:
                    time.sleep(pause)
                payload = b"ok" if status < 300 else b"error"
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)

    def url(self, path: str = "/services/T1/B1/SECRET") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def accepted(self) -> list[Hit]:
        with self._lock:
            return [h for h in self.hits if h.status < 300]
