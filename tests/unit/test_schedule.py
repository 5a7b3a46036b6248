"""The scheduler with an injected clock: cron parsing, ticks, coalescing, grace, no overlap."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from syncd.domain import ConfigError
from syncd.schedule import Job, Scheduler, parse_cron

UTCZ = ZoneInfo("UTC")
T0 = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)  # a Monday


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Runs:
    """An in-memory RunLog."""

    def __init__(self, last: dict[str, datetime] | None = None) -> None:
        self.last = dict(last or {})
        self.outcomes: list[tuple[str, datetime, str]] = []

    def last_fire(self, name: str) -> datetime | None:
        return self.last.get(name)

    def record_fire(self, name: str, fired_at: datetime, outcome: str) -> None:
        self.last[name] = fired_at
        self.outcomes.append((name, fired_at, outcome))


class Recorder:
    def __init__(self) -> None:
        self.fired: list[datetime] = []

    def __call__(self, job: Job, fired_at: datetime) -> str:
        self.fired.append(fired_at)
        return "ok"


def job(cron: str, action: Recorder, tz: ZoneInfo = UTCZ) -> Job:
    return Job("nightly", cron, parse_cron(cron, tz, "job[0].cron"), action)


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("30 2 * * 0", "write the day of week with names"),
        ("30 2 * * 1-5", "write the day of week with names"),
        ("30 2 * *", "a cron expression has 5 fields"),
        ("61 2 * * *", "job[0].cron: Error validating expression '61'"),
    ],
)
def test_bad_cron_is_refused(expr: str, message: str) -> None:
    """Numbers for day-of-week (crontab's Sunday=0 pitfall), wrong field counts and ranges are refused."""
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_cron(expr, UTCZ, "job[0].cron")


def test_day_names_mean_what_they_say() -> None:
    """'sun' fires on Sunday; 'mon-fri' skips the weekend."""
    sunday = parse_cron("0 6 * * sun", UTCZ, "x").get_next_fire_time(None, T0)
    assert sunday is not None and sunday.strftime("%A %H:%M") == "Sunday 06:00"
    weekdays = parse_cron("0 6 * * mon-fri", UTCZ, "x")
    fire, days = T0, []
    for _ in range(7):
        fire = weekdays.get_next_fire_time(fire, fire + timedelta(seconds=1))
        days.append(fire.strftime("%a"))
    assert days == ["Mon", "Tue", "Wed", "Thu", "Fri", "Mon", "Tue"]


def test_time_zone_of_a_job() -> None:
    """A job's cron is read in its own time zone (02:30 Paris is 01:30 UTC in winter)."""
    trigger = parse_cron("30 2 * * *", ZoneInfo("Europe/Paris"), "x")
    fire = trigger.get_next_fire_time(None, T0)
    assert fire is not None and fire.astimezone(UTC).strftime("%H:%M") == "01:30"


def test_tick_fires_when_due_and_plans_the_next() -> None:
    """A job fires at its time, once, and the next fire time moves on."""
    clock, action, runs = Clock(T0), Recorder(), Runs({"nightly": T0 - timedelta(hours=1)})
    scheduler = Scheduler([job("30 2 * * *", action)], runs, clock, grace=3600)
    scheduler.start()
    clock.now = T0 + timedelta(hours=1, minutes=29)
    scheduler.tick()
    assert action.fired == []
    clock.now = T0 + timedelta(hours=1, minutes=30)
    scheduler.tick()
    scheduler.tick()
    assert action.fired == [datetime(2026, 11, 23, 2, 30, tzinfo=UTC)]
    (name, cron, nxt), = scheduler.next_runs()
    assert (name, cron) == ("nightly", "30 2 * * *") and nxt == datetime(2026, 11, 24, 2, 30, tzinfo=UTC)


def test_several_passed_fire_times_are_one_run() -> None:
    """After a clock jump over three fire times, the job runs once."""
    clock, action = Clock(T0), Recorder()
    scheduler = Scheduler([job("*/10 * * * *", action)], Runs({"nightly": T0}), clock, grace=3600)
    scheduler.start()
    clock.now = T0 + timedelta(minutes=35)
    scheduler.tick()
    assert len(action.fired) == 1


def test_missed_runs_within_grace_are_made_up_once() -> None:
    """Two runs missed while down are coalesced into one, for the latest (30 min ago, grace 1 h)."""
    clock, action = Clock(datetime(2026, 11, 25, 3, 0, tzinfo=UTC)), Recorder()
    runs = Runs({"nightly": T0})
    Scheduler([job("30 2 * * *", action)], runs, clock, grace=3600).start()
    assert action.fired == [datetime(2026, 11, 25, 2, 30, tzinfo=UTC)]
    assert runs.last["nightly"] == datetime(2026, 11, 25, 2, 30, tzinfo=UTC)


def test_missed_run_past_grace_is_dropped() -> None:
    """A missed run older than the grace is logged and dropped, not run."""
    clock, action = Clock(datetime(2026, 11, 25, 4, 0, tzinfo=UTC)), Recorder()
    runs = Runs({"nightly": T0})
    Scheduler([job("30 2 * * *", action)], runs, clock, grace=3600).start()
    assert action.fired == []
    assert runs.outcomes[-1][2] == "dropped: past grace"


def test_first_start_runs_nothing_missed() -> None:
    """A job that never ran has missed nothing: its baseline is set to now."""
    clock, action, runs = Clock(T0), Recorder(), Runs()
    Scheduler([job("* * * * *", action)], runs, clock, grace=3600).start()
    assert action.fired == [] and runs.last["nightly"] == T0


def test_no_two_runs_of_a_job_at_once() -> None:
    """A fire time that comes while the previous run is still going is skipped, not overlapped."""
    clock = Clock(T0)
    inner: list[str] = []

    class Slow:
        def __call__(self, job: Job, fired_at: datetime) -> str:
            clock.now += timedelta(minutes=1)  # the run takes past the next fire time
            scheduler.tick()  # the scheduler ticks again meanwhile
            inner.append(fired_at.isoformat())
            return "ok"

    scheduler = Scheduler([Job("every", "* * * * *", parse_cron("* * * * *", UTCZ, "x"), Slow())],
                          Runs({"every": T0}), clock, grace=3600)
    scheduler.start()
    clock.now = T0 + timedelta(minutes=1)
    scheduler.tick()
    assert len(inner) == 1


def test_a_failing_job_is_logged_and_the_scheduler_goes_on() -> None:
    """An exception in a job is recorded as its outcome; later ticks still fire."""
    clock, runs = Clock(T0), Runs({"bad": T0})
    calls: list[datetime] = []

    def broken(job: Job, fired_at: datetime) -> str:
        calls.append(fired_at)
        raise OSError("disk full")

    scheduler = Scheduler([Job("bad", "* * * * *", parse_cron("* * * * *", UTCZ, "x"), broken)],
                          runs, clock, grace=60)
    scheduler.start()
    for minutes in (1, 2):
        clock.now = T0 + timedelta(minutes=minutes)
        scheduler.tick()
    assert len(calls) == 2 and runs.outcomes[-1][2] == "error: OSError: disk full"
