"""MoodleGroups over an in-memory Moodle (tests/unit/moodle_mini.py): each method, caching and
batching counts, the roster shared with the enrolments, refusals and dry run."""

from __future__ import annotations

import pytest

from syncd.domain import PlatformRefused
from syncd.platform.model import GroupingRecord, GroupRecord
from syncd.platform.moodle._ws import SiteCache
from syncd.platform.moodle.enrolments import MoodleEnrolments
from syncd.platform.moodle.groups import MoodleGroups
from tests.unit.moodle_mini import MiniMoodle
from tests.unit.moodle_scripted import ws_over

ENROLLED = "core_enrol_get_enrolled_users"


@pytest.fixture
def mini() -> MiniMoodle:
    """Courses 10 and 20; users 1..399, 1..300 enrolled in course 10; group 'TD1' in course 10 with user 1."""
    site = MiniMoodle()
    site.courses = {10: ["manual"], 20: ["manual"]}
    site.users = set(range(1, 400))
    for user in range(1, 301):
        site.enrol(10, user)
    site.groups[500] = {"id": 500, "courseid": 10, "name": "TD1 & co", "description": "<p>x</p>",
                        "idnumber": ""}
    site.members.add((500, 1))
    return site


def repo(mini: MiniMoodle, cache: SiteCache | None = None, *, dry_run: bool = False) -> MoodleGroups:
    """A repository for one transaction over ``mini``."""
    return MoodleGroups(ws_over(mini.client, cache=cache, dry_run=dry_run))


def test_groups_are_read_once_per_course_raw_and_as_copies(mini: MiniMoodle) -> None:
    """One read per course (in parallel) then none; names raw; a returned record is a copy."""
    cache = SiteCache()
    (group,) = repo(mini, cache).groups([10, 20])
    assert (group.id, group.name, group.idnumber, group.description) == (500, "TD1 & co", None, "<p>x</p>")
    group.name = "changed by a processor"
    assert [g.name for g in repo(mini, cache).groups([10])] == ["TD1 & co"]
    assert mini.count("core_group_get_course_groups") == 2


def test_new_groups_get_ids_and_are_cached_in_chunks(mini: MiniMoodle) -> None:
    """250 groups with batch 100: 3 create calls, ids set, groups() shows them without a read."""
    cache = SiteCache()
    r = repo(mini, cache)
    r.groups([10])
    new = [GroupRecord(10, f"G{i}", idnumber=f"ID{i}" if i % 2 else None) for i in range(250)]
    r.add_groups(new)
    assert mini.count("core_group_create_groups") == 3
    assert all(g.id is not None and mini.groups[g.id]["name"] == g.name for g in new)
    assert len(repo(mini, cache).groups([10])) == 251 and mini.count("core_group_get_course_groups") == 1
    sent = mini.client.sent("core_group_create_groups")[0]["groups"]
    assert "idnumber" not in sent[0] and sent[1]["idnumber"] == "ID1"


def test_a_refused_group_is_named(mini: MiniMoodle) -> None:
    """A one-group create that Moodle refuses (duplicate name) names the group and course."""
    with pytest.raises(PlatformRefused, match=r"Invalid parameter value.*: group 'TD1 & co' in course 10"):
        repo(mini).add_groups([GroupRecord(10, "TD1 & co")])


def test_what_the_service_cannot_do_is_refused(mini: MiniMoodle) -> None:
    """Changing groups or groupings and deleting groupings are refused; empty calls are no-ops."""
    r = repo(mini)
    with pytest.raises(PlatformRefused, match="not supported on moodle: changing a group's"):
        r.update_groups([GroupRecord(10, "TD1 & co", idnumber="X", id=500)])
    with pytest.raises(PlatformRefused, match="not supported on moodle: changing a grouping's"):
        r.update_groupings([GroupingRecord(10, "G", id=7)])
    with pytest.raises(PlatformRefused, match="not supported on moodle: deleting groupings"):
        r.delete_groupings([7])
    r.update_groups([])
    r.delete_groupings([])
    assert mini.writes() == 0


def test_groupings_always_carry_an_idnumber_and_links_are_kept(mini: MiniMoodle) -> None:
    """add_groupings sends idnumber '' when none (no invalidresponse); known links are not sent."""
    cache = SiteCache()
    r = repo(mini, cache)
    grouping = GroupingRecord(10, "All TDs")
    r.add_groupings([grouping])
    assert grouping.id in mini.groupings and mini.groupings[grouping.id]["idnumber"] == ""
    assert grouping.id is not None
    r.link({(grouping.id, 500)})
    r.link({(grouping.id, 500)})
    assert mini.links == {(grouping.id, 500)} and mini.count("core_group_assign_grouping") == 1
    assert repo(mini, cache).grouping_links([grouping.id]) == {(grouping.id, 500)}
    assert [g.name for g in repo(mini, cache).groupings([10])] == ["All TDs"]
    assert mini.count("core_group_get_groupings") == 0  # known from the creation and the link


def test_delete_groups_drops_members_and_links_everywhere(mini: MiniMoodle) -> None:
    """delete_groups removes the group, its members (roster) and grouping links, in Moodle and cache."""
    cache = SiteCache()
    r = repo(mini, cache)
    r.groups([10])
    mini.groupings[600] = {"id": 600, "courseid": 10, "name": "G", "description": "", "idnumber": ""}
    mini.links.add((600, 500))
    assert r.grouping_links([600]) == {(600, 500)} and r.members([500]) == {(500, 1)}
    r.delete_groups([500, 999])
    assert 500 not in mini.groups and not mini.members and not mini.links
    assert r.groups([10]) == [] and r.grouping_links([600]) == set()
    assert MoodleEnrolments(ws_over(mini.client, cache=cache)).find([(10, 1)])[0].user_id == 1


def test_members_share_the_roster_with_the_enrolments(mini: MiniMoodle) -> None:
    """Members come from the roster the enrolments read: no extra get_enrolled_users call."""
    cache = SiteCache()
    MoodleEnrolments(ws_over(mini.client, cache=cache)).find([(10, 1)])
    before = mini.count(ENROLLED)
    r = repo(mini, cache)
    r.groups([10])
    assert r.members([500]) == {(500, 1)}
    assert mini.count(ENROLLED) == before


def test_members_are_added_in_chunks_and_known_ones_skipped(mini: MiniMoodle) -> None:
    """250 members with batch 100: 3 calls; present members are not sent; removals likewise."""
    r = repo(mini)
    r.groups([10])
    r.add_members({(500, u) for u in range(1, 251)})  # user 1 is a member already
    assert mini.count("core_group_add_group_members") == 3
    assert len(mini.members) == 250 and r.members([500]) == {(500, u) for u in range(1, 251)}
    r.remove_members({(500, 1), (500, 299), (500, 350)})  # 299 is not a member, 350 not enrolled
    (sent,) = mini.client.sent("core_group_delete_group_members")
    assert sent["members"] == [{"groupid": 500, "userid": 1}] and (500, 1) not in mini.members


def test_a_user_not_enrolled_is_refused_by_name_until_enrolled(mini: MiniMoodle) -> None:
    """Moodle's bare refusal names the user not enrolled; once enrolled in the same transaction, it works."""
    cache = SiteCache()
    ws = ws_over(mini.client, cache=cache)
    groups = MoodleGroups(ws)
    groups.groups([10])
    with pytest.raises(PlatformRefused, match=r"only enrolled users may be members.*not enrolled: user 350"):
        groups.add_members({(500, 2), (500, 350)})
    assert (500, 2) not in mini.members  # the whole batch was refused
    from syncd.platform.model import Enrolment, RoleAssignment
    from syncd.platform.moodle._enrolmethods import method_id
    enrolments = MoodleEnrolments(ws)
    enrolments.add([Enrolment(method_id(10, "manual"), 10, 350)])
    enrolments.assign([RoleAssignment(10, 350, 5)])
    groups.add_members({(500, 350)})
    assert (500, 350) in mini.members


def test_members_of_a_group_whose_course_was_not_read_are_refused(mini: MiniMoodle) -> None:
    """members() of a group never read through groups(): a refusal, not a guess."""
    with pytest.raises(PlatformRefused, match="the course of group"):
        repo(mini).members([500])


def test_dry_run_sends_nothing_and_sees_its_own_changes(mini: MiniMoodle) -> None:
    """Dry run: new groups get negative ids, memberships show in the transaction, Moodle is unchanged."""
    r = repo(mini, dry_run=True)
    r.groups([10])
    new = GroupRecord(10, "TD2")
    r.add_groups([new])
    assert new.id is not None and new.id < 0
    r.add_members({(new.id, 2), (500, 3)})
    r.remove_members({(500, 1)})
    r.delete_groups([500])
    grouping = GroupingRecord(10, "G")
    r.add_groupings([grouping])
    assert grouping.id is not None and grouping.id < 0
    r.link({(grouping.id, new.id)})
    assert mini.writes() == 0 and mini.members == {(500, 1)} and set(mini.groups) == {500}
    assert r.members([new.id]) == {(new.id, 2)} and [g.name for g in r.groups([10])] == ["TD2"]
