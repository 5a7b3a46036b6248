"""Recognising Moodle's error replies and warnings (recordings README §2, §4, §5)."""

from __future__ import annotations

import pytest

from syncd.domain import RetryLater, SyncdError
from syncd.platform.moodle.errors import (
    MoodleAuthError,
    MoodleError,
    MoodleTransportError,
    MoodleWsError,
    error_from_body,
    is_error,
    readable,
    warnings_of,
)

PASSWORD_HTML = (
    "<div>Passwords must be at least 8 characters long.</div><div>Passwords must have at least 1 digit(s)."
    "</div><div>The password must have at least 1 special character(s) such as *, -, or #.</div>"
)


def test_is_error_only_for_objects_with_exception() -> None:
    """Only a JSON object with an ``exception`` key is an error; lists, null and warnings are not."""
    assert is_error({"exception": "x", "errorcode": "y", "message": "z"})
    assert is_error({"exception": "TypeError", "message": "no errorcode"})
    assert not is_error(None)
    assert not is_error([{"exception": "in a list"}])
    assert not is_error({"warnings": [{"warningcode": "1", "message": "m"}]})
    assert not is_error({"success": False, "warnings": []})


def test_error_hierarchy() -> None:
    """All are MoodleErrors (SyncdErrors); auth and transport errors make the file wait (RetryLater)."""
    assert issubclass(MoodleError, SyncdError)
    assert issubclass(MoodleWsError, MoodleError) and not issubclass(MoodleWsError, RetryLater)
    assert issubclass(MoodleAuthError, MoodleError) and issubclass(MoodleAuthError, RetryLater)
    assert issubclass(MoodleTransportError, MoodleError) and issubclass(MoodleTransportError, RetryLater)


def test_html_errorcode_gives_readable_message() -> None:
    """A password-policy failure (errorcode = HTML, message = 'error/<div>...') reads as plain sentences."""
    body = {"exception": "core\\exception\\moodle_exception", "errorcode": PASSWORD_HTML,
            "message": "error/" + PASSWORD_HTML}
    exc = error_from_body("core_user_create_users", body)
    assert isinstance(exc, MoodleWsError)
    assert exc.errorcode == PASSWORD_HTML and exc.code is None
    assert exc.message == (
        "Passwords must be at least 8 characters long. Passwords must have at least 1 digit(s). "
        "The password must have at least 1 special character(s) such as *, -, or #."
    )
    assert str(exc) == f"core_user_create_users: {exc.message}"


def test_message_not_sent_is_an_error_after_commit() -> None:
    """errorcode 'Message was not sent.' (enrolment saved anyway) reads plainly and says maybe_applied."""
    body = {"exception": "core\\exception\\moodle_exception", "errorcode": "Message was not sent.",
            "message": "error/Message was not sent."}
    exc = error_from_body("enrol_manual_enrol_users", body)
    assert isinstance(exc, MoodleWsError)
    assert exc.message == "Message was not sent."
    assert exc.maybe_applied
    assert str(exc) == "enrol_manual_enrol_users: Message was not sent."


def test_invalid_response_is_maybe_applied() -> None:
    """invalidresponse means Moodle did the work but could not serialise its reply."""
    exc = error_from_body("core_group_create_groupings", {
        "exception": "core\\exception\\invalid_response_exception", "errorcode": "invalidresponse",
        "message": "Invalid response value detected"})
    assert isinstance(exc, MoodleWsError) and exc.maybe_applied


def test_php_error_without_errorcode() -> None:
    """A PHP TypeError reply has no errorcode: errorcode is None and the message is kept."""
    message = "core\\user::get_name_placeholders(): Argument #1 ($user) must be of type stdClass, bool given"
    exc = error_from_body("enrol_manual_enrol_users", {"exception": "TypeError", "message": message})
    assert isinstance(exc, MoodleWsError)
    assert (exc.exception, exc.errorcode, exc.message, exc.debuginfo) == ("TypeError", None, message, None)
    assert not exc.maybe_applied


def test_debuginfo_is_kept_readable() -> None:
    """debuginfo (site debugging on) is kept, whitespace collapsed, and shown after the code."""
    exc = error_from_body("core_user_create_users", {
        "exception": "core\\exception\\invalid_parameter_exception", "errorcode": "invalidparameter",
        "message": "Invalid parameter value detected",
        "debuginfo": "Username already exists:\n  zoe.eleonore"})
    assert isinstance(exc, MoodleWsError)
    assert exc.debuginfo == "Username already exists: zoe.eleonore"
    assert str(exc) == ("core_user_create_users: Invalid parameter value detected "
                        "(invalidparameter; Username already exists: zoe.eleonore)")


def test_access_exception_names_the_missing_function() -> None:
    """accessexception is an auth error whose message names the function to add to the service."""
    exc = error_from_body("core_course_search_courses", {
        "exception": "webservice_access_exception", "errorcode": "accessexception",
        "message": "Access control exception"})
    assert isinstance(exc, MoodleAuthError)
    assert exc.function == "core_course_search_courses" and exc.errorcode == "accessexception"
    assert "add core_course_search_courses to the token's external service" in str(exc)


@pytest.mark.parametrize("code", ["invalidtoken", "wsaccessusersuspended", "servicenotavailable"])
def test_token_refusals_are_auth_errors(code: str) -> None:
    """A refused token or web-service user is an auth error pointing at the token file."""
    exc = error_from_body("core_webservice_get_site_info", {
        "exception": "core\\exception\\moodle_exception", "errorcode": code, "message": "Invalid token"})
    assert isinstance(exc, MoodleAuthError)
    assert "platform.token_file" in str(exc)


def test_unknown_function_is_an_auth_error() -> None:
    """A function the site does not have (invalidrecord on external_functions) is a configuration error."""
    exc = error_from_body("local_nonexistent_function", {
        "exception": "dml_missing_record_exception", "errorcode": "invalidrecord",
        "message": "Can't find data record in database table external_functions."})
    assert isinstance(exc, MoodleAuthError)
    assert "does not exist on this Moodle site" in str(exc)


def test_unknown_record_is_a_row_error() -> None:
    """invalidrecord on another table (unknown id) stays a plain WS error."""
    exc = error_from_body("core_cohort_delete_cohorts", {
        "exception": "dml_missing_record_exception", "errorcode": "invalidrecord",
        "message": "Can't find data record in database table cohort."})
    assert isinstance(exc, MoodleWsError) and exc.code == "invalidrecord"


def test_maintenance_mode_is_a_retryable_transport_error() -> None:
    """sitemaintenance is transient: a retryable transport error, nothing applied."""
    exc = error_from_body("core_user_create_users", {
        "exception": "moodle_exception", "errorcode": "sitemaintenance", "message": "Site maintenance"})
    assert isinstance(exc, MoodleTransportError)
    assert exc.retryable and not exc.maybe_applied


def test_secrets_are_redacted_from_every_field() -> None:
    """Token and password values echoed by Moodle are masked in message, debuginfo and str()."""
    body = {"exception": "x", "errorcode": "invalidparameter", "message": "bad TOKEN123 given",
            "debuginfo": 'the value is "Secret-pw1!", the server was expecting "alphanum" type'}
    exc = error_from_body("core_user_update_users", body, secrets=("TOKEN123", "Secret-pw1!"))
    text = f"{exc} {exc!r} {exc.args}"
    assert "TOKEN123" not in text and "Secret-pw1!" not in text
    assert "bad *** given" in text


def test_readable_shortens_and_unescapes() -> None:
    """readable() unescapes entities, joins blocks, collapses spaces and cuts long text with an ellipsis."""
    assert readable("Économie &amp; gestion") == "Économie & gestion"
    assert readable("<ul><li>one</li><li>two</li></ul>") == "one; two"
    assert readable("a  \n b") == "a b"
    assert readable("x < 5 and y > 2") == "x < 5 and y > 2"
    long = readable("word " * 200, 50)
    assert len(long) == 50 and long.endswith("…")


def test_warnings_of_update_replies() -> None:
    """Per-item warnings keep item, itemid, code and message; replies without warnings give []."""
    body = {"warnings": [
        {"item": "user", "itemid": 16489, "warningcode": "useremailduplicate",
         "message": "Duplicate address"},
        {"item": "course", "itemid": 66, "warningcode": "shortnametaken",
         "message": "Short name is already used for another course (ECO &amp; GE)"},
    ]}
    found = warnings_of(body)
    assert [(w.item, w.itemid, w.warningcode) for w in found] == [
        ("user", 16489, "useremailduplicate"), ("course", 66, "shortnametaken")]
    assert found[1].message == "Short name is already used for another course (ECO & GE)"
    assert warnings_of(None) == [] and warnings_of([{"id": 1}]) == [] and warnings_of({"warnings": []}) == []


def test_warnings_of_cohort_members() -> None:
    """add_cohort_members warnings have digit-string codes and no item: both kept as they are."""
    found = warnings_of({"warnings": [{"warningcode": "2", "message": "user id=999999 not exists"}, "junk"]})
    assert len(found) == 1
    assert (found[0].warningcode, found[0].item, found[0].itemid) == ("2", None, None)
