"""MoodleEnrolments against the recordings: what it sends is, field for field, what the recorded
exchanges sent, and it reads the recorded replies (errors included) the way the brief says."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from syncd.domain import PlatformRefused
from syncd.platform.model import Enrolment, RoleAssignment
from syncd.platform.moodle._enrolmethods import decode_enrolment, method_id
from syncd.platform.moodle.enrolments import MoodleEnrolments
from tests.unit.moodle_scripted import Scripted, form, recorded, recorded_form, ws_over

ENROLLED = "core_enrol_get_enrolled_users"


def answers(replies: Mapping[str, Any]) -> Scripted:
    """A client answering each function with a fixed reply (a callable gets the params)."""
    def answer(function: str, params: Mapping[str, Any]) -> Any:
        reply = replies.get(function)
        return reply(params) if callable(reply) else reply
    return Scripted(answer)


def when(epoch: int) -> datetime:
    """An aware datetime from epoch seconds."""
    return datetime.fromtimestamp(epoch, UTC)


def test_new_enrolments_go_in_one_call_exactly_as_recorded() -> None:
    """Four new enrolments and their roles: one enrol_manual_enrol_users call, the recorded batch of 4."""
    exchange = recorded("enrol_manual_enrol_users", "success: batch of 4")
    client = answers({ENROLLED: [], "enrol_manual_enrol_users": None})
    repo = MoodleEnrolments(ws_over(client))
    manual = method_id(64, "manual")
    start, end = when(1788213600), when(1801436340)
    new = [Enrolment(manual, 64, 16487, True, start, end), Enrolment(manual, 64, 16488, True, start, end),
           Enrolment(manual, 64, 16489, False), Enrolment(manual, 64, 16491)]
    repo.add(new)
    assert client.sent("enrol_manual_enrol_users") == []  # waiting for their roles
    repo.assign([RoleAssignment(64, 16487, 5), RoleAssignment(64, 16488, 5), RoleAssignment(64, 16489, 5),
                 RoleAssignment(64, 16491, 3)])
    (sent,) = client.sent("enrol_manual_enrol_users")
    assert form(sent) == recorded_form(exchange)
    assert client.sent("core_role_assign_roles") == []  # the roles went with the enrolments
    assert [decode_enrolment(e.id or 0)[:2] for e in new] == [(64, u) for u in (16487, 16488, 16489, 16491)]


def test_unassign_sends_the_unassignments_array() -> None:
    """core_role_unassign_roles gets 'unassignments' (not 'assignments'), course level, as recorded."""
    exchange = recorded("core_role_unassign_roles", "unknown course instanceid")
    client = answers({ENROLLED: [], "core_role_unassign_roles": None})
    MoodleEnrolments(ws_over(client)).unassign([RoleAssignment(999999, 16491, 4)])
    (sent,) = client.sent("core_role_unassign_roles")
    assert form(sent) == recorded_form(exchange)


def test_assign_refusal_keeps_moodles_words_and_names_the_item() -> None:
    """The recorded codingerror for an unknown user becomes a refusal naming role, user and course."""
    exchange = recorded("core_role_assign_roles", "failure: unknown user id")
    client = answers({ENROLLED: [], "core_role_assign_roles": exchange["response"]})
    with pytest.raises(PlatformRefused) as caught:
        MoodleEnrolments(ws_over(client)).assign([RoleAssignment(64, 999999, 5)])
    (sent,) = client.sent("core_role_assign_roles")
    assert form(sent) == recorded_form(exchange)
    text = str(caught.value)
    assert "User ID does not exist or is deleted" in text and "role 5 of user 999999 in course 64" in text


def test_unknown_user_typeerror_is_refused_with_its_reason() -> None:
    """The recorded PHP TypeError (no errorcode) for an unknown userid: refused as 'does not exist'."""
    exchange = recorded("enrol_manual_enrol_users", "unknown user id")
    client = answers({ENROLLED: [], "enrol_manual_enrol_users": exchange["response"]})
    repo = MoodleEnrolments(ws_over(client))
    repo.add([Enrolment(method_id(65, "manual"), 65, 999999)])
    with pytest.raises(PlatformRefused) as caught:
        repo.assign([RoleAssignment(65, 999999, 5)])
    (sent,) = client.sent("enrol_manual_enrol_users")
    assert form(sent) == recorded_form(exchange)
    assert "does not exist or was deleted" in str(caught.value)
    assert "user 999999 in course 65" in str(caught.value)


def _welcome_client(shown: bool) -> Scripted:
    exchange = recorded("enrol_manual_enrol_users", "ERROR REPORTED ALTHOUGH")
    reads: list[int] = []

    def roster(params: Mapping[str, Any]) -> Any:
        reads.append(params["courseid"])
        enrolled = [{"id": 16491, "roles": [{"roleid": 3}]}]
        if shown and len(reads) > 1:  # the re-read after the error
            enrolled.append({"id": 16492, "roles": [{"roleid": 4}]})
        return enrolled

    return answers({ENROLLED: roster, "enrol_manual_enrol_users": exchange["response"]})


def test_message_not_sent_after_commit_is_a_success_when_the_reread_shows_the_user() -> None:
    """'Message was not sent.' (§5.1) with the user shown by the roster read again: success, role cached."""
    client = _welcome_client(shown=True)
    repo = MoodleEnrolments(ws_over(client))
    repo.add([Enrolment(method_id(64, "manual"), 64, 16492)])
    repo.assign([RoleAssignment(64, 16492, 4)])
    assert [p["courseid"] for p in client.sent(ENROLLED)] == [64, 64]
    assert repo.roles([(64, 16492)]) == [RoleAssignment(64, 16492, 4)]


def test_message_not_sent_without_the_enrolment_is_refused() -> None:
    """The same error while the re-read does not show the user is a refusal in Moodle's words."""
    client = _welcome_client(shown=False)
    repo = MoodleEnrolments(ws_over(client))
    repo.add([Enrolment(method_id(64, "manual"), 64, 16492)])
    with pytest.raises(PlatformRefused, match="Message was not sent"):
        repo.assign([RoleAssignment(64, 16492, 4)])


def test_unenrol_is_sent_as_recorded_and_checked_by_a_reread() -> None:
    """delete() sends the recorded batch of 2, then reads the roster again; nobody left: no error."""
    exchange = recorded("enrol_manual_unenrol_users", "success: batch of 2")
    state = {"unenrolled": False}

    def roster(_params: Mapping[str, Any]) -> Any:
        if state["unenrolled"]:
            return []
        return [{"id": 16487, "roles": [{"roleid": 5}]}, {"id": 16493, "roles": [{"roleid": 5}]}]

    def unenrol(_params: Mapping[str, Any]) -> None:
        state["unenrolled"] = True

    client = answers({ENROLLED: roster, "enrol_manual_unenrol_users": unenrol})
    repo = MoodleEnrolments(ws_over(client))
    found = repo.in_courses([65])
    repo.delete([e.id or 0 for e in found])
    (sent,) = client.sent("enrol_manual_unenrol_users")
    assert form(sent) == recorded_form(exchange)
    assert repo.find([(65, 16487), (65, 16493)]) == []


def test_a_user_still_enrolled_after_unenrol_is_refused() -> None:
    """A user the roster still shows after the unenrol call (another method) is a refusal naming them."""
    roster = [{"id": 16487, "roles": [{"roleid": 5}]}]
    client = answers({ENROLLED: roster, "enrol_manual_unenrol_users": None})
    repo = MoodleEnrolments(ws_over(client))
    (enrolment,) = repo.find([(65, 16487)])
    with pytest.raises(PlatformRefused, match=r"still enrolled .*user 16487 in course 65.*another method"):
        repo.delete([enrolment.id or 0])


def test_methods_ask_many_courses_at_once_as_recorded() -> None:
    """methods() of courses 64 and 65 is one get_courses_by_field(field=ids) call, the recorded one."""
    exchange = recorded("core_course_get_courses_by_field", "by ids")
    client = answers({"core_course_get_courses_by_field": exchange["response"]})
    methods = MoodleEnrolments(ws_over(client)).methods([64, 65])
    (sent,) = client.sent("core_course_get_courses_by_field")
    assert form(sent) == recorded_form(exchange)
    assert [(m.course_id, m.method, m.enabled) for m in methods] == [(64, "manual", True),
                                                                     (65, "manual", True)]


def test_methods_fall_back_to_one_call_per_course_after_the_ids_bug() -> None:
    """The recorded PHP Error for an unknown id in field=ids (§5.3): each course is asked by field=id."""
    bug = recorded("core_course_get_courses_by_field", "BUG: field=ids")
    by_id = recorded("core_course_get_courses_by_field", "by id (found)")

    def courses(params: Mapping[str, Any]) -> Any:
        if params["field"] == "ids":
            return bug["response"]
        return by_id["response"] if str(params["value"]) == "66" else {"courses": [], "warnings": []}

    client = answers({"core_course_get_courses_by_field": courses})
    methods = MoodleEnrolments(ws_over(client)).methods([66, 999999])
    sent = client.sent("core_course_get_courses_by_field")
    assert [form(p) for p in sent[1:]] == [recorded_form(by_id), {"field": "id", "value": "999999"}]
    assert [(m.course_id, m.method) for m in methods] == [(66, "manual")]


def test_roster_reads_ask_for_roles_and_groups_then_active_users() -> None:
    """find() reads the roster (id,roles,groups), then onlyactive=1 ids only, with the recorded options."""
    exchange = recorded(ENROLLED, "options userfields + onlyactive=1")

    def roster(params: Mapping[str, Any]) -> Any:
        if len(params["options"]) == 2:
            return [{"id": 16487}]
        return [{"id": 16487, "roles": [{"roleid": 5}]}, {"id": 16489, "roles": [{"roleid": 5}]}]

    client = answers({ENROLLED: roster})
    found = MoodleEnrolments(ws_over(client)).find([(64, 16487), (64, 16489), (64, 1)])
    main, status = (form(p) for p in client.sent(ENROLLED))
    assert main == {"courseid": "64", "options[0][name]": "userfields",
                    "options[0][value]": "id,roles,groups"}
    assert set(status) == set(recorded_form(exchange))
    assert status["options[1][value]"] == recorded_form(exchange)["options[1][value]"] == "1"
    assert [(e.user_id, e.active) for e in found] == [(16487, True), (16489, False)]
