"""What the groups, group_members, cohorts and cohort_courses processors share.

:class:`GroupSet` is a batch's working set of the groups (and, when asked, groupings,
grouping links and members) of some courses, :class:`CohortSet` that of the cohorts a
batch names, with their members. Each is loaded with one call per kind, changed row by
row in memory (a later row sees what an earlier one did) and written back with one call
per kind by its ``flush``. Memberships are kept as sets of user ids per group or cohort,
so that the writes are the net difference to what was loaded.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from syncd.domain import RowError
from syncd.platform.base import CohortRepository, GroupRepository
from syncd.platform.model import CohortRecord, CourseRecord, GroupingRecord, GroupRecord
from syncd.processors._lookup import unknown

#: longest short text (name, idnumber) the platform store keeps
MAX_TEXT = 255


def text(values: Mapping[str, str], column: str, *, required: bool = False) -> str | None:
    """The trimmed value of ``column``; None when the column is absent.

    ``required``: an empty value is a row error naming the column.
    """
    raw = values.get(column)
    if raw is None:
        return None
    value = raw.strip()
    if required and not value:
        raise RowError(f"{column}: empty value")
    if len(value) > MAX_TEXT:
        raise RowError(f"{column}: value longer than {MAX_TEXT} characters {value[:40]!r}…")
    return value


def command(values: Mapping[str, str], allowed: tuple[str, ...]) -> str:
    """The ``cmd`` of a row, lowercased; empty or absent = the first of ``allowed``."""
    cmd = (values.get("cmd") or "").strip().lower()
    if not cmd:
        return allowed[0]
    if cmd not in allowed:
        raise RowError(f"cmd: invalid command {cmd!r} (expected {', '.join(allowed)})")
    return cmd


def find_course(courses: Mapping[str, CourseRecord], value: str, column: str) -> CourseRecord:
    """The course a row names (looked up beforehand with ``courses_by``), or the row error."""
    course = courses.get(value)
    if course is None:
        raise unknown("course", value, column)
    return course


@dataclass(eq=False, slots=True)
class Group:
    """A group of the working set: its record, current members, and what was loaded."""

    record: GroupRecord
    members: set[int] = field(default_factory=set)
    loaded_members: frozenset[int] = frozenset()
    #: (idnumber, description) as stored; None for a group new in this batch
    stored: tuple[str | None, str] | None = None


@dataclass(eq=False, slots=True)
class Grouping:
    """A grouping of the working set and the groups linked to it."""

    record: GroupingRecord
    groups: set[Group] = field(default_factory=set)
    loaded_groups: frozenset[Group] = frozenset()
    new: bool = False
    changed: bool = False  # idnumber/description to write


class GroupSet:
    """The groups of a batch's courses, indexed by (course, name) and (course, idnumber)."""

    def __init__(
        self,
        repo: GroupRepository,
        course_ids: Collection[int],
        *,
        groupings: bool = False,
        members: bool = False,
    ) -> None:
        self._groups: list[Group] = []
        self._by_course: dict[int, list[Group]] = {}
        self._by_id: dict[int, Group] = {}
        self._by_name: dict[tuple[int, str], Group] = {}
        self._by_idnumber: dict[tuple[int, str], Group] = {}
        self._groupings: list[Grouping] = []
        self._grouping_by_name: dict[tuple[int, str], Grouping] = {}
        self._grouping_by_idnumber: dict[tuple[int, str], Grouping] = {}
        self.members_loaded = members
        records = repo.groups(course_ids) if course_ids else []
        found: dict[int, set[int]] = {}
        if members and records:
            for group_id, user_id in repo.members([g.id for g in records if g.id is not None]):
                found.setdefault(group_id, set()).add(user_id)
        by_id: dict[int | None, Group] = {}
        for record in records:
            now = found.get(record.id or 0, set())
            group = Group(record, set(now), frozenset(now), (record.idnumber, record.description))
            by_id[record.id] = group
            self._take(group)
        if groupings and course_ids:
            self._load_groupings(repo, course_ids, by_id)

    def _load_groupings(
        self, repo: GroupRepository, course_ids: Collection[int], groups: Mapping[int | None, Group]
    ) -> None:
        records = repo.groupings(course_ids)
        links = repo.grouping_links([g.id for g in records if g.id is not None]) if records else set()
        linked: dict[int, set[Group]] = {}
        for grouping_id, group_id in links:
            if group_id in groups:
                linked.setdefault(grouping_id, set()).add(groups[group_id])
        for record in records:
            now = linked.get(record.id or 0, set())
            self._take_grouping(Grouping(record, set(now), frozenset(now)))

    def _take_grouping(self, grouping: Grouping) -> None:
        self._groupings.append(grouping)
        self._take_index(grouping)

    def _take_index(self, grouping: Grouping) -> None:
        record = grouping.record
        self._grouping_by_name[(record.course_id, record.name)] = grouping
        if record.idnumber:
            self._grouping_by_idnumber[(record.course_id, record.idnumber)] = grouping

    def _take(self, group: Group) -> None:
        self._groups.append(group)
        self._by_course.setdefault(group.record.course_id, []).append(group)
        if group.record.id is not None:
            self._by_id[group.record.id] = group
        self._index(group)

    def _index(self, group: Group) -> None:
        record = group.record
        self._by_name[(record.course_id, record.name)] = group
        if record.idnumber:
            self._by_idnumber[(record.course_id, record.idnumber)] = group

    def group(self, course_id: int, name: str) -> Group | None:
        """The group of this course with this name."""
        return self._by_name.get((course_id, name))

    def group_by_id(self, group_id: int) -> Group | None:
        """The loaded group with this id."""
        return self._by_id.get(group_id)

    def group_by_idnumber(self, course_id: int, idnumber: str) -> Group | None:
        """The group of this course with this idnumber."""
        return self._by_idnumber.get((course_id, idnumber))

    def groups_of(self, course_id: int) -> list[Group]:
        """Every group of this course."""
        return list(self._by_course.get(course_id, ()))

    def add_group(self, record: GroupRecord) -> Group:
        """A new group (written by :meth:`flush`)."""
        group = Group(record)
        self._take(group)
        return group

    def change_group(self, group: Group, idnumber: str | None, description: str) -> None:
        """Set a group's idnumber and description and re-index it."""
        old = group.record.idnumber
        if old and self._by_idnumber.get((group.record.course_id, old)) is group:
            del self._by_idnumber[(group.record.course_id, old)]
        group.record.idnumber = idnumber
        group.record.description = description
        self._index(group)

    def grouping(self, course_id: int, name: str) -> Grouping | None:
        """The grouping of this course with this name."""
        return self._grouping_by_name.get((course_id, name))

    def grouping_by_idnumber(self, course_id: int, idnumber: str) -> Grouping | None:
        """The grouping of this course with this idnumber."""
        return self._grouping_by_idnumber.get((course_id, idnumber))

    def change_grouping(self, grouping: Grouping, idnumber: str | None, description: str) -> None:
        """Set a stored grouping's idnumber and description and re-index it."""
        record = grouping.record
        key = (record.course_id, record.idnumber or "")
        if record.idnumber and self._grouping_by_idnumber.get(key) is grouping:
            del self._grouping_by_idnumber[key]
        record.idnumber, record.description = idnumber, description
        grouping.changed = True
        self._take_index(grouping)

    def add_grouping(self, record: GroupingRecord) -> Grouping:
        """A new grouping (written by :meth:`flush`)."""
        grouping = Grouping(record, new=True)
        self._take_grouping(grouping)
        return grouping

    def flush(self, repo: GroupRepository) -> None:
        """Write the batch: changed then new groupings, changed then new groups, new links,
        memberships."""
        # changed first: an idnumber a changed grouping gives up may go to a new one
        changed_groupings = [g.record for g in self._groupings if g.changed and not g.new]
        if changed_groupings:
            repo.update_groupings(changed_groupings)
        new_groupings = [g.record for g in self._groupings if g.new]
        if new_groupings:
            repo.add_groupings(new_groupings)
        # changed first: an idnumber a changed group gives up may go to a new one
        changed = [g.record for g in self._groups if g.stored not in (None, _state(g))]
        if changed:
            repo.update_groups(changed)
        new = [g.record for g in self._groups if g.stored is None]
        if new:
            repo.add_groups(new)
        links = {
            (_id(grouping.record.id), _id(group.record.id))
            for grouping in self._groupings
            for group in grouping.groups - grouping.loaded_groups
        }
        if links:
            repo.link(links)
        gone = _pairs((g, g.loaded_members - g.members) for g in self._groups)
        if gone:
            repo.remove_members(gone)
        added = _pairs((g, g.members - g.loaded_members) for g in self._groups)
        if added:
            repo.add_members(added)


def _state(group: Group) -> tuple[str | None, str]:
    return (group.record.idnumber, group.record.description)


def _id(value: int | None) -> int:
    assert value is not None, "flushed records have ids"
    return value


def _pairs(items: Iterable[tuple[Group, Collection[int]]]) -> set[tuple[int, int]]:
    return {(_id(group.record.id), user_id) for group, users in items for user_id in users}


@dataclass(eq=False, slots=True)
class Cohort:
    """A cohort of the working set: record, current members, what was loaded."""

    record: CohortRecord
    members: set[int] = field(default_factory=set)
    loaded_members: frozenset[int] = frozenset()
    #: the record's attributes as stored; None for a cohort new in this batch
    stored: tuple[str, str | None, str, int | None] | None = None
    deleted: bool = False


#: cohorts column -> CohortRecord attribute
_COHORT_ATTRS = {"cname": "name", "cidnumber": "idnumber", "cdescription": "description",
                 "ccategory": "category_id"}


class CohortSet:
    """The cohorts one batch refers to, with their members, indexed by key."""

    def __init__(self, key: str, records: Iterable[CohortRecord], members: Iterable[tuple[int, int]]) -> None:
        self._key = key
        self._all: list[Cohort] = []
        self._by_idnumber: dict[str, Cohort] = {}
        self._by_name: dict[str, list[Cohort]] = {}
        self._by_id: dict[int, Cohort] = {}
        found: dict[int, set[int]] = {}
        for cohort_id, user_id in members:
            found.setdefault(cohort_id, set()).add(user_id)
        for record in records:
            now = found.get(record.id or 0, set())
            self._take(Cohort(record, set(now), frozenset(now), _cohort_state(record)))

    @classmethod
    def load(
        cls, repo: CohortRepository, key: str, keys: Collection[str], idnumbers: Collection[str]
    ) -> CohortSet:
        """One find for the batch's cohort keys (``key``: cidnumber, cname or cid) and
        every idnumber it sets, and one read of their members."""
        numbers = set(idnumbers) | (set(keys) if key == "cidnumber" else set())
        names = set(keys) if key == "cname" else set()
        ids = {int(k) for k in keys if k.isdigit()} if key == "cid" else set()
        records = repo.find(idnumbers=numbers, names=names, ids=ids) if numbers or names or ids else []
        members = repo.members([r.id for r in records if r.id is not None]) if records else set()
        return cls(key, records, members)

    def _take(self, cohort: Cohort) -> None:
        self._all.append(cohort)
        self._index(cohort)

    def _index(self, cohort: Cohort) -> None:
        record = cohort.record
        if record.idnumber:
            self._by_idnumber[record.idnumber] = cohort
        self._by_name.setdefault(record.name, []).append(cohort)
        if record.id is not None:
            self._by_id[record.id] = cohort

    def _unindex(self, cohort: Cohort) -> None:
        record = cohort.record
        if record.idnumber and self._by_idnumber.get(record.idnumber) is cohort:
            del self._by_idnumber[record.idnumber]
        self._by_name[record.name] = [c for c in self._by_name.get(record.name, ()) if c is not cohort]
        if record.id is not None:
            self._by_id.pop(record.id, None)

    def find(self, value: str) -> Cohort | None:
        """The cohort the key column's ``value`` names; RowError when a name is ambiguous."""
        if self._key == "cidnumber":
            return self._by_idnumber.get(value)
        if self._key == "cid":
            return self._by_id.get(int(value)) if value.isdigit() else None
        named = self._by_name.get(value, [])
        if len(named) > 1:
            raise RowError(f"cname: {value!r} names {len(named)} cohorts (use cohort_key cidnumber)")
        return named[0] if named else None

    def check_idnumber(self, idnumber: str, cohort: Cohort | None) -> None:
        """Refuse an idnumber that another cohort than ``cohort`` has."""
        owner = self._by_idnumber.get(idnumber)
        if owner is not None and owner is not cohort:
            raise RowError(f"cidnumber: {idnumber!r} already belongs to cohort {owner.record.name!r}")

    def add(self, record: CohortRecord) -> Cohort:
        """A new cohort (written by :meth:`flush`)."""
        cohort = Cohort(record)
        self._take(cohort)
        return cohort

    def update(self, cohort: Cohort, wanted: Mapping[str, object]) -> list[str]:
        """Set the attributes ``wanted`` gives by column name; return the columns that changed."""
        changed = [c for c, v in wanted.items() if getattr(cohort.record, _COHORT_ATTRS[c]) != v]
        if changed:
            self._unindex(cohort)
            for column in changed:
                setattr(cohort.record, _COHORT_ATTRS[column], wanted[column])
            self._index(cohort)
        return changed

    def delete(self, cohort: Cohort) -> None:
        """Delete a cohort (its members and cohort-sync methods go with it)."""
        self._unindex(cohort)
        cohort.deleted = True

    def member_changes(self) -> tuple[dict[int, set[int]], dict[int, set[int]]]:
        """The net membership changes of the stored cohorts so far, as (joined, left) by
        cohort id: a deleted cohort's members all left; new cohorts have no id yet."""
        joined: dict[int, set[int]] = {}
        left: dict[int, set[int]] = {}
        for cohort in self._all:
            if cohort.stored is None or cohort.record.id is None:
                continue
            kept: set[int] = set() if cohort.deleted else cohort.members
            if kept - cohort.loaded_members:
                joined[cohort.record.id] = kept - cohort.loaded_members
            if cohort.loaded_members - kept:
                left[cohort.record.id] = set(cohort.loaded_members - kept)
        return joined, left

    def flush(self, repo: CohortRepository) -> None:
        """Write the batch: deletions, changed cohorts, new ones, then memberships."""
        gone = [_id(c.record.id) for c in self._all if c.deleted and c.stored is not None]
        if gone:
            repo.delete(gone)
        live = [c for c in self._all if not c.deleted]
        # changed first: an idnumber a changed cohort gives up may go to a new one
        changed = [c.record for c in live if c.stored not in (None, _cohort_state(c.record))]
        if changed:
            repo.update(changed)
        new = [c.record for c in live if c.stored is None]
        if new:
            repo.add(new)
        removed = {(_id(c.record.id), u) for c in live for u in c.loaded_members - c.members}
        if removed:
            repo.remove_members(removed)
        added = {(_id(c.record.id), u) for c in live for u in c.members - c.loaded_members}
        if added:
            repo.add_members(added)


def _cohort_state(record: CohortRecord) -> tuple[str, str | None, str, int | None]:
    return (record.name, record.idnumber, record.description, record.category_id)
