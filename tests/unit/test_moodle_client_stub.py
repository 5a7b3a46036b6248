"""A tiny scripted HTTP(S) server on 127.0.0.1 for the Moodle client tests (plus its own checks).

Each request is recorded (path, headers, body, client port) and answered by ``stub.script``,
a function of the request returning :class:`Answer` (status, body), :data:`DROP` (close the
connection without a reply) or an Answer with ``close_after`` (reply, then close the
connection although HTTP/1.1 keep-alive was announced). The server counts requests in
progress (``active``, ``peak``) and connections closed (``closed``) under ``stub.cond``,
so tests can wait on a condition.
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl


@dataclass(frozen=True)
class Answer:
    """What the stub sends back."""

    status: int = 200
    body: bytes = b"null"
    content_type: str = "application/json"
    close_after: bool = False

    @classmethod
    def json(cls, value: Any, status: int = 200) -> Answer:
        """A JSON reply, as Moodle sends them (status 200 even for errors)."""
        return cls(status, json.dumps(value).encode())


DROP = Answer(status=0)


@dataclass
class Seen:
    """One request as the server received it."""

    path: str
    headers: dict[str, str]
    body: bytes
    port: int
    form: list[tuple[str, str]] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def do_POST(self) -> None:
        """Record the request, run the script, send its answer."""
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        seen = Seen(self.path, {k.lower(): v for k, v in self.headers.items()}, body, self.client_address[1])
        if seen.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            seen.form = parse_qsl(body.decode("ascii"), keep_blank_values=True, strict_parsing=False)
        stub = self.server.stub
        with stub.cond:
            stub.requests.append(seen)
            stub.active += 1
            stub.peak = max(stub.peak, stub.active)
            stub.cond.notify_all()
        try:
            answer = stub.script(seen)
        finally:
            with stub.cond:
                stub.active -= 1
                stub.cond.notify_all()
        if answer.status == 0:
            self.close_connection = True
            return
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)
        self.wfile.flush()
        if answer.close_after:
            self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    stub: MoodleStub

    def shutdown_request(self, request: Any) -> None:
        """Close a connection, then count it as closed."""
        super().shutdown_request(request)
        with self.stub.cond:
            self.stub.closed += 1
            self.stub.cond.notify_all()


class MoodleStub:
    """A local HTTP(S) server answering as ``script`` says; ``with MoodleStub() as stub: stub.url``."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.script: Callable[[Seen], Answer] = lambda _seen: Answer()
        self.requests: list[Seen] = []
        self.cond = threading.Condition()
        self.active = 0
        self.peak = 0
        self.closed = 0
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.stub = self
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}/moodle"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    def __enter__(self) -> MoodleStub:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def reset(self, script: Callable[[Seen], Answer] | None = None) -> None:
        """Forget the requests seen; answer with ``script`` from now on."""
        with self.cond:
            self.requests.clear()
            self.peak = self.active
        self.script = script or (lambda _seen: Answer())

    def replies(self, *answers: Answer) -> None:
        """Answer the next requests with ``answers`` in turn (the last one repeats)."""
        queue = list(answers)
        lock = threading.Lock()

        def script(_seen: Seen) -> Answer:
            with lock:
                return queue.pop(0) if len(queue) > 1 else queue[0]

        self.reset(script)


def test_stub_records_form_and_answers() -> None:
    """The stub records a urlencoded POST's fields in order and sends the scripted JSON."""
    import urllib.request

    with MoodleStub() as stub:
        stub.replies(Answer.json({"ok": 1}))
        request = urllib.request.Request(stub.url + "/x", data=b"a=1&b%5B0%5D=2",
                                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        with urllib.request.urlopen(request, timeout=5) as response:
            assert json.loads(response.read()) == {"ok": 1}
    assert stub.requests[0].path == "/moodle/x"
    assert stub.requests[0].form == [("a", "1"), ("b[0]", "2")]
