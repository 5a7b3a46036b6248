"""Categories, courses with their sections, and roles in the embedded store.

Batch calls only: one SELECT per key kind per :data:`~._sql.CHUNK` keys, one multi-row
INSERT … RETURNING per chunk of new rows, one executemany per kind of update. Deleting
a course deletes what belongs to it explicitly (the schema's cascades are a safety net).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from operator import attrgetter
from typing import Any

from sqlalchemy import Connection, delete, select

from syncd.platform.model import CategoryRecord, CourseRecord, SectionRecord
from syncd.platform.sqlstore._sql import (
    among,
    bind,
    binder,
    chunks,
    delete_among,
    executemany,
    from_db_time,
    insert_ids,
    need_ids,
    placeholder,
    update_sql,
)
from syncd.platform.sqlstore.schema import (
    categories,
    course_activities,
    course_documents,
    course_path_items,
    course_sections,
    courses,
    enrol_methods,
    group_members,
    grouping_groups,
    groupings,
    groups,
    role_assignments,
    roles,
    user_enrolments,
)

#: CourseRecord fields stored as columns of ``courses`` (all but ``id``).
COURSE_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(CourseRecord) if f.name != "id")
_course_values = attrgetter(*COURSE_FIELDS)
_IDNUMBER, _START, _END = (COURSE_FIELDS.index(f) for f in ("idnumber", "startdate", "enddate"))
_CATEGORY_FIELDS = ("name", "parent_id", "idnumber", "description")


class SqlCategories:
    """CategoryRepository over ``categories`` (few rows: read whole)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def all(self) -> list[CategoryRecord]:
        """Every category, by id."""
        t = categories
        query = select(t.c.id, *(t.c[f] for f in _CATEGORY_FIELDS)).order_by(t.c.id)
        return [
            CategoryRecord(name=name, parent_id=parent, idnumber=idnumber, description=description, id=id_)
            for id_, name, parent, idnumber, description in self._conn.execute(query)
        ]

    def add(self, records: Sequence[CategoryRecord]) -> None:
        """Insert new categories and set their ids.

        A parent must exist before its child is added: a child's ``parent_id`` can only be
        known once its parent's add has returned, so each level is one call.
        """
        rows = [(c.name, c.parent_id, c.idnumber or None, c.description) for c in records]
        ids = insert_ids(self._conn, categories, _CATEGORY_FIELDS, rows)
        for record, id_ in zip(records, ids, strict=True):
            record.id = id_


class SqlCourses:
    """CourseRepository over ``courses`` and ``course_sections``."""

    def __init__(self, conn: Connection, now: Callable[[], datetime]) -> None:
        self._conn = conn
        self._now = now

    def find(
        self, *, shortnames: Collection[str] = (), idnumbers: Collection[str] = (), ids: Collection[int] = ()
    ) -> list[CourseRecord]:
        """Every course matching any key: one query per key kind and chunk."""
        found: dict[int, CourseRecord] = {}
        for column, values in (("shortname", shortnames), ("idnumber", idnumbers), ("id", ids)):
            for chunk in chunks(v for v in values if v or v == 0):
                query = select(courses.c.id, *(courses.c[f] for f in COURSE_FIELDS))
                query = query.where(among(self._conn, courses.c[column]))
                for row in self._conn.execute(query, {"keys": chunk}):
                    if row[0] not in found:
                        found[row[0]] = _course(row)
        return list(found.values())

    def add(self, records: Sequence[CourseRecord]) -> None:
        """Insert new courses with one statement per chunk and set their ids."""
        stamp = bind(self._conn, courses.c.created_at, self._now())
        rows = [(*self._values(c), stamp, stamp) for c in records]
        ids = insert_ids(self._conn, courses, (*COURSE_FIELDS, "created_at", "updated_at"), rows)
        for record, id_ in zip(records, ids, strict=True):
            record.id = id_

    def update(self, records: Sequence[CourseRecord]) -> None:
        """Write every field of these courses by id (executemany)."""
        need_ids(records)
        stamp = bind(self._conn, courses.c.updated_at, self._now())
        executemany(
            self._conn,
            update_sql(self._conn, courses, (*COURSE_FIELDS, "updated_at"), "id"),
            [(*self._values(c), stamp, c.id) for c in records],
        )

    def _values(self, course: CourseRecord) -> tuple[Any, ...]:
        when = binder(self._conn, courses.c.startdate)
        values = list(_course_values(course))
        values[_IDNUMBER] = values[_IDNUMBER] or None
        values[_START] = when(values[_START])
        values[_END] = when(values[_END])
        return tuple(values)

    def delete(self, course_ids: Collection[int]) -> None:
        """Delete courses with their enrolments, methods, role assignments, groups,
        groupings, sections, documents, learning path and activities (children first, so
        that foreign keys hold throughout). The documents' blobs stay in the file store."""
        conn = self._conn
        for table in (course_documents, course_path_items, course_activities):
            delete_among(conn, table, "course_id", course_ids)
        for chunk in chunks(course_ids):
            keys = {"keys": chunk}
            conn.execute(delete(user_enrolments).where(among(conn, user_enrolments.c.course_id)), keys)
            conn.execute(delete(enrol_methods).where(among(conn, enrol_methods.c.course_id)), keys)
            conn.execute(delete(role_assignments).where(among(conn, role_assignments.c.course_id)), keys)
            in_groups = select(groups.c.id).where(among(conn, groups.c.course_id))
            in_groupings = select(groupings.c.id).where(among(conn, groupings.c.course_id))
            conn.execute(delete(group_members).where(group_members.c.group_id.in_(in_groups)), keys)
            conn.execute(delete(grouping_groups).where(grouping_groups.c.grouping_id.in_(in_groupings)), keys)
            conn.execute(delete(grouping_groups).where(grouping_groups.c.group_id.in_(in_groups)), keys)
            conn.execute(delete(groupings).where(among(conn, groupings.c.course_id)), keys)
            conn.execute(delete(groups).where(among(conn, groups.c.course_id)), keys)
            conn.execute(delete(course_sections).where(among(conn, course_sections.c.course_id)), keys)
        delete_among(conn, courses, "id", course_ids)

    def sections(self, course_ids: Collection[int]) -> list[SectionRecord]:
        """The sections of these courses, by course then number."""
        t = course_sections
        found: list[SectionRecord] = []
        for chunk in chunks(course_ids):
            query = select(t.c.course_id, t.c.number, t.c.name, t.c.summary, t.c.id)
            found.extend(SectionRecord(*row) for row in self._conn.execute(
                query.where(among(self._conn, t.c.course_id)), {"keys": chunk}
            ))
        return sorted(found, key=lambda s: (s.course_id, s.number))

    def put_sections(self, records: Sequence[SectionRecord]) -> None:
        """Insert or replace sections by (course_id, number): one upsert per chunk; set ids.

        When one (course_id, number) comes twice, the last one wins.
        """
        last = {(s.course_id, s.number): s for s in records}
        rows = [(s.course_id, s.number, s.name, s.summary) for s in last.values()]
        ids: dict[tuple[int, int], int] = {}
        mark = placeholder(self._conn)
        values = f"({mark}, {mark}, {mark}, {mark})"
        for start in range(0, len(rows), 500):
            part = rows[start : start + 500]
            sql = (
                "INSERT INTO course_sections (course_id, number, name, summary) VALUES "
                + ", ".join([values] * len(part))
                + " ON CONFLICT (course_id, number) DO UPDATE SET name = excluded.name,"
                " summary = excluded.summary RETURNING id, course_id, number"
            )
            result = self._conn.exec_driver_sql(sql, tuple(v for row in part for v in row))
            ids.update(((course_id, number), id_) for id_, course_id, number in result)
        for section in records:
            section.id = ids[(section.course_id, section.number)]


def _course(row: Any) -> CourseRecord:
    record = CourseRecord(**dict(zip(COURSE_FIELDS, row[1:], strict=True)))
    record.startdate = from_db_time(record.startdate)
    record.enddate = from_db_time(record.enddate)
    record.visible = bool(record.visible)
    record.id = row[0]
    return record


class SqlRoles:
    """RoleRepository over ``roles`` (seeded by ``create_schema``)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def all(self) -> dict[str, int]:
        """Role shortname -> role id."""
        return {name: id_ for name, id_ in self._conn.execute(select(roles.c.shortname, roles.c.id))}
