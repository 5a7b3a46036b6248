"""The users processor end to end on the SQL platform store (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine

from syncd.domain import Outcome, RowResult
from syncd.passwords import verify_password
from syncd.platform.base import Checkpoint, SavedResult, UserRecord
from syncd.platform.sqlstore import SqlPlatform, create_schema
from syncd.processors.base import Row, RunContext
from syncd.processors.users import build

CTX = RunContext(timezone=UTC, now=lambda: datetime(2026, 1, 1, tzinfo=UTC), password_cost=10)


@pytest.fixture
def platform(db_engine: Engine) -> SqlPlatform:
    """A SQL platform on an empty database, on SQLite and on PostgreSQL."""
    create_schema(db_engine)
    return SqlPlatform(db_engine)


def person(username: str, line: int = 2, **values: str) -> Row:
    return Row(line, {"username": username, "firstname": "Ann", "lastname": "Lee", **values})


def run(platform: SqlPlatform, rows: Sequence[Row], **options: Any) -> list[RowResult]:
    processor = build(options, CTX)
    with platform.transaction() as tx:
        return processor.apply(rows, tx)


def load(platform: SqlPlatform, *usernames: str) -> dict[str, UserRecord]:
    with platform.transaction() as tx:
        return {u.username: u for u in tx.users.find(usernames=usernames)}


def test_rows_create_update_rename_and_delete(platform: SqlPlatform) -> None:
    """One batch exercising every outcome lands in the database as the rows say."""
    run(platform, [person("keep", idnumber="E1"), person("gone", idnumber="E2")])
    rows = [
        person("new", idnumber="E3", password="pw-3", profile_field_team="red"),
        person("new", idnumber="E3", city="Oslo"),
        person("kept", idnumber="E1", email="k@x.org"),
        person("gone", idnumber="E2", deleted="1"),
        person("bad user"),
        person("kept", idnumber="E1", email="k@x.org"),
    ]
    assert [r.outcome for r in run(platform, rows)] == [
        Outcome.CREATED,
        Outcome.UPDATED,
        Outcome.UPDATED,
        Outcome.DELETED,
        Outcome.ERROR,
        Outcome.UNCHANGED,
    ]
    found = load(platform, "new", "kept", "gone", "keep")
    assert set(found) == {"new", "kept", "gone"}
    new = found["new"]
    assert (new.city, new.profile) == ("Oslo", {"team": "red"})
    assert new.password_hash is not None and verify_password("pw-3", new.password_hash)
    assert (found["kept"].email, found["gone"].deleted) == ("k@x.org", True)


def test_swaps_and_chains_respect_unique_keys(platform: SqlPlatform) -> None:
    """Usernames swapped and idnumbers moved in one batch pass the database's constraints."""
    run(platform, [person("a", idnumber="E1"), person("b", idnumber="E2"), person("c")])
    rows = [
        person("tmp", idnumber="E1"),
        person("a", idnumber="E2"),
        person("b", idnumber="E1"),
        person("c", oldusername="b"),
        person("tmp", idnumber="E9"),
    ]
    results = run(platform, rows)
    assert [r.outcome for r in results][:3] == [Outcome.UPDATED] * 3
    assert results[3] == RowResult(Outcome.ERROR, "username: 'c' already belongs to another user (id 3)")
    assert results[4] == RowResult(Outcome.CREATED, "user 'tmp'")
    found = load(platform, "a", "b", "c", "tmp")
    assert {name: u.idnumber for name, u in found.items()} == {
        "a": "E2",
        "b": "E1",
        "c": None,
        "tmp": "E9",
    }


def test_batches_of_a_large_file_then_updates(platform: SqlPlatform) -> None:
    """1,200 users over three batches, then all updated with profile changes."""
    processor = build({}, CTX)
    rows = [person(f"u{i}", line=i, idnumber=f"E{i}", email=f"u{i}@x.org") for i in range(1200)]
    for start in range(0, 1200, 500):
        with platform.transaction() as tx:
            results = processor.apply(rows[start : start + 500], tx)
        assert {r.outcome for r in results} == {Outcome.CREATED}
    changes = [person(f"U{i}", line=i, idnumber=f"E{i}", profile_field_n=str(i)) for i in range(1200)]
    with platform.transaction() as tx:
        results = processor.apply(changes, tx)
    assert results == [RowResult(Outcome.UPDATED, f"user 'u{i}': profile_field_n") for i in range(1200)]
    found = load(platform, *(f"u{i}" for i in range(1200)))
    assert len(found) == 1200 and found["u77"].profile == {"n": "77"}


def test_rows_and_checkpoint_commit_together(platform: SqlPlatform) -> None:
    """Rows applied with a checkpoint in a rolled-back transaction (dry run) leave nothing."""
    processor = build({}, CTX)
    with platform.transaction(rollback=True) as tx:
        results = processor.apply([person("a"), person("b")], tx)
        saved = [SavedResult(i, i + 2, r) for i, r in enumerate(results)]
        tx.save_checkpoint(1, Checkpoint(2), saved)
    with platform.transaction() as tx:
        assert tx.load_checkpoint(1) is None
    assert load(platform, "a", "b") == {}


def test_revive_in_a_later_file(platform: SqlPlatform) -> None:
    """A user deleted by one file is revived by a later row without deleted=1."""
    run(platform, [person("a")])
    run(platform, [person("a", deleted="1")])
    assert run(platform, [person("a")]) == [RowResult(Outcome.UPDATED, "user 'a': revived")]
    assert not load(platform, "a")["a"].deleted
