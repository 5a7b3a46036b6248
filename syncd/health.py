"""Signs of life of the daemon's threads, for systemd's watchdog and STATUS= line."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Heartbeat:
    """When a thread last showed progress, and what it is doing (thread-safe)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._last = clock()
        self._doing = "starting"

    def beat(self, doing: str | None = None) -> None:
        """Record progress now (and, optionally, a new description of the work)."""
        with self._lock:
            self._last = self._clock()
            if doing is not None:
                self._doing = doing

    def age(self) -> float:
        """Seconds since the last beat."""
        with self._lock:
            return self._clock() - self._last

    @property
    def doing(self) -> str:
        """What the thread said it is doing."""
        with self._lock:
            return self._doing
