"""MoodleEnrolments over an in-memory Moodle (tests/unit/moodle_mini.py): each method, the call
counts of batching and caching, status and remembered dates, the waiting enrolments, the
§5.1/§5.2 quirks, refusals and dry run."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from syncd.domain import PlatformRefused
from syncd.platform.model import Enrolment, EnrolMethod, RoleAssignment
from syncd.platform.moodle._enrolmethods import decode_enrolment, method_id
from syncd.platform.moodle._ws import SiteCache
from syncd.platform.moodle.enrolments import MoodleEnrolments
from tests.unit.moodle_mini import MiniMoodle
from tests.unit.moodle_scripted import ws_over

ENROLLED = "core_enrol_get_enrolled_users"
ENROL = "enrol_manual_enrol_users"
PAST, FUTURE = datetime(2020, 1, 1, tzinfo=UTC), datetime(2040, 1, 1, tzinfo=UTC)


@pytest.fixture
def mini() -> MiniMoodle:
    """Courses 10 (manual + self), 20 (manual), 30 (manual disabled); users 1..9 and 100..399."""
    site = MiniMoodle()
    site.courses = {10: ["manual", "self"], 20: ["manual"], 30: []}
    site.users = set(range(1, 10)) | set(range(100, 400))
    return site


def repo(mini: MiniMoodle, cache: SiteCache | None = None, *, dry_run: bool = False,
         batch_size: int = 100) -> MoodleEnrolments:
    """A repository for one transaction over ``mini`` (``cache`` kept across transactions)."""
    return MoodleEnrolments(ws_over(mini.client, cache=cache, dry_run=dry_run, batch_size=batch_size))


def manual(course: int, user: int, active: bool = True, start: datetime | None = None,
           end: datetime | None = None) -> Enrolment:
    """A new manual enrolment record."""
    return Enrolment(method_id(course, "manual"), course, user, active, start, end)


def enrol(r: MoodleEnrolments, course: int, user: int, role: int = 5, **dates: datetime | None) -> None:
    """What a processor's flush does for a new enrolment: add, then assign its role."""
    r.add([manual(course, user, **dates)])  # type: ignore[arg-type]
    r.assign([RoleAssignment(course, user, role)])


def test_methods_are_read_for_many_courses_at_once_and_cached(mini: MiniMoodle) -> None:
    """Manual (enabled or not) and the enabled others, in one call; a second transaction asks nothing."""
    cache = SiteCache()
    found = repo(mini, cache).methods([10, 20, 30, 40])
    assert [(m.course_id, m.method, m.enabled) for m in found] == [
        (10, "manual", True), (10, "self", True), (20, "manual", True), (30, "manual", False)]
    assert mini.count("core_course_get_courses_by_field") == 5  # ids (fails on 40), then one by one
    repo(mini, cache).methods([10, 20, 30])
    assert mini.count("core_course_get_courses_by_field") == 5


def test_only_an_existing_manual_method_can_be_added(mini: MiniMoodle) -> None:
    """add_methods(manual) of a course that has it sets the id; everything else about methods is refused."""
    r = repo(mini)
    method = EnrolMethod(10, "manual")
    r.add_methods([method])
    assert method.id == method_id(10, "manual")
    with pytest.raises(PlatformRefused, match="not supported on moodle: adding a 'cohort' enrolment"):
        r.add_methods([EnrolMethod(10, "cohort", cohort_id=3, role_id=5)])
    with pytest.raises(PlatformRefused, match="manual enrolment method of course 30"):
        r.add_methods([EnrolMethod(30, "manual")])
    with pytest.raises(PlatformRefused, match="disabling the 'self' enrolment method"):
        r.update_methods([EnrolMethod(10, "self", enabled=False, id=method_id(10, "self"))])
    with pytest.raises(PlatformRefused, match="not supported on moodle: deleting enrolment methods"):
        r.delete_methods([method_id(10, "self")])
    r.update_methods([EnrolMethod(10, "self", enabled=True, id=method_id(10, "self"))])  # as it is: fine
    assert r.methods_of_cohorts([1, 2]) == [] and mini.writes() == 0


def test_enrolments_are_read_once_per_course_with_their_status(mini: MiniMoodle) -> None:
    """Active, suspended and not-yet-started users; one roster read per course, one status read if needed."""
    mini.enrol(10, 1)
    mini.enrol(10, 2, status=1)
    mini.enrol(10, 3, start=int(FUTURE.timestamp()))
    cache = SiteCache()
    found = repo(mini, cache).in_courses([10, 20])
    assert [(e.user_id, e.active) for e in found] == [(1, True), (2, False), (3, False)]
    assert [decode_enrolment(e.id or 0) for e in found] == [(10, u, "manual") for u in (1, 2, 3)]
    assert mini.count(ENROLLED) == 3  # course 10 + its active users, course 20 (empty: no status read)
    assert [e.user_id for e in repo(mini, cache).find([(10, 1), (10, 9), (20, 1)])] == [1]
    assert mini.count(ENROLLED) == 3  # the next transaction reads nothing
    assert repo(mini, cache).roles([(10, 1), (10, 9)]) == [RoleAssignment(10, 1, 5)]


def test_new_enrolments_go_with_their_roles_in_chunks(mini: MiniMoodle) -> None:
    """300 new enrolments over 3 courses, batch 100: 3 enrol calls carrying the roles, no role call."""
    r = repo(mini)
    news = [manual(c, u) for c in (10, 20, 30) for u in range(100, 200)]
    news[-100:] = [manual(10, u) for u in range(200, 300)]  # course 30 has no manual instance
    r.add(news)
    r.assign([RoleAssignment(e.course_id, e.user_id, 4 if e.user_id == 100 else 5) for e in news])
    assert mini.count(ENROL) == 3 and mini.count("core_role_assign_roles") == 0
    assert len(mini.enrolments) == 300 and mini.roles[(20, 100)] == {4}
    assert mini.count(ENROLLED) == 2  # the two rosters, read once for the whole add


def test_dates_are_remembered_by_the_process_not_by_moodle(mini: MiniMoodle) -> None:
    """Dates written are reported back, also after the cache is dropped; a new process does not know them."""
    cache = SiteCache()
    enrol(repo(mini, cache), 10, 1, start=PAST, end=FUTURE)
    assert mini.enrolments[(10, 1)] == (0, int(PAST.timestamp()), int(FUTURE.timestamp()))
    cache.forget()  # what a failed transaction does
    (found,) = repo(mini, cache).find([(10, 1)])
    assert (found.active, found.start, found.end) == (True, PAST, FUTURE)
    (fresh,) = repo(mini, SiteCache()).find([(10, 1)])
    assert (fresh.active, fresh.start, fresh.end) == (True, None, None)


def test_a_future_start_is_not_mistaken_for_a_suspension(mini: MiniMoodle) -> None:
    """An enrolment written with a future start (not listed as active) is reported active with that start;
    one suspended in Moodle while remembered as running is reported suspended, dates unknown."""
    cache = SiteCache()
    enrol(repo(mini, cache), 10, 1, start=FUTURE)
    enrol(repo(mini, cache), 10, 2, start=PAST)
    assert not mini.active((10, 1)) and mini.active((10, 2))
    first, second = repo(mini, cache).find([(10, 1), (10, 2)])
    assert (first.active, first.start, second.active, second.start) == (True, FUTURE, True, PAST)
    mini.enrolments[(10, 2)] = (1, int(PAST.timestamp()), 0)  # suspended by hand: memory and Moodle disagree
    cache.forget()
    (changed,) = repo(mini, cache).find([(10, 2)])
    assert (changed.active, changed.start) == (False, None)


def test_update_suspends_and_reactivates_with_a_held_role(mini: MiniMoodle) -> None:
    """update() re-enrols with the new status and a role the user holds (Moodle needs one)."""
    mini.enrol(10, 1, role=4)
    cache = SiteCache()
    (found,) = repo(mini, cache).find([(10, 1)])
    found.active = False
    repo(mini, cache).update([found])
    assert mini.enrolments[(10, 1)] == (1, 0, 0) and mini.roles[(10, 1)] == {4}
    assert mini.client.sent(ENROL)[0]["enrolments"][0]["roleid"] == 4
    (again,) = repo(mini, cache).find([(10, 1)])
    assert again.active is False


def test_update_of_a_user_without_role_borrows_one_and_gives_it_back(mini: MiniMoodle) -> None:
    """A roleless enrolled user: enrolled with a role someone has in the course, then unassigned."""
    mini.enrol(10, 1, role=None)
    mini.enrol(10, 2, role=5)
    mini.enrol(20, 3, role=None)
    cache = SiteCache()
    r = repo(mini, cache)
    first, _second = r.find([(10, 1), (10, 2)])
    first.active = False
    r.update([first])
    assert mini.enrolments[(10, 1)][0] == 1 and mini.roles[(10, 1)] == set()
    assert (mini.count(ENROL), mini.count("core_role_unassign_roles")) == (1, 1)
    (lonely,) = r.find([(20, 3)])
    lonely.end = FUTURE
    with pytest.raises(PlatformRefused, match="no role is held in that course"):
        r.update([lonely])


def test_delete_unenrols_and_roles_and_groups_go_with_it(mini: MiniMoodle) -> None:
    """delete() unenrols; the roster read again confirms; roles Moodle dropped are not unassigned again."""
    mini.enrol(10, 1, role=3)
    r = repo(mini)
    (found,) = r.find([(10, 1)])
    r.delete([found.id or 0])
    assert (10, 1) not in mini.enrolments and mini.count("enrol_manual_unenrol_users") == 1
    assert r.find([(10, 1)]) == [] and r.roles([(10, 1)]) == []
    r.unassign([RoleAssignment(10, 1, 3)])
    assert mini.count("core_role_unassign_roles") == 0


def test_roles_without_enrolment_are_remembered_and_used_to_enrol(mini: MiniMoodle) -> None:
    """A role given to a user who is not enrolled shows in roles(); enrolling them later is sent at once."""
    r = repo(mini)
    r.assign([RoleAssignment(10, 5, 4)])
    assert r.roles([(10, 5)]) == [RoleAssignment(10, 5, 4)] and mini.roles[(10, 5)] == {4}
    r.add([manual(10, 5)])
    assert mini.count(ENROL) == 1 and (10, 5) in mini.enrolments  # no assign needed: the role is known
    r.assign([RoleAssignment(10, 5, 4)])
    assert mini.count("core_role_assign_roles") == 1  # the held role is not sent again
    r.unassign([RoleAssignment(10, 5, 3), RoleAssignment(10, 5, 4)])
    (sent,) = mini.client.sent("core_role_unassign_roles")
    assert [a["roleid"] for a in sent["unassignments"]] == [4] and mini.roles[(10, 5)] == set()


def test_an_enrolment_left_without_a_role_is_refused(mini: MiniMoodle) -> None:
    """A new enrolment whose pair gets no role in the following assign() is refused, nothing sent."""
    r = repo(mini)
    r.add([manual(10, 1), manual(10, 2)])
    with pytest.raises(PlatformRefused, match=r"needs a role .* none for user 2 in course 10"):
        r.assign([RoleAssignment(10, 1, 5)])
    assert mini.writes() == 0


def test_message_not_sent_after_commit_is_a_success(mini: MiniMoodle) -> None:
    """§5.1: a course with an editingteacher and broken mail; the enrolment is saved, the row succeeds."""
    mini.enrol(10, 1, role=3)
    mini.welcome_fails = True
    r = repo(mini)
    enrol(r, 10, 2)
    assert (10, 2) in mini.enrolments
    assert mini.count(ENROLLED) == 2  # the roster, then read again after the error
    assert r.roles([(10, 2)]) == [RoleAssignment(10, 2, 5)]


def test_unknown_user_and_unassignable_role_are_refused_clearly(mini: MiniMoodle) -> None:
    """§5.2's PHP TypeError names the user; a one-item refusal keeps Moodle's words and names the item."""
    with pytest.raises(PlatformRefused, match="does not exist or was deleted: user 999 in course 10"):
        enrol(repo(mini), 10, 999)
    with pytest.raises(PlatformRefused, match=r"assign this role \(6\).*: user 1 in course 10 with role 6"):
        enrol(repo(mini), 10, 1, role=6)
    with pytest.raises(PlatformRefused, match="Manual enrolment plugin instance"):
        enrol(repo(mini), 30, 1)
    assert mini.enrolments == {}


def test_dry_run_sends_no_write_but_sees_its_own_changes(mini: MiniMoodle) -> None:
    """Dry run: reads only; the transaction sees what it pretended; nothing is remembered afterwards."""
    mini.enrol(10, 1)
    cache = SiteCache()
    r = repo(mini, cache, dry_run=True)
    enrol(r, 10, 2, end=FUTURE)
    enrol(r, -1, -2)  # a course and a user the dry run pretends to create
    (first,) = r.find([(10, 1)])
    r.delete([first.id or 0])
    assert mini.writes() == 0 and set(mini.enrolments) == {(10, 1)}
    assert [(e.user_id, e.end) for e in r.find([(10, 1), (10, 2)])] == [(2, FUTURE)]
    cache.forget()  # the adapter drops the cache after a dry run
    assert repo(mini, cache).find([(10, 2)]) == []
