"""What scheduled jobs do: queue a preselected file, or purge old cache and results.

A preselected-file job does not apply rows itself: it queues the file in the ledger and
wakes the one worker, so a job and an arrival can never process files concurrently and
rows still apply one file at a time, in order.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from syncd.domain import FileState
from syncd.intake.arrivals import sha256_of
from syncd.intake.ledger import Ledger
from syncd.intake.store import FileStore
from syncd.processors.base import ProcessorSpec
from syncd.schedule import Job

log = structlog.get_logger(__name__)

#: states in which a queued file is still someone's work
_BUSY = frozenset({FileState.PENDING, FileState.RECEIVED, FileState.PROCESSING})


class PreselectedFile:
    """Queue ``store/<file>`` for ``processor`` if it is there (absent = nothing to do)."""

    def __init__(
        self,
        *,
        store: FileStore,
        ledger: Ledger,
        spec: ProcessorSpec,
        file: str,
        options: Mapping[str, Any],
        wake: Callable[[], None],
    ) -> None:
        self._store, self._ledger, self._spec, self._wake = store, ledger, spec, wake
        self._file, self._options = file, dict(options)

    def path(self) -> Path:
        """The preselected file (the settings made sure it stays inside the store)."""
        return self._store.store_dir / self._file

    def __call__(self, job: Job, fired_at: datetime) -> str:
        """Queue the file once; skip while a previous run of it is still queued or running."""
        path = self.path()
        entries = self._ledger.at_store_path(str(path))
        if any(e.state in _BUSY for e in entries):
            log.info("job_skipped", reason="previous run of this file still in progress", path=str(path))
            return "skipped: previous run still in progress"
        try:
            st = path.lstat()
        except FileNotFoundError:
            log.info("job_idle", reason="nothing to do: file absent", path=str(path))
            return "nothing to do: file absent"
        if not stat.S_ISREG(st.st_mode):
            log.warning("job_file_refused", path=str(path), reason="not a regular file")
            return "refused: not a regular file"
        fields: dict[str, Any] = {
            "processor": self._spec.name, "options": self._options, "routed_by": "job",
            "priority": self._spec.priority, "dry_run": bool(self._options.get("dry_run", False)),
        }
        stored = [e for e in entries if e.state is FileState.STORED]
        if stored:
            self._ledger.transition(stored[0].id, FileState.STORED, FileState.RECEIVED, **fields)
            file_id = stored[0].id
        else:
            file_id = self._ledger.record_stored(
                f"job:{job.name}:{self._file}", str(path), st.st_size, st.st_mtime, sha256_of(path),
                **fields,
            )
        self._wake()
        log.info("job_queued_file", file_id=file_id, path=str(path), processor=self._spec.name)
        return f"queued file {file_id}"


class Cleanup:
    """Remove cache files older than ``cache_days`` and results older than ``retention_days``.

    Only ``<data>/cache`` and ``store/archives|reports|tryback|failed`` are looked at:
    pending command files (anywhere else in the store) are never touched. Symlinks are
    removed as links, never followed.
    """

    def __init__(
        self, store: FileStore, clock: Callable[[], datetime], cache_days: float, retention_days: float
    ) -> None:
        self._store, self._now = store, clock
        self._cache_age = timedelta(days=cache_days)
        self._retention = timedelta(days=retention_days)

    def __call__(self, job: Job, fired_at: datetime) -> str:
        """Purge once; returns how many files went where."""
        now = self._now()
        cache = purge(self._store.cache_dir, (now - self._cache_age).timestamp())
        cutoff = (now - self._retention).timestamp()
        results = sum(
            purge(folder, cutoff)
            for folder in (self._store.archives_dir, self._store.reports_dir,
                           self._store.tryback_dir, self._store.failed_dir)
        )
        log.info("cleanup_done", cache_removed=cache, results_removed=results)
        return f"removed {cache} cache file(s) and {results} archived/report/tryback/failed file(s)"


def purge(root: Path, cutoff: float) -> int:
    """Delete files (and links) under ``root`` with an mtime before ``cutoff``, then empty folders."""
    removed = 0
    if not root.is_dir() or root.is_symlink():
        return 0
    for folder, dirs, names in os.walk(root, topdown=False, followlinks=False):
        here = Path(folder)
        links = [d for d in dirs if (here / d).is_symlink()]  # os.walk lists links to folders here
        for name in (*names, *links):
            path = here / name
            try:
                if path.lstat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        if here != root:
            with contextlib.suppress(OSError):  # not empty: kept
                here.rmdir()
    return removed
