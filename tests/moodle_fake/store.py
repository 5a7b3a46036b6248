"""Journaled tables: the transactions of the fake Moodle.

Every change goes through :meth:`Store.put` / :meth:`Store.drop`, which remember the previous
row while a transaction is open; :meth:`Store.rollback_to` undoes changes back to a savepoint.
That is how a whole-batch function (README §4) loses everything on its first bad item, and how
``core_user_update_users`` gives each item its own transaction.

Id counters are *not* rolled back, like PostgreSQL sequences: a failed batch that inserted a
row before failing consumes its id (the recordings show such gaps, e.g. course 68).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterator
from typing import Any

_MISSING = object()
TABLES = (
    "users", "categories", "courses", "enrolments", "role_assignments", "groups", "groupings",
    "group_members", "grouping_groups", "cohorts", "cohort_members", "sections", "modules",
    "contexts", "drafts",
)


class Store:
    """Tables of rows keyed by id (or by a tuple for link tables), with an undo journal."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.lock = threading.RLock()
        self.tables: dict[str, dict[Hashable, Any]] = {name: {} for name in TABLES}
        self._next: dict[str, int] = {}
        self._journal: list[tuple[str, Hashable, Any]] | None = None
        self._clock = clock

    # -- time and ids --------------------------------------------------------------------

    def now(self) -> int:
        """The site's clock, in whole seconds."""
        return int(self._clock())

    def next_id(self, sequence: str) -> int:
        """The next value of ``sequence`` (never given back, even on rollback)."""
        with self.lock:
            value = self._next.get(sequence, 1)
            self._next[sequence] = value + 1
            return value

    def set_next_id(self, sequence: str, value: int) -> None:
        """Make ``sequence`` hand out ``value`` next (seeding: reproduce a site's ids)."""
        with self.lock:
            self._next[sequence] = value

    def _seen_id(self, sequence: str, value: int) -> None:
        if value >= self._next.get(sequence, 1):
            self._next[sequence] = value + 1

    # -- rows ------------------------------------------------------------------------------

    def get(self, table: str, key: Hashable) -> Any:
        """The row at ``key``, or None."""
        return self.tables[table].get(key)

    def rows(self, table: str) -> list[Any]:
        """All rows of ``table`` (a copy of the list, safe to iterate while changing)."""
        return list(self.tables[table].values())

    def items(self, table: str) -> list[tuple[Any, Any]]:
        """All (key, row) pairs of ``table``."""
        return list(self.tables[table].items())

    def put(self, table: str, key: Hashable, row: Any) -> None:
        """Insert or replace a row (journaled)."""
        rows = self.tables[table]
        if self._journal is not None:
            self._journal.append((table, key, rows.get(key, _MISSING)))
        rows[key] = row

    def drop(self, table: str, key: Hashable) -> None:
        """Delete a row if present (journaled)."""
        rows = self.tables[table]
        if key in rows:
            if self._journal is not None:
                self._journal.append((table, key, rows[key]))
            del rows[key]

    def drop_where(self, table: str, test: Callable[[Any, Any], bool]) -> int:
        """Delete the rows for which ``test(key, row)`` holds; how many."""
        doomed = [key for key, row in self.tables[table].items() if test(key, row)]
        for key in doomed:
            self.drop(table, key)
        return len(doomed)

    # -- transactions ----------------------------------------------------------------------

    def begin(self) -> None:
        """Open the call's transaction (the lock must be held)."""
        self._journal = []

    def savepoint(self) -> int:
        """A mark to roll back to."""
        return 0 if self._journal is None else len(self._journal)

    def rollback_to(self, mark: int = 0) -> None:
        """Undo the changes made since ``mark``."""
        if self._journal is None:
            return
        while len(self._journal) > mark:
            table, key, old = self._journal.pop()
            if old is _MISSING:
                self.tables[table].pop(key, None)
            else:
                self.tables[table][key] = old

    def end(self) -> None:
        """Close the transaction, keeping its changes."""
        self._journal = None

    def transaction_open(self) -> bool:
        """Whether a call is running."""
        return self._journal is not None

    def iter_rows(self, table: str) -> Iterator[Any]:
        """Rows of ``table`` (do not change the table while iterating)."""
        return iter(self.tables[table].values())
