"""MoodleGroups against the recordings: requests equal to the recorded ones, recorded replies read
as the brief says (raw names, idnumber always sent for groupings, links, member refusals)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from syncd.domain import PlatformRefused
from syncd.platform.model import GroupingRecord, GroupRecord
from syncd.platform.moodle.groups import MoodleGroups
from tests.unit.moodle_scripted import Scripted, form, recorded, recorded_form, ws_over

ENROLLED = "core_enrol_get_enrolled_users"
COURSE_GROUPS = "core_group_get_course_groups"


def answers(replies: Mapping[str, Any]) -> Scripted:
    """A client answering each function with a fixed reply (a callable gets the params)."""
    def answer(function: str, params: Mapping[str, Any]) -> Any:
        reply = replies.get(function)
        return reply(params) if callable(reply) else reply
    return Scripted(answer)


def _as_set(fields: Mapping[str, str], array: str) -> set[tuple[tuple[str, str], ...]]:
    """The items of ``array[i][...]`` fields as a set (order does not matter to Moodle)."""
    items: dict[str, dict[str, str]] = {}
    for key, value in fields.items():
        index, name = key[len(array) + 1:].split("][")
        items.setdefault(index, {})[name.rstrip("]")] = value
    return {tuple(sorted(item.items())) for item in items.values()}


def test_groups_are_read_raw_with_empty_idnumbers_as_none() -> None:
    """The recorded get_course_groups reply: names as sent (not unescaped twice), idnumber '' -> None."""
    exchange = recorded(COURSE_GROUPS, "success: groups of a course")
    client = answers({COURSE_GROUPS: exchange["response"]})
    groups = MoodleGroups(ws_over(client)).groups([64])
    (sent,) = client.sent(COURSE_GROUPS)
    assert form(sent) == recorded_form(exchange)
    by_id = {g.id: g for g in groups}
    assert by_id[67].name == "Groupe TD 1 — Mardi matin" and by_id[67].idnumber == "ECO101-TD1"
    assert by_id[70].idnumber is None and by_id[70].description == "à supprimer"


def test_create_groups_sends_the_recorded_batch_and_sets_ids() -> None:
    """Two groups without idnumber: the recorded request, ids from the reply."""
    exchange = recorded("core_group_create_groups", "success: batch of 2 without idnumber")
    client = answers({"core_group_create_groups": exchange["response"]})
    new = [GroupRecord(64, "Groupe de projet Énergie", description="à supprimer"),
           GroupRecord(64, "Groupe de projet Économie", description="à supprimer")]
    MoodleGroups(ws_over(client)).add_groups(new)
    (sent,) = client.sent("core_group_create_groups")
    assert form(sent) == recorded_form(exchange)
    assert [g.id for g in new] == [69, 70]


def test_create_groupings_always_sends_an_idnumber() -> None:
    """A grouping without idnumber is sent with idnumber '' (§5.5), as the recorded request."""
    exchange = recorded("core_group_create_groupings", "failure: duplicate grouping name")
    client = answers({"core_group_create_groupings": exchange["response"]})
    with pytest.raises(PlatformRefused) as caught:
        MoodleGroups(ws_over(client)).add_groupings([GroupingRecord(64, "Travaux dirigés (TD)")])
    (sent,) = client.sent("core_group_create_groupings")
    assert form(sent) == recorded_form(exchange)
    assert "Invalid parameter value detected" in str(caught.value)
    assert "grouping 'Travaux dirigés (TD)' in course 64" in str(caught.value)


def test_links_are_read_with_returngroups_as_recorded() -> None:
    """grouping_links() is the recorded core_group_get_groupings call, read into (grouping, group) pairs."""
    exchange = recorded("core_group_assign_grouping", "verification via core_group_get_groupings")
    client = answers({"core_group_get_groupings": exchange["response"]})
    links = MoodleGroups(ws_over(client)).grouping_links([88, 89])
    (sent,) = client.sent("core_group_get_groupings")
    assert form(sent) == recorded_form(exchange)
    assert links == {(88, 67), (88, 68), (89, 69)}


def test_link_sends_the_recorded_assignments() -> None:
    """link() of three new links is the recorded core_group_assign_grouping batch of 3."""
    exchange = recorded("core_group_assign_grouping", "success: batch of 3")
    client = answers({"core_group_get_groupings": [], "core_group_assign_grouping": None})
    repo = MoodleGroups(ws_over(client))
    repo.grouping_links([88, 89])
    repo.link({(88, 67), (88, 68), (89, 69)})
    (sent,) = client.sent("core_group_assign_grouping")
    assert _as_set(form(sent), "assignments") == _as_set(recorded_form(exchange), "assignments")
    assert repo.grouping_links([88, 89]) == {(88, 67), (88, 68), (89, 69)}
    repo.link({(88, 67)})
    assert len(client.sent("core_group_assign_grouping")) == 1  # a known link is not sent again


def _course_64() -> dict[str, Any]:
    groups = recorded(COURSE_GROUPS, "success: groups of a course")["response"]
    roster = [{"id": 16487, "roles": [{"roleid": 5}]}, {"id": 16488, "roles": [{"roleid": 5}]},
              {"id": 16491, "roles": [{"roleid": 3}], "groups": [{"id": 67, "name": "x"}]}]
    return {COURSE_GROUPS: groups, ENROLLED: roster}


def test_members_come_from_the_roster_and_adds_are_sent_as_recorded() -> None:
    """members() is read from get_enrolled_users' groups; add_members sends only the new ones, as recorded."""
    exchange = recorded("core_group_add_group_members", "success: batch of 3")
    client = answers({**_course_64(), "core_group_add_group_members": None})
    repo = MoodleGroups(ws_over(client))
    repo.groups([64])
    assert repo.members([67, 68]) == {(67, 16491)}
    repo.add_members({(67, 16487), (68, 16488), (67, 16491)})
    (sent,) = client.sent("core_group_add_group_members")
    wanted = _as_set(recorded_form(exchange), "members") - {(("groupid", "67"), ("userid", "16491"))}
    assert _as_set(form(sent), "members") == wanted
    assert repo.members([67, 68]) == {(67, 16487), (68, 16488), (67, 16491)}


def test_a_member_who_is_not_enrolled_is_named_in_the_refusal() -> None:
    """The recorded generic refusal for a user not enrolled says which user is not enrolled."""
    exchange = recorded("core_group_add_group_members", "failure: user not enrolled")
    client = answers({**_course_64(), "core_group_add_group_members": exchange["response"]})
    repo = MoodleGroups(ws_over(client))
    repo.groups([64])
    with pytest.raises(PlatformRefused, match=r"only enrolled users may be members.*user 16490 in course 64"):
        repo.add_members({(67, 16490)})
    assert form(client.sent("core_group_add_group_members")[0]) == recorded_form(exchange)


def test_removals_and_deletions_are_sent_as_recorded() -> None:
    """remove_members and delete_groups send the recorded batches of 2; absent members are not sent."""
    removal = recorded("core_group_delete_group_members", "success: batch of 2")
    deletion = recorded("core_group_delete_groups", "success: batch of 2")
    course = _course_64()
    course[ENROLLED][1]["groups"] = [{"id": 68}]
    client = answers({**course, "core_group_delete_group_members": None, "core_group_delete_groups": None})
    repo = MoodleGroups(ws_over(client))
    repo.groups([64])
    repo.remove_members({(67, 16491), (68, 16488), (67, 16492)})
    (sent,) = client.sent("core_group_delete_group_members")
    assert _as_set(form(sent), "members") == _as_set(recorded_form(removal), "members")
    repo.delete_groups([69, 70])
    assert form(client.sent("core_group_delete_groups")[0]) == recorded_form(deletion)
    assert {g.id for g in repo.groups([64])} == {67, 68}
    assert repo.members([67, 68]) == set()
