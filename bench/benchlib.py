"""Shared pieces of the benchmark scripts: a real daemon, generated users files, output.

Not a benchmark itself. Each ``bench_*.py`` script imports it (it sits beside them, so
``python bench/bench_users.py`` finds it on ``sys.path``). Everything here is bounded in
time: waits take a deadline and raise :class:`BenchError` with a clear message.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

REPO = Path(__file__).resolve().parent.parent
OUT_DIR = REPO / "bench" / "out"

USER_COLUMNS = ("username", "firstname", "lastname", "email", "idnumber", "department", "city")
FIRST_NAMES = (
    "Jane", "Alan", "María", "José", "Zoë", "Łukasz", "Søren", "Chloé", "Yūki", "Ngozi",
    "Ömer", "Anaïs", "Björn", "Dmitrij", "Eva", "Nguyễn", "Priya", "Tomás", "Aoife", "Kai",
)
LAST_NAMES = (
    "Doe", "Smith", "García", "Müller", "Ørsted", "Dvořák", "Nowak", "O'Brien", "Kowalski",
    "Lefèvre", "Yılmaz", "Sánchez", "Wang", "Håkansson", "Rossi", "Papadopoulos", "Ivanov",
)
DEPARTMENTS = ("Physics", "History", "Chemistry", "Mathématiques", "Economics", "Law", "Médecine")
CITIES = ("Paris", "Kraków", "Zürich", "São Paulo", "Reykjavík", "Lyon", "Nairobi", "Osaka")

#: exit code of a benchmark that could not complete (deadline, daemon crash, wrong counts)
EXIT_ABORTED = 3


class BenchError(Exception):
    """A benchmark run that cannot give a figure: deadline passed, daemon died, bad counts."""


# --- output ------------------------------------------------------------------------------


def write_result(name: str, data: dict[str, Any]) -> Path:
    """Write ``data`` as ``bench/out/<name>.json`` (pretty, UTF-8) and return the path."""
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def machine_notes() -> dict[str, Any]:
    """Facts about this machine that the figures depend on."""
    load = os.getloadavg()
    return {
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "platform": sys.platform,
        "loadavg_at_start": [round(x, 2) for x in load],
        "when": datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def median(values: Sequence[float]) -> float:
    """The median of a non-empty sequence."""
    return float(statistics.median(values))


def percentile(values: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile (nearest rank, 0 < pct <= 100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(pct / 100 * len(ordered))))
    return ordered[rank - 1]


def run_main(body: Callable[[], int]) -> int:
    """Run a benchmark's body; a :class:`BenchError` becomes one clear line and exit 3."""
    try:
        return body()
    except BenchError as exc:
        print(f"ABORTED: {exc}", file=sys.stderr)
        return EXIT_ABORTED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


# --- temp folders and generated files ----------------------------------------------------


@contextlib.contextmanager
def temp_root(prefix: str, keep: bool = False) -> Iterator[Path]:
    """A fresh temp folder, removed afterwards unless ``keep``."""
    root = Path(tempfile.mkdtemp(prefix=f"syncd-{prefix}-"))
    try:
        yield root
    finally:
        if keep:
            print(f"kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)


def user_row(rng: random.Random, n: int, prefix: str = "u") -> list[str]:
    """One users row (``USER_COLUMNS``) for user number ``n``: unique username/idnumber/email."""
    username = f"{prefix}{n:07d}"
    return [
        username,
        rng.choice(FIRST_NAMES),
        rng.choice(LAST_NAMES),
        f"{username}@example.edu",
        f"E{prefix.upper()}{n:07d}",
        rng.choice(DEPARTMENTS),
        rng.choice(CITIES),
    ]


def write_users_csv(
    path: Path, rows: int, *, start: int = 0, prefix: str = "u", password: bool = False, seed: int = 42
) -> int:
    """Stream ``rows`` users rows (row by row, never held in memory) to ``path``; its size."""
    rng = random.Random(seed + start)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow([*USER_COLUMNS, "password"] if password else USER_COLUMNS)
        for n in range(start, start + rows):
            row = user_row(rng, n, prefix)
            if password:
                row.append(f"Pw!{rng.getrandbits(48):012x}")
            writer.writerow(row)
    return path.stat().st_size


def drop_file(source: Path, sync_dir: Path, name: str) -> tuple[float, float]:
    """Copy ``source`` to ``sync/_<name>``, rename it to ``sync/<name>``.

    Returns ``(perf_counter, time.time())`` taken right after the rename: the arrival.
    """
    hidden = sync_dir / f"_{name}"
    shutil.copyfile(source, hidden)
    os.rename(hidden, sync_dir / name)
    return time.perf_counter(), time.time()


def wait_for_path(
    folder: Path, suffix: str, deadline: float, what: str, daemon: Daemon, poll: float = 0.005
) -> tuple[Path, float]:
    """Poll ``folder`` for a visible file ending in ``suffix``; (path, perf_counter when seen)."""
    while True:
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(folder):
                if entry.name.endswith(suffix) and not entry.name.startswith("."):
                    return Path(entry.path), time.perf_counter()
        daemon.check_alive()
        if time.perf_counter() > deadline:
            raise BenchError(
                f"{what}: not finished before the deadline (no *{suffix} in {folder}; see --timeout). "
                f"{daemon.last_words()}"
            )
        time.sleep(poll)


# --- the daemon ---------------------------------------------------------------------------


@dataclass
class Event:
    """One JSON log line of the daemon, with the bench's clocks when it was read."""

    data: dict[str, Any]
    seen_perf: float
    seen_wall: float

    @property
    def name(self) -> str:
        """The ``event`` field."""
        return str(self.data.get("event", ""))

    @property
    def ts(self) -> float:
        """The daemon's ``ts`` field as a Unix timestamp (wall clock)."""
        return datetime.fromisoformat(str(self.data["ts"]).replace("Z", "+00:00")).timestamp()


def config_text(settle: float, cost: int = 14, batch_size: int = 2000, extra: str = "") -> str:
    """A daemon config: ``settle``, password cost, batch size, JSON logs at info level."""
    return (
        f"[intake]\nsettle = {settle}\n\n[processing]\nbatch_size = {batch_size}\n\n"
        f"[passwords]\ncost = {cost}\n\n[log]\nlevel = \"info\"\nformat = \"json\"\n{extra}"
    )


@dataclass
class Daemon:
    """A real ``python -m syncd run`` on ``root/data``, its stdout parsed into events."""

    root: Path
    config: str
    events: list[Event] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _reader: threading.Thread | None = None
    _stderr: TextIO | None = None

    @property
    def data(self) -> Path:
        """The data folder."""
        return self.root / "data"

    @property
    def sync_dir(self) -> Path:
        """The drop folder."""
        return self.data / "sync"

    @property
    def reports_dir(self) -> Path:
        """Where reports appear."""
        return self.data / "store" / "reports"

    @property
    def db_path(self) -> Path:
        """The SQLite ledger + platform database."""
        return self.data / "state" / "syncd.db"

    @property
    def pid(self) -> int:
        """The daemon's process id."""
        assert self.proc is not None, "daemon not started"
        return self.proc.pid

    def start(self, timeout: float = 30.0) -> float:
        """Start the daemon and wait for ``daemon_started``; returns seconds it took."""
        self.root.mkdir(parents=True, exist_ok=True)
        cfg = self.root / "syncd.toml"
        cfg.write_text(self.config, encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
        env["SYNCD_LOG__FORMAT"] = "json"
        env["PYTHONUNBUFFERED"] = "1"
        self._stderr = (self.root / "daemon.stderr").open("w", encoding="utf-8")
        begun = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "syncd", "--config", str(cfg), "--data", str(self.data), "run"],
            cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._stderr,
        )
        self._reader = threading.Thread(target=self._read, name="daemon-stdout", daemon=True)
        self._reader.start()
        self.wait_for(lambda e: e.name == "daemon_started", timeout, "daemon start")
        return time.perf_counter() - begun

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for raw in self.proc.stdout:
            try:
                data = json.loads(raw)
            except ValueError:
                data = {"event": "_unparsed", "line": raw.decode("utf-8", "replace").rstrip()}
            if not isinstance(data, dict):
                data = {"event": "_unparsed", "line": repr(data)}
            with self._cond:
                self.events.append(Event(data, time.perf_counter(), time.time()))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def check_alive(self) -> None:
        """Raise :class:`BenchError` if the daemon has exited."""
        if self.proc is not None and self.proc.poll() is not None:
            raise BenchError(f"the daemon exited with code {self.proc.returncode}. {self.last_words()}")

    def wait_for(
        self, match: Callable[[Event], bool], timeout: float, what: str, count: int = 1
    ) -> list[Event]:
        """Wait until ``count`` events match; BenchError naming ``what`` after ``timeout`` s."""
        deadline = time.perf_counter() + timeout
        with self._cond:
            while True:
                found = [e for e in self.events if match(e)]
                if len(found) >= count:
                    return found
                self.check_alive()
                left = deadline - time.perf_counter()
                if left <= 0:
                    raise BenchError(
                        f"{what}: only {len(found)}/{count} matching events after {timeout:.0f} s. "
                        f"{self.last_words()}"
                    )
                self._cond.wait(min(left, 0.5))

    def matching(self, match: Callable[[Event], bool]) -> list[Event]:
        """The events seen so far that match."""
        with self._cond:
            return [e for e in self.events if match(e)]

    def last_words(self) -> str:
        """The last log events and stderr lines, for an abort message."""
        with self._cond:
            tail = [e.data for e in self.events[-3:]]
        err = ""
        path = self.root / "daemon.stderr"
        if path.exists():
            err = " | ".join(path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-5:])
        events = json.dumps(tail, ensure_ascii=False)[:1500]
        return f"Last events: {events}; stderr: {err[:1500] or '(empty)'}"

    def wait_report(self, name: str, deadline: float, what: str) -> tuple[Path, float]:
        """Wait (until ``perf_counter`` reaches ``deadline``) for the report of ``name``."""
        return wait_for_path(self.reports_dir, f"_{name}.report.txt", deadline, what, self)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout`` s; the exit code (None if never started)."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if self._reader is not None:
            self._reader.join(5)
        if proc.stdout is not None:
            proc.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
        return proc.returncode

    def __enter__(self) -> Daemon:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def proc_status(pid: int, keys: Sequence[str] = ("VmRSS", "VmHWM")) -> dict[str, int]:
    """Fields of ``/proc/<pid>/status`` in kB (empty once the process is gone)."""
    found: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in keys:
                    found[key] = int(value.split()[0])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return found


def print_throughput(m: dict[str, Any], verdict: str, target: int) -> None:
    """The common lines of a throughput summary: end to end, processing, raw, ratio."""
    print(f"  syncd end to end (rename -> report): {m['e2e_s']:.2f} s = {m['e2e_rows_per_s']:.0f} rows/s "
          f"({verdict} the {target} rows/s target)")
    print(f"  syncd processing (duration_ms):      {m['duration_ms'] / 1000:.2f} s = "
          f"{m['processing_rows_per_s']:.0f} rows/s")
    print(f"  raw sqlite3 executemany (WAL):       {m['raw_s']:.2f} s = {m['raw_rows_per_s']:.0f} rows/s")
    print(f"  ratio syncd/raw (time):              {m['syncd_over_raw_time']}x")
