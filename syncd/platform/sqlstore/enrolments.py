"""Enrolment methods, user enrolments and course role assignments in the embedded store.

The hot path of the enrolments processor: a batch of 500 rows looks its pairs up with one
query (:func:`~._sql.pairs_sql`, answered from the (course_id, user_id) indexes), then
writes with one multi-row INSERT … RETURNING for the enrolments and one executemany for
the role assignments. Reads and writes go to the driver as plain tuples.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import Connection, select

from syncd.platform.model import Enrolment, EnrolMethod, RoleAssignment
from syncd.platform.sqlstore._sql import (
    among,
    binder,
    chunks,
    delete_among,
    delete_sql,
    executemany,
    from_db_time,
    insert_ids,
    insert_rows,
    need_ids,
    pairs_params,
    pairs_sql,
    reader,
    update_sql,
)
from syncd.platform.sqlstore.schema import enrol_methods, role_assignments, user_enrolments

_METHOD_FIELDS = ("course_id", "method", "enabled", "cohort_id", "role_id", "group_id")
_ENROLMENT_FIELDS = ("method_id", "course_id", "user_id", "active", "timestart", "timeend")
_ROLE_FIELDS = ("course_id", "user_id", "role_id")


class SqlEnrolments:
    """EnrolmentRepository over ``enrol_methods``, ``user_enrolments`` and ``role_assignments``."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    # -- enrolment methods --

    def methods(self, course_ids: Collection[int]) -> list[EnrolMethod]:
        """Every enrolment method of these courses, by id."""
        return self._methods("course_id", course_ids)

    def methods_of_cohorts(self, cohort_ids: Collection[int]) -> list[EnrolMethod]:
        """Every cohort-sync method bound to these cohorts, by id."""
        return [m for m in self._methods("cohort_id", cohort_ids) if m.method == "cohort"]

    def _methods(self, key: str, keys: Collection[int]) -> list[EnrolMethod]:
        t = enrol_methods
        found: list[EnrolMethod] = []
        for chunk in chunks(keys):
            query = select(t.c.id, *(t.c[f] for f in _METHOD_FIELDS)).where(among(self._conn, t.c[key]))
            rows = self._conn.execute(query, {"keys": chunk})
            found.extend(
                EnrolMethod(course, method, bool(enabled), cohort, role, group, id_)
                for id_, course, method, enabled, cohort, role, group in rows
            )
        return sorted(found, key=lambda m: m.id or 0)

    def add_methods(self, methods: Sequence[EnrolMethod]) -> None:
        """Insert methods (one statement per chunk) and set their ids."""
        rows = [(m.course_id, m.method, m.enabled, m.cohort_id, m.role_id, m.group_id) for m in methods]
        ids = insert_ids(self._conn, enrol_methods, _METHOD_FIELDS, rows)
        for method, id_ in zip(methods, ids, strict=True):
            method.id = id_

    def update_methods(self, methods: Sequence[EnrolMethod]) -> None:
        """Write every field of these methods by id (executemany)."""
        need_ids(methods)
        executemany(
            self._conn,
            update_sql(self._conn, enrol_methods, _METHOD_FIELDS, "id"),
            [(m.course_id, m.method, m.enabled, m.cohort_id, m.role_id, m.group_id, m.id) for m in methods],
        )

    def delete_methods(self, method_ids: Collection[int]) -> None:
        """Delete methods and the user enrolments through them."""
        delete_among(self._conn, user_enrolments, "method_id", method_ids)
        delete_among(self._conn, enrol_methods, "id", method_ids)

    # -- user enrolments --

    def find(self, pairs: Collection[tuple[int, int]]) -> list[Enrolment]:
        """Every user enrolment of these (course_id, user_id) pairs: one query per chunk."""
        sql = f"SELECT {', '.join(('id', *_ENROLMENT_FIELDS))} FROM user_enrolments WHERE "
        found: list[Enrolment] = []
        for chunk in chunks(pairs):
            found.extend(self._enrolments(self._by_pairs(sql, chunk)))
        return sorted(found, key=lambda e: e.id or 0)

    def in_courses(self, course_ids: Collection[int]) -> list[Enrolment]:
        """Every user enrolment in these courses, by id."""
        t = user_enrolments
        found: list[Enrolment] = []
        for chunk in chunks(course_ids):
            query = select(t.c.id, *(t.c[f] for f in _ENROLMENT_FIELDS))
            query = query.where(among(self._conn, t.c.course_id))
            found.extend(
                Enrolment(m, c, u, bool(a), from_db_time(s), from_db_time(e), id_)
                for id_, m, c, u, a, s, e in self._conn.execute(query, {"keys": chunk})
            )
        return sorted(found, key=lambda e: e.id or 0)

    def _by_pairs(self, sql: str, pairs: Sequence[tuple[int, int]]) -> Any:
        """Run ``sql`` (a SELECT … WHERE) on the rows of these (course_id, user_id) pairs."""
        where = pairs_sql(self._conn, ("course_id", "user_id"), len(pairs))
        return self._conn.exec_driver_sql(sql + where, pairs_params(self._conn, pairs))

    def _enrolments(self, rows: Any) -> list[Enrolment]:
        """Enrolments from raw driver rows (id first, then _ENROLMENT_FIELDS)."""
        when = reader(self._conn, user_enrolments.c.timestart)
        return [
            Enrolment(method_id, course_id, user_id, bool(active), when(start), when(end), id_)
            for id_, method_id, course_id, user_id, active, start, end in rows
        ]

    def add(self, enrolments: Sequence[Enrolment]) -> None:
        """Insert user enrolments (one statement per chunk) and set their ids."""
        when = binder(self._conn, user_enrolments.c.timestart)
        rows = [
            (e.method_id, e.course_id, e.user_id, e.active, when(e.start), when(e.end)) for e in enrolments
        ]
        ids = insert_ids(self._conn, user_enrolments, _ENROLMENT_FIELDS, rows)
        for enrolment, id_ in zip(enrolments, ids, strict=True):
            enrolment.id = id_

    def update(self, enrolments: Sequence[Enrolment]) -> None:
        """Write active/start/end of these enrolments by id (executemany)."""
        need_ids(enrolments)
        when = binder(self._conn, user_enrolments.c.timestart)
        executemany(
            self._conn,
            update_sql(self._conn, user_enrolments, ("active", "timestart", "timeend"), "id"),
            [(e.active, when(e.start), when(e.end), e.id) for e in enrolments],
        )

    def delete(self, enrolment_ids: Collection[int]) -> None:
        """Remove user enrolments (absent ids are ignored)."""
        delete_among(self._conn, user_enrolments, "id", enrolment_ids)

    # -- role assignments --

    def roles(self, pairs: Collection[tuple[int, int]]) -> list[RoleAssignment]:
        """Every role assignment of these (course_id, user_id) pairs: one query per chunk."""
        sql = f"SELECT {', '.join(_ROLE_FIELDS)} FROM role_assignments WHERE "
        found: list[RoleAssignment] = []
        for chunk in chunks(pairs):
            found.extend(RoleAssignment(c, u, r) for c, u, r in self._by_pairs(sql, chunk))
        return sorted(found, key=lambda r: (r.course_id, r.user_id, r.role_id))

    def roles_in_courses(self, course_ids: Collection[int]) -> list[RoleAssignment]:
        """Every role assignment in these courses."""
        t = role_assignments
        found: list[RoleAssignment] = []
        for chunk in chunks(course_ids):
            query = select(t.c.course_id, t.c.user_id, t.c.role_id).where(among(self._conn, t.c.course_id))
            found.extend(RoleAssignment(*row) for row in self._conn.execute(query, {"keys": chunk}))
        return sorted(found, key=lambda r: (r.course_id, r.user_id, r.role_id))

    def assign(self, assignments: Collection[RoleAssignment]) -> None:
        """Add role assignments in bulk; present ones are ignored."""
        rows = [(r.course_id, r.user_id, r.role_id) for r in set(assignments)]
        insert_rows(self._conn, role_assignments, _ROLE_FIELDS, rows, ignore=True)

    def unassign(self, assignments: Collection[RoleAssignment]) -> None:
        """Remove role assignments with one executemany; absent ones are ignored."""
        executemany(
            self._conn,
            delete_sql(self._conn, role_assignments, _ROLE_FIELDS),
            [(r.course_id, r.user_id, r.role_id) for r in set(assignments)],
        )
