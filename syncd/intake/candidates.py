"""The files the watcher has nominated, shared by the observer and intake threads.

Observer-thread events only *note* a path and its kind; the intake thread judges each
candidate from ``lstat`` and hands it over (see ``watcher.py``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

CLOSED, DIRTY = "closed", "dirty"  # candidate kinds (see watcher.py's docstring)
SCANNED = "scanned"  # a nomination that never changes a known candidate
GONE = "gone"
MAX_BACKOFF = 60.0


def backoff(failures: int) -> float:
    """Seconds to wait after the n-th consecutive failure: 1, 2, 4… at most a minute."""
    return min(MAX_BACKOFF, 2.0 ** (failures - 1))


@dataclass(slots=True)
class Candidate:
    """A nominated file and what the intake thread last saw of it."""

    path: Path
    kind: str
    seq: int  # arrival order
    epoch: int = 0  # bumped by every event: a judgement holds only for its epoch
    sig: tuple[int, int] | None = None  # (size, mtime_ns) last observed
    since: float = 0.0  # clock() when `sig` was first observed
    failures: int = 0
    retry_at: float = 0.0


class Candidates:
    """The nominated files; written by the observer thread, judged by the intake thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._table: dict[Path, Candidate] = {}
        self._dirs: set[Path] = set()
        self._warned: set[tuple[str, Path]] = set()
        self._seq = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._table)

    def paths(self) -> list[Path]:
        """Every candidate path (a copy)."""
        with self._lock:
            return list(self._table)

    def note(self, path: Path, kind: str) -> None:
        with self._lock:
            cand = self._table.get(path)
            if kind == GONE:
                self._table.pop(path, None)
            elif cand is None:
                self._seq += 1
                start = CLOSED if kind == CLOSED else DIRTY
                self._table[path] = Candidate(path, start, self._seq)
            elif kind != SCANNED:  # a new event: new kind, and the stability timer restarts
                cand.kind, cand.sig, cand.epoch = kind, None, cand.epoch + 1

    def snapshot(self, now: float) -> list[tuple[Candidate, int]]:
        """The candidates not waiting for a retry, in arrival order, with their epochs."""
        with self._lock:
            todo = sorted(self._table.values(), key=lambda c: c.seq)
            return [(c, c.epoch) for c in todo if c.retry_at <= now]

    def observe(self, cand: Candidate, epoch: int, sig: tuple[int, int], now: float) -> float:
        """Record an observation; how long ``sig`` has been seen unchanged (-1: it just changed)."""
        with self._lock:
            if cand.epoch != epoch:
                return -1.0
            if sig != cand.sig:
                cand.sig, cand.since = sig, now
                return -1.0
            return now - cand.since

    def forget(self, cand: Candidate, epoch: int) -> None:
        """Drop ``cand`` unless an event came for it since it was judged at ``epoch``."""
        with self._lock:
            if self._table.get(cand.path) is cand and cand.epoch == epoch:
                del self._table[cand.path]

    def forget_under(self, folder: Path) -> None:
        with self._lock:
            for path in [p for p in self._table if p.is_relative_to(folder)]:
                del self._table[path]

    def failed(self, cand: Candidate, now: float) -> float:
        """Count a failed hand-over; the delay before the next try."""
        with self._lock:
            cand.failures += 1
            delay = backoff(cand.failures)
            cand.retry_at = now + delay
            return delay

    def add_dir(self, folder: Path) -> None:
        with self._lock:
            self._dirs.add(folder)

    def take_dirs(self) -> list[Path]:
        with self._lock:
            dirs, self._dirs = self._dirs, set()
        return sorted(dirs)

    def first_time(self, key: tuple[str, Path]) -> bool:
        """True the first time ``key`` (event, path) is warned about."""
        with self._lock:
            new = key not in self._warned
            self._warned.add(key)
            return new

    def keep_warned(self, keys: set[tuple[str, Path]]) -> None:
        """Forget the warnings about problems a full scan no longer sees."""
        with self._lock:
            self._warned &= keys
