"""In-memory groups, groupings and cohorts of the platform model, for unit tests.

The same rules as ``tests/fakes_model.py``: copies in and out, unique keys and foreign keys
checked (:class:`FakeIntegrityError`), deletes cascading as the port says.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Sequence
from typing import Any

from syncd.platform.model import CohortRecord, GroupingRecord, GroupRecord
from tests.fakes_model import (
    FakeEnrolments,
    FakeState,
    _copies,
    _known,
    _need,
    _store,
    _stored,
    _unique,
    drop_groupings,
    drop_groups,
)


class FakeGroups:
    """GroupRepository over dicts of groups and groupings and sets of links and members."""

    def __init__(self, state: FakeState) -> None:
        self._s = state

    def groups(self, course_ids: Collection[int]) -> list[GroupRecord]:
        """Copies of every group of these courses, by id."""
        wanted = set(course_ids)
        return _copies(g for _, g in sorted(self._s.groups.items()) if g.course_id in wanted)

    def add_groups(self, groups: Sequence[GroupRecord]) -> None:
        """Store new groups: name unique in the course, idnumber too when set."""
        for group in groups:
            self._check(group, self._s.groups)
            _store(self._s.groups, group, "groups", self._s)

    def update_groups(self, groups: Sequence[GroupRecord]) -> None:
        """Write name/idnumber/description by id."""
        self._update(groups, self._s.groups, "group")

    def update_groupings(self, groupings: Sequence[GroupingRecord]) -> None:
        """Write name/idnumber/description by id."""
        self._update(groupings, self._s.groupings, "grouping")

    def _update(
        self, records: Sequence[GroupRecord | GroupingRecord], table: dict[int, Any], what: str
    ) -> None:
        for record in records:
            record_id = _known(table, record, what)
            probe = copy.copy(table[record_id])
            probe.name, probe.description = record.name, record.description
            probe.idnumber = record.idnumber or None
            self._check(probe, table)
            table[record_id] = probe

    def _check(self, rec: GroupRecord | GroupingRecord, table: dict[int, Any]) -> None:
        _need(rec.course_id in self._s.courses, "course", rec.course_id)
        others = [o for o in table.values() if o.id != rec.id and o.course_id == rec.course_id]
        _unique((o.name for o in others), rec.name, "name in course")
        if rec.idnumber:
            _unique((o.idnumber for o in others), rec.idnumber, "idnumber in course")

    def delete_groups(self, group_ids: Collection[int]) -> None:
        """Delete groups with their members and grouping links (cohort methods forget them)."""
        drop_groups(self._s, group_ids)

    def groupings(self, course_ids: Collection[int]) -> list[GroupingRecord]:
        """Copies of every grouping of these courses, by id."""
        wanted = set(course_ids)
        return _copies(g for _, g in sorted(self._s.groupings.items()) if g.course_id in wanted)

    def add_groupings(self, groupings: Sequence[GroupingRecord]) -> None:
        """Store new groupings: name unique in the course, idnumber too when set."""
        for grouping in groupings:
            self._check(grouping, self._s.groupings)
            _store(self._s.groupings, grouping, "groupings", self._s)

    def delete_groupings(self, grouping_ids: Collection[int]) -> None:
        """Delete groupings and their links; the groups stay."""
        drop_groupings(self._s, grouping_ids)

    def grouping_links(self, grouping_ids: Collection[int]) -> set[tuple[int, int]]:
        """(grouping_id, group_id) links of these groupings."""
        wanted = set(grouping_ids)
        return {x for x in self._s.grouping_links if x[0] in wanted}

    def link(self, links: Collection[tuple[int, int]]) -> None:
        """Add links; present ones are ignored."""
        for grouping_id, group_id in links:
            _need(grouping_id in self._s.groupings, "grouping", grouping_id)
            _need(group_id in self._s.groups, "group", group_id)
            self._s.grouping_links.add((grouping_id, group_id))

    def members(self, group_ids: Collection[int]) -> set[tuple[int, int]]:
        """(group_id, user_id) memberships of these groups."""
        wanted = set(group_ids)
        return {m for m in self._s.group_members if m[0] in wanted}

    def add_members(self, members: Collection[tuple[int, int]]) -> None:
        """Add memberships; present ones are ignored."""
        for group_id, user_id in members:
            _need(group_id in self._s.groups, "group", group_id)
            _need(user_id in self._s.users, "user", user_id)
            self._s.group_members.add((group_id, user_id))

    def remove_members(self, members: Collection[tuple[int, int]]) -> None:
        """Remove memberships; absent ones are ignored."""
        self._s.group_members -= set(members)


class FakeCohorts:
    """CohortRepository over a dict of cohorts and a set of members."""

    def __init__(self, state: FakeState) -> None:
        self._s = state

    def find(
        self, *, idnumbers: Collection[str] = (), names: Collection[str] = (), ids: Collection[int] = ()
    ) -> list[CohortRecord]:
        """Copies of every cohort matching any key, by id."""
        numbers, wanted_names, wanted = set(idnumbers), set(names), set(ids)
        return _copies(
            c
            for _, c in sorted(self._s.cohorts.items())
            if (c.idnumber is not None and c.idnumber in numbers) or c.name in wanted_names or c.id in wanted
        )

    def add(self, cohorts: Sequence[CohortRecord]) -> None:
        """Store new cohorts: idnumber unique when set."""
        for cohort in cohorts:
            self._check(cohort)
            _store(self._s.cohorts, cohort, "cohorts", self._s)

    def update(self, cohorts: Sequence[CohortRecord]) -> None:
        """Replace cohorts by id."""
        for cohort in cohorts:
            cohort_id = _known(self._s.cohorts, cohort, "cohort")
            self._check(cohort)
            self._s.cohorts[cohort_id] = _stored(cohort)

    def _check(self, cohort: CohortRecord) -> None:
        if cohort.category_id is not None:
            _need(cohort.category_id in self._s.categories, "category", cohort.category_id)
        if cohort.idnumber:
            others = (c.idnumber for c in self._s.cohorts.values() if c.id != cohort.id)
            _unique(others, cohort.idnumber, "cohort idnumber")

    def delete(self, cohort_ids: Collection[int]) -> None:
        """Delete cohorts with their members and cohort-sync methods (and their enrolments)."""
        s, gone = self._s, set(cohort_ids)
        FakeEnrolments(s).delete_methods([k for k, m in s.methods.items() if m.cohort_id in gone])
        s.cohort_members = {m for m in s.cohort_members if m[0] not in gone}
        for cohort_id in gone:
            s.cohorts.pop(cohort_id, None)

    def members(self, cohort_ids: Collection[int]) -> set[tuple[int, int]]:
        """(cohort_id, user_id) memberships of these cohorts."""
        wanted = set(cohort_ids)
        return {m for m in self._s.cohort_members if m[0] in wanted}

    def add_members(self, members: Collection[tuple[int, int]]) -> None:
        """Add memberships; present ones are ignored."""
        for cohort_id, user_id in members:
            _need(cohort_id in self._s.cohorts, "cohort", cohort_id)
            _need(user_id in self._s.users, "user", user_id)
            self._s.cohort_members.add((cohort_id, user_id))

    def remove_members(self, members: Collection[tuple[int, int]]) -> None:
        """Remove memberships; absent ones are ignored."""
        self._s.cohort_members -= set(members)
