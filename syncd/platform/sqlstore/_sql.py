"""Batch SQL helpers shared by the repositories of the embedded store.

Reads select at most :data:`CHUNK` keys per query (``IN`` on SQLite, ``= ANY(array)`` on
PostgreSQL). Bulk writes hand plain tuples to the driver (SQLAlchemy's per-row parameter
handling cost more than the database work): SQL text built from the table metadata with
the driver's own placeholder, values of native DBAPI types (str, int, bool, None);
datetimes go through the column type's bind processor (:func:`bind`), stored in UTC.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    Column,
    ColumnElement,
    Connection,
    Table,
    any_,
    bindparam,
    delete,
)

#: Most values in one IN list, and most rows in one multi-row INSERT.
CHUNK = 500
#: Most bound parameters in one statement (SQLite allows 32766 since 3.32).
MAX_PARAMS = 30000


def utcnow() -> datetime:
    """The current time in UTC (the default clock of the store)."""
    return datetime.now(UTC)


def among(conn: Connection, column: ColumnElement[Any]) -> ColumnElement[bool]:
    """``column`` is one of the ``keys`` bound at execution (at most :data:`CHUNK` of them).

    PostgreSQL gets ``column = ANY(:keys)``, one array parameter: psycopg prepares repeated
    statements, and the generic plan of an IN list of 500 parameters planned while the table
    was still small compares every row with every key (seconds per query at 100k users).
    """
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam("keys", type_=ARRAY(column.type)))
    return column.in_(bindparam("keys", expanding=True))


def chunks(values: Iterable[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    """Distinct ``values``, sorted, in lists of at most ``size``."""
    ordered = sorted(set(values))
    for start in range(0, len(ordered), size):
        yield ordered[start : start + size]


def delete_among(conn: Connection, table: Table, column: str, keys: Collection[Any]) -> None:
    """Delete the rows of ``table`` whose ``column`` is one of ``keys`` (chunked)."""
    for chunk in chunks(keys):
        conn.execute(delete(table).where(among(conn, table.c[column])), {"keys": chunk})


def placeholder(conn: Connection) -> str:
    """The DBAPI driver's positional placeholder."""
    style = conn.dialect.paramstyle
    if style == "qmark":
        return "?"
    if style in ("format", "pyformat"):
        return "%s"
    raise ValueError(f"unsupported DBAPI paramstyle {style!r}")


def _names(conn: Connection, table: Table, columns: Sequence[str]) -> tuple[str, str]:
    quote = conn.dialect.identifier_preparer
    return quote.format_table(table), ", ".join(quote.quote(c) for c in columns)


def insert_sql(conn: Connection, table: Table, columns: Sequence[str], *, ignore: bool = False) -> str:
    """One-row INSERT for executemany; ``ignore``: rows breaking a unique key are skipped."""
    name, names = _names(conn, table, columns)
    marks = ", ".join([placeholder(conn)] * len(columns))
    tail = " ON CONFLICT DO NOTHING" if ignore else ""
    return f"INSERT INTO {name} ({names}) VALUES ({marks}){tail}"


def update_sql(conn: Connection, table: Table, columns: Sequence[str], key: str) -> str:
    """One-row UPDATE … WHERE key = ? for executemany (the key value comes last)."""
    quote = conn.dialect.identifier_preparer
    mark = placeholder(conn)
    sets = ", ".join(f"{quote.quote(c)} = {mark}" for c in columns)
    return f"UPDATE {quote.format_table(table)} SET {sets} WHERE {quote.quote(key)} = {mark}"


def delete_sql(conn: Connection, table: Table, columns: Sequence[str]) -> str:
    """One-row DELETE … WHERE a = ? AND b = ? for executemany."""
    quote = conn.dialect.identifier_preparer
    mark = placeholder(conn)
    where = " AND ".join(f"{quote.quote(c)} = {mark}" for c in columns)
    return f"DELETE FROM {quote.format_table(table)} WHERE {where}"


def executemany(conn: Connection, sql: str, rows: list[tuple[Any, ...]]) -> None:
    """Run ``sql`` once per row through the driver's executemany (nothing when no rows)."""
    if rows:
        conn.exec_driver_sql(sql, rows)


def insert_ids(
    conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> list[int]:
    """Insert ``rows`` (one statement per :data:`CHUNK`) and return their new ids, in row order.

    SQLite: one multi-row ``INSERT … VALUES … RETURNING id``; PostgreSQL: ``INSERT … SELECT
    FROM unnest(arrays) WITH ORDINALITY ORDER BY ordinality RETURNING id`` (one parameter
    per column, and a statement text that never changes). The ids of one statement are
    matched to its rows by sorting them: both databases number the rows of one INSERT in
    the order they come (a SQLite rowid is the largest one plus one; a PostgreSQL sequence
    is read row by row as the ordered rows reach the insert), so the n-th smallest id is
    the n-th row's, whatever order RETURNING reports them in.
    """
    name, names = _names(conn, table, columns)
    postgres = conn.dialect.name == "postgresql"
    if postgres:
        sql = f"INSERT INTO {name} ({names}) {_unnest(conn, table, columns, ordered=True)} RETURNING id"
    per = max(1, min(CHUNK, MAX_PARAMS // max(1, len(columns))))
    ids: list[int] = []
    for start in range(0, len(rows), per):
        part = rows[start : start + per]
        if postgres:
            params: tuple[Any, ...] = tuple(list(column) for column in zip(*part, strict=True))
        else:
            row_marks = "(" + ", ".join(["?"] * len(columns)) + ")"
            sql = f"INSERT INTO {name} ({names}) VALUES {', '.join([row_marks] * len(part))} RETURNING id"
            params = tuple(value for row in part for value in row)
        ids.extend(sorted(row[0] for row in conn.exec_driver_sql(sql, params)))
    return ids


def insert_rows(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    *,
    ignore: bool = False,
) -> None:
    """Insert ``rows`` in bulk; ``ignore``: rows breaking a unique key are skipped.

    SQLite: the driver's executemany; PostgreSQL: one ``INSERT … SELECT FROM unnest(arrays)``
    per :data:`CHUNK` rows (a third of executemany's time, foreign key checks included).
    """
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        executemany(conn, insert_sql(conn, table, columns, ignore=ignore), list(rows))
        return
    name, names = _names(conn, table, columns)
    tail = " ON CONFLICT DO NOTHING" if ignore else ""
    sql = f"INSERT INTO {name} ({names}) {_unnest(conn, table, columns)}{tail}"
    for start in range(0, len(rows), CHUNK):
        part = rows[start : start + CHUNK]
        conn.exec_driver_sql(sql, tuple(list(column) for column in zip(*part, strict=True)))


def _unnest(conn: Connection, table: Table, columns: Sequence[str], *, ordered: bool = False) -> str:
    """PostgreSQL: SELECT the columns from one typed array parameter each."""
    arrays = ", ".join(f"%s::{table.c[c].type.compile(dialect=conn.dialect)}[]" for c in columns)
    if not ordered:
        return f"SELECT * FROM unnest({arrays})"
    names = ", ".join(f"v{i}" for i in range(len(columns)))
    return f"SELECT {names} FROM unnest({arrays}) WITH ORDINALITY AS v({names}, n) ORDER BY n"


def upsert_ids(
    conn: Connection, table: Table, key: Sequence[str], values: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> dict[tuple[Any, ...], int]:
    """Insert ``rows`` (the ``key`` columns, then the ``values`` ones) or, where a row with
    the same ``key`` exists, update its ``values``; return key -> id of every row written.

    One multi-row ``INSERT … ON CONFLICT (key) DO UPDATE … RETURNING`` per chunk (both
    databases); the rows must not repeat a key (a statement may not update a row twice).
    """
    quote = conn.dialect.identifier_preparer
    name, names = _names(conn, table, (*key, *values))
    keys = ", ".join(quote.quote(c) for c in key)
    sets = ", ".join(f"{quote.quote(c)} = excluded.{quote.quote(c)}" for c in values)
    row_marks = "(" + ", ".join([placeholder(conn)] * (len(key) + len(values))) + ")"
    per = max(1, min(CHUNK, MAX_PARAMS // (len(key) + len(values))))
    ids: dict[tuple[Any, ...], int] = {}
    for start in range(0, len(rows), per):
        part = rows[start : start + per]
        sql = (
            f"INSERT INTO {name} ({names}) VALUES {', '.join([row_marks] * len(part))}"
            f" ON CONFLICT ({keys}) DO UPDATE SET {sets} RETURNING id, {keys}"
        )
        result = conn.exec_driver_sql(sql, tuple(value for row in part for value in row))
        ids.update((tuple(found[1:]), found[0]) for found in result)
    return ids


def pairs_sql(conn: Connection, columns: tuple[str, str], count: int) -> str:
    """A WHERE condition: (a, b) is one of ``count`` pairs (see :func:`pairs_params`).

    SQLite: ``(a, b) IN (SELECT column1, column2 FROM (VALUES (?, ?), …))``, which SQLite
    answers from an index on (a, b). PostgreSQL: two integer arrays unnested, so that the
    statement text is the same for every batch.
    """
    quote = conn.dialect.identifier_preparer
    left = f"({quote.quote(columns[0])}, {quote.quote(columns[1])})"
    if conn.dialect.name == "postgresql":
        return f"{left} IN (SELECT * FROM unnest(%s::integer[], %s::integer[]))"
    values = ", ".join(["(?, ?)"] * count)
    return f"{left} IN (SELECT column1, column2 FROM (VALUES {values}))"


def pairs_params(conn: Connection, pairs: Sequence[tuple[int, int]]) -> tuple[Any, ...]:
    """The parameters of :func:`pairs_sql` for these pairs."""
    if conn.dialect.name == "postgresql":
        return ([a for a, _ in pairs], [b for _, b in pairs])
    return tuple(v for pair in pairs for v in pair)


def bind(conn: Connection, column: Column[Any], value: Any) -> Any:
    """``value`` as the driver takes it for ``column`` (datetimes in UTC first)."""
    if isinstance(value, datetime):
        value = to_utc(value)
    process = column.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    return value if process is None else process(value)


def binder(conn: Connection, column: Column[Any]) -> Callable[[Any], Any]:
    """A function doing :func:`bind` for ``column`` (the processor looked up once)."""
    process = column.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)

    def to_driver(value: Any) -> Any:
        if isinstance(value, datetime):
            value = to_utc(value)
        return value if process is None else process(value)

    return to_driver


def reader(conn: Connection, column: Column[Any]) -> Callable[[Any], Any]:
    """Turn a raw driver value of ``column`` into Python (datetimes come back in UTC)."""
    process = column.type.dialect_impl(conn.dialect).result_processor(conn.dialect, None)

    def from_driver(value: Any) -> Any:
        if process is not None:
            value = process(value)
        return from_db_time(value) if isinstance(value, datetime) else value

    return from_driver


def to_utc(value: datetime) -> datetime:
    """An aware datetime in UTC (a naive one is taken as UTC already)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def from_db_time(value: datetime | None) -> datetime | None:
    """A stored datetime as an aware UTC one (SQLite gives it back naive)."""
    return None if value is None else to_utc(value)


def need_ids(records: Sequence[Any]) -> None:
    """Refuse to update records that were never added."""
    if any(r.id is None for r in records):
        raise ValueError("update() needs records that have an id; add() new ones")
