"""Decides when a file in the drop folder is complete, and hands each complete file over.

Events (watchdog: inotify, or polling for NFS/CIFS) and scans only *nominate* files; the
intake thread's :meth:`Watcher.tick` decides from ``lstat`` alone. A file closed after
writing or renamed into place is complete once its size and mtime stayed unchanged for
``settle`` seconds. A file known only from created/modified events or a scan may still be
open by a pausing writer: it also needs no write for ``scan_settle`` seconds (by its
mtime's age or, should the clocks disagree, by how long we saw it unchanged). Polling
mode has no close events, so every file there is judged the second way. In done-marker
mode ``x.csv`` is complete once ``x.csv.done`` exists and ``x.csv`` is stable.

Each file is handed over at least once: the receiver moves it out of sync/, or raises and
it is retried with backoff.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import structlog
from structlog.contextvars import bind_contextvars, bound_contextvars
from watchdog.events import FileSystemEvent, FileSystemEventHandler

from syncd.domain import ConfigError
from syncd.intake.candidates import CLOSED, DIRTY, GONE, SCANNED, Candidate, Candidates
from syncd.intake.observer import ObserverKeeper, ObserverLike

_TICK = 0.2
_KINDS = ((stat.S_ISLNK, "symlink"), (stat.S_ISFIFO, "fifo"), (stat.S_ISSOCK, "socket"),
          (stat.S_ISCHR, "device"), (stat.S_ISBLK, "device"))


def _log() -> Any:
    return structlog.get_logger(__name__)



def _kind_of(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


@dataclass(frozen=True, slots=True)
class IntakeOptions:
    """How the drop folder is watched and when a file counts as complete."""

    mode: str = "inotify"  # or "polling" (NFS/CIFS)
    settle: float = 1.0
    scan_settle: float = 10.0
    rescan_interval: float = 30.0
    poll_interval: float = 2.0
    ignore_suffixes: tuple[str, ...] = (
        ".filepart", ".part", ".partial", ".tmp", ".swp", ".crdownload",
    )
    done_marker: bool = False
    done_suffix: str = ".done"
    reserved: tuple[str, ...] = ()  # top-level sub-folders of sync/ to ignore

    def __post_init__(self) -> None:
        if self.mode not in ("inotify", "polling"):
            raise ConfigError(f"intake mode must be 'inotify' or 'polling', not {self.mode!r}")
        for name in ("settle", "scan_settle", "rescan_interval", "poll_interval"):
            if getattr(self, name) < 0:
                raise ConfigError(f"intake {name} must be >= 0, not {getattr(self, name)!r}")
        if self.done_marker and not self.done_suffix.startswith("."):
            raise ConfigError(f"intake done_suffix must start with '.', not {self.done_suffix!r}")


def ignore_reason(rel: PurePosixPath, options: IntakeOptions) -> str | None:
    """Why the path ``rel`` (relative to sync/) is ignored, or None if it is not."""
    if any(part.startswith((".", "_")) for part in rel.parts):
        return "hidden"
    name = rel.name.lower()
    if any(name.endswith(suffix.lower()) for suffix in options.ignore_suffixes):
        return "partial upload"
    if rel.parts and rel.parts[0] in options.reserved:
        return "reserved folder"
    if _marker_target(rel, options) is not None:
        return "done marker"
    return None


def final_name(path: Path, options: IntakeOptions) -> Path:
    """The name a temporary upload will most likely be renamed to (``_x`` / ``.x.tmp`` /
    ``x.filepart`` -> ``x``)."""
    name = path.name
    for suffix in options.ignore_suffixes:
        if name.lower().endswith(suffix.lower()) and len(name) > len(suffix):
            name = name[: -len(suffix)]
            break
    if name[:1] in ("_", ".") and len(name) > 1:
        name = name[1:]
    return path.with_name(name)


def _marker_target(rel: PurePosixPath, options: IntakeOptions) -> PurePosixPath | None:
    """The data file a done marker stands for, or None if ``rel`` is no marker."""
    name, suffix = rel.name, options.done_suffix
    if options.done_marker and len(name) > len(suffix) and name.lower().endswith(suffix.lower()):
        return rel.with_name(name[: -len(suffix)])
    return None


class _Handler(FileSystemEventHandler):
    """Runs in the observer thread: forwards events, does no I/O."""

    def __init__(self, watcher: Watcher) -> None:
        self._watcher = watcher

    def dispatch(self, event: FileSystemEvent) -> None:
        with bound_contextvars(component="intake"):  # context vars do not flow into threads
            self._watcher._on_event(event)


class _Scanner:
    """Walks sync/ (never following symlinks) and nominates what it finds."""

    def __init__(self, sync_dir: Path, options: IntakeOptions, cands: Candidates) -> None:
        self.root, self._opts, self._cands = sync_dir, options, cands

    def rel(self, path: Path) -> PurePosixPath | None:
        """``path`` relative to sync/, or None for sync/ itself or a path outside it."""
        try:
            rel = path.relative_to(self.root)
        except ValueError:
            return None
        return PurePosixPath(*rel.parts) if rel.parts else None

    def dir_ignored(self, rel: PurePosixPath) -> bool:
        """Hidden and reserved folders are not walked (partial-upload suffixes are for files)."""
        hidden = any(part.startswith((".", "_")) for part in rel.parts)
        return hidden or rel.parts[0] in self._opts.reserved

    def warn_once(self, event: str, path: Path, **context: Any) -> None:
        """Log a warning about ``path`` unless it was already logged."""
        if self._cands.first_time((event, path)):
            _log().warning(event, path=str(path), **context)

    def scan(self, root: Path, *, full: bool) -> None:
        """Nominate the regular files below ``root``, oldest first; log other entries once."""
        stack, found, problems = [root], list[tuple[tuple[int, str], Path]](), set[tuple[str, Path]]()
        while stack:
            folder = stack.pop()
            try:
                with os.scandir(folder) as listing:
                    entries = list(listing)
            except OSError as exc:
                if folder != root and isinstance(exc, FileNotFoundError):
                    continue  # removed while we walked
                self._problem(problems, "folder_unreadable", folder, error=str(exc))
                if folder == root:
                    return
                continue
            for entry in entries:
                try:
                    self._entry(entry, stack, found, problems)
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    self._problem(problems, "file_unreadable", Path(entry.path), error=str(exc))
        for _, path in sorted(found):
            self._cands.note(path, SCANNED)
        if full:
            self._cands.keep_warned(problems)

    def _entry(
        self, entry: os.DirEntry[str], stack: list[Path],
        found: list[tuple[tuple[int, str], Path]], problems: set[tuple[str, Path]],
    ) -> None:
        path = Path(entry.path)
        rel = self.rel(path)
        if rel is None:
            return
        if entry.is_dir(follow_symlinks=False):
            if not self.dir_ignored(rel):
                stack.append(path)
            return
        reason = ignore_reason(rel, self._opts)
        target = _marker_target(rel, self._opts)
        if reason == "done marker" and target is not None:
            if not os.path.lexists(self.root.joinpath(*target.parts)):
                self._problem(problems, "marker_ignored", path, reason="data file missing")
        elif reason is None:
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISREG(st.st_mode):
                found.append(((st.st_mtime_ns, entry.path), path))
            else:
                self._problem(problems, "file_ignored", path, reason=_kind_of(st.st_mode))

    def _problem(self, seen: set[tuple[str, Path]], event: str, path: Path, **context: Any) -> None:
        seen.add((event, path))
        self.warn_once(event, path, **context)


class Watcher:
    """Watches sync/ and calls ``on_complete(path)`` for each complete file, in arrival order."""

    def __init__(
        self,
        sync_dir: Path,
        options: IntakeOptions,
        on_complete: Callable[[Path], None],
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        observer_factory: Callable[[], ObserverLike] | None = None,
    ) -> None:
        """Prepare the watcher; nothing runs until :meth:`start`."""
        self._sync = Path(os.path.abspath(sync_dir))
        self._opts = options
        self._on_complete = on_complete
        self._clock, self._wall = clock, wall
        self._closed_kind = DIRTY if options.mode == "polling" else CLOSED
        self._cands = Candidates()
        #: temporary upload names seen by events (``_x.csv``, ``x.csv.filepart``...): the
        #: files they will be renamed to are uploads under way for the gather rule
        self._uploads: set[Path] = set()
        self._uploads_lock = threading.Lock()
        self._scanner = _Scanner(self._sync, options, self._cands)
        self._handler = _Handler(self)
        factory = observer_factory or self._default_observer
        self._observer = ObserverKeeper(factory, self._handler, self._sync, clock)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._beat = 0.0

    def start(self) -> None:
        """Start the observer, scan what arrived while down, then start the intake thread."""
        if self._thread is not None:
            raise RuntimeError("the watcher is already started")
        self._stopping.clear()
        with bound_contextvars(component="intake"):
            self._observer.start()
            self.rescan()
        self._beat = self._clock()
        self._thread = threading.Thread(target=self._run, name="syncd-intake", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the observer and the intake thread, waiting up to ``timeout`` seconds for both
        (a hand-over under way is not interrupted)."""
        deadline = time.monotonic() + timeout
        self._stopping.set()
        try:
            self._observer.stop(deadline)
        finally:
            if self._thread is not None:
                self._thread.join(max(0.0, deadline - time.monotonic()))
                self._thread = None

    def healthy(self, max_age: float = 60.0) -> bool:
        """Observer and intake thread alive, and the last tick began less than ``max_age`` ago."""
        thread = self._thread
        return (
            self._observer.alive() and thread is not None and thread.is_alive()
            and self._clock() - self._beat <= max_age
        )

    def pending(self) -> int:
        """How many candidates were seen but not handed over yet (incl. retries, markerless)."""
        return len(self._cands)

    def pending_paths(self) -> list[PurePosixPath]:
        """The uploads under way, relative to sync/ (in done-marker mode: only marked ones).

        A file still waiting for its marker may wait forever; it must not hold anything back.
        Uploads under a temporary name (``_users.csv``, ``users.csv.filepart``) count under
        the name they will be renamed to.
        """
        paths = self._cands.paths()
        if self._opts.done_marker:
            paths = [p for p in paths if os.path.lexists(self._marker_of(p))]
        with self._uploads_lock:
            paths += [final_name(p, self._opts) for p in self._uploads]
        return [PurePosixPath(p.relative_to(self._sync).as_posix()) for p in paths]

    def rescan(self) -> None:
        """Nominate every regular, non-ignored file below sync/ (symlinks never followed)."""
        self._scanner.scan(self._sync, full=True)

    def tick(self) -> None:
        """One pass: revive a dead observer, scan new folders, hand over complete files."""
        self._beat = self._clock()
        if self._observer.revive():
            self.rescan()  # the dead observer's events are lost
        for folder in self._cands.take_dirs():
            self._scanner.scan(folder, full=False)
        for cand, epoch in self._ready():
            self._hand_over(cand, epoch)
            self._beat = self._clock()

    def _run(self) -> None:
        bind_contextvars(component="intake")
        next_rescan = self._clock() + self._opts.rescan_interval
        while not self._stopping.wait(_TICK):
            if self._clock() >= next_rescan:
                next_rescan = self._clock() + self._opts.rescan_interval
                self._step(self.rescan)
            self._step(self.tick)

    def _step(self, work: Callable[[], None]) -> None:
        """Run one unit of the intake loop; an error is logged and the loop goes on."""
        try:
            work()
        except Exception as exc:
            _log().error("intake_step_failed", error=str(exc), error_type=type(exc).__name__)

    def _ready(self) -> list[tuple[Candidate, int]]:
        """The complete candidates, in arrival order, with the epoch they were judged at."""
        now = self._clock()
        ready = []
        for cand, epoch in self._cands.snapshot(now):
            try:
                st = os.lstat(cand.path)
            except FileNotFoundError:
                _log().debug("candidate_vanished", path=str(cand.path))
                self._cands.forget(cand, epoch)
                continue
            except OSError as exc:
                self._scanner.warn_once("file_unreadable", cand.path, error=str(exc))
                continue
            if not stat.S_ISREG(st.st_mode):
                self._scanner.warn_once("file_ignored", cand.path, reason=_kind_of(st.st_mode))
                self._cands.forget(cand, epoch)
            elif self._complete(cand, epoch, st, now):
                ready.append((cand, epoch))
        return ready

    def _complete(self, cand: Candidate, epoch: int, st: os.stat_result, now: float) -> bool:
        stable = self._cands.observe(cand, epoch, (st.st_size, st.st_mtime_ns), now)
        if stable < self._opts.settle:
            return False
        if self._opts.done_marker:
            try:
                return stat.S_ISREG(os.lstat(self._marker_of(cand.path)).st_mode)
            except OSError:
                return False
        if cand.kind == CLOSED:
            return True
        age = self._wall() - st.st_mtime_ns / 1e9
        return age >= self._opts.scan_settle or stable >= self._opts.scan_settle

    def _hand_over(self, cand: Candidate, epoch: int) -> None:
        try:
            self._on_complete(cand.path)
        except Exception as exc:
            delay = self._cands.failed(cand, self._clock())
            _log().error(
                "intake_failed", path=str(cand.path), error=str(exc),
                error_type=type(exc).__name__, attempt=cand.failures, retry_in=delay,
            )
            return
        self._cands.forget(cand, epoch)
        _log().debug("file_handed_over", path=str(cand.path))
        if self._opts.done_marker:
            marker = self._marker_of(cand.path)
            try:
                marker.unlink(missing_ok=True)
            except OSError as exc:
                _log().warning("marker_not_removed", path=str(marker), error=str(exc))

    def _on_event(self, event: FileSystemEvent) -> None:
        """Record one watchdog event; runs in the observer thread and does no I/O."""
        src, dest = os.fsdecode(event.src_path), os.fsdecode(event.dest_path)
        kind = event.event_type
        if event.is_directory:
            if kind in ("moved", "deleted") and src:
                self._cands.forget_under(Path(src))
            new_dir = src if kind == "created" else dest if kind == "moved" else ""
            rel = self._scanner.rel(Path(new_dir)) if new_dir else None
            if rel is not None and not self._scanner.dir_ignored(rel):
                self._cands.add_dir(Path(new_dir))  # files moved in with it bring no events
        elif kind in ("created", "modified"):
            self._nominate(src, DIRTY)
        elif kind == "closed":
            self._nominate(src, self._closed_kind)
        elif kind in ("deleted", "moved"):
            if src:
                self._nominate(src, GONE)
            if dest:  # the rename into place is the arrival
                self._nominate(dest, self._closed_kind)

    def _nominate(self, path_text: str, kind: str) -> None:
        path = Path(path_text)
        rel = self._scanner.rel(path)
        reason = ignore_reason(rel, self._opts) if rel is not None else "outside"
        if reason is None:
            self._cands.note(path, kind)
        elif reason in ("hidden", "partial upload"):
            with self._uploads_lock:
                if kind == GONE:
                    self._uploads.discard(path)
                else:
                    self._uploads.add(path)
        elif reason == "done marker" and kind != GONE and rel is not None:
            target = _marker_target(rel, self._opts)
            if target is not None and ignore_reason(target, self._opts) is None:
                self._cands.note(self._sync.joinpath(*target.parts), SCANNED)

    def _marker_of(self, path: Path) -> Path:
        return path.with_name(path.name + self._opts.done_suffix)

    def _default_observer(self) -> ObserverLike:
        if self._opts.mode == "polling":
            from watchdog.observers.polling import PollingObserverVFS

            # lstat, not stat: the polling snapshot must not follow symlinks either.
            interval = self._opts.poll_interval
            return PollingObserverVFS(os.lstat, os.scandir, polling_interval=interval)
        from watchdog.observers.inotify import InotifyObserver

        # Full events: a file renamed in from outside sync/ is a move, not a creation.
        return InotifyObserver(generate_full_events=True)
