"""Groups, groupings and group members on Moodle (implements GroupRepository).

What the web services (and the recordings) offer, and the decisions taken:

- **Groups** of a course: ``core_group_get_course_groups``, one call per course, in
  parallel, cached per course across transactions (:data:`GROUPS`) and kept right after
  every write here. Names come back raw (not HTML-escaped, unlike course names, §5.10);
  an empty ``idnumber`` is None. Created with ``core_group_create_groups`` (description
  always sent, idnumber when set; a lost reply is re-read by course and name before any
  re-send); deleted with ``core_group_delete_groups`` (unknown ids are ignored by Moodle).
- **Groupings**: ``core_group_get_course_groupings`` (cached like groups) and
  ``core_group_create_groupings``, always with an ``idnumber`` (``""`` when none: without
  one Moodle creates the grouping and then fails to answer, §5.5). Links: read with
  ``core_group_get_groupings`` (``returngroups=1``), written with
  ``core_group_assign_grouping``; links already there are not sent.
- **Not supported** (the token's service has no ``core_group_update_groups``,
  ``core_group_update_groupings`` or ``core_group_delete_groupings``): changing a group's or
  grouping's idnumber/description and deleting groupings are refused per row.
- **Members** come from the course rosters shared with the enrolments (``_roster``: the
  ``groups`` of ``core_enrol_get_enrolled_users``), so the ``group_members`` and
  ``enrolments`` files read each course once. Moodle lists there only the groups of the
  course's default grouping, when the course has one. A group is known by the course it
  was read or created with (:meth:`MoodleGroups.groups` first, as every processor does);
  members of a group never seen that way are refused rather than guessed.
- ``core_group_add_group_members`` / ``core_group_delete_group_members`` are whole-batch
  transactions; memberships already there / absent (as the roster shows) are not sent.
  Moodle refuses a user who is not enrolled with a bare "Invalid parameter value
  detected": the refusal then names the users the roster shows as not enrolled.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, Generic, TypeVar

from syncd.domain import PlatformRefused
from syncd.platform.model import GroupingRecord, GroupRecord
from syncd.platform.moodle import _roster
from syncd.platform.moodle._chunks import send
from syncd.platform.moodle._ws import Ws, chunked, not_supported

GROUPS = "moodle.groups"  # course id -> {group id: GroupRecord}
GROUPINGS = "moodle.groupings"  # course id -> {grouping id: GroupingRecord}
LINKS = "moodle.grouping.links"  # grouping id -> group ids
GET_GROUPS = "core_group_get_course_groups"
GET_GROUPINGS = "core_group_get_course_groupings"

Record = TypeVar("Record", GroupRecord, GroupingRecord)
T = TypeVar("T")


def _record(kind: type[Record], item: dict[str, Any]) -> Record:
    return kind(course_id=int(item["courseid"]), name=str(item.get("name", "")),
                idnumber=str(item.get("idnumber") or "") or None,
                description=str(item.get("description") or ""), id=int(item["id"]))


class _PerCourse(Generic[Record]):
    """Groups or groupings of courses: read per course, cached, kept right after writes."""

    def __init__(self, ws: Ws, kind: type[Record], cache: str, function: str) -> None:
        self._ws = ws
        self._kind: type[Record] = kind
        self._name = cache
        self._function = function

    def cached(self) -> dict[int, dict[int, Record]]:
        empty: dict[int, dict[int, Record]] = {}
        return self._ws.cache.get(self._name, lambda: empty)

    def read(self, course_ids: Iterable[int], *, fresh: bool = False) -> dict[int, dict[int, Record]]:
        cache = self.cached()
        wanted = set(course_ids)
        missing = sorted(c for c in wanted if c > 0 and (fresh or c not in cache))
        replies = self._ws.read_all(self._function, [{"courseid": c} for c in missing])
        for course_id, reply in zip(missing, replies, strict=True):
            items = [i for i in reply if isinstance(i, dict)] if isinstance(reply, list) else []
            records = [_record(self._kind, i) for i in items]
            cache[course_id] = {r.id: r for r in records if r.id is not None}
        for course_id in wanted:
            if course_id <= 0:
                cache.setdefault(course_id, {})
        return {c: cache[c] for c in wanted}

    def records(self, course_ids: Collection[int]) -> list[Record]:
        found = self.read(course_ids)
        return [dataclasses.replace(r) for c in sorted(found) for _i, r in sorted(found[c].items())]

    def create(self, function: str, array: str, records: Sequence[Record],
               payload: Callable[[Record], dict[str, Any]], what: str) -> None:
        def existing(chunk: Sequence[Mapping[str, Any]]) -> list[int | None]:
            found = self.read({int(i["courseid"]) for i in chunk}, fresh=True)
            names = {(r.course_id, r.name): r.id for rs in found.values() for r in rs.values()}
            return [names.get((int(i["courseid"]), str(i["name"]))) for i in chunk]

        try:
            ids = self._ws.create(function, array, [payload(r) for r in records], existing)
        except PlatformRefused as exc:
            if len(records) != 1:
                raise
            one = records[0]
            raise PlatformRefused(f"{exc}: {what} {one.name!r} in course {one.course_id}") from exc
        found = self.read({r.course_id for r in records})  # a course not read yet is read whole now
        for record, new_id in zip(records, ids, strict=True):
            record.id = new_id
            found[record.course_id][new_id] = dataclasses.replace(record)

    def course_of(self) -> dict[int, int]:
        return {i: c for c, records in self.cached().items() for i in records}


class MoodleGroups:
    """Groups, groupings and members of a Moodle site's courses (see the module docstring)."""

    def __init__(self, ws: Ws) -> None:
        self._ws = ws
        self._groups: _PerCourse[GroupRecord] = _PerCourse(ws, GroupRecord, GROUPS, GET_GROUPS)
        self._groupings: _PerCourse[GroupingRecord] = _PerCourse(ws, GroupingRecord, GROUPINGS, GET_GROUPINGS)

    # -- groups --------------------------------------------------------------------------

    def groups(self, course_ids: Collection[int]) -> list[GroupRecord]:
        """Every group of these courses."""
        return self._groups.records(course_ids)

    def add_groups(self, groups: Sequence[GroupRecord]) -> None:
        """Create groups (``core_group_create_groups``) and set their ids."""
        self._groups.create("core_group_create_groups", "groups", groups, lambda g: {
            "courseid": g.course_id, "name": g.name, "description": g.description,
            "idnumber": g.idnumber or None,
        }, "group")

    def update_groups(self, groups: Sequence[GroupRecord]) -> None:
        """Refused: the web services cannot change a group."""
        if groups:
            raise not_supported("changing a group's idnumber or description (no core_group_update_groups)")

    def delete_groups(self, group_ids: Collection[int]) -> None:
        """Delete groups with their memberships and grouping links (unknown ids ignored)."""
        ids = sorted(set(group_ids))
        course_of = self._groups.course_of()
        for chunk in chunked([i for i in ids if i > 0], self._ws.batch_size):
            self._ws.write("core_group_delete_groups", {"groupids": list(chunk)})
        cache = self._groups.cached()
        known = {i: course_of[i] for i in ids if i in course_of}
        for group_id, course_id in known.items():
            cache.get(course_id, {}).pop(group_id, None)
        for linked in self._links().values():
            linked.difference_update(ids)
        for roster in _roster.cached(self._ws).values():
            for groups in roster.groups.values():
                groups.difference_update(ids)

    # -- groupings -----------------------------------------------------------------------

    def groupings(self, course_ids: Collection[int]) -> list[GroupingRecord]:
        """Every grouping of these courses."""
        return self._groupings.records(course_ids)

    def add_groupings(self, groupings: Sequence[GroupingRecord]) -> None:
        """Create groupings, always with an idnumber (§5.5), and set their ids."""
        self._groupings.create("core_group_create_groupings", "groupings", groupings, lambda g: {
            "courseid": g.course_id, "name": g.name, "description": g.description,
            "idnumber": g.idnumber or "",
        }, "grouping")
        links = self._links()
        for grouping in groupings:
            assert grouping.id is not None
            links.setdefault(grouping.id, set())

    def update_groupings(self, groupings: Sequence[GroupingRecord]) -> None:
        """Refused: the web services cannot change a grouping."""
        if groupings:
            raise not_supported(
                "changing a grouping's idnumber or description (no core_group_update_groupings)")

    def delete_groupings(self, grouping_ids: Collection[int]) -> None:
        """Refused: the web services cannot delete a grouping."""
        if grouping_ids:
            raise not_supported("deleting groupings (no core_group_delete_groupings)")

    def _links(self) -> dict[int, set[int]]:
        empty: dict[int, set[int]] = {}
        return self._ws.cache.get(LINKS, lambda: empty)

    def grouping_links(self, grouping_ids: Collection[int]) -> set[tuple[int, int]]:
        """(grouping, group) links of these groupings (``core_group_get_groupings``)."""
        links = self._links()
        missing = sorted(i for i in set(grouping_ids) if i > 0 and i not in links)
        params = lambda chunk: {"groupingids": list(chunk), "returngroups": 1}  # noqa: E731
        for grouping in self._ws.lookup("core_group_get_groupings", missing, params):
            if isinstance(grouping, dict) and isinstance(grouping.get("id"), int):
                groups = grouping.get("groups")
                listed = groups if isinstance(groups, list) else []
                links[grouping["id"]] = {int(g["id"]) for g in listed if isinstance(g, dict) and "id" in g}
        for grouping_id in missing:
            links.setdefault(grouping_id, set())
        return {(i, g) for i in set(grouping_ids) for g in links.get(i, ())}

    def link(self, links: Collection[tuple[int, int]]) -> None:
        """Put groups in groupings (``core_group_assign_grouping``); links already there are not sent."""
        known = self._links()
        todo = sorted(pair for pair in set(links) if pair[1] not in known.get(pair[0], ()))
        send(self._ws, "core_group_assign_grouping", "assignments", todo,
             lambda p: {"groupingid": p[0], "groupid": p[1]}, lambda p: f"group {p[1]} in grouping {p[0]}")
        for grouping_id, group_id in todo:
            if grouping_id in known:
                known[grouping_id].add(group_id)

    # -- members -------------------------------------------------------------------------

    def _rosters(self, course_ids: Iterable[int]) -> dict[int, _roster.Roster]:
        return _roster.rosters(self._ws, course_ids)

    def _courses(self, group_ids: Iterable[int]) -> dict[int, int]:
        course_of = self._groups.course_of()
        group_ids = set(group_ids)
        unknown = sorted(i for i in group_ids if i not in course_of)
        if unknown:
            raise PlatformRefused(f"moodle: the course of group(s) {', '.join(map(str, unknown[:5]))} is not "
                                  "known (read the groups of its course first)")
        return {i: course_of[i] for i in group_ids}

    def members(self, group_ids: Collection[int]) -> set[tuple[int, int]]:
        """(group, user) memberships of these groups, from the course rosters."""
        course_of = self._courses(group_ids)
        found = self._rosters(set(course_of.values()))
        return {(g, u) for g, c in course_of.items() for u in found[c].members(g)}

    def add_members(self, members: Collection[tuple[int, int]]) -> None:
        """Add memberships (``core_group_add_group_members``); present ones are not sent."""
        course_of = self._courses(g for g, _u in members)
        found = self._rosters(set(course_of.values()))
        todo = sorted((g, u) for g, u in set(members) if g not in found[course_of[g]].groups.get(u, ()))

        def outsiders(exc: PlatformRefused, chunk: Sequence[tuple[int, int]]) -> PlatformRefused | None:
            outside = [(g, u) for g, u in chunk if not found[course_of[g]].is_enrolled(u)]
            who = ", ".join(f"user {u} in course {course_of[g]}" for g, u in outside[:5])
            return PlatformRefused(f"{exc}: only enrolled users may be members of groups; not enrolled: "
                                   f"{who}") if outside else None

        def added(chunk: Sequence[tuple[int, int]]) -> None:
            for group_id, user_id in chunk:
                roster = found[course_of[group_id]]
                if roster.is_enrolled(user_id):
                    roster.groups[user_id].add(group_id)
                else:  # Moodle knows an enrolment the cached roster does not: read it again later
                    _roster.drop(self._ws, [course_of[group_id]])

        send(self._ws, "core_group_add_group_members", "members", todo, _member, _member_text, done=added,
             refusal=outsiders, undo=("core_group_delete_group_members", "members", _member))

    def remove_members(self, members: Collection[tuple[int, int]]) -> None:
        """Remove memberships (``core_group_delete_group_members``); absent ones are not sent."""
        course_of = self._courses(g for g, _u in members)
        found = self._rosters(set(course_of.values()))
        todo = sorted((g, u) for g, u in set(members) if g in found[course_of[g]].groups.get(u, ()))
        send(self._ws, "core_group_delete_group_members", "members", todo, _member, _member_text,
             undo=("core_group_add_group_members", "members", _member))
        for group_id, user_id in todo:
            found[course_of[group_id]].groups.get(user_id, set()).discard(group_id)


def _member(pair: tuple[int, int]) -> dict[str, Any]:
    return {"groupid": pair[0], "userid": pair[1]}


def _member_text(pair: tuple[int, int]) -> str:
    return f"user {pair[1]} in group {pair[0]}"
