"""The ledger on real SQLite and PostgreSQL: states only move along the transition table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from syncd.domain import TRANSITIONS, FileState
from syncd.intake.ledger import IllegalTransition, Ledger, process_owner

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def ledger(db_engine: Engine) -> Ledger:
    led = Ledger(db_engine, Clock())
    led.create_schema()
    return led


def received(ledger: Ledger, name: str, priority: int, mtime: float) -> int:
    file_id = ledger.record_pending(name, f"/store/{name}", 10, mtime)
    ledger.transition(
        file_id,
        FileState.PENDING,
        FileState.RECEIVED,
        sha256="0" * 64,
        processor="users",
        priority=priority,
        options={"mode": "create_only"},
    )
    return file_id


def test_pending_is_idempotent_per_path(ledger: Ledger) -> None:
    """Recording the same pending arrival twice (an intake retry) keeps one ledger row."""
    a = ledger.record_pending("users.csv", "/store/users.csv", 10, 1.0)
    b = ledger.record_pending("users.csv", "/store/users-2.csv", 12, 2.0)
    assert a == b
    entry = ledger.get(a)
    assert entry.state is FileState.PENDING and entry.store_path == "/store/users-2.csv"


def test_legal_path_to_done(ledger: Ledger) -> None:
    """pending -> received -> processing -> done records fields and decodes JSON ones."""
    file_id = received(ledger, "users.csv", 10, 1.0)
    ledger.transition(file_id, FileState.RECEIVED, FileState.PROCESSING, run_id="r1", started_at=T0)
    ledger.transition(file_id, FileState.PROCESSING, FileState.DONE, counts={"created": 3})
    entry = ledger.get(file_id)
    assert entry.state is FileState.DONE and entry.counts == {"created": 3}
    assert entry.options == {"mode": "create_only"} and entry.started_at == T0


@pytest.mark.parametrize("old", list(FileState))
def test_every_illegal_edge_is_refused(ledger: Ledger, old: FileState) -> None:
    """Any edge missing from TRANSITIONS raises before touching the database."""
    for new in FileState:
        if new not in TRANSITIONS[old]:
            with pytest.raises(IllegalTransition, match="not a legal transition"):
                ledger.transition(1, old, new)


def test_stale_expected_state_is_refused(ledger: Ledger) -> None:
    """Two writers cannot both move a file: the second sees it is no longer in the old state."""
    file_id = received(ledger, "users.csv", 10, 1.0)
    ledger.transition(file_id, FileState.RECEIVED, FileState.PROCESSING)
    with pytest.raises(IllegalTransition, match="not in state received"):
        ledger.transition(file_id, FileState.RECEIVED, FileState.PROCESSING)


def test_next_ready_orders_by_priority_then_mtime(ledger: Ledger) -> None:
    """Files waiting together come out by processor priority, then mtime, then name."""
    enrol = received(ledger, "enrol.csv", 50, 1.0)
    users_late = received(ledger, "users_b.csv", 10, 5.0)
    users_early = received(ledger, "users_a.csv", 10, 2.0)
    order = []
    while (entry := ledger.next_ready()) is not None:
        order.append(entry.id)
        ledger.transition(entry.id, FileState.RECEIVED, FileState.PROCESSING)
        ledger.transition(entry.id, FileState.PROCESSING, FileState.DONE)
    assert order == [users_early, users_late, enrol]


def test_interrupted_work_resumes_first(ledger: Ledger) -> None:
    """A file left in processing by a dead process is picked before new arrivals."""
    first = received(ledger, "users.csv", 10, 1.0)
    later = received(ledger, "enrol.csv", 50, 2.0)
    ledger.transition(later, FileState.RECEIVED, FileState.PROCESSING, owner="nohost:1")
    entry = ledger.next_ready()
    assert entry is not None and entry.id == later
    assert first != later


def test_file_owned_by_a_live_process_is_left_alone(ledger: Ledger) -> None:
    """A file that another live process of this host works on is not offered to the worker."""
    import os
    import socket

    file_id = received(ledger, "users.csv", 10, 1.0)
    parent = f"{socket.gethostname()}:{os.getppid()}"
    ledger.update_fields(file_id, FileState.RECEIVED, owner=parent)
    assert ledger.next_ready() is None
    ledger.update_fields(file_id, FileState.RECEIVED, owner=process_owner())
    assert ledger.next_ready() is not None


def test_retry_time_is_respected(ledger: Ledger) -> None:
    """A file scheduled for a later attempt is not offered before its time."""
    file_id = received(ledger, "users.csv", 10, 1.0)
    ledger.transition(
        file_id, FileState.RECEIVED, FileState.PROCESSING, next_attempt_at=T0 + timedelta(seconds=30)
    )
    assert ledger.next_ready() is None
    clock = ledger._now
    assert isinstance(clock, Clock)
    clock.now = T0 + timedelta(seconds=31)
    entry = ledger.next_ready()
    assert entry is not None and entry.id == file_id


def test_record_stored_and_counts(ledger: Ledger) -> None:
    """A file registered from the store starts received; open_count counts unfinished work."""
    file_id = ledger.record_stored(
        "cli:/tmp/x.csv", "/store/x.csv", 5, 1.0, "f" * 64, processor="users", priority=10, routed_by="cli"
    )
    assert ledger.get(file_id).state is FileState.RECEIVED
    assert ledger.open_count() == 1
    assert [e.id for e in ledger.recent(5)] == [file_id]
    assert [e.id for e in ledger.in_states([FileState.RECEIVED])] == [file_id]
