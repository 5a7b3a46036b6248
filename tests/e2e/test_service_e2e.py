"""syncd as a systemd service, end to end: a real ``syncd run`` talking to a notify socket.

The test binds the unix datagram socket systemd would (``NOTIFY_SOCKET``) and sets
``WATCHDOG_USEC``, so every READY=1 / STATUS= / WATCHDOG=1 / STOPPING=1 the daemon sends
is recorded with its arrival time. A worker is made to hang for real by holding an
exclusive lock on the SQLite database. Signals are real signals; scheduled jobs fire
on the real clock (one test waits for a minute boundary and is marked slow).
"""

from __future__ import annotations

import contextlib
import itertools
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.e2e.writers import Sections, csv_bytes, user_rows, users_csv, write_config, write_then_rename

if TYPE_CHECKING:
    from tests.e2e.conftest import Cli, Daemon, Layout, StartDaemon

WATCHDOG_USEC = 1_000_000  # WatchdogSec=1s: the daemon pings every 0.5 s
ROWS = 40_000  # big enough that a signal always lands mid-file (batch 200)
STAFF_ROUTE = '[[route]]\nglob = "staff*.csv"\nprocessor = "users"\nmode = "create_only"\n'
JOB = (
    '[[job]]\nname = "nightly_users"\nprocessor = "users"\n'
    'file = "preselected/users.csv"\ncron = "* * * * *"\n'
)


class NotifySocket:
    """The test's stand-in for systemd's notify socket: every line received, with its time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(path))
        self._sock.settimeout(0.2)
        self._lines: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._closed.is_set():
            try:
                data = self._sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            now = time.monotonic()
            with self._lock:
                self._lines += [(now, line) for line in data.decode().splitlines() if line]

    def lines(self, prefix: str = "", since: float = 0.0) -> list[str]:
        """The lines starting with ``prefix`` received after the monotonic time ``since``."""
        with self._lock:
            return [line for at, line in self._lines if at > since and line.startswith(prefix)]

    def times(self, line: str) -> list[float]:
        """When each copy of exactly ``line`` arrived (monotonic seconds)."""
        with self._lock:
            return [at for at, got in self._lines if got == line]

    def close(self) -> None:
        """Stop receiving and remove the socket file."""
        self._closed.set()
        self._thread.join(2)
        self._sock.close()
        self.path.unlink(missing_ok=True)


@pytest.fixture
def notify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[NotifySocket]:
    """A bound notify socket; daemons started in this test get NOTIFY_SOCKET and WATCHDOG_USEC."""
    short_dir: Path | None = None
    path = tmp_path / "notify.sock"
    if len(str(path)) >= 100:  # sun_path holds 108 bytes
        short_dir = Path(tempfile.mkdtemp(prefix="syncd-notify-"))
        path = short_dir / "n.sock"
    sock = NotifySocket(path)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    monkeypatch.setenv("WATCHDOG_USEC", str(WATCHDOG_USEC))
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    yield sock
    sock.close()
    if short_dir is not None:
        shutil.rmtree(short_dir, ignore_errors=True)


def rewrite_config(path: Path, overrides: Sections | None = None, *, top: str = "", tables: str = "") -> None:
    """The test config with ``overrides``; ``top`` goes before the tables, ``tables`` after them."""
    write_config(path, overrides)
    path.write_text(top + path.read_text(encoding="utf-8") + tables, encoding="utf-8")


def configured(start_daemon: StartDaemon, overrides: Sections | None = None, *,
               top: str = "", tables: str = "") -> Daemon:
    """A started daemon whose config also has ``top`` keys and ``tables`` ([[route]], [[job]])."""
    daemon = start_daemon(overrides, start=False)
    rewrite_config(daemon.config, overrides, top=top, tables=tables)
    return daemon.start()


@contextlib.contextmanager
def exclusive_lock(db: Path) -> Iterator[None]:
    """Hold SQLite's write lock on ``db``: every write of the daemon waits until release."""
    conn = sqlite3.connect(db, timeout=30, isolation_level=None)
    try:
        conn.execute("BEGIN EXCLUSIVE")
        yield
    finally:
        conn.execute("ROLLBACK")
        conn.close()


def signal_and_wait_stopping(daemon: Daemon, notify: NotifySocket) -> None:
    """SIGTERM the daemon and wait for its STOPPING=1."""
    assert daemon.proc is not None
    daemon.proc.send_signal(signal.SIGTERM)
    daemon.wait_for(lambda: notify.lines("STOPPING=1"), timeout=10, what="STOPPING=1")


def wait_exit(daemon: Daemon, timeout: float) -> int:
    """The daemon's exit code, once it exited (fails after ``timeout``)."""
    assert daemon.proc is not None
    try:
        return daemon.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"syncd still running {timeout:.0f}s after the signal\n{daemon.tail()}")


def assert_finished_once(daemon: Daemon, layout: Layout, name: str, data: bytes) -> dict[str, Any]:
    """Wait for ``name`` to be done: every row created once, one archive, one report."""
    entry = daemon.wait_file(name, timeout=120)
    assert entry["state"] == "done", entry
    report = layout.done_report(name, data)
    assert report["counts"]["created"] == ROWS and report["counts"]["error"] == 0, report["counts"]
    assert sorted(r["line"] for r in report["rows"]) == list(range(2, ROWS + 2))
    users = [u["username"] for u in layout.users()]
    assert len(users) == len(set(users)) == ROWS
    assert len(layout.files(layout.reports)) == 2, layout.files(layout.reports)  # .txt + .json
    assert [e["state"] for e in layout.entries(name)] == ["done"]
    return report


def start_big_file(start_daemon: StartDaemon, layout: Layout, name: str,
                   overrides: Sections | None = None) -> tuple[Daemon, bytes]:
    """A daemon applying a ROWS-row users file, returned once some batches are committed."""
    data = users_csv(ROWS, name.split(".")[0])
    daemon = start_daemon({"processing": {"batch_size": 200}, **(overrides or {})})
    write_then_rename(layout.sync, name, data, temp=".name.tmp")
    daemon.wait_for(lambda: layout.user_count() >= 1_000, timeout=60, what="1000 rows committed")
    return daemon, data


def test_ready_status_and_watchdog_pings_reach_the_notify_socket(
    notify: NotifySocket, start_daemon: StartDaemon, layout: Layout
) -> None:
    """READY=1 first and once, STATUS= naming the drop folder, WATCHDOG=1 about every 0.5 s."""
    daemon = start_daemon()
    daemon.wait_for(lambda: notify.lines("READY=1"), timeout=10, what="READY=1")
    assert notify.lines()[0] == "READY=1", notify.lines()[:5]
    daemon.wait_for(lambda: notify.lines("STATUS="), timeout=10, what="a STATUS= line")
    assert any(str(layout.sync) in line for line in notify.lines("STATUS=")), notify.lines("STATUS=")

    since = time.monotonic()
    window = 3.0
    daemon.wait_for(lambda: time.monotonic() - since >= window, timeout=10, what="the window")
    pings = len(notify.lines("WATCHDOG=1", since=since))
    assert 3 <= pings <= 12, f"{pings} pings in {window} s at WATCHDOG_USEC={WATCHDOG_USEC}"
    assert notify.lines("READY=1") == ["READY=1"]
    assert daemon.stop() == 0
    assert notify.lines("STOPPING=1") == ["STOPPING=1"]


def test_watchdog_pings_stop_while_the_worker_hangs_and_resume_after(
    notify: NotifySocket, start_daemon: StartDaemon, layout: Layout
) -> None:
    """A worker stuck on a locked database stops the pings (health_failed); release: they resume."""
    daemon, data = start_big_file(start_daemon, layout, "users_hang.csv", {"service": {"stall_timeout": 2}})
    with exclusive_lock(layout.db):
        failed = daemon.wait_event("health_failed", timeout=15)
        seen = time.monotonic()
        assert "worker stalled" in failed["problem"], failed
        held = layout.user_count()
        daemon.assert_holds(lambda: not notify.lines("WATCHDOG=1", since=seen), 3.0,
                            "no WATCHDOG=1 while the worker hangs")
        assert layout.user_count() == held, "rows were committed through the lock"
        assert [e["state"] for e in layout.entries("users_hang.csv")] == ["processing"]
        assert any(s.startswith("STATUS=unhealthy: worker stalled") for s in notify.lines("STATUS="))
    released = time.monotonic()

    daemon.wait_event("health_restored", timeout=40)
    daemon.wait_for(lambda: len(notify.lines("WATCHDOG=1", since=released)) >= 2, timeout=40,
                    what="pings after the lock was released")
    pings = notify.times("WATCHDOG=1")
    assert max(b - a for a, b in itertools.pairwise(pings)) > 2.5, "no gap in the pings"
    assert_finished_once(daemon, layout, "users_hang.csv", data)
    assert daemon.stop() == 0


def test_sigterm_mid_file_stops_cleanly_and_a_restart_finishes_it_once(
    notify: NotifySocket, start_daemon: StartDaemon, layout: Layout
) -> None:
    """SIGTERM mid-file: STOPPING=1, the current batch committed, exit 0; restart: every row once."""
    daemon, data = start_big_file(start_daemon, layout, "users_term.csv")
    signal_and_wait_stopping(daemon, notify)
    assert wait_exit(daemon, 30) == 0, daemon.tail()

    committed = layout.user_count()
    assert 0 < committed < ROWS, f"{committed} rows committed: the signal did not land mid-file"
    assert committed % 200 == 0, f"{committed} rows: the last batch was not finished whole"
    assert daemon.events("file_interrupted", records_done=committed), daemon.tail()
    assert daemon.events("daemon_stopped")
    assert [e["state"] for e in layout.entries("users_term.csv")] == ["processing"]
    assert layout.report_jsons() == []

    daemon.start()
    daemon.wait_event("file_resumed_at", start=2, records_done=committed)
    assert_finished_once(daemon, layout, "users_term.csv", data)
    assert daemon.stop() == 0


def test_second_sigterm_during_the_drain_exits_at_once_and_a_restart_finishes_once(
    notify: NotifySocket, start_daemon: StartDaemon, layout: Layout
) -> None:
    """A second SIGTERM while the batch is stuck exits 130 at once; the restart applies each row once."""
    daemon, data = start_big_file(start_daemon, layout, "users_twice.csv")
    with exclusive_lock(layout.db):
        held = layout.user_count()
        signal_and_wait_stopping(daemon, notify)
        daemon.wait_event("daemon_stopping", timeout=10)
        assert daemon.alive(), "the drain should be waiting for the stuck batch"
        assert daemon.proc is not None
        daemon.proc.send_signal(signal.SIGTERM)
        assert wait_exit(daemon, 10) == 130, daemon.tail()
    assert daemon.events("daemon_stopped_at_once")
    assert layout.user_count() == held, "the stuck batch was committed after all"
    assert [e["state"] for e in layout.entries("users_twice.csv")] == ["processing"]

    daemon.start()
    assert_finished_once(daemon, layout, "users_twice.csv", data)
    assert daemon.stop() == 0


def test_sighup_with_a_new_route_takes_effect(
    notify: NotifySocket, start_daemon: StartDaemon, layout: Layout
) -> None:
    """Staff files are sniffed (create_or_update) until SIGHUP adds a create_only route; then it applies."""
    daemon = start_daemon()
    first = csv_bytes(user_rows(2, "a"))
    write_then_rename(layout.sync, "staff_a.csv", first)
    before = daemon.wait_file("staff_a.csv")
    assert (before["state"], before["routed_by"]) == ("done", "sniffed"), before
    assert "mode=create_or_update" in layout.done_report("staff_a.csv", first)["options"]

    rewrite_config(daemon.config, tables=STAFF_ROUTE)
    assert daemon.proc is not None
    daemon.proc.send_signal(signal.SIGHUP)
    daemon.wait_event("config_reloaded", routes=1)

    renamed = [["a000000", "Renamed", "Last0", "a0@example.org", "a-id-0"], *user_rows(1, "b")]
    second = csv_bytes(renamed)
    write_then_rename(layout.sync, "staff_b.csv", second)
    after = daemon.wait_file("staff_b.csv")
    assert (after["state"], after["routed_by"]) == ("done", "glob"), after
    report = layout.done_report("staff_b.csv", second)
    assert "mode=create_only" in report["options"], report["options"]
    assert (report["counts"]["created"], report["counts"]["skipped"]) == (1, 1), report["counts"]
    assert [u["firstname"] for u in layout.users() if u["username"] == "a000000"] == ["First0"]
    assert daemon.alive() and daemon.errors() == []


def test_sighup_with_a_broken_config_keeps_the_old_one(
    notify: NotifySocket, start_daemon: StartDaemon, layout: Layout
) -> None:
    """A reload of an invalid config is refused naming the key; the old routes keep working."""
    daemon = configured(start_daemon, tables=STAFF_ROUTE)
    rewrite_config(daemon.config, {"intake": {"settle": "soon"}}, tables=STAFF_ROUTE)
    assert daemon.proc is not None
    daemon.proc.send_signal(signal.SIGHUP)
    refused = daemon.wait_event("config_reload_refused")
    assert "intake.settle" in refused["error"] and "soon" in refused["error"], refused
    assert not daemon.events("config_reloaded")

    data = csv_bytes(user_rows(3, "c"))
    write_then_rename(layout.sync, "staff_c.csv", data)
    entry = daemon.wait_file("staff_c.csv")
    assert (entry["state"], entry["routed_by"]) == ("done", "glob"), entry
    assert "mode=create_only" in layout.done_report("staff_c.csv", data)["options"]
    assert daemon.alive()
    assert notify.lines("WATCHDOG=1"), "the daemon stopped pinging after the refused reload"


def test_sighup_with_a_broken_job_is_refused(
    notify: NotifySocket, start_daemon: StartDaemon, layout: Layout
) -> None:
    """A reloaded config whose [[job]] cron is invalid is refused naming job[0].cron, as at start."""
    daemon = configured(start_daemon, tables=STAFF_ROUTE)
    bad_job = JOB.replace('cron = "* * * * *"', 'cron = "0 3 * * 0"')
    rewrite_config(daemon.config, tables=STAFF_ROUTE + bad_job)
    assert daemon.proc is not None
    daemon.proc.send_signal(signal.SIGHUP)
    daemon.wait_for(lambda: daemon.events("config_reload_refused") or daemon.events("config_reloaded"),
                    what="the reload to be handled")
    refused = daemon.events("config_reload_refused")
    assert refused, f"the bad job was accepted: {daemon.events('config_reloaded')}"
    assert "job[0].cron" in refused[0]["error"], refused
    assert daemon.alive()


def _put_preselected(layout: Layout, data: bytes) -> Path:
    """Write store/preselected/users.csv (folders 0700, file 0600, as syncd makes them)."""
    folder = layout.store / "preselected"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    layout.store.chmod(0o700)
    path = folder / "users.csv"
    path.write_bytes(data)
    path.chmod(0o600)
    return path


def _job_ran_at_a_later_minute(daemon: Daemon, started: datetime) -> datetime:
    """The fire time of the job's first run: a minute boundary after ``started``."""
    ran = daemon.wait_event("job_ran", timeout=75, job="nightly_users")
    fired = datetime.fromisoformat(ran["fired_at"])
    assert fired > started and (fired.second, fired.microsecond) == (0, 0), (ran, started)
    assert ran["outcome"].startswith("queued file"), ran
    return fired


@pytest.mark.slow
def test_scheduled_job_runs_the_preselected_file_at_the_next_minute(
    notify: NotifySocket, start_daemon: StartDaemon, layout: Layout, cli: Cli
) -> None:
    """An every-minute job does not run at first start; at the next minute it archives the file."""
    data = users_csv(5, "sched")
    preselected = _put_preselected(layout, data)
    daemon = configured(start_daemon, {"scheduler": {"grace": 120}}, tables=JOB)
    started = datetime.fromisoformat(daemon.wait_event("daemon_started")["ts"])
    assert not daemon.events("job_missed_run_coalesced"), "a fresh ledger has no missed run"

    fired = _job_ran_at_a_later_minute(daemon, started)
    entry = daemon.wait_file("job:nightly_users:preselected/users.csv")
    assert (entry["state"], entry["routed_by"], entry["processor"]) == ("done", "job", "users"), entry
    assert not preselected.exists()
    report = layout.done_report("users.csv", data)
    assert report["counts"]["created"] == 5, report["counts"]

    result = cli("schedules", config=daemon.config)
    assert result.returncode == 0, result.stdout + result.stderr
    line = next((x for x in result.stdout.splitlines() if x.startswith("nightly_users ")), None)
    assert line is not None, result.stdout
    assert "* * * * *" in line and f"last {fired.isoformat()}" in line, line
    nxt = datetime.fromisoformat(line.split(" next ", 1)[1].split()[0])
    assert nxt > fired and (nxt.second, nxt.microsecond) == (0, 0), line
    assert daemon.stop() == 0


@pytest.mark.slow
def test_sighup_adding_a_job_schedules_it(
    notify: NotifySocket, start_daemon: StartDaemon, layout: Layout
) -> None:
    """A [[job]] added by SIGHUP runs at its next cron time without a restart."""
    data = users_csv(3, "hup")
    _put_preselected(layout, data)
    daemon = start_daemon({"scheduler": {"grace": 120}})
    rewrite_config(daemon.config, {"scheduler": {"grace": 120}}, tables=JOB)
    assert daemon.proc is not None
    daemon.proc.send_signal(signal.SIGHUP)
    reloaded_at = datetime.fromisoformat(daemon.wait_event("config_reloaded")["ts"])

    _job_ran_at_a_later_minute(daemon, reloaded_at)
    entry = daemon.wait_file("job:nightly_users:preselected/users.csv")
    assert entry["state"] == "done", entry
    assert daemon.stop() == 0
