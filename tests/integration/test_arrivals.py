"""Arrivals: ledger intent, atomic move into the store, routing, and crash recovery of moves."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from syncd.domain import FileState
from syncd.intake.arrivals import Arrivals, sha256_of
from syncd.intake.ledger import Ledger
from syncd.intake.store import FileStore
from syncd.pipeline.routes import Router
from syncd.processors.registry import REGISTRY
from syncd.sqlutil import make_engine

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


class Setup:
    def __init__(self, tmp_path: Path) -> None:
        self.store = FileStore(tmp_path / "data")
        self.store.ensure_layout()
        self.ledger = Ledger(make_engine(f"sqlite:///{tmp_path / 'l.db'}"), lambda: T0)
        self.ledger.create_schema()
        self.router = Router([], REGISTRY)
        self.wakes = 0
        self.arrivals = Arrivals(self.store, self.ledger, lambda: self.router, self._wake)

    def _wake(self) -> None:
        self.wakes += 1

    def drop(self, rel: str, content: bytes) -> Path:
        path = self.store.sync_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        return path


@pytest.fixture
def s(tmp_path: Path) -> Setup:
    return Setup(tmp_path)


def test_routed_file_is_moved_and_received(s: Setup) -> None:
    """A routed arrival leaves sync/, keeps its sub-folder in store/ and is received with its sha256."""
    content = b"username,firstname,lastname\njdoe,J,D\n"
    path = s.drop("hr/users.csv", content)
    s.arrivals.take(path)
    dest = s.store.store_dir / "hr" / "users.csv"
    assert not path.exists() and dest.read_bytes() == content
    (entry,) = s.ledger.recent()
    assert entry.state is FileState.RECEIVED and entry.processor == "users"
    assert entry.sha256 == sha256_of(dest) and entry.original_path == "hr/users.csv"
    assert s.wakes == 1
    assert (dest.stat().st_mode & 0o777) == 0o600


def test_unrouted_file_is_stored(s: Setup) -> None:
    """A file no route or header identifies stays in the store, state stored, not an error."""
    s.arrivals.take(s.drop("notes.txt", b"hello"))
    (entry,) = s.ledger.recent()
    assert entry.state is FileState.STORED and entry.processor is None
    assert (s.store.store_dir / "notes.txt").exists()


def test_sniffed_file_is_routed_by_header(s: Setup) -> None:
    """An unmatched .csv whose header is a users header goes to the users processor."""
    s.arrivals.take(s.drop("staff.csv", b"Username;FirstName;LastName\n"))
    (entry,) = s.ledger.recent()
    assert entry.processor == "users" and entry.routed_by == "sniffed"


def test_same_name_waiting_in_store_gets_a_new_name(s: Setup) -> None:
    """A second users.csv while the first still waits is stored as users-2.csv, nothing overwritten."""
    s.arrivals.take(s.drop("users.csv", b"username,firstname,lastname\na,A,A\n"))
    s.arrivals.take(s.drop("users.csv", b"username,firstname,lastname\nb,B,B\n"))
    names = sorted(p.name for p in s.store.store_dir.iterdir() if p.is_file())
    assert names == ["users-2.csv", "users.csv"]
    assert {e.original_path for e in s.ledger.recent()} == {"users.csv"}


def test_vanished_before_move(s: Setup) -> None:
    """A file deleted by its uploader between detection and move is recorded as vanished."""
    path = s.drop("users.csv", b"x")
    real_move = s.store.move_in

    def vanish(src: Path, dest: Path) -> None:
        os.unlink(src)
        real_move(src, dest)

    s.store.move_in = vanish  # type: ignore[method-assign]
    s.arrivals.take(path)
    (entry,) = s.ledger.recent()
    assert entry.state is FileState.VANISHED


def test_recovery_finishes_an_interrupted_move(s: Setup) -> None:
    """A crash after the rename but before the ledger update is finished at start."""
    content = b"username,firstname,lastname\njdoe,J,D\n"
    dest = s.store.store_dir / "users.csv"
    dest.write_bytes(content)
    file_id = s.ledger.record_pending("users.csv", str(dest), len(content), 1.0)
    s.arrivals.recover()
    entry = s.ledger.get(file_id)
    assert entry.state is FileState.RECEIVED and entry.sha256 == sha256_of(dest)


def test_recovery_of_a_half_done_cross_filesystem_move(s: Setup) -> None:
    """Copy done, unlink not: the duplicate in sync/ is removed, the file is taken once."""
    content = b"username,firstname,lastname\njdoe,J,D\n"
    source = s.drop("users.csv", content)
    dest = s.store.store_dir / "users.csv"
    dest.write_bytes(content)
    file_id = s.ledger.record_pending("users.csv", str(dest), len(content), 1.0)
    s.arrivals.recover()
    assert not source.exists() and s.ledger.get(file_id).state is FileState.RECEIVED


def test_recovery_leaves_a_file_still_in_sync(s: Setup) -> None:
    """A crash before the rename: the entry stays pending and the next take reuses it."""
    source = s.drop("users.csv", b"username,firstname,lastname\n")
    file_id = s.ledger.record_pending("users.csv", str(s.store.store_dir / "users.csv"), 1, 1.0)
    s.arrivals.recover()
    assert s.ledger.get(file_id).state is FileState.PENDING
    s.arrivals.take(source)
    assert s.ledger.get(file_id).state is FileState.RECEIVED
    assert len(s.ledger.recent()) == 1


def test_recovery_of_a_file_gone_everywhere(s: Setup) -> None:
    """Neither in sync/ nor in store/: recorded as vanished, not retried forever."""
    file_id = s.ledger.record_pending("users.csv", str(s.store.store_dir / "users.csv"), 1, 1.0)
    s.arrivals.recover()
    assert s.ledger.get(file_id).state is FileState.VANISHED
