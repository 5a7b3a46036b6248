"""Taking a complete arrival: ledger intent, atomic move into the store, routing.

Order matters for "nothing is ever lost": the ledger first records the intent (pending,
with the planned store path), then the file is moved, then the ledger says received
(routed) or stored (no route). After a crash between the steps, :meth:`Arrivals.recover`
finishes what the ledger says was under way.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import structlog
from structlog.contextvars import bound_contextvars

from syncd.domain import FileState, RetryLater
from syncd.intake.ledger import FileEntry, Ledger
from syncd.intake.store import FileStore
from syncd.pipeline.routes import Router

log = structlog.get_logger(__name__)


def sha256_of(path: Path) -> str:
    """The file's sha256, streamed."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class Arrivals:
    """Moves complete files from sync/ into the store and registers them."""

    def __init__(
        self, store: FileStore, ledger: Ledger, router: Callable[[], Router], wake: Callable[[], None]
    ) -> None:
        self._store = store
        self._ledger = ledger
        self._router = router  # a getter: SIGHUP may swap the routes
        self._wake = wake

    def take(self, path: Path) -> None:
        """Take sync/<rel>; raises RetryLater (the watcher retries) on a transient error."""
        rel = PurePosixPath(path.relative_to(self._store.sync_dir).as_posix())
        with bound_contextvars(file=rel.as_posix()):
            try:
                st = path.lstat()
            except FileNotFoundError:
                return
            dest = self._store.store_path_for(rel)
            file_id = self._ledger.record_pending(rel.as_posix(), str(dest), st.st_size, st.st_mtime)
            with bound_contextvars(file_id=file_id):
                try:
                    self._store.move_in(path, dest)
                except FileNotFoundError:
                    self._ledger.transition(file_id, FileState.PENDING, FileState.VANISHED)
                    log.warning("file_vanished")
                    return
                except OSError as exc:
                    raise RetryLater(f"cannot move {rel} into the store: {exc}") from exc
                self._registered(file_id, rel, dest)

    def _registered(self, file_id: int, rel: PurePosixPath, dest: Path) -> None:
        sha256 = sha256_of(dest)
        match = self._router().route(rel, dest)
        if match is None:
            self._ledger.transition(file_id, FileState.PENDING, FileState.STORED, sha256=sha256)
            log.info("file_stored", store_path=str(dest), sha256=sha256, note="no route: kept for a job")
            return
        self._ledger.transition(
            file_id, FileState.PENDING, FileState.RECEIVED, sha256=sha256,
            processor=match.spec.name, options=dict(match.options), routed_by=match.how,
            priority=match.spec.priority, dry_run=bool(match.options.get("dry_run", False)),
        )
        log.info(
            "file_received", store_path=str(dest), sha256=sha256,
            processor=match.spec.name, routed_by=match.how,
        )
        self._wake()

    def recover(self) -> None:
        """Finish the moves a crash interrupted (ledger pending entries)."""
        for entry in self._ledger.in_states([FileState.PENDING]):
            self._recover_one(entry)

    def _recover_one(self, entry: FileEntry) -> None:
        dest = Path(entry.store_path)
        source = self._store.sync_dir / entry.original_path
        with bound_contextvars(file_id=entry.id, file=entry.original_path):
            if dest.is_file() and source.is_file() and sha256_of(dest) == sha256_of(source):
                source.unlink()  # a cross-filesystem move stopped after its copy
            if dest.is_file() and not os.path.lexists(source):
                log.info("intake_recovered", store_path=str(dest))
                self._registered(entry.id, PurePosixPath(entry.original_path), dest)
            elif not os.path.lexists(source):
                self._ledger.transition(entry.id, FileState.PENDING, FileState.VANISHED)
                log.warning("file_vanished")
            # else: still in sync/: the startup scan hands it over again (same ledger row)
