"""The runner: batches with checkpoints, resume, reports, tryback, archive, failed/, dry run."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from syncd.csvfile import Schema
from syncd.domain import FileState, Outcome, RetryLater, RowResult
from syncd.intake.ledger import Ledger
from syncd.intake.store import FileStore
from syncd.pipeline.runner import Runner
from syncd.platform.base import PlatformTx, UserRecord
from syncd.processors.base import ProcessorSpec, Row, RunContext
from syncd.settings import ProcessingSettings, Settings
from syncd.sqlutil import make_engine
from tests.fakes import FakePlatform

T0 = datetime(2026, 11, 22, 10, 15, 0, tzinfo=UTC)


class EchoProcessor:
    """Creates a user per row; 'bad' is a row error, 'boom' a processor bug."""

    schema = Schema(required=frozenset({"name"}), optional=frozenset({"note"}))

    def __init__(self, stop_after: tuple[threading.Event, int] | None = None) -> None:
        self.applied: list[str] = []
        self.stop_after = stop_after

    def describe(self) -> str:
        return "echo=yes"

    def apply(self, rows: Sequence[Row], tx: PlatformTx) -> list[RowResult]:
        results = []
        for row in rows:
            name = row.values["name"]
            if name == "boom":
                raise RuntimeError("processor bug")
            if name == "bad":
                results.append(RowResult(Outcome.ERROR, f"name: refused '{name}'"))
                continue
            tx.users.add([UserRecord(username=name)])
            self.applied.append(name)
            results.append(RowResult(Outcome.CREATED, f"user '{name}'"))
        if self.stop_after and len(self.applied) >= self.stop_after[1]:
            self.stop_after[0].set()
        return results


class Harness:
    def __init__(self, tmp_path: Path, processor: EchoProcessor, batch_size: int = 2) -> None:
        self.store = FileStore(tmp_path / "data")
        self.store.ensure_layout()
        self.ledger = Ledger(make_engine(f"sqlite:///{tmp_path / 'ledger.db'}"), lambda: T0)
        self.ledger.create_schema()
        self.platform = FakePlatform()
        self.processor = processor

        def factory(options: Mapping[str, Any], ctx: RunContext) -> EchoProcessor:
            return processor

        registry = {"echo": ProcessorSpec("echo", 10, factory)}
        settings = Settings(data_dir=tmp_path / "data", processing=ProcessingSettings(batch_size=batch_size))
        self.runner = Runner(ledger=self.ledger, platform=self.platform, store=self.store,
                             registry=registry, settings=settings, clock=lambda: T0)

    def arrive(self, name: str, content: bytes, **fields: Any) -> int:
        path = self.store.store_dir / name
        path.write_bytes(content)
        return self.ledger.record_stored(name, str(path), len(content), 1.0, "", processor="echo",
                                         priority=10, **fields)

    def run(self, file_id: int, stop: threading.Event | None = None) -> Any:
        return self.runner.run(self.ledger.get(file_id), stop)


CONTENT = b"name,note\r\nann,1\nbad,\"two\nlines\"\nbob,3\n# comment\ncid,4\nbad,5"


def test_file_is_applied_reported_and_archived(tmp_path: Path) -> None:
    """Every row is applied once; report, JSON twin, tryback and archive follow SPEC §1 names."""
    h = Harness(tmp_path, EchoProcessor())
    file_id = h.arrive("users.csv", CONTENT)
    outcome = h.run(file_id)
    entry = h.ledger.get(file_id)
    assert outcome.state is FileState.DONE and entry.state is FileState.DONE
    assert [u.username for u in h.platform.users()] == ["ann", "bob", "cid"]
    assert entry.counts["created"] == 3 and entry.counts["error"] == 2
    archive = h.store.archives_dir / "20261122-101500_users.csv"
    assert archive.read_bytes() == CONTENT and not (h.store.store_dir / "users.csv").exists()
    txt = (h.store.reports_dir / "20261122-101500_users.csv.report.txt").read_text()
    assert "line 2: created: user 'ann'" in txt
    assert "line 3: error: name: refused 'bad'" in txt and "line 8: error" in txt
    report = json.loads((h.store.reports_dir / "20261122-101500_users.csv.report.json").read_text())
    assert report["counts"]["created"] == 3 and len(report["rows"]) == 5
    assert report["status"] == "done" and report["simulation"] is False
    tryback = h.store.tryback_dir / "users_tryback_20261122-101500.csv"
    assert tryback.read_bytes() == b"name,note\r\nbad,\"two\nlines\"\nbad,5"
    assert entry.tryback_path == str(tryback)
    assert (tryback.stat().st_mode & 0o777) == 0o600
    with h.platform.transaction() as tx:
        assert tx.load_checkpoint(file_id) is None  # cleared once done


def test_no_tryback_without_failures(tmp_path: Path) -> None:
    """A tryback file is written only when some row failed."""
    h = Harness(tmp_path, EchoProcessor())
    file_id = h.arrive("users.csv", b"name\nann\n")
    h.run(file_id)
    assert list(h.store.tryback_dir.iterdir()) == []
    assert h.ledger.get(file_id).tryback_path is None


def test_interrupted_file_resumes_without_reapplying(tmp_path: Path) -> None:
    """After a stop between batches the next run starts at the checkpoint; one complete report."""
    stop = threading.Event()
    processor = EchoProcessor(stop_after=(stop, 2))
    h = Harness(tmp_path, processor)
    file_id = h.arrive("users.csv", b"name\na\nb\nc\nd\ne\n")
    assert h.run(file_id, stop).state is None
    assert h.ledger.get(file_id).state is FileState.PROCESSING
    processor.stop_after = None
    assert h.run(file_id).state is FileState.DONE
    assert processor.applied == ["a", "b", "c", "d", "e"]
    txt = (h.store.reports_dir / "20261122-101500_users.csv.report.txt").read_text()
    assert txt.count(": created:") == 5


def test_processor_bug_costs_one_row(tmp_path: Path) -> None:
    """An exception inside a batch is isolated: the other rows of the batch still apply."""
    h = Harness(tmp_path, EchoProcessor(), batch_size=10)
    file_id = h.arrive("users.csv", b"name\nann\nboom\nbob\n")
    h.run(file_id)
    entry = h.ledger.get(file_id)
    assert [u.username for u in h.platform.users()] == ["ann", "bob"]
    assert entry.counts["error"] == 1
    txt = Path(entry.report_path or "").read_text()
    assert "line 3: error: internal error: RuntimeError" in txt


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"name,colour\nann,red\n", "unknown column 'colour'"),
        (b"note\nx\n", "missing required column 'name'"),
        (b"", "empty file"),
        (b"name\n\xff\xfe\n", "undecodable byte 0xff at offset 5"),
    ],
)
def test_unprocessable_file_goes_to_failed(tmp_path: Path, content: bytes, message: str) -> None:
    """A file that cannot be processed at all ends in failed/ with its report; nothing applied."""
    h = Harness(tmp_path, EchoProcessor())
    file_id = h.arrive("users.csv", content)
    outcome = h.run(file_id)
    entry = h.ledger.get(file_id)
    assert outcome.state is FileState.FAILED and entry.state is FileState.FAILED
    assert message in (entry.error or "")
    failed = h.store.failed_dir / "20261122-101500_users.csv"
    assert failed.read_bytes() == content
    report = (h.store.failed_dir / "20261122-101500_users.csv.report.txt").read_text()
    assert "status:    failed: " in report and message in report
    assert h.platform.users() == []


def test_dry_run_changes_nothing(tmp_path: Path) -> None:
    """A dry-run route option applies in a rolled-back transaction; every report line says SIMULATION."""
    h = Harness(tmp_path, EchoProcessor())
    file_id = h.arrive("users.csv", b"name\nann\nbad\n", options={"dry_run": True})
    h.run(file_id)
    assert h.platform.users() == []
    entry = h.ledger.get(file_id)
    assert entry.state is FileState.DONE and entry.counts["created"] == 1
    lines = Path(entry.report_path or "").read_text().splitlines()
    assert lines and all(line.startswith("SIMULATION") for line in lines)


def test_simulate_outside_the_ledger(tmp_path: Path) -> None:
    """`process --dry-run` reports without a ledger entry and leaves the file where it is."""
    h = Harness(tmp_path, EchoProcessor())
    src = tmp_path / "users.csv"
    src.write_bytes(b"name\nann\n")
    outcome = h.runner.simulate(src, "users.csv", "echo", {})
    assert outcome.state is FileState.DONE and outcome.summary.counts["created"] == 1
    assert src.exists() and h.platform.users() == [] and h.ledger.recent() == []


def test_finish_is_repeatable_after_a_crash(tmp_path: Path) -> None:
    """A crash after the archive move but before 'done' is finished on the next run, once."""
    h = Harness(tmp_path, EchoProcessor())
    file_id = h.arrive("users.csv", b"name\nann\n")
    real_transition = h.ledger.transition
    calls = {"n": 0}

    def crash_on_done(fid: int, old: FileState, new: FileState, **fields: Any) -> None:
        if new is FileState.DONE and calls["n"] == 0:
            calls["n"] += 1
            raise KeyboardInterrupt("power cut")
        real_transition(fid, old, new, **fields)

    h.ledger.transition = crash_on_done  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        h.run(file_id)
    assert (h.store.archives_dir / "20261122-101500_users.csv").exists()
    h.run(file_id)
    assert h.ledger.get(file_id).state is FileState.DONE
    assert sorted(p.name for p in h.store.archives_dir.iterdir()) == ["20261122-101500_users.csv"]
    assert len(list(h.store.reports_dir.glob("*.report.txt"))) == 1
    assert [u.username for u in h.platform.users()] == ["ann"]


def test_transient_database_error_schedules_a_retry(tmp_path: Path) -> None:
    """RetryLater from the platform leaves the file processing with a later attempt time."""
    h = Harness(tmp_path, EchoProcessor())
    file_id = h.arrive("users.csv", b"name\nann\n")

    def busy(*, rollback: bool = False) -> Any:
        raise RetryLater("database is locked")

    h.platform.transaction = busy  # type: ignore[method-assign]
    outcome = h.run(file_id)
    entry = h.ledger.get(file_id)
    assert outcome.state is None and entry.state is FileState.PROCESSING
    assert "locked" in (outcome.error or "")
    assert h.ledger.next_ready() is None  # not before its retry time
