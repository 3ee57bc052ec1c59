"""A real HTTP webhook receiver on a loopback port, for tests: records every delivery, and can
answer errors first or hang."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        return dict(json.loads(self.body))

    def verify(self, secret: str, tolerance: float = 300) -> bool:
        """The documented verification (docs/events.md)."""
        parts = dict(p.split("=", 1) for p in self.headers["X-Strongroom-Signature"].split(","))
        stamp = int(parts["t"])
        if abs(time.time() - stamp) > tolerance:
            return False
        expected = hmac.new(
            secret.encode(), f"{stamp}.".encode() + self.body, hashlib.sha256
        ).hexdigest()
        return hmac.compare_digest(expected, parts["v1"])


@dataclass
class Receiver:
    """Answers `fail_first` requests with 500, then 204; `hang` seconds before answering."""

    fail_first: int = 0
    hang: float = 0.0
    deliveries: list[Delivery] = field(default_factory=list)
    attempts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    receiver.attempts += 1
                    failing = receiver.attempts <= receiver.fail_first
                if receiver.hang:
                    time.sleep(receiver.hang)
                if failing:
                    self.send_response(500)
                else:
                    with receiver.lock:
                        receiver.deliveries.append(Delivery(dict(self.headers), data))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def wait(self, count: int, deadline: float = 15.0) -> list[Delivery]:
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            with self.lock:
                if len(self.deliveries) >= count:
                    return list(self.deliveries)
            time.sleep(0.02)
        raise AssertionError(f"{len(self.deliveries)} deliveries, expected {count}")

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
