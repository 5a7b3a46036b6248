"""The fake Moodle server (tests/moodle_fake): the recorded exchanges replay with the recorded replies,
transport faults behave as announced, every request is logged without the token."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest

from syncd.platform.moodle.client import MoodleClient
from syncd.platform.moodle.errors import MoodleAuthError, MoodleTransportError
from tests.moodle_fake import SERVICE_FUNCTIONS, FakeMoodle
from tests.moodle_fake.phpform import encode_form
from tests.moodle_fake.replay import RECORDINGS, Replayer
from tests.moodle_fake.ws_files import picture_of
from tests.moodle_fake.ws_users import password_matches

TOKEN = "feedfacecafebeef0123456789abcdef"
#: the order the recording script ran them (each file builds on the previous ones)
USER_FILES = ("core_user_create_users.json", "core_user_get_users_by_field.json",
              "core_user_update_users.json", "core_user_delete_users.json", "core_user_update_picture.json")
CREATE = "core_user_create_users"
GET = "core_user_get_users_by_field"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)


@pytest.fixture
def fake() -> Iterator[FakeMoodle]:
    """A fake Moodle with a stock site."""
    with FakeMoodle(TOKEN) as server:
        yield server


def post(fake: FakeMoodle, function: str, timeout: float = 10.0, **params: Any) -> Any:
    """One JSON web-service call with urllib; the decoded body."""
    form = [("wstoken", TOKEN), ("wsfunction", function), ("moodlewsrestformat", "json"),
            *encode_form(params)]
    with urllib.request.urlopen(f"{fake.url}/webservice/rest/server.php", urlencode(form).encode(),
                                timeout=timeout) as reply:
        assert reply.status == 200
        return json.loads(reply.read())


def new_user(name: str) -> dict[str, Any]:
    """A valid core_user_create_users item."""
    return {"username": name, "password": "Secret-2026!", "firstname": "F", "lastname": "L",
            "email": f"{name}@univ.fr"}


# -- the recordings -----------------------------------------------------------------------------


def test_recorded_user_exchanges_replay_in_order(fake: FakeMoodle) -> None:
    """create → get_by_field → update → delete → picture, as recorded, give the recorded replies (same
    keys, errors and messages; ids mapped), including the verification calls filed with them."""
    replayer = Replayer(fake, TOKEN)
    for name in USER_FILES:
        assert replayer.replay(name) == [], name
    zoe = fake.site.user_by_username("zoe.eleonore")
    assert zoe is not None and zoe.firstname == "Zoé-Éléonore" and password_matches(zoe, "Motdepasse-2026!")
    assert fake.site.user_by_username("lea.rousseau") is None  # its batch was rolled back
    chloe = fake.site.user_by_username("chloe.brule")
    assert chloe is not None and chloe.department == "Génie Électrique"  # applied before the invalidresponse


def test_site_info_and_common_errors_replay(fake: FakeMoodle) -> None:
    """core_webservice_get_site_info (JSON and XML) and every _errors.json exchange (token, function
    unknown or outside the service, missing wsfunction, extra or badly typed parameters) replay."""
    replayer = Replayer(fake, TOKEN)
    assert replayer.replay("core_webservice_get_site_info.json") == []
    assert replayer.replay("_errors.json") == []


def test_debug_on_replies_carry_the_recorded_debuginfo() -> None:
    """With debugging on, errors also carry the recorded debuginfo (the real reason of a generic error)."""
    with FakeMoodle(TOKEN, debug=True) as fake:
        replayer = Replayer(fake, TOKEN)
        for name in ("_errors.json", *USER_FILES):
            assert replayer.replay(RECORDINGS / "debuginfo" / name) == [], name


def test_the_service_functions_can_be_changed(fake: FakeMoodle) -> None:
    """A function taken out of the service answers accessexception and leaves the site-info list."""
    assert "core_cohort_get_cohort_members" in fake.service_functions == set(SERVICE_FUNCTIONS)
    fake.service_functions.discard(GET)
    refused = post(fake, GET, field="id", values=[2])
    assert (refused["errorcode"], refused["message"]) == ("accessexception", "Access control exception")
    names = [f["name"] for f in post(fake, "core_webservice_get_site_info")["functions"]]
    assert GET not in names and CREATE in names and len(names) == len(SERVICE_FUNCTIONS) - 1


def test_a_function_the_fake_lacks_fails_the_test_when_the_server_stops() -> None:
    """A Moodle function put in the service that the fake does not implement gets an error reply, and
    leaving the server's context raises, so the gap cannot go unnoticed."""
    lacking = "core_course_search_courses"
    gap = f"{lacking}: offered by the service but not implemented"
    with pytest.raises(AssertionError, match=gap), FakeMoodle(TOKEN) as fake:
        fake.service_functions.add(lacking)
        assert post(fake, lacking)["errorcode"] == "fakenotimplemented"


def test_errors_come_as_xml_without_the_json_format(fake: FakeMoodle) -> None:
    """Without moodlewsrestformat=json an error is Moodle's XML EXCEPTION, still with HTTP 200."""
    body = urlencode({"wstoken": "bad", "wsfunction": GET}).encode()
    with urllib.request.urlopen(f"{fake.url}/webservice/rest/server.php", body, timeout=10) as reply:
        status, text = reply.status, reply.read().decode()
    assert status == 200
    assert '<EXCEPTION class="core\\exception\\moodle_exception">' in text
    assert "<ERRORCODE>invalidtoken</ERRORCODE>" in text
    assert "<MESSAGE>Invalid token - token not found</MESSAGE>" in text


def test_parallel_calls_with_latency_are_all_applied() -> None:
    """Calls in flight together (latency slept outside the site's lock) each commit once, with
    distinct ids, and each is logged."""
    with FakeMoodle(TOKEN, latency=0.01) as fake, MoodleClient(fake.url, TOKEN, max_in_flight=8) as client:
        replies = client.map(CREATE, [{"users": [new_user(f"u{n}")]} for n in range(24)], idempotent=False)
        ids = {reply[0]["id"] for reply in replies}
        assert len(ids) == 24 and fake.count(CREATE) == 24
        assert set(fake.site.users_by_username()) >= {f"u{n}" for n in range(24)}


# -- call log -------------------------------------------------------------------------------------


def test_calls_are_logged_in_order_without_the_token(fake: FakeMoodle) -> None:
    """Each request is one Call: function, decoded params, errorcode (or None); uploads too; the token
    is never in the log."""
    post(fake, CREATE, users=[new_user("ana")])
    post(fake, CREATE, users=[new_user("ana")])
    with MoodleClient(fake.url, TOKEN, retries=0) as client:
        client.upload("p.png", PNG, "image/png")
    calls = fake.calls
    assert [(c.function, c.error) for c in calls] == [
        (CREATE, None), (CREATE, "invalidparameter"), ("webservice/upload.php", None)]
    assert calls[0].params == {"users": [new_user("ana")]}
    assert calls[1].debuginfo == "Username already exists: ana"
    assert calls[2].params["file_1"] == f"<{len(PNG)} bytes image/png>"
    assert fake.count(CREATE) == 2 and fake.count(GET) == 0
    assert TOKEN not in repr(calls)


# -- faults ----------------------------------------------------------------------------------------


def test_a_500_fault_is_an_html_error_page_and_runs_nothing(fake: FakeMoodle) -> None:
    """fail_next(f, "500"): HTTP 500 with an HTML body, nothing applied; the next call works."""
    fake.fail_next(CREATE, "500")
    with pytest.raises(urllib.error.HTTPError) as caught:
        post(fake, CREATE, users=[new_user("ana")])
    assert caught.value.code == 500 and b"<html>" in caught.value.read()
    assert fake.site.user_by_username("ana") is None
    assert post(fake, CREATE, users=[new_user("ana")])[0]["username"] == "ana"
    assert [c.fault for c in fake.calls] == ["500", None]


def test_drop_closes_the_connection_before_running(fake: FakeMoodle) -> None:
    """fail_next(f, "drop"): no reply at all and nothing applied."""
    fake.fail_next(CREATE, "drop")
    with pytest.raises((http.client.RemoteDisconnected, urllib.error.URLError, ConnectionError)):
        post(fake, CREATE, users=[new_user("ana")])
    assert fake.site.user_by_username("ana") is None and fake.count(CREATE) == 1


def test_drop_after_applies_and_loses_the_reply(fake: FakeMoodle) -> None:
    """fail_next(f, "drop_after"): the call is committed, the reply never comes; a retry is refused
    as a duplicate, which is what a client must expect."""
    fake.fail_next(CREATE, "drop_after")
    with pytest.raises((http.client.RemoteDisconnected, urllib.error.URLError, ConnectionError)):
        post(fake, CREATE, users=[new_user("ana")])
    assert fake.site.user_by_username("ana") is not None
    assert post(fake, CREATE, users=[new_user("ana")])["errorcode"] == "invalidparameter"


def test_timeout_outlasts_the_client_and_runs_nothing(fake: FakeMoodle) -> None:
    """fail_next(f, "timeout"): no reply until the client gives up; nothing applied."""
    fake.fail_next(CREATE, "timeout")
    with pytest.raises((TimeoutError, urllib.error.URLError)):
        post(fake, CREATE, timeout=0.3, users=[new_user("ana")])
    assert fake.site.user_by_username("ana") is None
    assert post(fake, CREATE, users=[new_user("ana")])[0]["username"] == "ana"


def test_faults_count_down_and_match_any_function(fake: FakeMoodle) -> None:
    """times=2 fails two requests; "*" matches any function; the MoodleClient retries a dropped
    read and gets the reply."""
    fake.fail_next(GET, "drop", times=2)
    with MoodleClient(fake.url, TOKEN, retries=2, backoff=0.0) as client:
        assert client.call(GET, {"field": "id", "values": [2]})[0]["username"] == "admin"
        assert fake.count(GET) == 3 and fake.faults == []
        fake.fail_next("*", "500")
        with pytest.raises(MoodleTransportError):
            client.call(CREATE, {"users": [new_user("ana")]}, idempotent=False)
    with pytest.raises(ValueError, match="fault kind"):
        fake.fail_next(GET, "slow")


# -- uploads and pictures ---------------------------------------------------------------------------


def test_uploads_set_a_picture_through_the_client(fake: FakeMoodle) -> None:
    """upload.php stores a draft file; core_user_update_picture makes it the user's picture; a bad
    token on upload.php is an AJAX error the client reports as an auth error."""
    userid = fake.site.add_user("zoe")
    with MoodleClient(fake.url, TOKEN, retries=0) as client:
        itemid = client.upload("zoe.png", PNG, "image/png")
        reply = client.call("core_user_update_picture", {"draftitemid": itemid, "userid": userid})
    assert reply["success"] is True and "/user/icon/" in reply["profileimageurl"]
    picture = picture_of(fake.site, userid)
    assert picture is not None and picture.data == PNG
    with MoodleClient(fake.url, "0" * 32, retries=0) as stranger, pytest.raises(MoodleAuthError):
        stranger.upload("x.png", PNG, "image/png")
