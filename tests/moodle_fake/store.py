"""Journaled tables: the transactions of the fake Moodle.

Every change goes through :meth:`Store.put` / :meth:`Store.drop`, which remember the previous
row while a transaction is open; :meth:`Store.rollback_to` undoes changes back to a savepoint.
That is how a whole-batch function (README §4) loses everything on its first bad item, and how
``core_user_update_users`` gives each item its own transaction.

Indexes (:class:`Index`, declared in :attr:`Store.INDEXES`) group a table's keys by a value of
their rows; every write, rollbacks included, goes through :meth:`Store._write`, which keeps them
right, so a look-up reads one group instead of scanning the table.

Id counters are *not* rolled back, like PostgreSQL sequences: a failed batch that inserted a
row before failing consumes its id (the recordings show such gaps, e.g. course 68).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterator
from typing import Any, ClassVar

_MISSING = object()
#: table -> index name -> the value a row is grouped by, ``of(key, row)``
IndexSpec = dict[str, dict[str, Callable[[Any, Any], Hashable]]]
TABLES = (
    "users", "categories", "courses", "enrolments", "role_assignments", "groups", "groupings",
    "group_members", "grouping_groups", "cohorts", "cohort_members", "sections", "modules",
    "contexts", "drafts",
)


class Index:
    """The keys of a table grouped by ``of(key, row)``.

    A group keeps its keys in table order as long as the value of a key's row never changes
    (always true when the value comes from the key): a new key goes last, a replaced row that
    keeps its value keeps its place. A key whose value changed goes last in its new group,
    where the table may have it earlier: :meth:`Store.first` copes with that.
    """

    __slots__ = ("groups", "of")

    def __init__(self, of: Callable[[Any, Any], Hashable]) -> None:
        self.of = of
        self.groups: dict[Hashable, dict[Hashable, None]] = {}

    def move(self, key: Hashable, old: Any, new: Any) -> None:
        """Account for the row at ``key`` going from ``old`` to ``new`` (either may be missing)."""
        before = _MISSING if old is _MISSING else self.of(key, old)
        after = _MISSING if new is _MISSING else self.of(key, new)
        if before == after:
            return
        if before is not _MISSING:
            group = self.groups[before]
            del group[key]
            if not group:
                del self.groups[before]
        if after is not _MISSING:
            self.groups.setdefault(after, {})[key] = None


class Store:
    """Tables of rows keyed by id (or by a tuple for link tables), with an undo journal."""

    INDEXES: ClassVar[IndexSpec] = {}

    def __init__(self, clock: Callable[[], float]) -> None:
        self.lock = threading.RLock()
        self.tables: dict[str, dict[Hashable, Any]] = {name: {} for name in TABLES}
        self._indexes: dict[str, dict[str, Index]] = {
            name: {index: Index(of) for index, of in self.INDEXES.get(name, {}).items()} for name in TABLES}
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

    def keys_by(self, table: str, index: str, value: Hashable) -> list[Any]:
        """The keys of the rows of ``table`` whose ``index`` value is ``value``."""
        return list(self._indexes[table][index].groups.get(value, ()))

    def first(self, table: str, keys: list[Any]) -> Any:
        """The row of ``keys`` that comes first in the table (as a scan finds it), or None."""
        if len(keys) < 2:
            return self.tables[table][keys[0]] if keys else None
        wanted = set(keys)
        return next(row for key, row in self.tables[table].items() if key in wanted)

    def put(self, table: str, key: Hashable, row: Any) -> None:
        """Insert or replace a row (journaled)."""
        old = self._write(table, key, row)
        if self._journal is not None:
            self._journal.append((table, key, old))

    def drop(self, table: str, key: Hashable) -> None:
        """Delete a row if present (journaled)."""
        if key in self.tables[table]:
            old = self._write(table, key, _MISSING)
            if self._journal is not None:
                self._journal.append((table, key, old))

    def _write(self, table: str, key: Hashable, row: Any) -> Any:
        """Set (or delete, for ``_MISSING``) the row at ``key``, indexes included; the old row."""
        rows = self.tables[table]
        old = rows.get(key, _MISSING)
        for index in self._indexes[table].values():
            index.move(key, old, row)
        if row is _MISSING:
            rows.pop(key, None)
        else:
            rows[key] = row
        return old

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
            self._write(table, key, old)

    def end(self) -> None:
        """Close the transaction, keeping its changes."""
        self._journal = None

    def transaction_open(self) -> bool:
        """Whether a call is running."""
        return self._journal is not None

    def iter_rows(self, table: str) -> Iterator[Any]:
        """Rows of ``table`` (do not change the table while iterating)."""
        return iter(self.tables[table].values())
