"""A team's system in a test: a real local HTTP server that records every request it gets and answers
what the test tells it to (a status, a JSON body, a delay, or a function of the request).

    with Receiver() as receiver:
        receiver.answer(503, 503, 202)        # the next three answers; then the default (200)
        ... code under test POSTs to receiver.url + "/train" ...
        assert receiver.requests[0].json()["model"] == "fraud-detector"
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from tests.support.waiting import wait_until


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class Answer:
    status: int = 200
    body: Any = field(default_factory=lambda: {"ok": True})
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (a slow or hung system)


class Receiver:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self._answers: deque[Answer | Callable[[Received], Answer]] = deque()
        self.default: Answer | Callable[[Received], Answer] = Answer()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def answer(self, *answers: int | Answer | Callable[[Received], Answer]) -> None:
        """Queue the next answers, in order: a status, an Answer, or a function of the request."""
        for a in answers:
            self._answers.append(Answer(status=a, body={} if a == 204 else {"ok": a < 400}) if isinstance(a, int)
                                 else a)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def _next(self, received: Received) -> Answer:
        with self._lock:
            self.requests.append(received)
            planned = self._answers.popleft() if self._answers else self.default
        return planned(received) if callable(planned) else planned

    def __enter__(self) -> Self:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                received = Received(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                                    self.rfile.read(length))
                answer = receiver._next(received)
                if answer.delay:
                    time.sleep(answer.delay)
                payload = b"" if answer.status == 204 else (
                    answer.body if isinstance(answer.body, bytes) else json.dumps(answer.body).encode())
                try:
                    self.send_response(answer.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
                    pass

            do_POST = do_GET = do_PUT = _handle

            def log_message(self, *_: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


def closed_port_url() -> str:
    """An address where nothing listens: connections are refused."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class AsgiServer:
    """An ASGI app (the web process, or only its API) served by uvicorn on a free local port."""

    def __init__(self, app) -> None:
        import socket

        import uvicorn

        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        wait_until(lambda: self._server.started, 30, "the HTTP server to start", poll=0.01)
        return self

    def __exit__(self, *_: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
