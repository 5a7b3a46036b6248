"""Groups, groupings and their members in the embedded store (batch calls only)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import Connection, Table, select, update

from syncd.platform.model import GroupingRecord, GroupRecord
from syncd.platform.sqlstore._sql import (
    among,
    chunks,
    delete_among,
    delete_sql,
    executemany,
    insert_ids,
    insert_rows,
    need_ids,
    update_sql,
)
from syncd.platform.sqlstore.schema import enrol_methods, group_members, grouping_groups, groupings, groups

_FIELDS = ("course_id", "name", "idnumber", "description")


class SqlGroups:
    """GroupRepository over ``groups``, ``groupings``, ``grouping_groups``, ``group_members``."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def groups(self, course_ids: Collection[int]) -> list[GroupRecord]:
        """Every group of these courses, by id."""
        return [GroupRecord(*row) for row in self._select(groups, course_ids)]

    def add_groups(self, records: Sequence[GroupRecord]) -> None:
        """Insert groups (one statement per chunk) and set their ids."""
        self._add(groups, records)

    def update_groups(self, records: Sequence[GroupRecord]) -> None:
        """Write name/idnumber/description of these groups by id (executemany)."""
        self._update(groups, records)

    def delete_groups(self, group_ids: Collection[int]) -> None:
        """Delete groups with their members and grouping links; cohort-sync methods that
        filled them keep going without a group."""
        conn = self._conn
        for chunk in chunks(group_ids):
            query = update(enrol_methods).where(among(conn, enrol_methods.c.group_id)).values(group_id=None)
            conn.execute(query, {"keys": chunk})
        delete_among(conn, group_members, "group_id", group_ids)
        delete_among(conn, grouping_groups, "group_id", group_ids)
        delete_among(conn, groups, "id", group_ids)

    def groupings(self, course_ids: Collection[int]) -> list[GroupingRecord]:
        """Every grouping of these courses, by id."""
        return [GroupingRecord(*row) for row in self._select(groupings, course_ids)]

    def add_groupings(self, records: Sequence[GroupingRecord]) -> None:
        """Insert groupings (one statement per chunk) and set their ids."""
        self._add(groupings, records)

    def update_groupings(self, records: Sequence[GroupingRecord]) -> None:
        """Write name/idnumber/description of these groupings by id (executemany)."""
        self._update(groupings, records)

    def delete_groupings(self, grouping_ids: Collection[int]) -> None:
        """Delete groupings and their links (their groups stay)."""
        delete_among(self._conn, grouping_groups, "grouping_id", grouping_ids)
        delete_among(self._conn, groupings, "id", grouping_ids)

    def grouping_links(self, grouping_ids: Collection[int]) -> set[tuple[int, int]]:
        """(grouping_id, group_id) links of these groupings."""
        return self._pairs(grouping_groups, "grouping_id", "group_id", grouping_ids)

    def link(self, links: Collection[tuple[int, int]]) -> None:
        """Put groups in groupings (in bulk); present links are ignored."""
        insert_rows(self._conn, grouping_groups, ("grouping_id", "group_id"), sorted(set(links)), ignore=True)

    def members(self, group_ids: Collection[int]) -> set[tuple[int, int]]:
        """(group_id, user_id) memberships of these groups."""
        return self._pairs(group_members, "group_id", "user_id", group_ids)

    def add_members(self, members: Collection[tuple[int, int]]) -> None:
        """Add memberships (in bulk); present ones are ignored."""
        insert_rows(self._conn, group_members, ("group_id", "user_id"), sorted(set(members)), ignore=True)

    def remove_members(self, members: Collection[tuple[int, int]]) -> None:
        """Remove memberships (executemany); absent ones are ignored."""
        sql = delete_sql(self._conn, group_members, ("group_id", "user_id"))
        executemany(self._conn, sql, sorted(set(members)))

    def _select(self, table: Table, course_ids: Collection[int]) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = []
        for chunk in chunks(course_ids):
            query = select(*(table.c[f] for f in _FIELDS), table.c.id)
            query = query.where(among(self._conn, table.c.course_id))
            rows.extend(tuple(row) for row in self._conn.execute(query, {"keys": chunk}))
        return sorted(rows, key=lambda row: row[-1])

    def _add(self, table: Table, records: Sequence[GroupRecord | GroupingRecord]) -> None:
        rows = [(r.course_id, r.name, r.idnumber or None, r.description) for r in records]
        for record, id_ in zip(records, insert_ids(self._conn, table, _FIELDS, rows), strict=True):
            record.id = id_

    def _update(self, table: Table, records: Sequence[GroupRecord | GroupingRecord]) -> None:
        need_ids(records)
        executemany(
            self._conn,
            update_sql(self._conn, table, _FIELDS[1:], "id"),
            [(r.name, r.idnumber or None, r.description, r.id) for r in records],
        )

    def _pairs(self, table: Table, key: str, other: str, keys: Collection[int]) -> set[tuple[int, int]]:
        found: set[tuple[int, int]] = set()
        for chunk in chunks(keys):
            query = select(table.c[key], table.c[other]).where(among(self._conn, table.c[key]))
            found.update((a, b) for a, b in self._conn.execute(query, {"keys": chunk}))
        return found
