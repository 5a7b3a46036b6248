"""The daemon: intake watcher, one worker, signals, sd_notify.

Threads: the watchdog observer and the intake thread (inside :class:`Watcher`), the
embedded SFTP server's listener and connections when enabled, the scheduler, the
worker (applies files one at a time, so rows apply in file order), and the main thread,
which only waits on events and supervises. Signal handlers only set events.

SIGTERM/SIGINT: the worker finishes its current batch (committed with its checkpoint)
and the daemon exits 0; a second signal exits at once, still consistent (every batch is
its own transaction). SIGHUP: reload routes and log level; a bad config is refused and
the old one kept.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from types import FrameType

import structlog
from structlog.contextvars import bind_contextvars

from syncd.bootstrap import (
    App,
    build_pull_jobs,
    build_router,
    build_scheduler,
    build_sftp_server,
    intake_options,
)
from syncd.domain import ConfigError, FileState
from syncd.intake.arrivals import Arrivals
from syncd.intake.ledger import FileEntry
from syncd.intake.watcher import Watcher
from syncd.log import configure_logging
from syncd.pipeline.routes import Router
from syncd.settings import Settings
from syncd.sftp.pull import PullAction

log = structlog.get_logger(__name__)

DRAIN_DEADLINE = 60.0  # seconds the worker gets to finish its batch after SIGTERM
SUPERVISE_PERIOD = 0.5


def watchdog_interval() -> float:
    """Half of systemd's WatchdogSec (``$WATCHDOG_USEC``) for this process, or never."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0 or (pid and pid != str(os.getpid())):
        return float("inf")
    return int(usec) / 2e6


def sd_notify(message: str) -> None:
    """Send ``message`` to systemd's notify socket, if any (no extra dependency)."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.sendto(message.encode(), address)
        except OSError as exc:
            log.warning("notify_failed", error=str(exc))


class Service:
    """Runs the daemon until a signal stops it."""

    def __init__(self, app: App, reload_settings: Callable[[], Settings]) -> None:
        self._app = app
        self._reload_settings = reload_settings
        self._router: Router = app.router
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._hup = threading.Event()
        self._arrivals = Arrivals(app.store, app.ledger, lambda: self._router, self._wake.set)
        self._watcher = Watcher(app.store.sync_dir, intake_options(app.settings), self._arrivals.take)
        self._worker = threading.Thread(target=self._work, name="syncd-worker", daemon=True)
        self._pulls = build_pull_jobs(app.settings, app.store.sync_dir, self._stop)
        self._scheduler = build_scheduler(app, self._wake.set, self._pulls)
        self._scheduler_thread = threading.Thread(
            target=self._schedule, name="syncd-scheduler", daemon=True
        )
        self._sftp = build_sftp_server(app)
        self._hard_stop = threading.Event()
        self._problem: str | None = None
        self._status = ""
        self._next_ping = 0.0
        self._ping_every = watchdog_interval()

    def run(self) -> int:
        """Start everything, supervise, and stop cleanly. Returns the exit code."""
        self._install_signals()
        try:
            self._arrivals.recover()
            self._watcher.start()
            if self._sftp is not None:
                self._sftp.start()
            self._scheduler.start()  # makes up missed runs (coalesced) before the first tick
            self._worker.start()
            self._scheduler_thread.start()
            log.info("daemon_started", data_dir=str(self._app.settings.data_dir), pid=os.getpid())
            sd_notify("READY=1\nSTATUS=watching " + str(self._app.store.sync_dir))
            while not self._stop.wait(SUPERVISE_PERIOD):
                if self._hup.is_set():
                    self._hup.clear()
                    self._reload()
                self._supervise()
            return self._drain()
        finally:
            self._app.close()

    def _drain(self) -> int:
        """First signal: let the worker finish its batch; a second one exits at once."""
        log.info("daemon_stopping", reason="signal", doing=self._app.heartbeat.doing)
        sd_notify("STOPPING=1")
        if self._sftp is not None:
            self._sftp.stop()  # uploads in progress are discarded: the ERP sees them fail
        self._watcher.stop()
        self._wake.set()
        deadline = time.monotonic() + DRAIN_DEADLINE
        while self._worker.is_alive() and time.monotonic() < deadline:
            if self._hard_stop.wait(0.1):
                log.warning("daemon_stopped_at_once", note="second signal; the open batch is rolled back")
                return 130
        self._scheduler_thread.join(5.0)
        for job in self._pulls:  # a pull stops between files, or mid-download (its .part is dropped)
            action = job.action
            if isinstance(action, PullAction) and not action.join(max(0.0, deadline - time.monotonic())):
                log.warning("pull_still_running", job=job.name, note="left behind at exit")
        if self._worker.is_alive():
            log.error("drain_deadline_passed", seconds=DRAIN_DEADLINE)
            return 1
        log.info("daemon_stopped")
        return 0

    def _install_signals(self) -> None:
        def stop(_signum: int, _frame: FrameType | None) -> None:
            (self._hard_stop if self._stop.is_set() else self._stop).set()

        def hup(_signum: int, _frame: FrameType | None) -> None:
            self._hup.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, hup)

    def health(self) -> str | None:
        """None when intake, scheduler and worker are all well; else what is wrong."""
        stall = self._app.settings.service.stall_timeout
        if not self._watcher.healthy(max_age=stall):
            return "intake: observer or intake thread dead or stuck"
        if self._sftp is not None and not self._sftp.alive():
            return "sftp server dead"
        if not self._scheduler_thread.is_alive():
            return "scheduler thread dead"
        if not self._worker.is_alive():
            return "worker thread dead"
        age = self._app.heartbeat.age()
        if age > stall:
            return f"worker stalled for {age:.0f} s ({self._app.heartbeat.doing})"
        return None

    def _supervise(self) -> None:
        """Ping systemd's watchdog only while healthy; keep STATUS= current."""
        problem = self.health()
        if problem != self._problem:
            if problem:
                log.error("health_failed", problem=problem)
            else:
                log.info("health_restored")
            self._problem = problem
        now = time.monotonic()
        if problem is None and self._ping_every != float("inf") and now >= self._next_ping:
            sd_notify("WATCHDOG=1")
            self._next_ping = now + self._ping_every
        status = f"unhealthy: {problem}" if problem else self._app.heartbeat.doing
        if status != self._status:
            sd_notify(f"STATUS={status}")
            self._status = status

    def _reload(self) -> None:
        """SIGHUP: new routes, jobs and log level, all validated before any is swapped in.

        Intake options, databases, processor defaults and the SFTP server and pulls need a
        restart.
        """
        try:
            settings = self._reload_settings()
            router = build_router(settings)
            scheduler = build_scheduler(
                dataclasses.replace(self._app, settings=settings), self._wake.set, self._pulls
            )
        except ConfigError as exc:
            log.error("config_reload_refused", error=str(exc), note="keeping the running config")
            return
        scheduler.start()
        self._router, self._scheduler = router, scheduler
        configure_logging(settings.log.level, settings.log.format)
        log.info("config_reloaded", routes=len(settings.routes), jobs=len(settings.jobs))

    def _schedule(self) -> None:
        """The scheduler thread: tick the current scheduler (SIGHUP may swap it)."""
        bind_contextvars(component="scheduler")  # context vars do not flow into threads
        while not self._stop.wait(SUPERVISE_PERIOD):
            try:
                self._scheduler.tick()
            except Exception:
                log.exception("scheduler_tick_failed")

    def _work(self) -> None:
        bind_contextvars(component="worker")
        failures = 0
        while not self._stop.is_set():
            try:
                self._wake.clear()  # before reading the ledger: a wake-up is never lost
                entry = self._app.ledger.next_ready()
                if entry is None:
                    self._app.heartbeat.beat(self._idle_status())
                    self._wake.wait(1.0)
                    continue
                if self._gathering(entry):
                    self._app.heartbeat.beat("waiting for a higher-priority upload to settle")
                    self._stop.wait(0.1)  # files uploaded together: apply in priority order
                    continue
                self._app.runner.run(entry, self._stop)
                failures = 0
            except Exception:
                failures += 1
                log.exception("worker_error", consecutive=failures)
                self._stop.wait(min(2.0**failures, 60.0))

    def _idle_status(self) -> str:
        waiting = self._app.ledger.open_count()
        status = f"idle, watching {self._app.store.sync_dir}"
        return status + (f"; {waiting} file(s) waiting" if waiting else "")

    def _gathering(self, entry: FileEntry) -> bool:
        """Whether to wait for an upload still settling that must be applied before ``entry``.

        Only uploads whose name routes them to a higher-priority processor (users before
        enrolments...) hold the worker back, and at most ``gather_max`` seconds: a steady
        stream of files of the same kind never stalls the queue.
        """
        if entry.state is not FileState.RECEIVED:
            return False
        waited = self._app.clock() - entry.arrived_at
        if waited >= timedelta(seconds=self._app.settings.intake.gather_max):
            return False
        for rel in self._watcher.pending_paths():
            priority = self._router.priority_by_name(rel)
            if priority is not None and priority < entry.priority:
                return True
        return False
