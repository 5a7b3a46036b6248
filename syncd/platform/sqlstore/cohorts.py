"""Cohorts and their members in the embedded store (batch calls only)."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import Connection, delete, select

from syncd.platform.model import CohortRecord
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
from syncd.platform.sqlstore.schema import cohort_members, cohorts, enrol_methods, user_enrolments

_FIELDS = ("name", "idnumber", "description", "category_id")


class SqlCohorts:
    """CohortRepository over ``cohorts`` and ``cohort_members``."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def find(
        self, *, idnumbers: Collection[str] = (), names: Collection[str] = (), ids: Collection[int] = ()
    ) -> list[CohortRecord]:
        """Every cohort matching any key (one query per key kind and chunk), by id."""
        found: dict[int, CohortRecord] = {}
        for column, values in (("idnumber", idnumbers), ("name", names), ("id", ids)):
            for chunk in chunks(v for v in values if v or v == 0):
                query = select(cohorts.c.id, *(cohorts.c[f] for f in _FIELDS))
                query = query.where(among(self._conn, cohorts.c[column]))
                for id_, name, idnumber, description, category in self._conn.execute(query, {"keys": chunk}):
                    found.setdefault(id_, CohortRecord(name, idnumber, description, category, id_))
        return [found[k] for k in sorted(found)]

    def add(self, records: Sequence[CohortRecord]) -> None:
        """Insert cohorts (one statement per chunk) and set their ids."""
        rows = [(c.name, c.idnumber or None, c.description, c.category_id) for c in records]
        for record, id_ in zip(records, insert_ids(self._conn, cohorts, _FIELDS, rows), strict=True):
            record.id = id_

    def update(self, records: Sequence[CohortRecord]) -> None:
        """Write every field of these cohorts by id (executemany)."""
        need_ids(records)
        executemany(
            self._conn,
            update_sql(self._conn, cohorts, _FIELDS, "id"),
            [(c.name, c.idnumber or None, c.description, c.category_id, c.id) for c in records],
        )

    def delete(self, cohort_ids: Collection[int]) -> None:
        """Delete cohorts with their members and their cohort-sync enrolment methods (and
        the user enrolments through those)."""
        conn = self._conn
        for chunk in chunks(cohort_ids):
            synced = select(enrol_methods.c.id).where(among(conn, enrol_methods.c.cohort_id))
            query = delete(user_enrolments).where(user_enrolments.c.method_id.in_(synced))
            conn.execute(query, {"keys": chunk})
        delete_among(conn, enrol_methods, "cohort_id", cohort_ids)
        delete_among(conn, cohort_members, "cohort_id", cohort_ids)
        delete_among(conn, cohorts, "id", cohort_ids)

    def members(self, cohort_ids: Collection[int]) -> set[tuple[int, int]]:
        """(cohort_id, user_id) memberships of these cohorts."""
        t = cohort_members
        found: set[tuple[int, int]] = set()
        for chunk in chunks(cohort_ids):
            query = select(t.c.cohort_id, t.c.user_id).where(among(self._conn, t.c.cohort_id))
            found.update((a, b) for a, b in self._conn.execute(query, {"keys": chunk}))
        return found

    def add_members(self, members: Collection[tuple[int, int]]) -> None:
        """Add memberships (in bulk); present ones are ignored."""
        insert_rows(self._conn, cohort_members, ("cohort_id", "user_id"), sorted(set(members)), ignore=True)

    def remove_members(self, members: Collection[tuple[int, int]]) -> None:
        """Remove memberships (executemany); absent ones are ignored."""
        sql = delete_sql(self._conn, cohort_members, ("cohort_id", "user_id"))
        executemany(self._conn, sql, sorted(set(members)))
