"""Applying a file's records in batches, each batch committed with its checkpoint.

One batch = one platform transaction: the processor applies the rows, and the checkpoint
(records done + each row's result) is saved before the commit. A crash loses at most the
uncommitted batch, which is applied again, whole, on restart: no row is applied twice.

A batch that raises is applied again in halves, recursively, so the rows that fail are
found in O(log n) transactions each and every other row is applied. On a platform with no
rollback (Moodle), a row whose change reached the platform before its batch failed is
applied again: processors look before they write, so it is reported unchanged/updated,
never created twice.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from itertools import islice

import structlog
from sqlalchemy.exc import DBAPIError, OperationalError

from syncd.csvfile import Header, Record, row_values
from syncd.domain import Outcome, PlatformRefused, RetryLater, RowError, RowResult
from syncd.platform.base import Checkpoint, Platform, PlatformTx, SavedResult
from syncd.processors.base import Processor, RecordSource, Row

log = structlog.get_logger(__name__)

#: row failures logged one by one per file; the rest are only in the report
LOGGED_FAILURES = 50
PROGRESS_EVERY = 5.0  # seconds between progress log lines


@dataclass(slots=True)
class Job:
    """One file being applied: where it is, how it is read, who applies it."""

    file_id: int
    source: RecordSource
    header: Header
    processor: Processor
    batch_size: int
    logged_failures: int = 0


class BatchApplier:
    """Applies a job's records from its checkpoint on, batch by batch."""

    def __init__(
        self,
        platform: Platform,
        clock: Callable[[], float] = time.monotonic,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self._platform = platform
        self._clock = clock
        self._progress = progress or (lambda _done: None)  # called after every batch

    def apply_all(self, job: Job, stop: threading.Event | None = None) -> bool:
        """Apply every remaining record, a transaction per batch; False if ``stop`` cut it."""
        with self._platform.transaction() as tx:
            checkpoint = tx.load_checkpoint(job.file_id)
        done = checkpoint.records_done if checkpoint else 0
        if done:
            log.info("file_resumed_at", records_done=done)
        for batch in self._batches(job, done):
            self._commit(job, batch, done, None)
            done += len(batch)
            self._progress(done)
            if stop is not None and stop.is_set():
                log.info("file_interrupted", records_done=done)
                return False
        return True

    def apply_in(self, job: Job, tx: PlatformTx) -> None:
        """Apply every record inside one caller-owned transaction (dry run)."""
        done = 0
        for batch in self._batches(job, 0):
            self._commit(job, batch, done, tx)
            done += len(batch)
            self._progress(done)

    def _batches(self, job: Job, skip: int) -> Iterator[list[Record]]:
        records = islice(job.source.records(), skip, None)
        started, last, count = self._clock(), self._clock(), skip
        while batch := list(islice(records, job.batch_size)):
            yield batch
            count += len(batch)
            if self._clock() - last >= PROGRESS_EVERY:
                last = self._clock()
                rate = (count - skip) / max(last - started, 1e-9)
                log.info("file_progress", records_done=count, rows_per_s=round(rate))

    def _commit(self, job: Job, batch: Sequence[Record], done: int, tx: PlatformTx | None) -> None:
        scope: AbstractContextManager[PlatformTx] = (
            nullcontext(tx) if tx is not None else self._platform.transaction()
        )
        try:
            with scope as active:
                saved = self._apply(job, batch, active)
                active.save_checkpoint(job.file_id, Checkpoint(done + len(batch)), saved)
        except DBAPIError as exc:
            if isinstance(exc, OperationalError) or exc.connection_invalidated:
                raise RetryLater(f"database unavailable: {exc.orig}") from exc
            self._isolate(job, batch, done, tx, exc)  # e.g. a constraint a processor missed
            return
        except RetryLater:
            raise
        except Exception as exc:  # a processor bug must cost one row, not the file
            self._isolate(job, batch, done, tx, exc)
            return
        for saved_result in saved:
            self._note_failure(job, saved_result)

    def _isolate(
        self, job: Job, batch: Sequence[Record], done: int, tx: PlatformTx | None, exc: Exception
    ) -> None:
        """Apply a failed batch again in halves, down to the row that fails.

        That row's result is the platform's refusal (:class:`PlatformRefused`: its message)
        or "internal error"; every other row is applied. A dry run (``tx`` given) can only
        be split when the platform refused (it wrote nothing); any other error ends it.
        """
        refused = isinstance(exc, PlatformRefused)
        if tx is not None and not refused:
            raise RetryLater(f"dry run interrupted by an internal error: {exc}") from exc
        if len(batch) > 1:
            cause = getattr(exc, "orig", None) or exc  # a DBAPIError's text holds the whole statement
            log.warning("batch_failed", error=f"{type(cause).__name__}: {str(cause)[:300]}", rows=len(batch))
            half = (len(batch) + 1) // 2
            self._commit(job, batch[:half], done, tx)
            self._commit(job, batch[half:], done + half, tx)
            return
        record = batch[0]
        if refused:
            result = RowResult(Outcome.ERROR, str(exc))
        else:
            log.error("row_crashed", line=record.line, exc_info=exc)
            result = RowResult(Outcome.ERROR, f"internal error: {type(exc).__name__}")
        saved = SavedResult(record.index, record.line, result)
        if tx is not None:
            tx.save_checkpoint(job.file_id, Checkpoint(done + 1), [saved])
        else:
            with self._platform.transaction() as fresh:
                fresh.save_checkpoint(job.file_id, Checkpoint(done + 1), [saved])
        self._note_failure(job, saved)

    @staticmethod
    def _apply(job: Job, batch: Sequence[Record], tx: PlatformTx) -> list[SavedResult]:
        results: list[RowResult | None] = [None] * len(batch)
        rows: list[Row] = []
        slots: list[int] = []
        for i, record in enumerate(batch):
            try:
                rows.append(Row(record.line, row_values(job.header, record)))
                slots.append(i)
            except RowError as exc:
                results[i] = RowResult(Outcome.ERROR, str(exc))
        if rows:
            applied = job.processor.apply(rows, tx)
            if len(applied) != len(rows):
                raise RuntimeError(f"processor returned {len(applied)} results for {len(rows)} rows")
            for slot, result in zip(slots, applied, strict=True):
                results[slot] = result
        return [
            SavedResult(record.index, record.line, result)
            for record, result in zip(batch, results, strict=True)
            if result is not None
        ]

    @staticmethod
    def _note_failure(job: Job, saved: SavedResult) -> None:
        if saved.result.outcome is not Outcome.ERROR:
            return
        job.logged_failures += 1
        if job.logged_failures <= LOGGED_FAILURES:
            log.warning("row_failed", line=saved.line, reason=saved.result.reason)
        elif job.logged_failures == LOGGED_FAILURES + 1:
            log.warning("row_failures_truncated", note="further failed rows are in the report only")
