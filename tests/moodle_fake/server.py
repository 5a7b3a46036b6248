"""The fake Moodle's HTTP server: ``/webservice/rest/server.php`` and ``/webservice/upload.php``.

::

    with FakeMoodle(token="t0k3n") as fake:
        client = MoodleClient(fake.url, "t0k3n")
        fake.site.add_user("zoe")
        fake.fail_next("core_user_create_users", "drop_after")   # applied, reply lost
        ...
        assert fake.count("core_user_create_users") == 2

A call runs as Moodle's REST server runs it (see :mod:`tests.moodle_fake.wsbase`): token, function
name, function known to Moodle, function in the token's service, then the parameters and the body
in one transaction under the site's lock. Web-service errors are always HTTP 200 (README §2); the
reply is XML unless ``moodlewsrestformat=json``. Every request is logged as a :class:`Call`
(never with the token). Transport faults are queued with :meth:`FakeMoodle.fail_next`.
"""

from __future__ import annotations

import select
import socket
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.moodle_fake import ws_files
from tests.moodle_fake.errors import MISSING_RECORD, WsError, invalid_parameter, moodle_error
from tests.moodle_fake.phpform import decode_form, parse_multipart, to_plain
from tests.moodle_fake.render import json_body, xml_body, xml_error
from tests.moodle_fake.site import Site
from tests.moodle_fake.wsfunctions import FUNCTIONS, MOODLE_FUNCTIONS, SERVICE_FUNCTIONS

REST_PATH = "/webservice/rest/server.php"
UPLOAD_PATH = "/webservice/upload.php"
#: the function name upload.php requests are logged under (the client's name for them too)
UPLOAD = "webservice/upload.php"
FAULT_KINDS = ("500", "drop", "drop_after", "timeout")
_INDENT = "\n" + " " * 21
_ACCESS_REASONS = _INDENT.join((
    "Access to the function {function}() is not allowed.",
    "There could be multiple reasons for this:",
    "1. The service linked to the user token does not contain the function.",
    "2. The service is user-restricted and the user is not listed.",
    "3. The service is IP-restricted and the user IP is not listed.",
    "4. The service is time-restricted and the time has expired.",
    "5. The token is time-restricted and the time has expired.",
    "6. The service requires a specific capability which the user does not have.",
    "7. The function is called with username/password (no user token is sent)",
    "and none of the services has the function to allow the user.",
    "These settings can be found in Administration > Site administration",
    "> Server > Web services > External services and Manage tokens.",
))
_CONTROL = ("wstoken", "wsfunction", "moodlewsrestformat")
_HTML_500 = (b"<!DOCTYPE html>\n<html><head><title>500 Internal Server Error</title></head>\n"
             b"<body><h1>Internal Server Error</h1>\n"
             b"<p>The server encountered an internal error.</p></body></html>\n")


@dataclass(frozen=True, slots=True)
class Call:
    """One request as the server received it: the function, its decoded parameters (plain lists and
    dicts, never the token), the error it ended with (errorcode, or the exception class when there is
    none; None on success), the debug-on reason of that error, and the fault injected, if any."""

    function: str
    params: dict[str, Any]
    error: str | None = None
    debuginfo: str = ""
    fault: str | None = None


@dataclass(slots=True)
class Fault:
    """A queued transport fault: the next ``times`` requests for ``function`` ("*" = any) fail with
    ``kind``: "500" (HTML error page, nothing run), "drop" (connection closed before running),
    "drop_after" (run and committed, then the connection is closed: the reply is lost) or "timeout"
    (nothing run, no reply until the client gives up and closes, at most ``seconds``)."""

    function: str
    kind: str
    times: int = 1
    seconds: float = 60.0

    def matches(self, function: str) -> bool:
        """Whether this fault applies to a request for ``function``."""
        return self.times > 0 and self.function in ("*", function)


class _Drop(Exception):
    """Close the connection without a reply."""


@dataclass(frozen=True, slots=True)
class _Reply:
    status: int
    content_type: str
    body: bytes


class FakeMoodle:
    """A Moodle 4.5 REST endpoint on 127.0.0.1 (a free port), serving ``site``, for one ``token``."""

    def __init__(self, token: str, *, site: Site | None = None, latency: float = 0.0,
                 debug: bool = False) -> None:
        self.token = token
        self.site = site if site is not None else Site()
        if debug:
            self.site.debug = True
        self.latency = latency
        self.service_functions: set[str] = set(SERVICE_FUNCTIONS)
        self.site.service_functions = self.service_functions  # core_webservice_get_site_info lists them
        self.faults: list[Fault] = []
        self.problems: list[str] = []  # crashes of the fake itself, reported when the server stops
        self.url = ""
        self._calls: list[Call] = []
        self._log_lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"FakeMoodle(url={self.url!r}, calls={len(self._calls)})"

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeMoodle:
        """Listen on 127.0.0.1 and serve in a daemon thread."""
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        self._server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        self.site.wwwroot = self.url
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-moodle", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and join the server thread."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> FakeMoodle:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
        if kind is None and self.problems:
            raise AssertionError("the fake Moodle itself failed:\n" + "\n".join(self.problems))

    # -- call log and faults ---------------------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        """Every request so far, in arrival order (a copy)."""
        with self._log_lock:
            return list(self._calls)

    def count(self, function: str) -> int:
        """How many requests named ``function`` arrived (faulted ones included)."""
        with self._log_lock:
            return sum(1 for call in self._calls if call.function == function)

    def fail_next(self, function: str, kind: str, times: int = 1, *, seconds: float = 60.0) -> Fault:
        """Queue a transport fault for the next ``times`` requests for ``function`` ("*" = any)."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {', '.join(FAULT_KINDS)} (got {kind!r})")
        fault = Fault(function, kind, times, seconds)
        with self._log_lock:
            self.faults.append(fault)
        return fault

    def _take_fault(self, function: str) -> Fault | None:
        with self._log_lock:
            for fault in self.faults:
                if fault.matches(function):
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def _log(self, call: Call) -> None:
        with self._log_lock:
            self._calls.append(call)

    # -- requests ---------------------------------------------------------------------------------

    def handle_rest(self, pairs: list[tuple[str, str]], wait: Callable[[float], None]) -> _Reply:
        """One server.php request (form pairs, query first then body); raises _Drop for no reply."""
        form = decode_form(pairs)
        token, function, restformat = (form.pop(key, None) for key in _CONTROL)
        name = function if isinstance(function, str) else ""
        as_json = restformat == "json"
        fault = self._take_fault(name)
        plain = to_plain(form)
        params = plain if isinstance(plain, dict) else {}
        if fault is not None and fault.kind != "drop_after":
            self._log(Call(name, params, fault=fault.kind))
            return self._fault_before(fault, wait)
        time.sleep(self.latency)
        try:
            reply = self._execute(token, function, form)
        except WsError as err:
            self._log(Call(name, params, err.errorcode or err.exception, err.debuginfo,
                           fault.kind if fault else None))
            body = err.body(debug=self.site.debug)
            if fault is not None:
                raise _Drop from None
            return _Reply(200, "application/json" if as_json else "application/xml; charset=utf-8",
                          json_body(body) if as_json else xml_error(body))
        except Exception:
            self._log(Call(name, params, "fake-crashed"))
            raise
        self._log(Call(name, params, fault=fault.kind if fault else None))
        if fault is not None:
            raise _Drop
        if as_json:
            return _Reply(200, "application/json", json_body(reply))
        return _Reply(200, "application/xml; charset=utf-8", xml_body(reply))

    def _fault_before(self, fault: Fault, wait: Callable[[float], None]) -> _Reply:
        if fault.kind == "500":
            return _Reply(500, "text/html; charset=utf-8", _HTML_500)
        if fault.kind == "timeout":
            wait(fault.seconds)
        raise _Drop

    def _execute(self, token: Any, function: Any, form: dict[str, Any]) -> Any:
        if not isinstance(token, str) or token != self.token:
            raise moodle_error("invalidtoken")
        if not isinstance(function, str) or not function:
            raise invalid_parameter("Missing function name")
        if function not in MOODLE_FUNCTIONS and function not in FUNCTIONS:
            raise WsError(MISSING_RECORD, "invalidrecord",
                          "Can't find data record in database table external_functions.",
                          "SELECT * FROM {external_functions} WHERE name = ?\n"
                          f"[array (\n  0 => '{function}',\n)]")
        if function not in self.service_functions:
            raise WsError("webservice_access_exception", "accessexception", "Access control exception",
                          _ACCESS_REASONS.format(function=function))
        wsfunction = FUNCTIONS.get(function)
        if wsfunction is None:
            self.problems.append(f"{function}: offered by the service but not implemented by the fake")
            raise WsError("fake_not_implemented", "fakenotimplemented",
                          f"The fake Moodle does not implement {function}")
        return wsfunction.call(self.site, form)

    def handle_upload(self, content_type: str, body: bytes, query: list[tuple[str, str]],
                      wait: Callable[[float], None]) -> _Reply:
        """One upload.php request (multipart); errors the AJAX way (``{"error", "errorcode", ...}``)."""
        multipart = content_type.startswith("multipart/")
        fields, files = parse_multipart(content_type, body) if multipart else ([], [])
        form = dict(query)
        form.update(fields)
        token = form.pop("token", None)
        params: dict[str, Any] = dict(form)
        params.update({f.field: f"<{len(f.data)} bytes {f.content_type}>" for f in files})
        fault = self._take_fault(UPLOAD)
        if fault is not None and fault.kind != "drop_after":
            self._log(Call(UPLOAD, params, fault=fault.kind))
            return self._fault_before(fault, wait)
        time.sleep(self.latency)
        if token != self.token:
            err = moodle_error("invalidtoken")
            self._log(Call(UPLOAD, params, err.errorcode, fault=fault.kind if fault else None))
            if fault is not None:
                raise _Drop
            return _Reply(200, "application/json", json_body(ws_files.ajax_error(err, self.site.debug)))
        with self.site.lock:
            reply = ws_files.upload_draft(self.site, form, files)
        error = reply.get("errorcode") if isinstance(reply, dict) else None
        self._log(Call(UPLOAD, params, error, fault=fault.kind if fault else None))
        if fault is not None:
            raise _Drop
        return _Reply(200, "application/json", json_body(reply))


def _handler_for(fake: FakeMoodle) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        owner = fake

    return Handler


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Apache"
    sys_version = ""
    timeout = 30
    wbufsize = -1  # headers and body leave in one write (no Nagle/delayed-ACK stall of 40 ms)
    disable_nagle_algorithm = True
    owner: FakeMoodle

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the call log is the record."""

    def do_GET(self) -> None:
        """server.php also reads its parameters from the query string (optional_param)."""
        self._dispatch(b"")

    def do_POST(self) -> None:
        """Read the body (Content-Length) and dispatch."""
        length = int(self.headers.get("Content-Length") or 0)
        self._dispatch(self.rfile.read(length) if length > 0 else b"")

    def _dispatch(self, body: bytes) -> None:
        parts = urlsplit(self.path)
        query = parse_qsl(parts.query, keep_blank_values=True)
        try:
            if parts.path.endswith(REST_PATH):
                pairs = query + parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
                reply = self.owner.handle_rest(pairs, self._wait_for_client)
            elif parts.path.endswith(UPLOAD_PATH):
                ctype = self.headers.get("Content-Type", "")
                reply = self.owner.handle_upload(ctype, body, query, self._wait_for_client)
            else:
                reply = _Reply(404, "text/html; charset=utf-8", b"<html><body>Not found</body></html>\n")
        except _Drop:
            self.close_connection = True
            return
        except Exception:  # a bug of the fake: say so loudly (the test fails when the server stops)
            self.owner.problems.append(traceback.format_exc())
            reply = _Reply(500, "text/plain; charset=utf-8", traceback.format_exc().encode())
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    def _wait_for_client(self, seconds: float) -> None:
        """Sleep until the client gives up (closes its end), the server stops, or ``seconds`` pass."""
        deadline = time.monotonic() + seconds
        sock = self.connection
        while time.monotonic() < deadline and not self.owner._stopping.is_set():
            readable, _, _ = select.select([sock], [], [], 0.05)
            if readable:
                try:
                    if sock.recv(1, socket.MSG_PEEK) == b"":
                        return
                except OSError:
                    return
                time.sleep(0.05)
