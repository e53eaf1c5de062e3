"""A webhook receiver on a loopback port, as a team's integration would run one.

It checks every POST's ``X-Qmail-Signature`` with the secret it was given (the recipe of
the README, ``qmail.core.webhook_signing.verify``) and answers from a script of status
codes (then 200), recording what came: the headers, the body and whether the signature held.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from qmail.core.webhook_signing import verify
from tests.conftest import free_port


@dataclass
class Received:
    """One POST as the receiver saw it."""

    path: str
    headers: dict[str, str]
    body: bytes
    signed: bool
    answered: int

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Receiver:
    url: str
    secret: str = ""
    script: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> int:
        signed = verify(self.secret, headers.get("x-qmail-signature", ""), body, time.time())
        with self.lock:
            status = self.script.pop(0) if self.script else 200
            self.received.append(Received(path, headers, body, signed, status))
        return status

    def of_kind(self, kind: str) -> list[Received]:
        with self.lock:
            return [item for item in self.received if item.payload["kind"] == kind]


@contextmanager
def receiving(script: tuple[int, ...] = (), secret: str = "") -> Iterator[Receiver]:
    """A receiver on ``127.0.0.1:<free port>`` for the length of the block."""
    port = free_port()
    receiver = Receiver(f"http://127.0.0.1:{port}/hook", secret, list(script))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {name.lower(): value for name, value in self.headers.items()}
            status = receiver.answer(self.path, headers, body)
            reply = b"ok" if status < 300 else b"receiver trouble"
            self.send_response(status)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:  # keep the test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
