"""The Moodle client against a local stub: keep-alive, retries, idempotence, parallel calls, URL checks."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from structlog.contextvars import bound_contextvars, merge_contextvars
from structlog.testing import capture_logs

from syncd.domain import ConfigError
from syncd.platform.moodle._http import MAX_IDLE
from syncd.platform.moodle.client import MoodleClient
from syncd.platform.moodle.errors import MoodleAuthError, MoodleTransportError, MoodleWsError
from tests.unit.test_moodle_client_stub import DROP, Answer, MoodleStub, Seen

TOKEN = "5f4dcc3b5aa765d61d8327deb882cf99"
OK = Answer.json([{"id": 7, "username": "zoe"}])
WS_ERROR = Answer.json({"exception": "core\\exception\\invalid_parameter_exception",
                        "errorcode": "invalidparameter", "message": "Invalid parameter value detected"})


class Clock:
    """A settable monotonic clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def stub() -> Iterator[MoodleStub]:
    """A fresh local server."""
    with MoodleStub() as server:
        yield server


@pytest.fixture
def sleeps() -> list[float]:
    """The delays the client asked to sleep (nothing really sleeps)."""
    return []


def make(stub: MoodleStub, sleeps: list[float], **options: Any) -> MoodleClient:
    """A client of the stub whose sleeps are recorded."""
    return MoodleClient(stub.url, TOKEN, sleep=sleeps.append, **options)


def free_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_call_posts_the_form_and_returns_the_json(stub: MoodleStub, sleeps: list[float]) -> None:
    """call() POSTs token, function, json format and the bracket fields, and returns the decoded reply."""
    stub.replies(OK)
    with make(stub, sleeps) as client:
        result = client.call("core_user_get_users_by_field", {"field": "username", "values": ["zoe"]})
    assert result == [{"id": 7, "username": "zoe"}]
    (seen,) = stub.requests
    assert seen.path == "/moodle/webservice/rest/server.php"
    assert seen.form == [("wstoken", TOKEN), ("wsfunction", "core_user_get_users_by_field"),
                         ("moodlewsrestformat", "json"), ("field", "username"), ("values[0]", "zoe")]
    assert seen.headers["user-agent"].startswith("syncd/")


def test_connection_is_kept_alive(stub: MoodleStub, sleeps: list[float]) -> None:
    """Sequential calls from one thread reuse one TCP connection."""
    with make(stub, sleeps) as client:
        for _ in range(5):
            client.call("core_webservice_get_site_info")
    assert len({seen.port for seen in stub.requests}) == 1


def test_connection_closed_by_server_is_replaced(stub: MoodleStub, sleeps: list[float]) -> None:
    """A kept-alive connection the server closed is noticed and replaced: no failure, retry or duplicate."""
    stub.replies(Answer(close_after=True), Answer())
    with make(stub, sleeps) as client:
        client.call("core_webservice_get_site_info")
        with stub.cond:
            assert stub.cond.wait_for(lambda: stub.closed == 1, timeout=5)
        client.call("core_webservice_get_site_info", idempotent=False)
    assert len(stub.requests) == 2 and len({seen.port for seen in stub.requests}) == 2
    assert sleeps == []


def test_idle_connection_is_replaced(stub: MoodleStub, sleeps: list[float]) -> None:
    """A connection idle for longer than MAX_IDLE is not reused (the server may be closing it)."""
    clock = Clock()
    with make(stub, sleeps, clock=clock) as client:
        client.call("core_webservice_get_site_info")
        clock.now += MAX_IDLE + 1
        client.call("core_webservice_get_site_info")
    assert len({seen.port for seen in stub.requests}) == 2


def test_server_errors_are_retried_with_backoff(stub: MoodleStub, sleeps: list[float]) -> None:
    """HTTP 500 then 502 then a reply: three requests, sleeps of 0.5 s and 1 s, retries logged."""
    stub.replies(Answer(500, b"oops"), Answer(502, b"bad gateway"), OK)
    with make(stub, sleeps) as client, capture_logs() as logs:
        assert client.call("core_user_get_users_by_field", {"field": "id", "values": [7]}) == OK_VALUE
    assert len(stub.requests) == 3
    assert sleeps == [0.5, 1.0]
    assert [e["event"] for e in logs if e["event"] != "moodle_called"] == [
        "moodle_call_failed", "moodle_call_retried", "moodle_call_failed", "moodle_call_retried"]
    failed = next(e for e in logs if e["event"] == "moodle_call_failed")
    assert failed["function"] == "core_user_get_users_by_field" and failed["attempt"] == 1
    assert "HTTP 500" in failed["error"]


OK_VALUE = [{"id": 7, "username": "zoe"}]


def test_dropped_connection_is_retried(stub: MoodleStub, sleeps: list[float]) -> None:
    """A connection closed without a reply is retried after the backoff."""
    stub.replies(DROP, OK)
    with make(stub, sleeps) as client:
        assert client.call("core_webservice_get_site_info") == OK_VALUE
    assert len(stub.requests) == 2 and sleeps == [0.5]


def test_timeout_is_retried(stub: MoodleStub, sleeps: list[float]) -> None:
    """A request without a reply within the timeout is retried on a new connection."""
    release = threading.Event()
    calls: list[Seen] = []

    def script(seen: Seen) -> Answer:
        calls.append(seen)
        if len(calls) == 1:
            release.wait(10)
            return DROP
        return OK

    stub.reset(script)
    try:
        with make(stub, sleeps, timeout=0.2) as client:
            assert client.call("core_webservice_get_site_info") == OK_VALUE
    finally:
        release.set()
    assert sleeps == [0.5]


def test_retries_run_out(stub: MoodleStub, sleeps: list[float]) -> None:
    """An always-failing site: 1 + retries attempts, sleeps doubling, then the transport error."""
    stub.replies(Answer(503, b"maintenance"))
    with make(stub, sleeps, retries=3, backoff=0.25) as client, pytest.raises(MoodleTransportError) as caught:
        client.call("core_webservice_get_site_info")
    assert len(stub.requests) == 4 and sleeps == [0.25, 0.5, 1.0]
    assert caught.value.status == 503 and caught.value.retryable


def test_non_json_body_is_retried(stub: MoodleStub, sleeps: list[float]) -> None:
    """An HTML error page with status 200 is a transport error, retried."""
    stub.replies(Answer(200, b"<html><b>Fatal error</b>: out of memory</html>", "text/html"), OK)
    with make(stub, sleeps) as client:
        assert client.call("core_webservice_get_site_info") == OK_VALUE
    assert sleeps == [0.5]


def test_ws_error_is_not_retried(stub: MoodleStub, sleeps: list[float]) -> None:
    """An error reply from Moodle raises at once: one request, no sleep."""
    stub.replies(WS_ERROR)
    with make(stub, sleeps) as client, pytest.raises(MoodleWsError) as caught:
        client.call("core_user_create_users", {"users": [{"username": "x"}]})
    assert caught.value.errorcode == "invalidparameter"
    assert len(stub.requests) == 1 and sleeps == []


def test_auth_error_is_not_retried(stub: MoodleStub, sleeps: list[float]) -> None:
    """A refused token raises MoodleAuthError at once, logged as an error."""
    stub.replies(Answer.json({"exception": "moodle_exception", "errorcode": "invalidtoken",
                              "message": "Invalid token - token not found"}))
    with make(stub, sleeps) as client, capture_logs() as logs, pytest.raises(MoodleAuthError):
        client.call("core_webservice_get_site_info")
    assert len(stub.requests) == 1 and sleeps == []
    assert any(e["event"] == "moodle_call_failed" and e["log_level"] == "error" for e in logs)


@pytest.mark.parametrize("answer", [Answer(500, b"oops"), DROP, Answer(200, b"not json")])
def test_create_is_never_retried(stub: MoodleStub, sleeps: list[float], answer: Answer) -> None:
    """A non-idempotent call that may have reached Moodle is not re-sent and says maybe_applied."""
    stub.replies(answer, OK)
    with make(stub, sleeps) as client, pytest.raises(MoodleTransportError) as caught:
        client.call("core_user_create_users", {"users": [{"username": "x"}]}, idempotent=False)
    assert caught.value.maybe_applied
    assert "re-read before re-sending" in str(caught.value)
    assert len(stub.requests) == 1 and sleeps == []


def test_refused_connection(sleeps: list[float]) -> None:
    """Connection refused: retried for a read; for a create, not retried and not maybe_applied."""
    url = f"http://127.0.0.1:{free_port()}"
    with MoodleClient(url, TOKEN, sleep=sleeps.append) as client:
        with pytest.raises(MoodleTransportError) as read:
            client.call("core_webservice_get_site_info")
        assert sleeps == [0.5, 1.0, 2.0] and not read.value.maybe_applied
        sleeps.clear()
        with pytest.raises(MoodleTransportError) as create:
            client.call("core_user_create_users", idempotent=False)
    assert sleeps == [] and not create.value.maybe_applied
    assert "cannot connect" in str(create.value) and "ConnectionRefusedError" in str(create.value)


def test_client_errors_are_not_retried(stub: MoodleStub, sleeps: list[float]) -> None:
    """HTTP 404 (wrong URL) is not retried and not applied."""
    stub.replies(Answer(404, b"not found", "text/html"))
    with make(stub, sleeps) as client, pytest.raises(MoodleTransportError) as caught:
        client.call("core_webservice_get_site_info")
    assert not caught.value.retryable and not caught.value.maybe_applied
    assert len(stub.requests) == 1 and sleeps == []


def test_redirects_are_not_followed(stub: MoodleStub, sleeps: list[float]) -> None:
    """A redirect (e.g. http to https) is reported with its target: the body would be lost on a GET."""

    def redirect(_seen: Seen) -> Answer:
        return Answer(301, b"", "text/html")

    stub.reset(redirect)
    with make(stub, sleeps) as client, pytest.raises(MoodleTransportError) as caught:
        client.call("core_webservice_get_site_info")
    assert "platform.url" in str(caught.value) and not caught.value.retryable
    assert len(stub.requests) == 1


def test_map_keeps_order_and_bounds_requests_in_flight(stub: MoodleStub, sleeps: list[float]) -> None:
    """map() never has more than max_in_flight requests at the server, and returns results in input order."""
    last_done = threading.Event()

    def script(seen: Seen) -> Answer:
        value = dict(seen.form)["values[0]"]
        with stub.cond:  # hold each request until the limit is reached (or the tail of the list)
            stub.cond.wait_for(lambda: stub.active >= 4 or len(stub.requests) >= 12, timeout=5)
        if value == "0":
            last_done.wait(5)  # the first request finishes last
        if value == "11":
            last_done.set()
        return Answer.json([{"id": int(value)}])

    stub.reset(script)
    params = [{"field": "id", "values": [i]} for i in range(12)]
    with make(stub, sleeps, max_in_flight=4) as client:
        results = client.map("core_user_get_users_by_field", params)
    assert results == [[{"id": i}] for i in range(12)]
    assert stub.peak == 4
    assert len({seen.port for seen in stub.requests}) <= 4


def test_map_returns_errors_in_place(stub: MoodleStub, sleeps: list[float]) -> None:
    """A failing call in map() is returned as its exception at its index; the others succeed."""

    def script(seen: Seen) -> Answer:
        return WS_ERROR if dict(seen.form)["values[0]"] == "2" else Answer.json([])

    stub.reset(script)
    with make(stub, sleeps) as client:
        params = [{"field": "id", "values": [i]} for i in range(4)]
        results = client.map("core_user_get_users_by_field", params)
    assert results[:2] == [[], []] and results[3] == []
    assert isinstance(results[2], MoodleWsError)


def test_map_encodes_everything_before_sending(stub: MoodleStub, sleeps: list[float]) -> None:
    """A bad parameter anywhere in the list raises before any request is sent."""
    with make(stub, sleeps) as client, pytest.raises(TypeError):
        client.map("core_user_get_users_by_field", [{"values": [1]}, {"values": [object()]}])
    assert stub.requests == []


def test_map_carries_the_log_context_into_its_threads(stub: MoodleStub, sleeps: list[float]) -> None:
    """Events logged by map()'s worker threads carry the caller's bound context (run_id)."""
    with make(stub, sleeps) as client, capture_logs(processors=[merge_contextvars]) as logs, \
            bound_contextvars(run_id="r-42"):
            client.map("core_webservice_get_site_info", [None, None])
    called = [e for e in logs if e["event"] == "moodle_called"]
    assert len(called) == 2 and all(e["run_id"] == "r-42" and "ms" in e for e in called)


def test_upload_errors_are_recognised(stub: MoodleStub, sleeps: list[float]) -> None:
    """upload.php's AJAX error ({error, errorcode}) and per-file errors raise the matching errors."""
    stub.replies(Answer.json({"error": "Invalid token - token not found", "errorcode": "invalidtoken"}))
    with make(stub, sleeps) as client:
        with pytest.raises(MoodleAuthError):
            client.upload("a.png", b"x", "image/png")
        oversized = {"filename": "a.png", "errortype": "fileoversized", "error": "File too big"}
        stub.replies(Answer.json([oversized]))
        with pytest.raises(MoodleWsError) as caught:
            client.upload("a.png", b"x", "image/png")
    assert caught.value.errorcode == "fileoversized" and caught.value.message == "File too big"


@pytest.mark.parametrize(("url", "needle"), [
    ("ftp://moodle.example.edu", "http(s)://"),
    ("https://admin:hunter2@moodle.example.edu", "user name or password"),
    ("https://moodle.example.edu/?x=1", "query"),
    ("https://moodle.example.edu:99999", "port"),
])
def test_bad_urls_are_config_errors(url: str, needle: str) -> None:
    """A URL that is not plain http(s)://host[:port][/path] is a ConfigError naming platform.url."""
    with pytest.raises(ConfigError) as caught:
        MoodleClient(url, TOKEN)
    assert str(caught.value).startswith("platform.url:") and needle in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_base_url_keeps_its_path(stub: MoodleStub, sleeps: list[float]) -> None:
    """A site under a sub-path (and a trailing slash) gets its requests under that path."""
    with MoodleClient(stub.url + "/", TOKEN) as client:
        assert client.url == stub.url
        client.call("core_webservice_get_site_info")
    assert stub.requests[0].path == "/moodle/webservice/rest/server.php"
