"""The SQL platform store's contract on real SQLite and PostgreSQL databases."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, inspect, select
from sqlalchemy.exc import IntegrityError, OperationalError

from syncd.domain import Outcome, RowResult
from syncd.platform.base import Checkpoint, SavedResult, UserRecord
from syncd.platform.sqlstore import SqlPlatform, create_schema
from syncd.platform.sqlstore import adapter as adapter_module
from syncd.platform.sqlstore.schema import users as users_table

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def engine(db_engine: Engine) -> Engine:
    """An empty database with the platform schema, on SQLite and on PostgreSQL."""
    create_schema(db_engine)
    return db_engine


@pytest.fixture
def platform(engine: Engine) -> SqlPlatform:
    return SqlPlatform(engine, now=lambda: NOW)


def user(name: str, **fields: object) -> UserRecord:
    return UserRecord(username=name, firstname="Ann", lastname="Lee", **fields)  # type: ignore[arg-type]


def test_create_schema_is_idempotent(engine: Engine) -> None:
    """Creating the schema twice keeps the tables and their data."""
    platform = SqlPlatform(engine)
    with platform.transaction() as tx:
        tx.users.add([user("a")])
    create_schema(engine)
    names = set(inspect(engine).get_table_names())
    assert {"users", "user_profile", "syncd_checkpoint", "syncd_row_result"} <= names
    with platform.transaction() as tx:
        assert [u.username for u in tx.users.find(usernames=["a"])] == ["a"]


def test_add_sets_ids_in_order_and_find_round_trips(platform: SqlPlatform) -> None:
    """add() gives ids in input order; find() returns every field and the profile."""
    full = user(
        "b",
        idnumber="E2",
        email="B@Example.org",
        auth="ldap",
        password_hash="scrypt$10$8$1$AAAA$BBBB",
        password_to_generate=True,
        must_change_password=True,
        institution="Uni",
        department="Math",
        city="Lyon",
        country="FR",
        lang="fr",
        timezone="Europe/Paris",
        phone1="1",
        phone2="2",
        address="Rue",
        description="long\ntext",
        suspended=True,
        deleted=True,
        profile={"team": "red", "level": "3"},
    )
    records = [user("a"), full, user("c")]
    with platform.transaction() as tx:
        tx.users.add(records)
    ids = [r.id for r in records]
    assert all(isinstance(i, int) for i in ids) and ids == sorted(ids) and len(set(ids)) == 3
    with platform.transaction() as tx:
        [found] = tx.users.find(usernames=["b"])
    assert found == full


def test_find_matches_each_key_kind(platform: SqlPlatform) -> None:
    """Usernames and idnumbers match exactly, emails case-insensitively; no key, no user."""
    with platform.transaction() as tx:
        tx.users.add([user("a", idnumber="E1"), user("b", email="Bee@X.org"), user("c", deleted=True)])
    with platform.transaction() as tx:
        assert {u.username for u in tx.users.find(usernames=["a", "c", "zz"])} == {"a", "c"}
        assert [u.username for u in tx.users.find(idnumbers=["E1", "e1"])] == ["a"]
        assert [u.username for u in tx.users.find(emails=["bee@x.ORG"])] == ["b"]
        both = tx.users.find(usernames=["a"], idnumbers=["E1"], emails=["bee@x.org"])
        assert sorted(u.username for u in both) == ["a", "b"]
        assert tx.users.find() == []


def test_find_chunks_long_key_lists(platform: SqlPlatform) -> None:
    """More keys than one IN list holds are all found."""
    records = [user(f"u{i:04d}", idnumber=f"E{i}", profile={"n": str(i)}) for i in range(1203)]
    with platform.transaction() as tx:
        tx.users.add(records)
    with platform.transaction() as tx:
        found = tx.users.find(idnumbers=[f"E{i}" for i in range(1203)])
    assert len(found) == 1203
    assert all(u.profile == {"n": u.idnumber[1:]} for u in found if u.idnumber)


def test_update_writes_fields_and_replaces_profiles(platform: SqlPlatform) -> None:
    """update() writes every field by id and replaces the profile."""
    records = [user("a", profile={"x": "1", "y": "2"}), user("b", idnumber="E2")]
    with platform.transaction() as tx:
        tx.users.add(records)
    a, b = records
    a.username, a.city, a.suspended, a.profile = "a2", "Nice", True, {"y": "3"}
    b.idnumber, b.email = None, "b@x.org"
    with platform.transaction() as tx:
        tx.users.update([a, b])
    with platform.transaction() as tx:
        found = {u.id: u for u in tx.users.find(usernames=["a2", "b"])}
    assert found == {a.id: a, b.id: b}


def test_empty_idnumbers_are_null_and_may_repeat(platform: SqlPlatform) -> None:
    """Users without idnumber (None or empty) coexist; the idnumber reads back None."""
    with platform.transaction() as tx:
        tx.users.add([user("a"), user("b", idnumber=""), user("c", idnumber=None)])
    with platform.transaction() as tx:
        assert {u.idnumber for u in tx.users.find(usernames=["a", "b", "c"])} == {None}


@pytest.mark.parametrize(
    ("first", "second"),
    [(user("a"), user("a")), (user("a", idnumber="E1"), user("b", idnumber="E1"))],
)
def test_unique_keys_are_enforced_by_the_database(
    platform: SqlPlatform, first: UserRecord, second: UserRecord
) -> None:
    """A duplicate username or idnumber is an IntegrityError and nothing is kept."""
    with pytest.raises(IntegrityError), platform.transaction() as tx:
        tx.users.add([first, second])
    with platform.transaction() as tx:
        assert tx.users.find(usernames=["a", "b"]) == []


def test_timestamps_come_from_the_clock(engine: Engine) -> None:
    """created_at and updated_at are set by the adapter's clock."""
    clock = iter([NOW, NOW.replace(hour=13)])
    platform = SqlPlatform(engine, now=lambda: next(clock))
    record = user("a")
    with platform.transaction() as tx:
        tx.users.add([record])
    with platform.transaction() as tx:
        tx.users.update([record])
    with engine.connect() as conn:
        created, updated = conn.execute(select(users_table.c.created_at, users_table.c.updated_at)).one()
    assert (as_utc(created), as_utc(updated)) == (NOW, NOW.replace(hour=13))


def as_utc(value: datetime) -> datetime:
    """SQLite gives naive UTC back, PostgreSQL an aware time in the session zone."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def test_update_needs_ids(platform: SqlPlatform) -> None:
    """update() refuses users that were never added."""
    with pytest.raises(ValueError, match="id"), platform.transaction() as tx:
        tx.users.update([user("a")])


def saved(record: int, outcome: Outcome = Outcome.CREATED, reason: str = "") -> SavedResult:
    return SavedResult(record=record, line=record + 2, result=RowResult(outcome, reason))


def test_checkpoint_save_load_and_clear(platform: SqlPlatform) -> None:
    """A checkpoint is None, then the last saved value, then gone with its results."""
    with platform.transaction() as tx:
        assert tx.load_checkpoint(7) is None
        tx.save_checkpoint(7, Checkpoint(2), [saved(0), saved(1, Outcome.ERROR, "bad 'x'")])
        tx.save_checkpoint(8, Checkpoint(1), [saved(0)])
    with platform.transaction() as tx:
        tx.save_checkpoint(7, Checkpoint(3), [saved(2, Outcome.SKIPPED, "no")])
    with platform.transaction() as tx:
        assert tx.load_checkpoint(7) == Checkpoint(3)
        assert list(tx.saved_results(7)) == [
            saved(0),
            saved(1, Outcome.ERROR, "bad 'x'"),
            saved(2, Outcome.SKIPPED, "no"),
        ]
        tx.clear_checkpoint(7)
    with platform.transaction() as tx:
        assert tx.load_checkpoint(7) is None
        assert list(tx.saved_results(7)) == []
        assert tx.load_checkpoint(8) == Checkpoint(1)


def test_saved_results_stream_in_record_order_across_pages(
    platform: SqlPlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Results saved out of order come back in record order, page after page."""
    monkeypatch.setattr(adapter_module, "RESULT_PAGE", 4)
    with platform.transaction() as tx:
        tx.save_checkpoint(1, Checkpoint(5), [saved(i) for i in (9, 3, 0, 4, 1)])
        tx.save_checkpoint(1, Checkpoint(10), [saved(i) for i in (2, 8, 7, 5, 6)])
    with platform.transaction() as tx:
        assert [r.record for r in tx.saved_results(1)] == list(range(10))


def test_rollback_true_leaves_nothing(platform: SqlPlatform) -> None:
    """transaction(rollback=True) undoes users and checkpoints alike."""
    with platform.transaction(rollback=True) as tx:
        tx.users.add([user("a", profile={"x": "1"})])
        tx.save_checkpoint(1, Checkpoint(1), [saved(0)])
    with platform.transaction() as tx:
        assert tx.users.find(usernames=["a"]) == []
        assert tx.load_checkpoint(1) is None


def test_exception_rolls_back_and_propagates(platform: SqlPlatform) -> None:
    """An exception inside the transaction undoes its writes and is re-raised."""
    with pytest.raises(KeyError), platform.transaction() as tx:
        tx.users.add([user("a")])
        raise KeyError("boom")
    with platform.transaction() as tx:
        assert tx.users.find(usernames=["a"]) == []


def test_locked_sqlite_database_raises_operational_error(tmp_path: Path) -> None:
    """A SQLite file locked by another writer raises OperationalError (the runner retries)."""
    path = tmp_path / "locked.db"
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 0})
    create_schema(engine)
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        platform = SqlPlatform(engine)
        with pytest.raises(OperationalError, match="locked"), platform.transaction() as tx:
            tx.users.add([user("a")])
    finally:
        holder.close()
        engine.dispose()
