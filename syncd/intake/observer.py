"""The watchdog observer, kept alive: a dead observer thread is noticed and replaced."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any, Protocol

import structlog
from watchdog.events import FileSystemEventHandler

from syncd.intake.candidates import backoff


def _log() -> Any:
    return structlog.get_logger(__name__)


class _Alive(Protocol):
    def is_alive(self) -> bool: ...


class ObserverLike(Protocol):
    """What the watcher uses of a watchdog observer (tests pass a fake)."""

    @property
    def emitters(self) -> Collection[_Alive]: ...
    def schedule(
        self, event_handler: FileSystemEventHandler, path: str, *, recursive: bool = ...
    ) -> object: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def join(self, timeout: float | None = None) -> None: ...
    def is_alive(self) -> bool: ...


class ObserverKeeper:
    """Owns the watchdog observer: starts it, tells whether it lives, replaces a dead one."""

    def __init__(
        self, factory: Callable[[], ObserverLike], handler: FileSystemEventHandler, path: Path,
        clock: Callable[[], float],
    ) -> None:
        self._factory, self._handler, self._path, self._clock = factory, handler, path, clock
        self._lock = threading.Lock()
        self._observer: ObserverLike | None = None
        self._closed = False
        self._failures, self._retry_at = 0, 0.0

    def start(self) -> None:
        """Create, schedule and start a fresh observer."""
        with self._lock:
            self._closed = False
            self._start()

    def _start(self) -> None:
        observer = self._factory()
        observer.schedule(self._handler, str(self._path), recursive=True)
        observer.start()
        self._observer = observer

    def alive(self) -> bool:
        """Tell whether the observer and all its emitter threads run."""
        observer = self._observer
        if observer is None:
            return False
        return observer.is_alive() and all(e.is_alive() for e in observer.emitters)

    def revive(self) -> bool:
        """Replace a dead observer (with backoff when that fails); True if it was replaced."""
        with self._lock:
            old = self._observer
            if old is None or self._closed or self.alive() or self._clock() < self._retry_at:
                return False
            try:
                old.stop()
            except Exception as exc:
                _log().debug("observer_stop_failed", error=str(exc))
            try:
                self._start()
            except Exception as exc:
                self._failures += 1
                self._retry_at = self._clock() + backoff(self._failures)
                _log().error(
                    "observer_restart_failed", error=str(exc), retry_in=backoff(self._failures)
                )
                return False
            self._failures = 0
        _log().warning("observer_restarted", path=str(self._path))
        return True

    def stop(self, deadline: float) -> None:
        """Stop the observer for good and wait for it until ``deadline`` (time.monotonic)."""
        with self._lock:
            observer, self._observer, self._closed = self._observer, None, True
        if observer is not None:
            observer.stop()
            observer.join(max(0.0, deadline - time.monotonic()))
