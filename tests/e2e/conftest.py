"""End-to-end harness: a real ``syncd run`` process, its data folder, its databases, its CLI.

:class:`Daemon` starts ``python -m syncd ... run`` with JSON logs, reads every stdout
line on a thread (JSON events parsed, other lines kept), and waits on conditions with a
deadline (:meth:`Daemon.wait_for`), never on a fixed sleep. :class:`Layout` knows the
``<data>`` folders and reads the ledger and platform tables through read-only SQLite
connections. Every daemon is stopped in teardown; a failed test gets the last log lines
of its daemons in its report.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest

from tests.e2e.writers import Sections, record_count, write_config

REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")
Event = dict[str, Any]

DEFAULT_TIMEOUT = 30.0
POLL = 0.05
RESERVED = ("archives", "reports", "tryback", "failed")


def syncd_env() -> dict[str, str]:
    """The environment of a syncd process: JSON logs, this checkout importable, no stray SYNCD_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
    env["SYNCD_LOG__FORMAT"] = "json"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def archive_pattern(name: str) -> re.Pattern[str]:
    """``YYYYmmdd-HHMMSS_<name>``, with an optional ``-N`` before the extension."""
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        stem, ext = name, ""
    suffix = re.escape("." + ext) if ext else ""
    return re.compile(rf"[0-9]{{8}}-[0-9]{{6}}_{re.escape(stem)}(-[0-9]+)?{suffix}", re.DOTALL)


class Layout:
    """The ``<data>`` folder of one test, and read-only views of its databases."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.sync = root / "sync"
        self.store = root / "store"
        self.archives = self.store / "archives"
        self.reports = self.store / "reports"
        self.tryback = self.store / "tryback"
        self.failed = self.store / "failed"
        self.db = root / "state" / "syncd.db"

    def query(self, sql: str, params: tuple[object, ...] = ()) -> list[dict[str, Any]]:
        """Rows of ``sql`` on the state database, opened read-only for this one query."""
        if not self.db.exists():
            return []
        uri = f"file:{urllib.parse.quote(str(self.db))}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, timeout=10)
        try:
            conn.row_factory = sqlite3.Row
            return [dict(r) for r in conn.execute(sql, params).fetchall()]
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return []
            raise
        finally:
            conn.close()

    def users(self) -> list[dict[str, Any]]:
        """Every row of the platform's ``users`` table, by id."""
        return self.query("SELECT * FROM users ORDER BY id")

    def user_count(self) -> int:
        """How many platform users exist."""
        rows = self.query("SELECT count(*) AS n FROM users")
        return int(rows[0]["n"]) if rows else 0

    def ledger(self) -> list[dict[str, Any]]:
        """Every ledger entry (``syncd_files``), by id."""
        return self.query("SELECT * FROM syncd_files ORDER BY id")

    def entries(self, original: str) -> list[dict[str, Any]]:
        """Ledger entries of the file that arrived as ``sync/<original>``."""
        return [e for e in self.ledger() if e["original_path"] == original]

    def files(self, folder: Path) -> list[Path]:
        """Regular files directly in ``folder`` (none if it does not exist)."""
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.iterdir() if p.is_file() and not p.is_symlink())

    def report_jsons(self) -> list[dict[str, Any]]:
        """Every JSON report in reports/, each with a ``_path`` key."""
        return [
            {**json.loads(p.read_text(encoding="utf-8")), "_path": p}
            for p in self.files(self.reports)
            if p.name.endswith(".report.json")
        ]

    def archived(self, name: str) -> list[Path]:
        """The archived copies of a file that arrived as ``name``."""
        pattern = archive_pattern(name)
        return [p for p in self.files(self.archives) if pattern.fullmatch(p.name)]

    def failed_copies(self, name: str) -> list[Path]:
        """The copies of ``name`` in failed/ (their reports excluded)."""
        pattern = archive_pattern(name)
        return [p for p in self.files(self.failed) if pattern.fullmatch(p.name)]

    def report_of(self, final: Path) -> dict[str, Any]:
        """The JSON report of the archived or failed file ``final``."""
        folder = self.reports if final.parent == self.archives else final.parent
        path = folder / f"{final.name}.report.json"
        return {**json.loads(path.read_text(encoding="utf-8")), "_path": path}

    @staticmethod
    def _walk(root: Path, skip: tuple[str, ...] = ()) -> list[Path]:
        found: list[Path] = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if Path(dirpath) != root or d not in skip]
            found += [Path(dirpath, f) for f in filenames]
        return sorted(found)

    def operator_files(self) -> list[Path]:
        """Files in store/ outside the reserved folders (arrivals not finished, or unrouted)."""
        return self._walk(self.store, RESERVED)

    def sync_files(self) -> list[Path]:
        """Every entry left anywhere under sync/ (files, links, FIFOs)."""
        return self._walk(self.sync)

    def places(self, name: str) -> list[str]:
        """Where a file that arrived as ``name`` is: a list of sync/store/archives/failed."""
        where = [f"sync:{p.name}" for p in self.sync_files() if p.name == name]
        where += [f"store:{p.name}" for p in self.operator_files() if p.name == name]
        where += ["archives"] * len(self.archived(name))
        where += ["failed"] * len(self.failed_copies(name))
        return where

    def done_report(self, name: str, data: bytes) -> dict[str, Any]:
        """Check that ``name`` was archived once, byte for byte, with one complete report.

        Complete: a .txt and a .json twin, status done, one row per data record of the
        file, each line once, counts adding up. Returns the JSON report.
        """
        archives = self.archived(name)
        assert len(archives) == 1, f"{name!r}: expected one archived copy, found {archives}"
        assert archives[0].read_bytes() == data, f"{archives[0]}: not the bytes that were dropped"
        report = self.report_of(archives[0])
        assert report["_path"].with_suffix(".txt").is_file(), f"no text report beside {report['_path']}"
        rows = report["rows"]
        assert report["status"] == "done", report.get("error")
        assert len(rows) == record_count(data), f"{name!r}: report has {len(rows)} rows"
        assert len({r["line"] for r in rows}) == len(rows), "a line is reported twice"
        assert sum(report["counts"].values()) == len(rows)
        assert self.places(name) == ["archives"], self.places(name)
        return report

    def assert_no_partial_reports(self) -> None:
        """No report of an archived file has fewer (or more) rows than the file has records."""
        for report in self.report_jsons():
            archive = self.archives / report["_path"].name.removesuffix(".report.json")
            if archive.is_file():
                expected = record_count(archive.read_bytes())
                assert len(report["rows"]) == expected, (
                    f"{report['_path'].name}: {len(report['rows'])} rows, the file has {expected}"
                )

    def private_problems(self) -> list[str]:
        """Folders under store/ that are not 0700 and files that are not 0600."""
        paths = [(self.store, 0o700)]
        for dirpath, dirnames, filenames in os.walk(self.store):
            paths += [(Path(dirpath, d), 0o700) for d in dirnames]
            paths += [(Path(dirpath, f), 0o600) for f in filenames]
        modes = [(p, stat.S_IMODE(p.lstat().st_mode), want) for p, want in paths]
        return [f"{p}: {oct(mode)}" for p, mode, want in modes if mode != want]


class Daemon:
    """One ``syncd run`` process (restartable), its parsed log events and raw lines."""

    def __init__(self, cwd: Path, config: Path, layout: Layout, name: str = "syncd") -> None:
        self.cwd, self.config, self.layout, self.name = cwd, config, layout, name
        self.proc: subprocess.Popen[str] | None = None
        self.starts = 0
        self._lines: list[str] = []
        self._events: list[Event] = []
        self._lock = threading.Lock()
        self._reader: threading.Thread | None = None

    def start(self, timeout: float = DEFAULT_TIMEOUT) -> Daemon:
        """Start the process and wait for its ``daemon_started`` event."""
        assert not self.alive(), "the daemon is already running"
        self.starts += 1
        stderr = (self.cwd / f"{self.name}-{self.starts}.stderr").open("w")
        cmd = [sys.executable, "-m", "syncd", "--config", str(self.config),
               "--data", str(self.layout.root), "run"]
        self.proc = subprocess.Popen(
            cmd, cwd=self.cwd, env=syncd_env(), stdout=subprocess.PIPE, stderr=stderr,
            text=True, encoding="utf-8", errors="replace", bufsize=1,
        )
        stderr.close()
        self._reader = threading.Thread(target=self._read, args=(self.proc, self.starts), daemon=True)
        self._reader.start()
        self.wait_event("daemon_started", timeout=timeout, start=self.starts)
        return self

    def _read(self, proc: subprocess.Popen[str], start: int) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            event: Event | None = None
            try:
                parsed = json.loads(line)
                if isinstance(parsed, dict):
                    event = {**parsed, "_start": start}
            except ValueError:
                pass
            with self._lock:
                self._lines.append(line)
                if event is not None:
                    self._events.append(event)

    def alive(self) -> bool:
        """Whether the process runs."""
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = DEFAULT_TIMEOUT) -> int:
        """SIGTERM, wait for the exit, return the exit code (killed, and failed, after ``timeout``)."""
        assert self.proc is not None, "the daemon was never started"
        if not self._terminate(timeout):
            pytest.fail(f"syncd did not exit {timeout:.0f}s after SIGTERM\n{self.tail()}")
        return self.proc.returncode

    def _terminate(self, timeout: float) -> bool:
        """SIGTERM and reap; SIGKILL after ``timeout``. False if it had to be killed."""
        clean = True
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                clean = False
        self._join_reader()
        return clean

    def kill9(self) -> None:
        """SIGKILL the process and reap it."""
        assert self.proc is not None and self.alive(), "the daemon is not running"
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self._join_reader()

    def _join_reader(self) -> None:
        if self._reader is not None:
            self._reader.join(5)

    def events(self, name: str | None = None, **match: object) -> list[Event]:
        """Parsed events, optionally only ``name`` with these key/values (``start=N``: run N)."""
        start = match.pop("start", None)
        with self._lock:
            events = list(self._events)
        return [
            e for e in events
            if (name is None or e.get("event") == name)
            and (start is None or e["_start"] == start)
            and all(e.get(k) == v for k, v in match.items())
        ]

    def wait_for(self, predicate: Callable[[], T], timeout: float = DEFAULT_TIMEOUT,
                 what: str = "a condition") -> T:
        """Poll ``predicate`` until truthy; fail early if the daemon died, or at the deadline."""

        deadline = time.monotonic() + timeout
        while not (value := predicate()):
            if self.proc is not None and self.proc.poll() is not None:
                pytest.fail(f"syncd exited ({self.proc.returncode}) waiting for {what}\n{self.tail()}")
            if time.monotonic() >= deadline:
                pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}\n{self.tail()}")
            time.sleep(POLL)
        return value

    def assert_holds(self, predicate: Callable[[], object], seconds: float, what: str) -> None:
        """Watch ``predicate`` for ``seconds`` (an observation window): it must stay true."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            assert predicate(), f"no longer true: {what}\n{self.tail()}"
            time.sleep(POLL)
        assert predicate(), f"no longer true: {what}\n{self.tail()}"

    def wait_event(self, name: str, timeout: float = DEFAULT_TIMEOUT, **match: object) -> Event:
        """The first event ``name`` matching ``match``, waiting for it if needed."""
        found = self.wait_for(lambda: self.events(name, **match), timeout, f"event {name} {match}")
        return found[0]

    def wait_file(self, original: str, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
        """Wait until the file that arrived as ``sync/<original>`` is processed or failed.

        Returns its latest ledger entry (the ledger is written before the event is logged).
        """
        event = self.wait_for(
            lambda: [e for e in self.events(file=original)
                     if e.get("event") in ("file_processed", "file_failed")],
            timeout, f"{original!r} to be processed",
        )[-1]
        entries = [e for e in self.layout.entries(original) if e["id"] == event.get("file_id")]
        assert entries, f"no ledger entry for {original!r} (event {event})"
        return entries[0]

    def errors(self, expected: tuple[str, ...] = ("file_failed",)) -> list[Event]:
        """Events logged at error level or above, except the ``expected`` ones."""
        return [
            e for e in self.events()
            if e.get("level") in ("error", "critical") and e.get("event") not in expected
        ]

    def tail(self, count: int = 60) -> str:
        """The last log lines and stderr, for failure messages."""
        with self._lock:
            lines = self._lines[-count:]
        out = [f"--- {self.name}: last {count} stdout lines ---", *lines]
        for path in sorted(self.cwd.glob(f"{self.name}-*.stderr")):
            text = path.read_text(errors="replace").strip()
            if text:
                out += [f"--- {path.name} ---", *text.splitlines()[-count:]]
        return "\n".join(out)

    def close(self) -> None:
        """Teardown: stop the process whatever state it is in."""
        self._terminate(15)


class StartDaemon(Protocol):
    """The ``start_daemon`` fixture: a started daemon with config ``overrides``."""

    def __call__(self, overrides: Sections | None = None, *, name: str = "syncd",
                 start: bool = True) -> Daemon: ...


class Cli(Protocol):
    """The ``cli`` fixture: run ``syncd --config C --data D <args>`` to completion."""

    def __call__(self, *args: str, config: Path | None = None,
                 data: Path | None = None) -> subprocess.CompletedProcess[str]: ...


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the last log lines of a failed test's daemons to its report."""
    report = yield
    if report.failed:
        for daemon in item.stash.get(_DAEMONS, []):
            report.sections.append((f"syncd log ({daemon.name})", daemon.tail(80)))
    return report


_DAEMONS = pytest.StashKey[list[Daemon]]()


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    """The test's ``<data>`` folder (created by syncd itself)."""
    return Layout(tmp_path / "data")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """The test config file, :data:`BASE_CONFIG`."""
    return write_config(tmp_path / "syncd.toml")


@pytest.fixture
def start_daemon(request: pytest.FixtureRequest, tmp_path: Path, layout: Layout) -> Iterator[StartDaemon]:
    """Start daemons on the test's data folder; every one is stopped in teardown."""
    daemons: list[Daemon] = []
    request.node.stash[_DAEMONS] = daemons

    def start(overrides: Sections | None = None, *, name: str = "syncd", start: bool = True) -> Daemon:
        cfg = write_config(tmp_path / f"{name}.toml", overrides)
        daemon = Daemon(tmp_path, cfg, layout, name)
        daemons.append(daemon)
        return daemon.start() if start else daemon

    yield start
    for daemon in daemons:
        daemon.close()


@pytest.fixture
def cli(tmp_path: Path, config: Path, layout: Layout) -> Cli:
    """Run a syncd command on the test's config and data folder (override either)."""
    default_config, default_data = config, layout.root

    def run(
        *args: str, config: Path | None = default_config, data: Path | None = default_data
    ) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "syncd"]
        if config is not None:
            cmd += ["--config", str(config)]
        if data is not None:
            cmd += ["--data", str(data)]
        return subprocess.run(
            [*cmd, *args], cwd=tmp_path, env=syncd_env(), capture_output=True,
            text=True, timeout=120, check=False,
        )

    return run
