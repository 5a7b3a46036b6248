"""Throughput of an enrolments file through a real daemon on SQLite, against a raw sqlite3 baseline.

Each run starts a fresh daemon, drops a users file (default 10,000 users) and a courses
file (default 1,000 courses in ``Faculty/Department`` categories) and waits for both to
be processed: that is set-up, not measured. Then an enrolments file (default 100,000
rows, ``cmd,rolename,cid,uid,enrol,starttime,endtime``: every user in 10 distinct
courses, 1 row in 20 a teacher, rows shuffled so that every batch touches hundreds of
users and courses) is written as ``_enrol.csv`` and renamed to ``enrol.csv``; the time
from the rename until its report exists is the end-to-end figure (it includes the 0.2 s
settle), the daemon's ``duration_ms`` the processing figure. The rows are then counted
in ``user_enrolments`` and ``role_assignments``.

Baseline, same run: a copy of the daemon's database taken (sqlite3 backup API) once the
users and courses were in, before the enrolments file; stdlib ``sqlite3`` with syncd's
pragmas (WAL, synchronous=NORMAL, foreign keys on) reads the same CSV, maps idnumbers to
ids (one SELECT each for users, courses with their manual method, roles) and
``executemany``-inserts every row into ``user_enrolments`` and ``role_assignments`` in one
transaction. The ratio is syncd's end-to-end time over the raw time.

Usage: ``.venv/bin/python bench/bench_enrol.py [--rows N] [--users N] [--courses N] [--repeat K]
[--profile]``. ``--profile`` records the daemon with py-spy during the enrolments file (raw
folded stacks into ``bench/out/bench_enrol.pyspy.txt``, and a summary of the hottest
frames in the JSON). Writes ``bench/out/bench_enrol.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from benchlib import (
    OUT_DIR,
    REPO,
    BenchError,
    Daemon,
    Event,
    config_text,
    drop_file,
    machine_notes,
    median,
    print_throughput,
    run_main,
    temp_root,
    write_result,
    write_users_csv,
)

TARGET_ROWS_PER_S = 10_000
SETTLE = 0.2
BATCH_SIZE = 2000  # syncd's default [processing] batch_size
COURSES_PER_USER = 10
TEACHER_EVERY = 20
START, END = "2026-09-01", "2027-02-15"
ENROL_HEADER = ("cmd", "rolename", "cid", "uid", "enrol", "starttime", "endtime")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=100_000, help="enrolment rows (default 100000)")
    p.add_argument("--users", type=int, default=10_000, help="users (default 10000)")
    p.add_argument("--courses", type=int, default=1_000, help="courses (default 1000)")
    p.add_argument("--repeat", type=int, default=3, help="runs; the median is kept (default 3)")
    p.add_argument("--timeout", type=float, default=300.0, help="deadline per file, seconds")
    p.add_argument("--batch-size", type=int, default=BATCH_SIZE,
                   help=f"the daemon's [processing] batch_size (default {BATCH_SIZE}, syncd's own default)")
    p.add_argument("--profile", action="store_true", help="py-spy the daemon during the enrolments file")
    p.add_argument("--keep", action="store_true", help="keep the temp folder")
    args = p.parse_args(argv)
    if args.rows > args.users * min(args.courses, COURSES_PER_USER):
        p.error(f"--rows must be at most users x {COURSES_PER_USER} (distinct enrolments)")
    if args.courses < COURSES_PER_USER or args.users < 1 or args.rows < 1:
        p.error(f"need rows, users and at least {COURSES_PER_USER} courses")
    return args


# --- files -------------------------------------------------------------------------------


def user_idnumber(n: int) -> str:
    """The idnumber benchlib's users generator gives user ``n`` (prefix ``u``)."""
    return f"EU{n:07d}"


def course_idnumber(n: int) -> str:
    """The idnumber of generated course ``n``."""
    return f"CRS-{n:05d}"


def write_courses_csv(path: Path, count: int) -> int:
    """``count`` courses in 10 faculties x 5 departments; the file's size."""
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(("shortname", "fullname", "idnumber", "category", "startdate"))
        for n in range(count):
            faculty, dept = n % 10, n // 10 % 5
            writer.writerow((f"C{n:05d}", f"Course {n}: lectures, labs", course_idnumber(n),
                             f"Faculty {faculty}/Department {faculty}.{dept}", START))
    return path.stat().st_size


def enrol_rows(rows: int, users: int, courses: int, seed: int = 7, *, step: int | None = None,
               tail: tuple[str, ...] = ("", START, END)) -> list[tuple[str, ...]]:
    """``rows`` distinct (course, user) enrolment rows, shuffled: ``add``, role, course, user,
    then ``tail`` (this file's enrol, starttime, endtime by default)."""
    step = courses // COURSES_PER_USER if step is None else step
    out: list[tuple[str, ...]] = []
    for i in range(rows):
        user, k = i % users, i // users  # k-th course of this user: distinct for k < courses/step
        course = (user * 7 + k * step) % courses
        role = "editingteacher" if i % TEACHER_EVERY == 0 else "student"
        out.append(("add", role, course_idnumber(course), user_idnumber(user), *tail))
    random.Random(seed).shuffle(out)
    return out


def write_enrol_csv(path: Path, rows: int, users: int, courses: int) -> int:
    """The enrolments file; its size."""
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(ENROL_HEADER)
        writer.writerows(enrol_rows(rows, users, courses))
    return path.stat().st_size


# --- the daemon run ----------------------------------------------------------------------


def wait_report(daemon: Daemon, name: str, deadline: float, what: str) -> float:
    """``perf_counter`` when the report of ``name`` appeared; BenchError at once if it never will.

    A file that no route takes (``file_stored``) or that fails whole (``file_failed``)
    aborts at once rather than at the deadline.
    """
    suffix = f"_{name}.report.txt"
    while True:
        with contextlib.suppress(FileNotFoundError):
            if any(e.name.endswith(suffix) for e in os.scandir(daemon.reports_dir)):
                return time.perf_counter()
        stuck = daemon.matching(
            lambda e: e.name in ("file_stored", "file_failed") and e.data.get("file") == name
        )
        if stuck:
            event = stuck[0].data
            raise BenchError(f"{what}: {event['event']} ({event.get('note') or event.get('error')}); "
                             "is its processor in syncd/processors/registry.py?")
        daemon.check_alive()
        if time.perf_counter() > deadline:
            raise BenchError(f"{what}: no report before the deadline (see --timeout). {daemon.last_words()}")
        time.sleep(0.005)


def first_event(daemon: Daemon, event: str, name: str, what: str) -> Event:
    """The first ``event`` logged for the file ``name``."""
    return daemon.wait_for(lambda e: e.name == event and e.data.get("file") == name, 5, what)[0]


def processed(daemon: Daemon, name: str, what: str) -> dict[str, Any]:
    """The ``file_processed`` (or failed) event of ``name``; BenchError on failure."""
    event = daemon.wait_for(
        lambda e: e.name in ("file_processed", "file_failed") and e.data.get("file") == name, 60, what
    )[0].data
    if event["event"] == "file_failed":
        raise BenchError(f"{what}: the file failed: {event.get('error')}")
    return event


def setup(daemon: Daemon, files: Path, args: argparse.Namespace) -> None:
    """Drop the users and courses files and wait until both are in, with no row error."""
    for name, rows in (("users.csv", args.users), ("courses.csv", args.courses)):
        renamed, _wall = drop_file(files / name, daemon.sync_dir, name)
        wait_report(daemon, name, renamed + args.timeout, f"set-up {name}")
        done = processed(daemon, name, f"set-up {name}")
        if done.get("created") != rows or done.get("error"):
            raise BenchError(f"set-up {name}: expected {rows} created and no error, got {summary(done)}")


def summary(event: dict[str, Any]) -> dict[str, Any]:
    """The counts of a file_processed event."""
    return {k: event.get(k) for k in ("created", "updated", "unchanged", "skipped", "error")}


def snapshot(db: Path, target: Path) -> None:
    """A consistent copy of the daemon's database (sqlite3 backup API, safe while it runs)."""
    src = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def count_rows(db: Path) -> dict[str, int]:
    """Rows of user_enrolments and role_assignments in ``db``."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("user_enrolments", "role_assignments")}
    finally:
        conn.close()


class Profiler:
    """``py-spy record`` attached to the daemon (raw folded stacks), stopped with SIGINT."""

    def __init__(self, pid: int, out: Path) -> None:
        exe = Path(sys.executable).parent / "py-spy"
        if not exe.exists():
            found = shutil.which("py-spy")
            if found is None:
                raise BenchError("--profile: py-spy not found (.venv/bin/pip install py-spy)")
            exe = Path(found)
        self.out = out
        self.proc = subprocess.Popen(
            [str(exe), "record", "--pid", str(pid), "--threads", "--rate", "200", "-f", "raw",
             "-o", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        time.sleep(1.0)  # py-spy attaches before the file arrives
        if self.proc.poll() is not None:
            err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
            raise BenchError(f"--profile: py-spy exited at once: {err.strip()[:500]}")

    def stop(self) -> None:
        """Stop recording and let py-spy write its output."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


#: where a worker sample's time goes: the first rule one of its frames matches
LAYERS = (
    ("syncd/pipeline/reports.py", "report writing (saved results read back)"),
    ("do_commit", "commit (one per batch)"),
    ("syncd/csvfile.py", "CSV reading"),
    ("syncd/platform/", "platform store: SQL adapter + driver"),
    ("syncd/processors/", "processor logic: parse, resolve, working set"),
    ("syncd/", "pipeline: applier, checkpoint, ledger"),
)


def _function(frame: str) -> str:
    """``func (path:line)`` -> ``func (path)``: one key per function, whatever the line."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rsplit(':', 1)[0]})" if where else name


def _layer(frames: list[str]) -> str:
    for marker, layer in LAYERS:
        if any(marker in frame for frame in frames):
            return layer
    return "other"


def hottest(folded: Path, top: int = 15) -> dict[str, Any]:
    """Where the worker thread's samples go: layers, and functions by self and inclusive share."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    layers: Counter[str] = Counter()
    total = 0
    for line in folded.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if "worker" not in frames[0] or not count.isdigit() or len(frames) < 2:
            continue
        n, funcs = int(count), [_function(f) for f in frames[1:]]
        total += n
        own[funcs[-1]] += n
        inclusive.update({f: n for f in set(funcs)})
        layers[_layer(frames[1:])] += n

    def share(c: Counter[str], count: int) -> list[tuple[str, float]]:
        return [(f, round(100 * v / max(total, 1), 1)) for f, v in c.most_common(count)]

    return {"worker_samples": total, "layers_pct": share(layers, len(LAYERS) + 2),
            "self_pct": share(own, top), "inclusive_pct": share(inclusive, 3 * top)}


def print_profile(profile: dict[str, Any]) -> None:
    """The layer split and the hottest functions of a profile."""
    print(f"  profile of the worker thread ({profile['worker_samples']} samples):")
    for name, pct in profile["layers_pct"]:
        print(f"    {pct:5.1f}%  {name}")
    print("    hottest functions (self time):")
    for name, pct in profile["self_pct"][:10]:
        print(f"    {pct:5.1f}%  {name}")


def daemon_run(files: Path, root: Path, args: argparse.Namespace, profile: bool) -> dict[str, Any]:
    """One fresh daemon: set-up, a snapshot for the baseline, then the timed enrolments file."""
    what = f"enrol.csv ({args.rows} rows)"
    with Daemon(root, config_text(SETTLE, batch_size=args.batch_size)) as daemon:
        daemon.start()
        setup(daemon, files, args)
        snapshot(daemon.db_path, root / "raw.db")
        profiler = Profiler(daemon.pid, OUT_DIR / "bench_enrol.pyspy.txt") if profile else None
        try:
            renamed, renamed_wall = drop_file(files / "enrol.csv", daemon.sync_dir, "enrol.csv")
            seen = wait_report(daemon, "enrol.csv", renamed + args.timeout, what)
        finally:
            if profiler is not None:
                profiler.stop()
        done = processed(daemon, "enrol.csv", what)
        received, started = (first_event(daemon, event, "enrol.csv", what)
                             for event in ("file_received", "file_started"))
        stored = count_rows(daemon.db_path)
    if done.get("created") != args.rows or done.get("error"):
        raise BenchError(f"{what}: expected {args.rows} created and no error, got {summary(done)}")
    if stored != {"user_enrolments": args.rows, "role_assignments": args.rows}:
        raise BenchError(f"{what}: the database holds {stored}, expected {args.rows} of each")
    e2e = seen - renamed
    return {
        "e2e_s": round(e2e, 3),
        "e2e_rows_per_s": round(args.rows / e2e),
        "rename_to_file_received_s": round(received.ts - renamed_wall, 3),
        "rename_to_file_started_s": round(started.ts - renamed_wall, 3),
        "duration_ms": done["duration_ms"],
        "processing_rows_per_s": round(args.rows / max(done["duration_ms"], 1) * 1000),
    }


# --- the raw baseline --------------------------------------------------------------------


def _raw_rows(source: Path, users: dict[str, int], courses: dict[str, tuple[int, int]],
              roles: dict[str, int]) -> Iterator[tuple[tuple[Any, ...], tuple[int, int, int]]]:
    start, end = f"{START} 00:00:00.000000", f"{END} 00:00:00.000000"
    with source.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        next(reader)
        for _cmd, role, cid, uid, _enrol, _start, _end in reader:
            course, method = courses[cid]
            user = users[uid]
            yield (method, course, user, 1, start, end), (course, user, roles[role])


def raw_insert(source: Path, db: Path) -> float:
    """Seconds to read ``source``, resolve its keys and insert it raw into ``db`` (one transaction)."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
            conn.execute(f"PRAGMA {pragma}")
        begun = time.perf_counter()
        users = dict(conn.execute("SELECT idnumber, id FROM users"))
        courses = {cid: (course, method) for cid, course, method in conn.execute(
            "SELECT c.idnumber, c.id, m.id FROM courses c JOIN enrol_methods m "
            "ON m.course_id = c.id AND m.method = 'manual'"
        )}
        roles = dict(conn.execute("SELECT shortname, id FROM roles"))
        if len(courses) == 0:
            raise BenchError(f"no course with a manual enrolment method in {db}")
        pairs = list(_raw_rows(source, users, courses, roles))
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO user_enrolments (method_id, course_id, user_id, active, timestart, timeend) "
            "VALUES (?, ?, ?, ?, ?, ?)", (p[0] for p in pairs))
        conn.executemany(
            "INSERT INTO role_assignments (course_id, user_id, role_id) VALUES (?, ?, ?)",
            (p[1] for p in pairs))
        conn.execute("COMMIT")
        return time.perf_counter() - begun
    finally:
        conn.close()


# --- main ---------------------------------------------------------------------------------


def report(result: dict[str, Any]) -> None:
    """The short human summary."""
    m = result["median"]
    verdict = "meets" if result["meets_target"] else "MISSES"
    print(f"enrolments {result['rows']} rows over {result['users']} users x {result['courses']} courses, "
          f"median of {len(result['runs'])}:")
    print_throughput(m, verdict, TARGET_ROWS_PER_S)


def main(argv: Sequence[str] | None = None) -> int:
    """Generate the files, run the daemon ``--repeat`` times, print, write bench/out/bench_enrol.json."""
    args = parse_args(argv)
    result: dict[str, Any] = {"bench": "enrol", "machine": machine_notes(), "params": vars(args),
                              "rows": args.rows, "users": args.users, "courses": args.courses,
                              "settle_s": SETTLE, "batch_size": args.batch_size}
    begun = time.perf_counter()
    with temp_root("bench-enrol", args.keep) as tmp:
        files = tmp / "files"
        files.mkdir()
        write_users_csv(files / "users.csv", args.users)
        write_courses_csv(files / "courses.csv", args.courses)
        result["file_bytes"] = write_enrol_csv(files / "enrol.csv", args.rows, args.users, args.courses)
        runs = []
        for i in range(args.repeat):
            root = tmp / f"run{i}"
            run = daemon_run(files, root, args, profile=args.profile and i == 0)
            raw = raw_insert(files / "enrol.csv", root / "raw.db")
            run.update(raw_s=round(raw, 3), raw_rows_per_s=round(args.rows / raw))
            runs.append(run)
            print(f"  run {i + 1}: e2e {run['e2e_s']:.2f} s ({run['e2e_rows_per_s']} rows/s), "
                  f"processing {run['processing_rows_per_s']} rows/s, raw {run['raw_s']:.2f} s")
    mid = {key: median([r[key] for r in runs]) for key in runs[0]}
    mid["syncd_over_raw_time"] = round(mid["e2e_s"] / mid["raw_s"], 1)
    result.update(runs=runs, median=mid, target_rows_per_s=TARGET_ROWS_PER_S,
                  meets_target=mid["e2e_rows_per_s"] >= TARGET_ROWS_PER_S)
    folded = OUT_DIR / "bench_enrol.pyspy.txt"
    if args.profile and folded.exists():
        result["profile"] = {"folded": str(folded.relative_to(REPO)), **hottest(folded)}
    report(result)
    if "profile" in result:
        print_profile(result["profile"])
    result["wall_s"] = round(time.perf_counter() - begun, 1)
    print(f"written {write_result('bench_enrol', result)} ({result['wall_s']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(lambda: main()))
