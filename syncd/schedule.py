"""Cron-like jobs: APScheduler's cron triggers, our own clock-driven tick.

APScheduler parses the crontab expressions and computes fire times
(``CronTrigger.get_next_fire_time``); the loop that fires them is ours so that the clock
is passed in and tests need no sleeps. Rules (SPEC §6):

- Day-of-week must be written with names (``mon-fri``): crontab reads ``0`` as Sunday,
  APScheduler as Monday, so numbers are refused rather than silently shifted.
- One run of a job at a time: a job whose previous run is still going is skipped
  (logged ``job_skipped``), not queued twice.
- Runs missed while syncd was down are coalesced into one run at start, if the latest
  missed fire time is within ``grace`` seconds; older ones are logged and dropped.
- Several fire times passed at once (a suspended machine, a clock jump) are one run.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import structlog
from apscheduler.triggers.cron import CronTrigger
from structlog.contextvars import bound_contextvars

from syncd.domain import ConfigError

log = structlog.get_logger(__name__)


def parse_cron(expr: str, tz: ZoneInfo, where: str) -> CronTrigger:
    """A trigger for a 5-field crontab expression; ConfigError names ``where`` on a bad one."""
    fields = expr.split()
    if len(fields) != 5:
        raise ConfigError(
            f"{where}: a cron expression has 5 fields: minute hour day month day-of-week (got {expr!r})"
        )
    if any(ch.isdigit() for ch in fields[4]):
        raise ConfigError(
            f"{where}: write the day of week with names (mon,tue,...,sun or mon-fri), not numbers "
            f"(crontab's 0 is Sunday, APScheduler's is Monday) (got {fields[4]!r})"
        )
    try:
        return CronTrigger.from_crontab(expr, timezone=tz)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc} (got {expr!r})") from None


class JobAction(Protocol):
    """What a job does when it fires; returns a short outcome for the log."""

    def __call__(self, job: Job, fired_at: datetime) -> str:
        """Run once for the fire time ``fired_at``."""
        ...


class RunLog(Protocol):
    """Where the last fire time of each job is kept (the ledger database)."""

    def last_fire(self, name: str) -> datetime | None:
        """The last fire time handled for ``name``, or None if it never ran."""
        ...

    def record_fire(self, name: str, fired_at: datetime, outcome: str) -> None:
        """Remember that ``name`` handled ``fired_at`` with ``outcome``."""
        ...


@dataclass(frozen=True, slots=True)
class Job:
    """A configured job: a name, a trigger and what to do."""

    name: str
    cron: str
    trigger: CronTrigger
    action: JobAction
    options: Mapping[str, Any] = field(default_factory=dict)


class Scheduler:
    """Fires jobs at their cron times, one run per job at a time, clock passed in."""

    def __init__(
        self, jobs: Sequence[Job], runs: RunLog, clock: Callable[[], datetime], grace: float
    ) -> None:
        self._jobs = {job.name: job for job in jobs}
        self._runs = runs
        self._now = clock
        self._grace = timedelta(seconds=grace)
        self._next: dict[str, datetime | None] = {}
        self._running: set[str] = set()
        self._lock = threading.Lock()
        self.last_tick: datetime | None = None

    def start(self) -> None:
        """Plan every job and make up, once, the runs missed while syncd was down."""
        now = self._now()
        for job in self._jobs.values():
            missed = self._missed(job, now)
            self._next[job.name] = job.trigger.get_next_fire_time(None, now)
            if missed is not None:
                if now - missed <= self._grace:
                    log.info("job_missed_run_coalesced", job=job.name, missed_at=missed.isoformat())
                    self._fire(job, missed)
                else:
                    log.warning("job_missed_run_dropped", job=job.name, missed_at=missed.isoformat(),
                                grace_s=self._grace.total_seconds())
                    self._runs.record_fire(job.name, missed, "dropped: past grace")

    def _missed(self, job: Job, now: datetime) -> datetime | None:
        """The latest fire time in (last handled, now], or None (never ran: nothing missed)."""
        last = self._runs.last_fire(job.name)
        if last is None:
            self._runs.record_fire(job.name, now, "first start")
            return None
        latest, fire = None, job.trigger.get_next_fire_time(None, last + timedelta(seconds=1))
        while fire is not None and fire <= now:
            latest = fire
            fire = job.trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
        return latest

    def tick(self) -> None:
        """Fire every job that is due (several passed fire times count as one)."""
        now = self._now()
        self.last_tick = now
        for name, due in list(self._next.items()):
            if due is None or due > now:
                continue
            job = self._jobs[name]
            self._next[name] = job.trigger.get_next_fire_time(due, now)
            self._fire(job, due)

    def _fire(self, job: Job, fired_at: datetime) -> None:
        with self._lock:
            if job.name in self._running:
                log.warning("job_skipped", job=job.name, reason="previous run still going")
                return
            self._running.add(job.name)
        try:
            with bound_contextvars(job=job.name, fired_at=fired_at.isoformat()):
                outcome = job.action(job, fired_at)
                log.info("job_ran", outcome=outcome)
        except Exception as exc:
            outcome = f"error: {type(exc).__name__}: {exc}"
            log.exception("job_failed", job=job.name)
        finally:
            with self._lock:
                self._running.discard(job.name)
        self._runs.record_fire(job.name, fired_at, outcome)

    def next_runs(self) -> list[tuple[str, str, datetime | None]]:
        """(name, cron, next fire time) of every job, soonest first."""
        now = self._now()
        rows = [
            (job.name, job.cron, self._next.get(job.name) or job.trigger.get_next_fire_time(None, now))
            for job in self._jobs.values()
        ]
        return sorted(rows, key=lambda r: (r[2] is None, r[2] or now))
