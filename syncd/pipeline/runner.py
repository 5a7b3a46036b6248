"""Runs one ledger file to its end: processing -> done (archived) or failed.

Every step is safe to repeat after a crash. The final paths are planned and written to
the ledger before anything is written there; reports are rebuilt from the saved row
results; the move into archives/ or failed/ is skipped when it already happened; the
checkpoint is cleared only once the ledger says done.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog
from structlog.contextvars import bound_contextvars

from syncd.csvfile import CsvFile, CsvOptions, validate_header
from syncd.domain import ConfigError, FileState, RejectFile, RetryLater
from syncd.health import Heartbeat
from syncd.intake.ledger import FileEntry, Ledger, process_owner
from syncd.intake.store import FileStore, free_path
from syncd.pipeline.apply import BatchApplier, Job
from syncd.pipeline.reports import ReportInfo, ReportSummary, tryback_name, write_report, write_tryback
from syncd.platform.base import Platform
from syncd.processors.base import Processor, ProcessorSpec, RecordSource, RunContext
from syncd.settings import Settings

log = structlog.get_logger(__name__)

#: route options the runner consumes; the rest go to the processor
RUNNER_OPTIONS = frozenset({"dry_run", "encoding", "delimiter"})


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """How a run ended, for the CLI."""

    state: FileState | None  # None: interrupted or retry later
    summary: ReportSummary | None
    report: Path | None
    error: str | None = None


def csv_options(settings: Settings, options: Mapping[str, Any]) -> CsvOptions:
    """The CSV reader options: settings, overridden by route options."""
    delimiter = str(options.get("delimiter", settings.csv.delimiter))
    return CsvOptions(
        encoding=str(options.get("encoding", settings.csv.encoding)),
        delimiter=None if delimiter == "auto" else delimiter,
        max_record_bytes=settings.csv.max_record_bytes,
    )


class Runner:
    """Applies ledger files with their processor and leaves report, tryback and archive."""

    def __init__(
        self,
        *,
        ledger: Ledger,
        platform: Platform,
        store: FileStore,
        registry: Mapping[str, ProcessorSpec],
        settings: Settings,
        clock: Callable[[], datetime],
        heartbeat: Heartbeat | None = None,
    ) -> None:
        self._ledger = ledger
        self._platform = platform
        self._store = store
        self.registry = registry
        self._settings = settings
        self._now = clock
        self._heartbeat = heartbeat or Heartbeat()
        self._current = ""
        self._applier = BatchApplier(platform, progress=self._progressed)

    def _progressed(self, records_done: int) -> None:
        self._heartbeat.beat(f"processing {self._current}: {records_done} records done")

    def build_processor(self, name: str, options: Mapping[str, Any], dry_run: bool) -> Any:
        """Build ``name`` with config defaults + ``options``; ConfigError on a bad one."""
        spec = self.registry.get(name)
        if spec is None:
            raise ConfigError(f"unknown processor '{name}' (known: {', '.join(sorted(self.registry))})")
        merged = {**self._settings.processors.get(name, {}), **options}
        for key in RUNNER_OPTIONS:
            merged.pop(key, None)
        ctx = RunContext(
            timezone=self._settings.tz, now=self._now,
            password_cost=self._settings.passwords.cost, dry_run=dry_run,
            store_dir=self._store.store_dir, cache_dir=self._store.cache_dir,
        )
        return spec.factory(merged, ctx)

    def open_source(
        self, name: str, processor: Processor, path: Path, options: Mapping[str, Any]
    ) -> RecordSource:
        """How ``processor`` reads ``path``: its own source (archives), else the CSV reader."""
        spec = self.registry.get(name)
        if spec is not None and spec.source is not None:
            return spec.source(path, processor)
        return CsvFile(path, csv_options(self._settings, options))

    def run(self, entry: FileEntry, stop: threading.Event | None = None) -> RunOutcome:
        """Process ``entry`` (received, stored or an interrupted processing) to its end."""
        run_id = entry.run_id or uuid.uuid4().hex[:12]
        context = {"file_id": entry.id, "file": entry.original_path, "processor": entry.processor}
        self._current = entry.original_path
        self._heartbeat.beat(f"processing {self._current}")
        with bound_contextvars(**context, run_id=run_id):
            entry = self._start(entry, run_id)
            started = time.monotonic()
            try:
                return self._run(entry, stop, started)
            except RejectFile as exc:
                return self._fail(entry, str(exc))
            except RetryLater as exc:
                delay = self._settings.processing.retry_delay * min(2 ** (entry.attempts - 1), 60)
                retry_at = datetime.fromtimestamp(self._now().timestamp() + delay, tz=self._now().tzinfo)
                self._ledger.update_fields(entry.id, FileState.PROCESSING, next_attempt_at=retry_at)
                log.warning("file_retry_scheduled", error=str(exc), retry_in_s=round(delay, 1))
                return RunOutcome(None, None, None, str(exc))

    def simulate(self, path: Path, name: str, processor: str, options: Mapping[str, Any]) -> RunOutcome:
        """Dry run of ``path`` outside the ledger: one transaction, rolled back; a report."""
        started = self._now()
        txt = self._store.dated_name(self._store.reports_dir, f"{name}.report.txt", started)
        info = ReportInfo(
            file=name, sha256=None, processor=processor, options="", run_id=None,
            started=started, finished=started, dry_run=True,
        )
        with bound_contextvars(file=name, processor=processor, simulation=True):
            try:
                built = self.build_processor(processor, options, True)
                source = self.open_source(processor, built, path, options)
                info = replace(info, sha256=source.check(), options=built.describe())
                header = source.resolve_header(built.schema)
                validate_header(header, built.schema, name)
            except (RejectFile, ConfigError) as exc:
                self._write_report(replace(info, error=str(exc), finished=self._now()), [], txt)
                return RunOutcome(FileState.FAILED, None, txt, str(exc))
            job = Job(0, source, header, built, self._settings.processing.batch_size)
            with self._platform.transaction(rollback=True) as tx:
                self._applier.apply_in(job, tx)
                summary = self._write_report(
                    replace(info, finished=self._now()), tx.saved_results(0), txt
                )
            log.info("file_simulated", **summary.counts, report=str(txt))
            return RunOutcome(FileState.DONE, summary, txt)

    def _start(self, entry: FileEntry, run_id: str) -> FileEntry:
        if entry.state is FileState.PROCESSING:
            self._ledger.update_fields(
                entry.id, FileState.PROCESSING, attempts=entry.attempts + 1,
                next_attempt_at=None, owner=process_owner(),
            )
            log.info("file_resumed", attempt=entry.attempts + 1)
        else:
            self._ledger.transition(
                entry.id, entry.state, FileState.PROCESSING,
                run_id=run_id, started_at=self._now(), attempts=entry.attempts + 1,
                owner=process_owner(),
            )
            log.info("file_started", size=entry.size)
        return self._ledger.get(entry.id)

    def _run(self, entry: FileEntry, stop: threading.Event | None, started: float) -> RunOutcome:
        dry_run = bool(entry.dry_run or entry.options.get("dry_run", False))
        job = self._prepare(entry, dry_run)
        if dry_run:
            with self._platform.transaction(rollback=True) as tx:
                self._applier.apply_in(job, tx)
                return self._finish(entry, job, started, dry_run, tx)
        if not self._applier.apply_all(job, stop):
            return RunOutcome(None, None, None, "interrupted")
        return self._finish(entry, job, started, dry_run, None)

    def _source(self, entry: FileEntry) -> Path:
        for candidate in (entry.store_path, entry.final_path):
            if candidate and Path(candidate).is_file():
                return Path(candidate)
        raise RejectFile(f"{entry.name}: the file has vanished from the store")

    def _prepare(self, entry: FileEntry, dry_run: bool) -> Job:
        if entry.processor is None:
            raise RejectFile(f"{entry.name}: no processor for this file")
        try:
            processor = self.build_processor(entry.processor, entry.options, dry_run)
            source = self.open_source(entry.processor, processor, self._source(entry), entry.options)
        except ConfigError as exc:
            raise RejectFile(f"{entry.name}: {exc}") from exc
        try:
            sha256 = source.check()
            header = source.resolve_header(processor.schema)
        except RejectFile as exc:
            raise RejectFile(f"{entry.name}: {exc}") from exc
        if entry.sha256 and sha256 != entry.sha256:
            with self._platform.transaction() as tx:
                applied = tx.load_checkpoint(entry.id)
            if applied and applied.records_done:
                raise RejectFile(f"{entry.name}: the file changed after rows were applied")
            log.warning("file_changed", old_sha256=entry.sha256, sha256=sha256)
            self._ledger.update_fields(entry.id, FileState.PROCESSING, sha256=sha256)
        validate_header(header, processor.schema, entry.name)
        return Job(entry.id, source, header, processor, self._settings.processing.batch_size)

    def _plan(self, entry: FileEntry, directory: Path) -> Path:
        """The final path of this run in ``directory``, chosen once and kept in the ledger."""
        if entry.final_path and Path(entry.final_path).parent == directory:
            return Path(entry.final_path)
        started = entry.started_at or self._now()
        final = self._store.dated_name(directory, entry.name, started)
        fields: dict[str, Any] = {"final_path": str(final)}
        if directory == self._store.archives_dir:
            name = tryback_name(entry.name, started)
            fields["tryback_path"] = str(free_path(self._store.tryback_dir / name))
        self._ledger.update_fields(entry.id, FileState.PROCESSING, **fields)
        return final

    def _info(self, entry: FileEntry, options: str, dry_run: bool, error: str | None) -> ReportInfo:
        return ReportInfo(
            file=entry.original_path, sha256=entry.sha256,
            processor=entry.processor, options=options, run_id=entry.run_id,
            started=entry.started_at or self._now(), finished=self._now(),
            dry_run=dry_run, error=error,
        )

    def _finish(self, entry: FileEntry, job: Job, started: float, dry_run: bool, tx: Any) -> RunOutcome:
        final = self._plan(entry, self._store.archives_dir)
        entry = self._ledger.get(entry.id)
        txt = self._store.reports_dir / f"{final.name}.report.txt"
        info = self._info(entry, job.processor.describe(), dry_run, None)
        if tx is not None:
            summary = self._write_report(info, tx.saved_results(entry.id), txt)
        else:
            with self._platform.transaction() as read:
                summary = self._write_report(info, read.saved_results(entry.id), txt)
        tryback = Path(entry.tryback_path) if summary.failed and entry.tryback_path else None
        if tryback is not None:
            write_tryback(job.source, job.header, summary.failed, tryback, self._store.write_private)
        self._move(entry, final)
        self._ledger.transition(
            entry.id, FileState.PROCESSING, FileState.DONE, finished_at=self._now(),
            counts=summary.counts, report_path=str(txt),
            tryback_path=str(tryback) if tryback else None,
        )
        if tx is None:
            with self._platform.transaction() as clean:
                clean.clear_checkpoint(entry.id)
        elapsed = time.monotonic() - started
        log.info(
            "file_processed", **summary.counts, rows=summary.total, simulation=dry_run,
            duration_ms=round(elapsed * 1000), report=str(txt),
            tryback=str(tryback) if tryback else None,
        )
        return RunOutcome(FileState.DONE, summary, txt)

    def _write_report(self, info: ReportInfo, results: Any, txt: Path) -> ReportSummary:
        return write_report(
            info, results, txt, txt.with_suffix(".json"), self._store.write_private
        )

    def _move(self, entry: FileEntry, final: Path) -> None:
        source = Path(entry.store_path)
        if source.is_file() and not final.exists():
            self._store.move_to(source, final)

    def _fail(self, entry: FileEntry, error: str) -> RunOutcome:
        entry = self._ledger.get(entry.id)
        final = self._plan(entry, self._store.failed_dir)
        entry = self._ledger.get(entry.id)
        txt = final.with_name(final.name + ".report.txt")
        with self._platform.transaction() as read:
            summary = self._write_report(
                self._info(entry, "", False, error), read.saved_results(entry.id), txt
            )
        self._move(entry, final)
        self._ledger.transition(
            entry.id, FileState.PROCESSING, FileState.FAILED, finished_at=self._now(),
            error=error, counts=summary.counts, report_path=str(txt), tryback_path=None,
        )
        with self._platform.transaction() as clean:
            clean.clear_checkpoint(entry.id)
        log.error("file_failed", error=error, report=str(txt), moved_to=str(final))
        return RunOutcome(FileState.FAILED, summary, txt, error)
