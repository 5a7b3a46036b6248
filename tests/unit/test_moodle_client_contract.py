"""Contract over HTTP: for every recorded exchange, the client sends the recorded form and
understands the reply.

The local stub answers with the recorded response; the client is given the recorded
request's parameters (decoded into nested Python structures). The test checks the exact
form fields on the wire (``wstoken`` first, then the recording's fields in order) and that
the reply comes back as the recorded value, or raises the right error with the right fields.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from syncd.platform.moodle.client import MoodleClient
from syncd.platform.moodle.errors import (
    MoodleAuthError,
    MoodleError,
    MoodleTransportError,
    MoodleWsError,
    warnings_of,
)
from tests.unit.test_moodle_client_encoding import decode_form, recorded_exchanges
from tests.unit.test_moodle_client_stub import Answer, MoodleStub

TOKEN = "0123456789abcdef0123456789abcdef"
ALL = recorded_exchanges()


def exclusion(exchange: dict[str, Any]) -> str | None:
    """Why a recorded exchange cannot go through ``call()`` as recorded, or None."""
    request = exchange["request"]
    if "file_1" in request:
        return "a multipart upload.php exchange, not a REST call: see test_upload_sends_recorded_fields"
    if "wsfunction" not in request:
        return "deliberately malformed: no wsfunction (the client always sends one)"
    if request.get("moodlewsrestformat") != "json":
        return "deliberately malformed: no moodlewsrestformat (the client always asks for JSON)"
    return None


CALLS = [(ident, exchange) for ident, exchange in ALL if exclusion(exchange) is None]


@pytest.fixture(scope="module")
def stub() -> Iterator[MoodleStub]:
    """One local server for all recorded exchanges."""
    with MoodleStub() as server:
        yield server


def test_only_malformed_and_upload_exchanges_are_left_out() -> None:
    """Exactly 8 known exchanges are left out of the REST contract (4 uploads, 4 malformed), with reasons."""
    if not ALL:
        pytest.skip(reason="no Moodle recordings found (../shared/moodle-ws)")
    left_out = {ident: exclusion(exchange) for ident, exchange in ALL if exclusion(exchange)}
    assert len(left_out) == 8, left_out
    assert sum("upload.php" in str(reason) for reason in left_out.values()) == 4


def _expected_error(response: dict[str, Any]) -> type[MoodleError]:
    code = response.get("errorcode")
    if code in ("invalidtoken", "accessexception"):
        return MoodleAuthError
    if code == "invalidrecord" and "external_functions" in response["message"]:
        return MoodleAuthError
    return MoodleWsError


def _check_error(exc: MoodleError, function: str, response: dict[str, Any]) -> None:
    assert type(exc) is _expected_error(response)
    assert exc.function == function  # type: ignore[attr-defined]
    if isinstance(exc, MoodleAuthError):
        assert exc.errorcode == response["errorcode"]
        assert function in str(exc)
        return
    assert isinstance(exc, MoodleWsError)
    assert (exc.exception, exc.errorcode) == (response["exception"], response.get("errorcode"))
    raw = response["message"]
    if "<" not in raw and not raw.startswith("error/"):
        assert exc.message == raw
    else:
        assert "<" not in exc.message and "error/" not in exc.message and exc.message
    if "debuginfo" in response:
        assert exc.debuginfo and "<div>" not in exc.debuginfo
        assert exc.debuginfo.split()[:3] == response["debuginfo"].split()[:3] or "<" in response["debuginfo"]
    else:
        assert exc.debuginfo is None


@pytest.mark.parametrize(("ident", "exchange"), CALLS, ids=[ident for ident, _ in CALLS])
def test_recorded_exchange_over_http(stub: MoodleStub, ident: str, exchange: dict[str, Any]) -> None:
    """The client posts the recorded fields in order and returns the recorded reply or the right error."""
    request, response = exchange["request"], exchange["response"]
    token = request.get("wstoken", TOKEN)
    recorded = [(k, v) for k, v in request.items() if k != "wstoken"]
    function = request["wsfunction"]
    stub.replies(Answer.json(response))
    with MoodleClient(stub.url, token, retries=0) as client:
        try:
            result = client.call(function, decode_form(recorded[2:]))
        except MoodleError as exc:
            assert isinstance(response, dict) and "exception" in response, f"unexpected {exc!r}"
            _check_error(exc, function, response)
        else:
            assert not (isinstance(response, dict) and "exception" in response), "error reply not raised"
            assert result == response
            if isinstance(response, dict) and "warnings" in response:
                assert [w.warningcode for w in warnings_of(result)] == [
                    str(w["warningcode"]) for w in response["warnings"]]
    (seen,) = stub.requests
    assert seen.path == "/moodle/webservice/rest/server.php"
    assert seen.headers["content-type"] == "application/x-www-form-urlencoded"
    assert seen.form == [("wstoken", token), *recorded]


def test_recorded_xml_reply_is_a_transport_error(stub: MoodleStub) -> None:
    """The recorded XML body (what Moodle sends without moodlewsrestformat) is not JSON: a transport error."""
    xml = [e for _, e in ALL if isinstance(e["response"], str)]
    if not xml:
        pytest.skip(reason="no Moodle recordings found (../shared/moodle-ws)")
    stub.replies(Answer(200, xml[0]["response"].encode(), "application/xml"))
    with MoodleClient(stub.url, TOKEN, retries=0) as client, pytest.raises(MoodleTransportError) as caught:
        client.call("core_webservice_get_site_info")
    assert "not JSON" in str(caught.value) and "<?xml" in str(caught.value)
    assert caught.value.retryable


def test_upload_sends_recorded_fields(stub: MoodleStub) -> None:
    """upload() posts token, filearea=draft, itemid=0 and file_1 as recorded, and returns the draft itemid."""
    uploads = [e for _, e in ALL if "file_1" in e["request"]]
    if not uploads:
        pytest.skip(reason="no Moodle recordings found (../shared/moodle-ws)")
    for exchange in uploads:
        stub.replies(Answer.json(exchange["response"]))
        with MoodleClient(stub.url, TOKEN) as client:
            itemid = client.upload("portrait.png", b"\x89PNG-data", "image/png")
        assert itemid == exchange["response"][0]["itemid"]
        (seen,) = stub.requests
        assert seen.path == "/moodle/webservice/upload.php"
        assert seen.headers["content-type"].startswith("multipart/form-data; boundary=")
        body = seen.body
        fields = [(k, v) for k, v in exchange["request"].items() if k != "file_1"]
        for name, value in [("token", TOKEN), *fields]:
            assert f'name="{name}"\r\n\r\n{value}\r\n'.encode() in body
        part = b'name="file_1"; filename="portrait.png"\r\nContent-Type: image/png\r\n\r\n\x89PNG-data'
        assert part in body
