"""The ledger: one row per arrival, its state, and the history of its transitions.

Only the ledger writes a file's state, along :data:`syncd.domain.TRANSITIONS`. Each
transition is one transaction: ``UPDATE ... WHERE id = ? AND state = <expected>`` plus a
history row, so two writers can never both move the same file.

Row checkpoints live with the platform rows they cover (see ``platform/base.py``), not
here: the ledger says where a file is, the platform transaction says how far it got.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    insert,
    or_,
    select,
    update,
)

from syncd.domain import OPEN_STATES, FileState, SyncdError, can_transition

metadata = MetaData()

files = Table(
    "syncd_files",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("original_path", Text, nullable=False),  # relative to sync/, or "cli:<path>"
    Column("store_path", Text, nullable=False),  # absolute path in store/
    Column("size", Integer, nullable=False),
    Column("mtime", Float, nullable=False),
    Column("sha256", String(64)),
    Column("arrived_at", DateTime(timezone=True), nullable=False),
    Column("state", String(16), nullable=False),
    Column("processor", String(64)),
    Column("options", Text),  # JSON of the route options
    Column("routed_by", String(16)),  # glob | sniffed | cli | job
    Column("priority", Integer, nullable=False, default=1000),
    Column("dry_run", Boolean, nullable=False, default=False),
    Column("run_id", String(32)),
    Column("owner", String(128)),  # "<host>:<pid>" of the process working on it
    Column("attempts", Integer, nullable=False, default=0),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("next_attempt_at", DateTime(timezone=True)),
    Column("final_path", Text),  # planned, then actual: archives/... or failed/...
    Column("report_path", Text),
    Column("tryback_path", Text),
    Column("counts", Text),  # JSON {"created": n, ...}
    Column("error", Text),
    Index("ix_syncd_files_state", "state"),
)

history = Table(
    "syncd_file_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("file_id", Integer, ForeignKey("syncd_files.id"), nullable=False, index=True),
    Column("from_state", String(16)),
    Column("to_state", String(16), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)


def process_owner() -> str:
    """This process as a ledger owner: ``<host>:<pid>``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_alive(owner: str | None) -> bool:
    """Whether ``owner`` is another process of this host that still runs."""
    if not owner or owner == process_owner():
        return False
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another host: a single daemon per data dir is the rule
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


job_runs = Table(
    "syncd_job_runs",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("last_fire_at", DateTime(timezone=True), nullable=False),
    Column("outcome", Text),
)


class IllegalTransition(SyncdError):
    """A state change that is not in the table, or from a state the file is no longer in."""


@dataclass(frozen=True, slots=True)
class FileEntry:
    """A ledger row, as read."""

    id: int
    original_path: str
    store_path: str
    size: int
    mtime: float
    sha256: str | None
    arrived_at: datetime
    state: FileState
    processor: str | None
    options: dict[str, Any]
    routed_by: str | None
    priority: int
    dry_run: bool
    run_id: str | None
    owner: str | None
    attempts: int
    started_at: datetime | None
    finished_at: datetime | None
    final_path: str | None
    report_path: str | None
    tryback_path: str | None
    counts: dict[str, int]
    error: str | None

    @property
    def name(self) -> str:
        """The file's base name as it arrived."""
        return self.original_path.rsplit("/", 1)[-1]


def _aware(value: datetime | None) -> datetime | None:
    # SQLite gives naive datetimes back; everything stored is UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


class Ledger:
    """File states in a SQL database (SQLite by default, PostgreSQL by URL)."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime]) -> None:
        self._engine = engine
        self._now = clock

    def create_schema(self) -> None:
        """Create the ledger tables if missing."""
        metadata.create_all(self._engine)

    def record_pending(self, original: str, store_path: str, size: int, mtime: float) -> int:
        """Note the intent to move sync/<original> to ``store_path``; idempotent while pending."""
        with self._engine.begin() as conn:
            existing = conn.execute(
                select(files.c.id).where(
                    files.c.original_path == original, files.c.state == FileState.PENDING.value
                )
            ).scalar()
            if existing is not None:
                conn.execute(
                    update(files)
                    .where(files.c.id == existing)
                    .values(store_path=store_path, size=size, mtime=mtime)
                )
                return int(existing)
            now = self._now()
            file_id = self._insert(conn,
                    original_path=original, store_path=store_path, size=size, mtime=mtime,
                    arrived_at=now, state=FileState.PENDING.value, priority=1000,
                    attempts=0, dry_run=False,
            )
            conn.execute(insert(history).values(file_id=file_id, to_state="pending", at=now))
            return int(file_id)

    def record_stored(self, original: str, store_path: str, size: int, mtime: float,
                      sha256: str, **fields: Any) -> int:
        """Register a file already in store/ (``syncd process``, a scheduled job) as received."""
        now = self._now()
        values = self._encode(fields)
        values.setdefault("priority", 1000)
        with self._engine.begin() as conn:
            file_id = self._insert(conn,
                    original_path=original, store_path=store_path, size=size, mtime=mtime,
                    sha256=sha256, arrived_at=now, state=FileState.RECEIVED.value,
                    attempts=0, **{"dry_run": False, **values},
            )
            conn.execute(insert(history).values(file_id=file_id, to_state="received", at=now))
            return int(file_id)

    def transition(self, file_id: int, old: FileState, new: FileState, **fields: Any) -> None:
        """Move ``file_id`` from ``old`` to ``new`` and write ``fields``, in one transaction."""
        if not can_transition(old, new):
            raise IllegalTransition(f"file {file_id}: {old} -> {new} is not a legal transition")
        values = self._encode(fields)
        with self._engine.begin() as conn:
            result = conn.execute(
                update(files)
                .where(files.c.id == file_id, files.c.state == old.value)
                .values(state=new.value, **values)
            )
            if result.rowcount != 1:
                raise IllegalTransition(f"file {file_id}: not in state {old} any more")
            conn.execute(
                insert(history).values(
                    file_id=file_id, from_state=old.value, to_state=new.value, at=self._now()
                )
            )

    def update_fields(self, file_id: int, state: FileState, **fields: Any) -> None:
        """Write bookkeeping fields of a file still in ``state`` (no state change)."""
        with self._engine.begin() as conn:
            result = conn.execute(
                update(files)
                .where(files.c.id == file_id, files.c.state == state.value)
                .values(**self._encode(fields))
            )
            if result.rowcount != 1:
                raise IllegalTransition(f"file {file_id}: not in state {state} any more")

    def get(self, file_id: int) -> FileEntry:
        """Read one entry; KeyError when unknown."""
        with self._engine.connect() as conn:
            row = conn.execute(select(files).where(files.c.id == file_id)).mappings().first()
        if row is None:
            raise KeyError(file_id)
        return self._decode(row)

    def next_ready(self) -> FileEntry | None:
        """The next file for this process's worker.

        Interrupted work first (resumed after a crash), then by processor priority, mtime
        and name. A file owned by another live process (``syncd process`` running beside
        the daemon) is left to it.
        """
        now = self._now()
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(files)
                .where(
                    files.c.state.in_(["received", "processing"]),
                    files.c.processor.is_not(None),
                    or_(files.c.next_attempt_at.is_(None), files.c.next_attempt_at <= now),
                )
                .order_by(
                    (files.c.state != "processing"),
                    files.c.priority, files.c.mtime, files.c.original_path, files.c.id,
                )
                .limit(50)
            ).mappings()
            for row in rows:
                if not owner_alive(row["owner"]):
                    return self._decode(row)
        return None

    def in_states(self, states: Sequence[FileState]) -> list[FileEntry]:
        """Every entry in one of ``states`` (recovery at start)."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(files).where(files.c.state.in_([s.value for s in states])).order_by(files.c.id)
            ).mappings()
            return [self._decode(r) for r in rows]

    def at_store_path(self, store_path: str) -> list[FileEntry]:
        """Entries for this store path that still have it (pending, received, stored, processing)."""
        states = [s.value for s in (*OPEN_STATES, FileState.STORED)]
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(files).where(files.c.store_path == store_path, files.c.state.in_(states))
            ).mappings()
            return [self._decode(r) for r in rows]

    def last_fire(self, name: str) -> datetime | None:
        """The last fire time a scheduled job handled (RunLog of ``schedule.py``)."""
        with self._engine.connect() as conn:
            value = conn.execute(select(job_runs.c.last_fire_at).where(job_runs.c.name == name)).scalar()
        return _aware(value)

    def record_fire(self, name: str, fired_at: datetime, outcome: str) -> None:
        """Remember the fire time a job handled and how it went."""
        with self._engine.begin() as conn:
            done = conn.execute(
                update(job_runs).where(job_runs.c.name == name)
                .values(last_fire_at=fired_at, outcome=outcome)
            ).rowcount
            if not done:
                conn.execute(insert(job_runs).values(name=name, last_fire_at=fired_at, outcome=outcome))

    def recent(self, limit: int = 20) -> list[FileEntry]:
        """The latest entries, newest first (for ``syncd status``)."""
        with self._engine.connect() as conn:
            rows = conn.execute(select(files).order_by(files.c.id.desc()).limit(limit)).mappings()
            return [self._decode(r) for r in rows]

    def results_from(self, folder: str, limit: int = 200) -> list[tuple[str | None, str | None]]:
        """(report path, tryback path) of the latest files that came from ``sync/<folder>/``.

        The SFTP server shows them to the account jailed in that folder.
        """
        prefix = folder.strip("/") + "/"
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = (
            select(files.c.report_path, files.c.tryback_path)
            .where(files.c.original_path.like(escaped + "%", escape="\\"))
            .where(files.c.report_path.is_not(None))
            .order_by(files.c.id.desc())
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [(r.report_path, r.tryback_path) for r in conn.execute(query)]

    def open_count(self) -> int:
        """How many entries still have work to do."""
        with self._engine.connect() as conn:
            count = conn.execute(
                select(func.count())
                .select_from(files)
                .where(files.c.state.in_([s.value for s in OPEN_STATES]))
            ).scalar()
        return int(count or 0)

    @staticmethod
    def _insert(conn: Connection, **values: Any) -> int:
        key = conn.execute(insert(files).values(**values)).inserted_primary_key
        assert key is not None
        return int(key[0])

    @staticmethod
    def _encode(fields: dict[str, Any]) -> dict[str, Any]:
        unknown = set(fields) - set(files.c.keys())
        if unknown:
            raise TypeError(f"unknown ledger fields: {sorted(unknown)}")
        values = dict(fields)
        for key in ("options", "counts"):
            if key in values and values[key] is not None:
                values[key] = json.dumps(values[key], sort_keys=True)
        return values

    @staticmethod
    def _decode(row: Any) -> FileEntry:
        return FileEntry(
            id=row["id"], original_path=row["original_path"], store_path=row["store_path"],
            size=row["size"], mtime=row["mtime"], sha256=row["sha256"],
            arrived_at=_aware(row["arrived_at"]) or datetime.min.replace(tzinfo=UTC),
            state=FileState(row["state"]), processor=row["processor"],
            options=json.loads(row["options"] or "{}"), routed_by=row["routed_by"],
            priority=row["priority"], dry_run=bool(row["dry_run"]), run_id=row["run_id"],
            owner=row["owner"], attempts=row["attempts"], started_at=_aware(row["started_at"]),
            finished_at=_aware(row["finished_at"]), final_path=row["final_path"],
            report_path=row["report_path"], tryback_path=row["tryback_path"],
            counts=json.loads(row["counts"] or "{}"), error=row["error"],
        )
