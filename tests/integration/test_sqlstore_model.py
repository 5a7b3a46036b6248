"""The course model repositories of the SQL store, on real SQLite and PostgreSQL databases.

The same contract runs against ``tests.fakes.FakePlatform`` too, so that the fake the
processor unit tests use keeps the store's semantics (it raises FakeIntegrityError where
the database raises IntegrityError).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, inspect
from sqlalchemy.exc import IntegrityError

from syncd.platform.base import Platform, PlatformTx, UserRecord
from syncd.platform.model import (
    DEFAULT_ROLES,
    CategoryRecord,
    CohortRecord,
    CourseRecord,
    Enrolment,
    EnrolMethod,
    GroupingRecord,
    GroupRecord,
    RoleAssignment,
    SectionRecord,
)
from syncd.platform.sqlstore import SqlPlatform, create_schema
from syncd.sqlutil import make_engine
from tests.fakes import FakeIntegrityError, FakePlatform

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PARIS = timezone(timedelta(hours=2))
#: what a broken constraint raises: the database's error, or the fake's
BROKEN = (IntegrityError, FakeIntegrityError)


@pytest.fixture
def engine(db_engine: Engine) -> Engine:
    """An empty database with the platform schema, on SQLite and on PostgreSQL."""
    create_schema(db_engine)
    return db_engine


@pytest.fixture(params=["sqlite", "postgresql", "fake"])
def platform(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """An empty platform: the SQL store on SQLite and on PostgreSQL, and the unit tests' fake."""
    if request.param == "fake":
        yield FakePlatform()
        return
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('db') / 'syncd.db'}")
    else:
        engine = request.getfixturevalue("pg_engine")
    create_schema(engine)
    yield SqlPlatform(engine, now=lambda: NOW)
    engine.dispose()


@dataclass
class World:
    """Ids of what :func:`world` seeded: users u0…u9, a category, courses A and B."""

    users: list[int]
    category: int
    a: int
    b: int
    manual_a: int
    manual_b: int
    student: int
    teacher: int


@pytest.fixture
def world(platform: Platform) -> World:
    """Ten users, a category, courses A and B with a manual method each."""
    with platform.transaction() as tx:
        users = [UserRecord(username=f"u{i}") for i in range(10)]
        tx.users.add(users)
        cat = CategoryRecord("Sciences")
        tx.categories.add([cat])
        assert cat.id is not None
        a, b = CourseRecord("A", "Course A", cat.id), CourseRecord("B", "Course B", cat.id)
        tx.courses.add([a, b])
        assert a.id is not None and b.id is not None
        methods = [EnrolMethod(a.id, "manual"), EnrolMethod(b.id, "manual")]
        tx.enrolments.add_methods(methods)
        roles = tx.roles.all()
    return World(
        [u.id or 0 for u in users], cat.id, a.id, b.id, methods[0].id or 0, methods[1].id or 0,
        roles["student"], roles["editingteacher"],
    )


def test_schema_is_idempotent_and_seeds_roles_once(engine: Engine) -> None:
    """create_schema twice keeps role ids; extra roles are added after the default ones."""
    platform = SqlPlatform(engine)
    with platform.transaction() as tx:
        first = tx.roles.all()
    create_schema(engine, extra_roles=("auditor", "student"))
    create_schema(engine, extra_roles=("auditor",))
    with platform.transaction() as tx:
        roles = tx.roles.all()
    assert set(first) == set(DEFAULT_ROLES)
    assert [first[r] for r in DEFAULT_ROLES] == sorted(first.values())
    assert {k: roles[k] for k in first} == first
    assert roles["auditor"] > max(first.values()) and len(roles) == len(DEFAULT_ROLES) + 1
    tables = set(inspect(engine).get_table_names())
    wanted = {"courses", "course_sections", "user_enrolments", "role_assignments", "groups", "cohorts"}
    assert wanted <= tables


def test_categories_round_trip_with_parents(platform: Platform) -> None:
    """Categories get ids in order; a child refers to its parent; all() returns every field."""
    with platform.transaction() as tx:
        top = CategoryRecord("Top", idnumber="T", description="d")
        tx.categories.add([top])
        child = CategoryRecord("Child", parent_id=top.id, idnumber="")
        other = CategoryRecord("Other")
        tx.categories.add([child, other])
    with platform.transaction() as tx:
        found = tx.categories.all()
    assert found == [top, CategoryRecord("Child", top.id, None, "", child.id), other]
    assert top.id is not None and child.id is not None and top.id < child.id < (other.id or 0)


def test_course_round_trip_every_field_and_key(platform: Platform, world: World) -> None:
    """find() by shortname, idnumber or id returns every field; dates come back aware UTC."""
    course = CourseRecord(
        "MATH101", "Maths", world.category, idnumber="M1", summary="s\nt", format="weeks", visible=False,
        startdate=datetime(2026, 9, 1, 8, 0, tzinfo=PARIS), enddate=datetime(2027, 1, 31, tzinfo=UTC),
        lang="fr", groupmode=2, maxbytes=1024,
    )
    with platform.transaction() as tx:
        tx.courses.add([course])
    with platform.transaction() as tx:
        by_name = tx.courses.find(shortnames=["MATH101"])
        by_number = tx.courses.find(idnumbers=["M1"])
        by_id = tx.courses.find(ids=[course.id or 0])
        both = tx.courses.find(shortnames=["MATH101", "A"], idnumbers=["M1"], ids=[world.b])
    assert by_name == by_number == by_id == [course]
    assert by_name[0].startdate == datetime(2026, 9, 1, 6, 0, tzinfo=UTC)
    assert by_name[0].startdate is not None and by_name[0].startdate.utcoffset() == timedelta(0)
    assert sorted(c.shortname for c in both) == ["A", "B", "MATH101"]


def test_course_update_writes_every_field(platform: Platform, world: World) -> None:
    """update() replaces every field by id; an empty idnumber is stored as None."""
    with platform.transaction() as tx:
        [course] = tx.courses.find(ids=[world.a])
        course.fullname, course.idnumber, course.visible = "Renamed", "", False
        course.startdate = datetime(2026, 1, 1, tzinfo=UTC)
        tx.courses.update([course])
    with platform.transaction() as tx:
        [found] = tx.courses.find(shortnames=["A"])
    assert (found.fullname, found.idnumber, found.visible, found.startdate) == (
        "Renamed", None, False, datetime(2026, 1, 1, tzinfo=UTC)
    )


def test_sections_put_replace_and_order(platform: Platform, world: World) -> None:
    """put_sections inserts or replaces by (course, number), keeping ids; sections() is ordered."""
    with platform.transaction() as tx:
        first = [
            SectionRecord(world.a, 1, "One"), SectionRecord(world.a, 0, "General"), SectionRecord(world.b, 0)
        ]
        tx.courses.put_sections(first)
        again = SectionRecord(world.a, 1, "Uno", "sum")
        tx.courses.put_sections([again])
        found = tx.courses.sections([world.a, world.b])
    assert again.id == first[0].id
    assert [(s.course_id, s.number, s.name, s.summary) for s in found] == [
        (world.a, 0, "General", ""), (world.a, 1, "Uno", "sum"), (world.b, 0, "", "")
    ]


def _fill_course_a(tx: PlatformTx, w: World) -> tuple[int, int]:
    """Enrol, assign, group and section course A; return its (group id, cohort id)."""
    tx.courses.put_sections([SectionRecord(w.a, 0)])
    tx.enrolments.add([Enrolment(w.manual_a, w.a, w.users[0]), Enrolment(w.manual_b, w.b, w.users[0])])
    tx.enrolments.assign([RoleAssignment(c, w.users[0], w.student) for c in (w.a, w.b)])
    group, grouping = GroupRecord(w.a, "G1"), GroupingRecord(w.a, "GG")
    tx.groups.add_groups([group])
    tx.groups.add_groupings([grouping])
    assert group.id is not None and grouping.id is not None
    tx.groups.link([(grouping.id, group.id)])
    tx.groups.add_members([(group.id, w.users[0])])
    cohort = CohortRecord("C")
    tx.cohorts.add([cohort])
    assert cohort.id is not None
    tx.enrolments.add_methods([EnrolMethod(w.a, "cohort", cohort_id=cohort.id, group_id=group.id)])
    return group.id, cohort.id


def test_course_delete_removes_everything_of_the_course(platform: Platform, world: World) -> None:
    """Deleting a course removes its sections, methods, enrolments, roles, groups and groupings only."""
    with platform.transaction() as tx:
        group_id, cohort_id = _fill_course_a(tx, world)
    with platform.transaction() as tx:
        tx.courses.delete([world.a])
    with platform.transaction() as tx:
        assert tx.courses.find(ids=[world.a]) == []
        assert tx.courses.sections([world.a]) == []
        assert tx.enrolments.methods([world.a]) == [] and tx.enrolments.in_courses([world.a]) == []
        assert tx.enrolments.roles_in_courses([world.a]) == []
        assert tx.groups.groups([world.a]) == [] and tx.groups.groupings([world.a]) == []
        assert tx.groups.members([group_id]) == set()
        assert [e.course_id for e in tx.enrolments.in_courses([world.b])] == [world.b]
        assert len(tx.enrolments.roles_in_courses([world.b])) == 1
        assert [c.id for c in tx.cohorts.find(ids=[cohort_id])] == [cohort_id]


#: Writes that break a constraint, each after the valid writes of :func:`_valid`.
VIOLATIONS: dict[str, Callable[[PlatformTx, World, dict[str, int]], None]] = {
    "category-idnumber": lambda tx, w, k: tx.categories.add([CategoryRecord("Y", idnumber="X")]),
    "category-parent": lambda tx, w, k: tx.categories.add([CategoryRecord("Z", parent_id=9999)]),
    "course-shortname": lambda tx, w, k: tx.courses.add([CourseRecord("A", "A", w.category)]),
    "course-idnumber": lambda tx, w, k: tx.courses.add([CourseRecord("L", "L", w.category, idnumber="KI")]),
    "course-category": lambda tx, w, k: tx.courses.add([CourseRecord("M", "M", 9999)]),
    "section-course": lambda tx, w, k: tx.courses.put_sections([SectionRecord(9999, 0)]),
    "method-per-course": lambda tx, w, k: tx.enrolments.add_methods([EnrolMethod(w.a, "manual")]),
    "method-per-cohort": lambda tx, w, k: tx.enrolments.add_methods(
        [EnrolMethod(w.a, "cohort", cohort_id=k["cohort"])]
    ),
    "method-course": lambda tx, w, k: tx.enrolments.add_methods([EnrolMethod(9999, "self")]),
    "method-cohort": lambda tx, w, k: tx.enrolments.add_methods([EnrolMethod(w.b, "cohort", cohort_id=9999)]),
    "enrolment-twice": lambda tx, w, k: tx.enrolments.add([Enrolment(w.manual_a, w.a, w.users[0])]),
    "enrolment-course": lambda tx, w, k: tx.enrolments.add([Enrolment(w.manual_a, w.b, w.users[1])]),
    "enrolment-user": lambda tx, w, k: tx.enrolments.add([Enrolment(w.manual_a, w.a, 99999)]),
    "enrolment-method": lambda tx, w, k: tx.enrolments.add([Enrolment(99999, w.a, w.users[1])]),
    "role-unknown": lambda tx, w, k: tx.enrolments.assign([RoleAssignment(w.a, w.users[0], 99999)]),
    "role-user": lambda tx, w, k: tx.enrolments.assign([RoleAssignment(w.a, 99999, w.student)]),
    "group-name": lambda tx, w, k: tx.groups.add_groups([GroupRecord(w.a, "G")]),
    "group-idnumber": lambda tx, w, k: tx.groups.add_groups([GroupRecord(w.a, "H", "GI")]),
    "group-course": lambda tx, w, k: tx.groups.add_groups([GroupRecord(9999, "G")]),
    "grouping-name": lambda tx, w, k: tx.groups.add_groupings([GroupingRecord(w.a, "GG")]),
    "link-group": lambda tx, w, k: tx.groups.link([(k["grouping"], 9999)]),
    "member-user": lambda tx, w, k: tx.groups.add_members([(k["group"], 99999)]),
    "cohort-idnumber": lambda tx, w, k: tx.cohorts.add([CohortRecord("Again", "CI")]),
    "cohort-category": lambda tx, w, k: tx.cohorts.add([CohortRecord("Lost", category_id=9999)]),
    "cohort-member": lambda tx, w, k: tx.cohorts.add_members([(k["cohort"], 99999)]),
}


def _valid(tx: PlatformTx, w: World) -> dict[str, int]:
    """Writes every violation repeats a key of: keys repeated across courses or unset are fine."""
    tx.categories.add([CategoryRecord("X", idnumber="X"), CategoryRecord("Y", idnumber="")])
    tx.courses.add([CourseRecord("K", "K", w.category, idnumber="KI"), CourseRecord("N", "N", w.category)])
    tx.courses.add([CourseRecord("O", "O", w.category, idnumber="")])
    group, grouping, cohort = GroupRecord(w.a, "G", "GI"), GroupingRecord(w.a, "GG"), CohortRecord("C", "CI")
    tx.groups.add_groups([group, GroupRecord(w.b, "G", "GI"), GroupRecord(w.a, "G2")])
    tx.groups.add_groupings([grouping, GroupingRecord(w.b, "GG")])
    tx.cohorts.add([cohort, CohortRecord("C", "")])
    tx.enrolments.add_methods([EnrolMethod(w.a, "cohort", cohort_id=cohort.id), EnrolMethod(w.a, "self")])
    tx.enrolments.add([Enrolment(w.manual_a, w.a, w.users[0])])
    return {"group": group.id or 0, "grouping": grouping.id or 0, "cohort": cohort.id or 0}


@pytest.mark.parametrize("case", list(VIOLATIONS))
def test_constraints_are_enforced(platform: Platform, world: World, case: str) -> None:
    """Unique keys and references are refused by the store (IntegrityError), nothing written."""
    with platform.transaction() as tx:
        keys = _valid(tx, world)
    with pytest.raises(BROKEN), platform.transaction() as tx:
        VIOLATIONS[case](tx, world, keys)
    with platform.transaction() as tx:
        assert len(tx.courses.find(shortnames=["A", "B", "K", "N", "O", "L", "M"])) == 5


def test_enrol_methods_round_trip(platform: Platform, world: World) -> None:
    """A course has its methods, several cohort-sync ones among them, by id."""
    with platform.transaction() as tx:
        c1, c2 = CohortRecord("C1"), CohortRecord("C2")
        tx.cohorts.add([c1, c2])
        tx.enrolments.add_methods([
            EnrolMethod(world.a, "cohort", cohort_id=c1.id, role_id=world.student),
            EnrolMethod(world.a, "cohort", cohort_id=c2.id),
            EnrolMethod(world.a, "self", enabled=False),
        ])
    with platform.transaction() as tx:
        methods = tx.enrolments.methods([world.a])
    assert [(m.method, m.enabled, m.cohort_id, m.role_id) for m in methods] == [
        ("manual", True, None, None), ("cohort", True, c1.id, world.student),
        ("cohort", True, c2.id, None), ("self", False, None, None),
    ]


def test_enrol_method_update_and_delete(platform: Platform, world: World) -> None:
    """update_methods writes every field; delete_methods removes the enrolments through them."""
    with platform.transaction() as tx:
        tx.enrolments.add([Enrolment(world.manual_a, world.a, world.users[1])])
        [method] = tx.enrolments.methods([world.a])
        method.enabled, method.role_id = False, world.teacher
        tx.enrolments.update_methods([method])
    with platform.transaction() as tx:
        assert tx.enrolments.methods([world.a]) == [method]
        tx.enrolments.delete_methods([world.manual_a])
    with platform.transaction() as tx:
        assert tx.enrolments.methods([world.a]) == [] and tx.enrolments.in_courses([world.a]) == []


def test_enrolments_add_find_update_delete(platform: Platform, world: World) -> None:
    """Enrolments round trip by pair and by course, with their dates; update and delete by id."""
    start = datetime(2026, 9, 1, 8, 0, tzinfo=PARIS)
    added = [
        Enrolment(world.manual_a, world.a, world.users[0], start=start),
        Enrolment(world.manual_a, world.a, world.users[1], False, end=datetime(2027, 1, 1, tzinfo=UTC)),
        Enrolment(world.manual_b, world.b, world.users[0]),
    ]
    with platform.transaction() as tx:
        tx.enrolments.add(added)
    with platform.transaction() as tx:
        found = tx.enrolments.find([(world.a, world.users[0]), (world.b, world.users[0]), (world.a, 999)])
        in_a = tx.enrolments.in_courses([world.a])
    assert found == [added[0], added[2]] and in_a == added[:2]
    assert found[0].start == datetime(2026, 9, 1, 6, 0, tzinfo=UTC)
    changed = Enrolment(world.manual_a, world.a, world.users[1], True, start, None, added[1].id)
    with platform.transaction() as tx:
        tx.enrolments.update([changed])
        tx.enrolments.delete([added[0].id or 0, 424242])
    with platform.transaction() as tx:
        assert tx.enrolments.in_courses([world.a]) == [changed]


def test_role_assignments_are_idempotent_sets(platform: Platform, world: World) -> None:
    """assign ignores present ones, unassign absent ones; look-ups by pair and by course."""
    u0, u1 = world.users[0], world.users[1]
    ras = [RoleAssignment(world.a, u0, world.student), RoleAssignment(world.a, u0, world.teacher),
           RoleAssignment(world.b, u1, world.student)]
    with platform.transaction() as tx:
        tx.enrolments.assign(ras)
        tx.enrolments.assign(ras[:1])
        tx.enrolments.unassign([ras[1], RoleAssignment(world.b, u0, world.student)])
    with platform.transaction() as tx:
        assert tx.enrolments.roles([(world.a, u0), (world.b, u1), (world.b, u0)]) == [ras[0], ras[2]]
        assert tx.enrolments.roles_in_courses([world.b]) == [ras[2]]


def test_groups_add_update_delete(platform: Platform, world: World) -> None:
    """Groups round trip; deleting one removes its members and links and frees cohort methods."""
    with platform.transaction() as tx:
        group_id, cohort_id = _fill_course_a(tx, world)
        other = GroupRecord(world.a, "G2", idnumber="", description="d")
        tx.groups.add_groups([other])
        [g1, _] = tx.groups.groups([world.a])
        g1.name, g1.idnumber = "First", "F"
        tx.groups.update_groups([g1])
    with platform.transaction() as tx:
        assert tx.groups.groups([world.a]) == [g1, GroupRecord(world.a, "G2", None, "d", other.id)]
        tx.groups.delete_groups([group_id])
    with platform.transaction() as tx:
        assert [g.id for g in tx.groups.groups([world.a])] == [other.id]
        assert tx.groups.members([group_id]) == set()
        [grouping] = tx.groups.groupings([world.a])
        assert tx.groups.grouping_links([grouping.id or 0]) == set()
        [sync] = [m for m in tx.enrolments.methods([world.a]) if m.cohort_id == cohort_id]
        assert sync.group_id is None


def test_groupings_links_and_members(platform: Platform, world: World) -> None:
    """Links and members are sets; deleting a grouping keeps its groups."""
    u0, u1 = world.users[0], world.users[1]
    with platform.transaction() as tx:
        g1, g2 = GroupRecord(world.a, "G1"), GroupRecord(world.a, "G2")
        tx.groups.add_groups([g1, g2])
        gg = GroupingRecord(world.a, "GG", "X", "d")
        tx.groups.add_groupings([gg])
        assert g1.id and g2.id and gg.id
        tx.groups.link([(gg.id, g1.id), (gg.id, g2.id)])
        tx.groups.link([(gg.id, g1.id)])
        tx.groups.add_members([(g1.id, u0), (g1.id, u1), (g2.id, u0)])
        tx.groups.add_members([(g1.id, u0)])
        tx.groups.remove_members([(g1.id, u1), (g2.id, u1)])
    with platform.transaction() as tx:
        assert tx.groups.groupings([world.a]) == [gg]
        assert tx.groups.grouping_links([gg.id]) == {(gg.id, g1.id), (gg.id, g2.id)}
        assert tx.groups.members([g1.id, g2.id]) == {(g1.id, u0), (g2.id, u0)}
        tx.groups.delete_groupings([gg.id])
    with platform.transaction() as tx:
        assert tx.groups.groupings([world.a]) == [] and len(tx.groups.groups([world.a])) == 2


def test_cohorts_find_update_members_and_delete(platform: Platform, world: World) -> None:
    """Cohorts by any key; members are sets; delete removes members, sync methods and their enrolments."""
    u0, u1 = world.users[0], world.users[1]
    with platform.transaction() as tx:
        c1, c2 = CohortRecord("One", "C1", "d", world.category), CohortRecord("Two")
        tx.cohorts.add([c1, c2])
        assert c1.id and c2.id
        tx.cohorts.add_members([(c1.id, u0), (c1.id, u1), (c2.id, u0)])
        tx.cohorts.add_members([(c1.id, u0)])
        tx.cohorts.remove_members([(c2.id, u0), (c2.id, u1)])
        sync = EnrolMethod(world.b, "cohort", cohort_id=c1.id, role_id=world.student)
        tx.enrolments.add_methods([sync])
        tx.enrolments.add([Enrolment(sync.id or 0, world.b, u1)])
        c2.name, c2.idnumber = "Deux", "C2"
        tx.cohorts.update([c2])
    with platform.transaction() as tx:
        assert tx.cohorts.find(idnumbers=["C1"], names=["Deux"]) == [c1, c2]
        assert tx.cohorts.find(ids=[c2.id]) == [c2]
        assert tx.cohorts.members([c1.id, c2.id]) == {(c1.id, u0), (c1.id, u1)}
        tx.cohorts.delete([c1.id])
    with platform.transaction() as tx:
        assert tx.cohorts.find(ids=[c1.id]) == [] and tx.cohorts.members([c1.id]) == set()
        assert [m.method for m in tx.enrolments.methods([world.b])] == ["manual"]
        assert tx.enrolments.in_courses([world.b]) == []


def test_methods_of_cohorts_finds_cohort_sync_methods_only(platform: Platform, world: World) -> None:
    """methods_of_cohorts returns every cohort-sync method of the given cohorts, enabled or not, by id."""
    with platform.transaction() as tx:
        c1, c2, c3 = CohortRecord("One", "C1"), CohortRecord("Two", "C2"), CohortRecord("Three", "C3")
        tx.cohorts.add([c1, c2, c3])
        assert c1.id and c2.id and c3.id
        m1 = EnrolMethod(world.a, "cohort", cohort_id=c1.id, role_id=world.student)
        m2 = EnrolMethod(world.b, "cohort", enabled=False, cohort_id=c1.id, role_id=world.teacher)
        m3 = EnrolMethod(world.a, "cohort", cohort_id=c2.id, role_id=world.student)
        m4 = EnrolMethod(world.b, "cohort", cohort_id=c3.id, role_id=world.student)
        tx.enrolments.add_methods([m1, m2, m3, m4])
    with platform.transaction() as tx:
        assert tx.enrolments.methods_of_cohorts([c1.id, c2.id]) == [m1, m2, m3]
        assert tx.enrolments.methods_of_cohorts([c3.id]) == [m4]
        assert tx.enrolments.methods_of_cohorts([]) == []
        assert tx.enrolments.methods_of_cohorts([c3.id + 100]) == []


def test_update_groupings_writes_name_idnumber_description(platform: Platform, world: World) -> None:
    """update_groupings writes name/idnumber/description by id; an idnumber taken in the course is refused."""
    with platform.transaction() as tx:
        g1, g2 = GroupingRecord(world.a, "GG", "X", "d"), GroupingRecord(world.a, "HH", "Y")
        tx.groups.add_groupings([g1, g2])
        g1.name, g1.idnumber, g1.description = "Renamed", "", "new"
        g2.idnumber = "X"  # freed by g1 in the same call, written after it
        tx.groups.update_groupings([g1, g2])
    with platform.transaction() as tx:
        assert tx.groups.groupings([world.a]) == [
            GroupingRecord(world.a, "Renamed", None, "new", g1.id),
            GroupingRecord(world.a, "HH", "X", "", g2.id),
        ]
    with pytest.raises(BROKEN), platform.transaction() as tx:
        g1.idnumber = "X"
        tx.groups.update_groupings([g1])
    with platform.transaction() as tx:
        assert [g.idnumber for g in tx.groups.groupings([world.a])] == [None, "X"]


def test_users_deleted_names_soft_deleted_ids(platform: Platform, world: World) -> None:
    """users.deleted returns those of the given ids whose user is soft-deleted, nothing else."""
    with platform.transaction() as tx:
        found = tx.users.find(usernames=["u1", "u2"])
        for user in found:
            user.deleted = True
        tx.users.update(found)
    u0, u1, u2 = world.users[:3]
    with platform.transaction() as tx:
        assert tx.users.deleted([u0, u1]) == {u1}
        assert tx.users.deleted(world.users) == {u1, u2}
        assert tx.users.deleted([]) == set() and tx.users.deleted([u2 + 1000]) == set()


def test_rollback_and_errors_undo_every_write(platform: Platform, world: World) -> None:
    """A rolled-back or failed transaction leaves no course, enrolment, group or cohort behind."""
    with platform.transaction(rollback=True) as tx:
        _fill_course_a(tx, world)
        tx.courses.add([CourseRecord("C", "C", world.category)])
    with pytest.raises(RuntimeError), platform.transaction() as tx:
        _fill_course_a(tx, world)
        raise RuntimeError("boom")
    with platform.transaction() as tx:
        assert tx.courses.find(shortnames=["C"]) == [] and tx.enrolments.in_courses([world.a, world.b]) == []
        assert tx.groups.groups([world.a]) == [] and tx.cohorts.find(names=["C"]) == []
        assert tx.courses.sections([world.a]) == [] and tx.enrolments.roles_in_courses([world.a]) == []


def test_soft_deleted_users_keep_their_enrolments(platform: Platform, world: World) -> None:
    """Flagging a user deleted leaves its enrolments, roles and memberships in place (history)."""
    with platform.transaction() as tx:
        _fill_course_a(tx, world)
        [user] = tx.users.find(usernames=["u0"])
        user.deleted = True
        tx.users.update([user])
    with platform.transaction() as tx:
        assert len(tx.enrolments.find([(world.a, world.users[0])])) == 1
        assert len(tx.enrolments.roles([(world.a, world.users[0])])) == 1


def test_large_batches_round_trip(engine: Engine) -> None:
    """Batches larger than a chunk get the right id on every record and are found whole."""
    platform = SqlPlatform(engine, now=lambda: NOW)
    with platform.transaction() as tx:
        users = [UserRecord(username=f"bulk{i}") for i in range(1300)]
        tx.users.add(users)
        category = CategoryRecord("Bulk")
        tx.categories.add([category])
        courses = [CourseRecord(f"K{i}", f"K{i}", category.id or 0, idnumber=f"k{i}") for i in range(1100)]
        tx.courses.add(courses)
        methods = [EnrolMethod(c.id or 0, "manual") for c in courses[:3]]
        tx.enrolments.add_methods(methods)
        enrolments = [
            Enrolment(m.id or 0, m.course_id, u.id or 0, active=i % 2 == 0)
            for m in methods
            for i, u in enumerate(users)
        ]
        tx.enrolments.add(enrolments)
        student = tx.roles.all()["student"]
        tx.enrolments.assign([RoleAssignment(e.course_id, e.user_id, student) for e in enrolments])
    pairs = [(e.course_id, e.user_id) for e in enrolments]
    with platform.transaction() as tx:
        found = {e.id: e for e in tx.enrolments.find(pairs)}
        by_key = {c.idnumber: c.id for c in tx.courses.find(idnumbers=[f"k{i}" for i in range(1100)])}
        roles = tx.enrolments.roles(pairs)
        in_courses = tx.enrolments.in_courses([m.course_id for m in methods])
    assert found == {e.id: e for e in enrolments} and len(found) == 3900
    assert by_key == {c.idnumber: c.id for c in courses}
    assert len(roles) == 3900 and len(in_courses) == 3900
