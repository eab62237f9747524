"""Fault injection for the sandboxes: 429s, 5xx, slow answers, malformed bodies, dropped connections.

Faults are drawn from a seeded RNG so a run is reproducible. Tests switch them on and off at run time
through ``FaultInjector.configure`` (or the sandbox's ``POST /__sandbox/faults`` control route).
"""

from __future__ import annotations

import io
import json
import random
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

FAULT_KINDS = ("429", "500", "503", "slow", "malformed", "drop")


@dataclass
class FaultConfig:
    """What to inject: a rate in [0, 1], the kinds to draw from, and which paths are exempt."""

    rate: float = 0.0
    kinds: tuple[str, ...] = ("429", "500", "503", "malformed", "drop")
    slow_seconds: float = 3.0
    exempt_prefixes: tuple[str, ...] = ("/__sandbox",)
    seed: int = 0
    counts: dict[str, int] = field(default_factory=dict)


class FaultInjector:
    """WSGI middleware that replaces a fraction of responses with faults."""

    def __init__(self, app: Callable, config: FaultConfig | None = None,
                 rate_limited_body: Callable[[], tuple[dict[str, str], bytes]] | None = None,
                 server_error_body: Callable[[int], tuple[dict[str, str], bytes]] | None = None):
        self.app = app
        self._server_error_body = server_error_body  # vendor-shaped 5xx answers (e.g. Amazon's errors list)
        self.config = config or FaultConfig()
        self._rng = random.Random(self.config.seed)
        self._lock = threading.Lock()
        self._rate_limited_body = rate_limited_body
        self._before: list[tuple[bytes, Callable[[], None]]] = []

    def before_request(self, body_contains: bytes, action: Callable[[], None]) -> None:
        """Run ``action`` once, before the next request whose body contains ``body_contains`` is answered.

        The client waits meanwhile, so tests can make something happen exactly while a call is in flight.
        """
        with self._lock:
            self._before.append((body_contains, action))

    def _run_before(self, environ: dict[str, Any]) -> None:
        with self._lock:
            if not self._before:
                return
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        with self._lock:
            due = [item for item in self._before if item[0] in body]
            self._before = [item for item in self._before if item not in due]
        for _needle, action in due:
            action()

    def configure(self, rate: float, kinds: Iterable[str] | None = None, seed: int | None = None,
                  slow_seconds: float | None = None) -> None:
        """Change the fault rate and kinds at run time."""
        kinds = tuple(kinds) if kinds else self.config.kinds
        unknown = set(kinds) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds: {sorted(unknown)}")
        with self._lock:
            self.config.rate = rate
            self.config.kinds = kinds
            if slow_seconds is not None:
                self.config.slow_seconds = slow_seconds
            if seed is not None:
                self._rng = random.Random(seed)

    @property
    def counts(self) -> dict[str, int]:
        """Return how many faults of each kind were injected so far."""
        return dict(self.config.counts)

    def _draw(self, path: str) -> str | None:
        if any(path.startswith(p) for p in self.config.exempt_prefixes):
            return None
        with self._lock:
            if self.config.rate <= 0 or self._rng.random() >= self.config.rate:
                return None
            kind = self._rng.choice(self.config.kinds)
            self.config.counts[kind] = self.config.counts.get(kind, 0) + 1
            return kind

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        """Answer with a fault or pass the request through to the wrapped app."""
        self._run_before(environ)
        kind = self._draw(environ.get("PATH_INFO", ""))
        if kind is None:
            return self.app(environ, start_response)
        if kind == "429":
            headers, body = (self._rate_limited_body() if self._rate_limited_body else
                             ({"Content-Type": "application/json", "Retry-After": "1"},
                              json.dumps({"errors": "Too Many Requests"}).encode()))
            start_response("429 Too Many Requests", list(headers.items()) + [("Content-Length", str(len(body)))])
            return [body]
        if kind in ("500", "503"):
            status = "500 Internal Server Error" if kind == "500" else "503 Service Unavailable"
            if self._server_error_body:
                headers, body = self._server_error_body(int(kind))
            else:
                headers = {"Content-Type": "application/json"}
                body = json.dumps({"errors": "Internal error (injected)"}).encode()
            start_response(status, list(headers.items()) + [("Content-Length", str(len(body)))])
            return [body]
        if kind == "slow":
            time.sleep(self.config.slow_seconds)  # the sandbox is slow on purpose; clients must time out
            return self.app(environ, start_response)
        if kind == "malformed":
            body = b'{"data": {"truncated'
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        # "drop": close the socket without an HTTP answer.
        sock = _socket_of(environ)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        start_response("500 Internal Server Error", [("Content-Length", "0")])
        return [b""]


def _socket_of(environ: dict[str, Any]) -> socket.socket | None:
    """Find the client socket behind a werkzeug request, to drop the connection."""
    stream = environ.get("werkzeug.socket")
    if isinstance(stream, socket.socket):
        return stream
    return None
