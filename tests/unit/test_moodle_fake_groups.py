"""The fake Moodle's core_group_* functions (tests/moodle_fake/ws_groups.py), called directly on a Site.

Every recorded exchange of the group files of ../shared/moodle-ws is replayed in the recorded
order against a site seeded with the recording's course, users and id sequences: the reply (or the
error body) must be the recorded one, and with debugging on the error must carry the debuginfo of the
``debuginfo/`` twin. Then the batch semantics of README §4 one by one.
"""

from __future__ import annotations

import pytest

from tests.moodle_fake import FakeMoodle
from tests.moodle_fake.errors import WsError
from tests.moodle_fake.replay import (
    ID_KEYS,
    LOOSE_KEYS,
    RECORDINGS,
    Replayer,
    direct_reply,
    load_files,
    run_function,
)
from tests.moodle_fake.site import Site

pytestmark = pytest.mark.skipif(not RECORDINGS.is_dir(), reason=f"no Moodle recordings at {RECORDINGS}")

#: the recording files in the order the recording script ran them (each read-back follows its writes)
ORDER = ("core_group_create_groups", "core_group_get_course_groups", "core_group_create_groupings",
         "core_group_get_course_groupings", "core_group_add_group_members", "core_group_assign_grouping",
         "core_group_delete_group_members", "core_group_delete_groups")
COURSE, EMPTY_COURSE = 64, 66
ZOE, FRANCOIS, OSCAR, CHLOE, LEA = 16487, 16488, 16490, 16491, 16492






def seeded() -> Site:
    """The recording's course 64 (and empty course 66), its users and the id sequences it started from."""
    site = Site(now=1795313921)
    site.add_course("ECO101", id=COURSE)
    site.add_course("EMPTY", id=EMPTY_COURSE)
    people = ((ZOE, "zoe.eleonore", "Eleonore"), (FRANCOIS, "francois.nguyen", "Nguyen"),
              (16489, "anais.muller", "Muller"), (OSCAR, "oscar.petit", "Petit"),
              (CHLOE, "chloe.dupont", "Dupont"), (LEA, "lea.rousseau", "Rousseau"))
    for userid, username, lastname in people:
        site.add_user(username, lastname=lastname, id=userid)
    for userid in (ZOE, FRANCOIS, CHLOE, LEA):
        site.enrol(userid, COURSE)
    site.set_next_id("groups", 67)
    site.set_next_id("groupings", 88)
    return site




def test_every_recorded_group_exchange_replays_with_the_recorded_reply() -> None:
    """Replayed in order, each recorded group call gets the recorded reply or error body, ids included."""
    site = seeded()
    replayed = load_files(ORDER)
    assert len(replayed) >= 40
    for ex in replayed:
        assert direct_reply(site, ex["request"]) == ex["response"], ex["title"]


def test_recorded_errors_carry_the_debuginfo_of_the_debug_run() -> None:
    """With debugging on, each recorded error carries the debug run's debuginfo (same titles)."""
    debug_run = load_files(ORDER, RECORDINGS / "debuginfo")
    debug_bodies = {(ex["file"], ex["title"]): ex["response"] for ex in debug_run}
    site = seeded()
    errors = 0
    for ex in load_files(ORDER):
        body = direct_reply(site, ex["request"], debug=True)
        if isinstance(body, dict) and "exception" in body:
            errors += 1
            assert body == debug_bodies[ex["file"], ex["title"]], ex["title"]
    assert errors >= 20


def test_group_recordings_replay_over_http_with_other_ids() -> None:
    """Through the HTTP server, on a site whose ids differ from the recording's, every exchange matches."""
    with FakeMoodle(token="t0k3n") as fake:
        site = fake.site
        # member lists hold ids; warning messages quote ids (digit runs ignored)
        replayer = Replayer(fake, "t0k3n", id_keys=ID_KEYS | {"userids"}, loose_keys=LOOSE_KEYS | {"message"})
        replayer.alias(COURSE, site.add_course("ECO101"))
        replayer.alias(EMPTY_COURSE, site.add_course("EMPTY"))
        people = ((ZOE, "Eleonore"), (FRANCOIS, "Nguyen"), (OSCAR, "Petit"), (CHLOE, "Dupont"),
                  (LEA, "Rousseau"))
        for recorded, lastname in people:
            replayer.alias(recorded, site.add_user(f"u{recorded}", lastname=lastname))
        for recorded in (ZOE, FRANCOIS, CHLOE, LEA):
            site.enrol(replayer.ids[recorded], replayer.ids[COURSE])
        assert all(replayer.ids[r] != r for r in (COURSE, ZOE))
        assert [d for name in ORDER for d in replayer.replay(f"{name}.json")] == []
        assert fake.count("core_group_create_groups") == 8


def test_create_groups_failing_item_rolls_back_the_whole_batch() -> None:
    """A duplicate name in the 2nd item leaves no trace of the 1st (README §4)."""
    site = seeded()
    site.add_group(COURSE, "TD 2")
    before = site.snapshot()
    batch = {"groups": {"0": {"courseid": "64", "name": "TD 5", "description": ""},
                        "1": {"courseid": "64", "name": "TD 2", "description": ""}}}
    with pytest.raises(WsError) as caught:
        run_function(site, "core_group_create_groups", batch)
    assert caught.value.debuginfo == "Group with the same name already exists in the course"
    assert site.snapshot() == before


def test_create_groups_reply_and_stored_enrolment_key() -> None:
    """The create reply says enrolmentkey "" when none was sent; the stored group keeps null."""
    site = seeded()
    reply = run_function(site, "core_group_create_groups",
                 {"groups": {"0": {"courseid": "64", "name": "TD 1", "description": "d"}}})
    assert reply[0]["enrolmentkey"] == "" and reply[0]["participation"] is True
    listed = run_function(site, "core_group_get_course_groups", {"courseid": "64"})
    assert [(g["id"], g["enrolmentkey"]) for g in listed] == [(reply[0]["id"], None)]


def test_add_group_members_refuses_non_enrolled_and_rolls_back() -> None:
    """A non-enrolled 2nd member fails the call and the 1st is not added."""
    site = seeded()
    group = site.add_group(COURSE, "TD")
    batch = {"members": {"0": {"groupid": str(group), "userid": str(ZOE)},
                         "1": {"groupid": str(group), "userid": str(OSCAR)}}}
    with pytest.raises(WsError) as caught:
        run_function(site, "core_group_add_group_members", batch)
    assert caught.value.errorcode == "invalidparameter"
    assert site.group_members(group) == set()


def test_suspended_enrolment_is_enough_for_group_membership() -> None:
    """is_enrolled without onlyactive: a suspended enrolment still allows membership."""
    site = seeded()
    site.enrol(OSCAR, COURSE, status=1)
    group = site.add_group(COURSE, "TD")
    assert run_function(site, "core_group_add_group_members",
                {"members": {"0": {"groupid": str(group), "userid": str(OSCAR)}}}) is None
    assert site.group_members(group) == {OSCAR}


def test_silently_ignored_group_items() -> None:
    """Adding a member twice, removing a non-member, re-linking, deleting unknown groups: null, no change."""
    site = seeded()
    group = site.add_group(COURSE, "TD")
    grouping = site.add_grouping(COURSE, "All")
    site.add_group_member(group, ZOE)
    site.put("grouping_groups", (grouping, group), 0)
    before = site.snapshot()
    assert run_function(site, "core_group_add_group_members",
                {"members": {"0": {"groupid": str(group), "userid": str(ZOE)}}}) is None
    assert run_function(site, "core_group_delete_group_members",
                {"members": {"0": {"groupid": str(group), "userid": str(CHLOE)}}}) is None
    assert run_function(site, "core_group_assign_grouping",
                {"assignments": {"0": {"groupingid": str(grouping), "groupid": str(group)}}}) is None
    assert run_function(site, "core_group_delete_groups", {"groupids": {"0": "999999"}}) is None
    assert site.snapshot() == before


def test_delete_groups_removes_members_and_grouping_links() -> None:
    """Deleting a group takes its memberships and grouping links with it; unknown ids do not stop it."""
    site = seeded()
    group = site.add_group(COURSE, "TD")
    grouping = site.add_grouping(COURSE, "All")
    site.add_group_member(group, ZOE)
    run_function(site, "core_group_assign_grouping",
         {"assignments": {"0": {"groupingid": str(grouping), "groupid": str(group)}}})
    run_function(site, "core_group_delete_groups", {"groupids": {"0": str(group), "1": "999999"}})
    assert site.groups_of(COURSE) == [] and site.group_members(group) == set()
    assert site.grouping_groups(grouping) == set()


def test_create_groupings_without_idnumber_creates_then_fails_to_reply() -> None:
    """Without idnumber the grouping is created and the call still reports invalidresponse (§5.5)."""
    site = seeded()
    with pytest.raises(WsError) as caught:
        run_function(site, "core_group_create_groupings",
             {"groupings": {"0": {"courseid": "64", "name": "G", "description": ""}}})
    assert caught.value.errorcode == "invalidresponse"
    assert [(g.name, g.idnumber) for g in site.groupings_of(COURSE)] == [("G", "")]


def test_get_groupings_without_returngroups_has_no_groups_key() -> None:
    """returngroups defaults to 0: the grouping comes without a ``groups`` list."""
    site = seeded()
    grouping = site.add_grouping(COURSE, "All", idnumber="ALL")
    reply = run_function(site, "core_group_get_groupings", {"groupingids": {"0": str(grouping)}})
    assert reply == [{"id": grouping, "courseid": COURSE, "name": "All", "description": "",
                      "descriptionformat": 1, "idnumber": "ALL", "customfields": []}]
