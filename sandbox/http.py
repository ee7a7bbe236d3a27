"""A small threaded HTTP(S) server that every sandbox emulator is built on.

The emulators must be reachable by the real client libraries over real
sockets, so each one is a genuine HTTP server on loopback. This module holds
what they share: routing, JSON bodies, the fault knobs (latency, injected
errors, dropped connections) and a sliding-window rate limiter that answers
429 the way the emulated service documents it.
"""

from __future__ import annotations

import json
import random
import re
import socket
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class Response:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    content_type: str = "application/json"


Handler = Callable[[Request], Response]


@dataclass
class Faults:
    """Knobs a test or the demo turns to make the service misbehave.

    Rates are probabilities per request; `fail_next` / `drop_next` inject a
    fixed number of faults so tests can be exact instead of statistical.
    """

    latency_s: float = 0.0
    error_rate: float = 0.0
    drop_rate: float = 0.0
    fail_next: int = 0
    fail_status: int = 500
    drop_next: int = 0
    throttle_next: int = 0
    # The next N JSON bodies carry one byte that is not valid UTF-8 (0xFF), inside a string value.
    invalid_utf8_next: int = 0
    # The next N JSON bodies carry a field nested 100,000 arrays deep (what `json` cannot decode
    # within the recursion limit), or an integer of 5,000 digits (past Python's int/str limit).
    deep_nesting_next: int = 0
    huge_integer_next: int = 0
    seed: int = 7
    _rng: random.Random = field(default_factory=random.Random, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self._rng.seed(self.seed)

    def draw(self) -> str | None:
        """Decide the fault, if any, for one request: 'drop', 'error', 'throttle'."""
        with self._lock:
            if self.drop_next > 0:
                self.drop_next -= 1
                return "drop"
            if self.fail_next > 0:
                self.fail_next -= 1
                return "error"
            if self.throttle_next > 0:
                self.throttle_next -= 1
                return "throttle"
            roll = self._rng.random()
            if roll < self.drop_rate:
                return "drop"
            if roll < self.drop_rate + self.error_rate:
                return "error"
        return None

    def corrupt(self, payload: bytes) -> bytes:
        """`payload` with 0xFF after the first `"name": "` (else the first string value), while
        `invalid_utf8_next` lasts: what a backend that cuts bytes, not characters, serves."""
        with self._lock:
            if self.invalid_utf8_next <= 0:
                return payload
            self.invalid_utf8_next -= 1
        for marker in (b'"name": "', b'": "'):
            at = payload.find(marker)
            if at >= 0:
                return payload[:at + len(marker)] + b"\xff" + payload[at + len(marker):]
        return payload

    def hostile(self, payload: bytes) -> bytes:
        """`payload` with a `"hostile"` field in its first record (else its top object) while
        `deep_nesting_next` or `huge_integer_next` lasts: valid JSON a parser may still choke on."""
        with self._lock:
            if self.deep_nesting_next > 0:
                self.deep_nesting_next -= 1
                value = b"[" * 100_000 + b"]" * 100_000
            elif self.huge_integer_next > 0:
                self.huge_integer_next -= 1
                value = b"9" * 5_000
            else:
                return payload
        at = payload.find(b"{", 1)
        at = at if at > 0 else payload.find(b"{")
        if at < 0:
            return payload
        rest = payload[at + 1:]
        field = b'"hostile": ' + value + (b"" if rest.lstrip().startswith(b"}") else b", ")
        return payload[:at + 1] + field + rest


class SlidingWindowLimiter:
    """Server-side limit: at most `limit` requests in any `window_s` seconds."""

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self._hits: deque[float] = deque()
        self._lock = threading.Lock()

    def hit(self) -> tuple[bool, int, float]:
        """Record a request. Returns (allowed, remaining, seconds until a slot frees)."""
        now = time.monotonic()
        with self._lock:
            while self._hits and now - self._hits[0] >= self.window_s:
                self._hits.popleft()
            if len(self._hits) >= self.limit:
                return False, 0, self.window_s - (now - self._hits[0])
            self._hits.append(now)
            return True, self.limit - len(self._hits), (
                self.window_s - (now - self._hits[0])
            )


class App:
    """Routes plus fault knobs; subclasses register routes in __init__."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.faults = Faults()
        self.request_log: deque[tuple[str, str, int]] = deque(maxlen=100_000)
        self.status_counts: dict[int, int] = {}
        self._count_lock = threading.Lock()

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        """Register `handler` for `method` and a path pattern like '/items/{id}'."""
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern.rstrip("/") or "/")
        self.routes.append((method, re.compile(f"^{regex}/?$"), handler))

    def before(self, request: Request) -> Response | None:
        """Hook for auth and rate limits; return a Response to short-circuit."""
        return None

    def error_response(self, status: int, message: str) -> Response:
        """The service's own error body shape; overridden per emulator."""
        return Response(status, {"error": message})

    def throttled_response(self) -> Response:
        return Response(429, {"error": "Too many requests"}, {"Retry-After": "1"})

    def dispatch(self, request: Request) -> Response:
        response = self.before(request)
        if response is not None:
            return response
        for method, regex, handler in self.routes:
            match = regex.match(request.path)
            if match and method == request.method:
                request.params = match.groupdict()
                return handler(request)
        return self.error_response(404, f"Not found: {request.method} {request.path}")

    def count(self, request: Request, status: int) -> None:
        with self._count_lock:
            self.status_counts[status] = self.status_counts.get(status, 0) + 1
            self.request_log.append((request.method, request.path, status))


def _make_handler(app: App, path_prefix: str) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return

        def setup(self) -> None:
            super().setup()
            # Headers and body go out in two writes; without this, Nagle's
            # algorithm and delayed ACKs add ~40 ms to every response.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def _serve(self) -> None:
            split = urlsplit(self.path)
            path = split.path
            if path_prefix and path.startswith(path_prefix):
                path = path[len(path_prefix):] or "/"
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            request = Request(
                method=self.command,
                path=path,
                query={k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()},
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )
            if app.faults.latency_s:
                time.sleep(app.faults.latency_s)
            fault = app.faults.draw()
            if fault == "drop":
                app.count(request, 0)
                self.close_connection = True
                try:
                    self.connection.shutdown(2)
                except OSError:
                    pass
                return
            if fault == "error":
                response = app.error_response(app.faults.fail_status, "Injected server error")
            elif fault == "throttle":
                response = app.throttled_response()
            else:
                try:
                    response = app.dispatch(request)
                except Exception as exc:  # an emulator bug must still answer
                    response = app.error_response(500, f"Sandbox error: {type(exc).__name__}: {exc}")
            app.count(request, response.status)
            self._write(response)

        def _write(self, response: Response) -> None:
            if response.raw is not None:
                payload = response.raw
            elif response.body is None and response.status == 204:
                payload = b""
            else:
                payload = app.faults.hostile(app.faults.corrupt(json.dumps(response.body).encode()))
            self.send_response(response.status)
            if payload or response.status != 204:
                self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    return _Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


class ServerThread:
    """Runs an App on 127.0.0.1 (a free port unless one is given) in a thread."""

    def __init__(
        self,
        app: App,
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
        path_prefix: str = "",
    ) -> None:
        self.app = app
        self.server = _Server(("127.0.0.1", port), _make_handler(app, path_prefix))
        if ssl_context is not None:
            # Handshake lazily in the request thread, so one slow client cannot
            # stall the accept loop.
            self.server.socket = ssl_context.wrap_socket(
                self.server.socket, server_side=True, do_handshake_on_connect=False
            )
        self.scheme = "https" if ssl_context is not None else "http"
        self.path_prefix = path_prefix
        # A short poll interval makes stop() quick (the default is 0.5 s).
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        host = "localhost" if self.scheme == "https" else "127.0.0.1"
        return f"{self.scheme}://{host}:{self.port}{self.path_prefix}"

    def start(self) -> "ServerThread":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> "ServerThread":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
