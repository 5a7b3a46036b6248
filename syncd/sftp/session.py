"""One SSH connection to the embedded server: who it is, and what it did (the audit record).

The connection's :class:`Session` is created at accept, filled in at login, counted by
every file operation, and logged once when the connection ends
(``sftp_session_ended``). Every file gets its own event (``sftp_file_received``) and
every refused request one ``sftp_request_refused``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from syncd.sftp.accounts import Account

log = structlog.get_logger(__name__)

#: (account folder) -> {name shown under _results/: real report or tryback path}
ResultsLookup = Callable[[str], dict[str, Path]]


@dataclass
class Session:
    """The audit record of one connection."""

    address: str
    port: int
    results: ResultsLookup
    account: Account | None = None
    method: str = ""
    started: float = field(default_factory=time.monotonic)
    files: int = 0
    bytes: int = 0
    refused: int = 0
    aborted: int = 0
    key_refused: bool = False
    authenticated: bool = False
    subsystems: int = 0
    _lock: threading.Condition = field(default_factory=threading.Condition)

    def subsystem_started(self) -> None:
        """An SFTP subsystem of this connection started."""
        with self._lock:
            self.subsystems += 1

    def subsystem_finished(self) -> None:
        """An SFTP subsystem finished, its open files closed (published or discarded)."""
        with self._lock:
            self.subsystems -= 1
            self._lock.notify_all()

    def fields(self) -> dict[str, Any]:
        """The fields every event of this session carries."""
        return {"account": self.account.name if self.account else None, "address": self.address}

    def refuse(self, op: str, path: str, reason: str, *, quiet: bool = False) -> None:
        """Log one refused request (``quiet``: at debug level, e.g. a stat of a missing name)."""
        if quiet:
            log.debug("sftp_request_refused", op=op, path=path, reason=reason, **self.fields())
            return
        with self._lock:
            self.refused += 1
        log.warning("sftp_request_refused", op=op, path=path, reason=reason, **self.fields())

    def file_done(self, path: str, size: int, outcome: str, **extra: Any) -> None:
        """Log one file's outcome and count it."""
        with self._lock:
            if outcome == "complete":
                self.files += 1
                self.bytes += size
            elif outcome == "aborted":
                self.aborted += 1
        level = log.info if outcome in ("complete", "read") else log.warning
        level("sftp_file_received" if outcome != "read" else "sftp_file_sent",
              path=path, bytes=size, outcome=outcome, **extra, **self.fields())

    def ended(self, timeout: float = 10.0) -> None:
        """Log the session's one summary event, once its subsystems have closed their files."""
        if not self.authenticated or self.account is None:
            return
        with self._lock:
            self._lock.wait_for(lambda: self.subsystems <= 0, timeout)
        outcome = "dropped with uploads unfinished" if self.aborted else "closed"
        log.info(
            "sftp_session_ended", method=self.method, files=self.files, bytes=self.bytes,
            refused=self.refused, aborted=self.aborted, outcome=outcome,
            duration_s=round(time.monotonic() - self.started, 3), **self.fields(),
        )
