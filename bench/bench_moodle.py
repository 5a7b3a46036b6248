"""Throughput and web-service calls of a real daemon on ``kind = "moodle"``, against the fake Moodle.

Each run starts a fake Moodle (tests/moodle_fake) in this process, with ``--latency`` seconds
added to every request (default 0.005 s: a real site's per-call cost; the fake serves requests
in parallel), seeds it directly with ``--courses`` courses (default 300, idnumbers
``CRS-00000``..., in ``Faculty/Department`` categories), writes the token to a 0600 file and
starts a real daemon with ``kind = "moodle"`` on a fresh data folder. Then, each written as
``_<name>`` and renamed into ``sync/``, one after the other:

- ``users.csv``: ``--users`` rows (default 10,000; benchlib's generator, no password);
- ``enrol.csv``: ``--enrolments`` rows (default 30,000; ``cmd,rolename,cid,uid,enrol``: every user in
  distinct courses, 1 row in 20 an editingteacher, shuffled).

Per file: rename -> report time (it includes the 0.2 s settle), rows/s, and the web-service
calls the fake received meanwhile (``fake.calls``), per 1,000 rows and by function; target at
most 30 calls per 1,000 rows. The counts are checked (all created, no error) and so is the
site (every user once, every enrolment there).

Reference, same run and same daemon settings: the same two files on the embedded SQLite
store (``kind = "sql"``; the courses come from a courses file first, not timed). The ratio
is Moodle's rows/s over SQLite's. ``--repeat K`` runs both K times, the median is kept.

Usage: ``.venv/bin/python bench/bench_moodle.py [--users N] [--enrolments N] [--courses N]
[--latency S] [--repeat K] [--batch-size N]``. Writes ``bench/out/bench_moodle.json``.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import bench_enrol
from bench_enrol import course_idnumber, processed, summary, wait_report, write_courses_csv
from benchlib import (
    REPO,
    BenchError,
    Daemon,
    config_text,
    drop_file,
    machine_notes,
    median,
    run_main,
    temp_root,
    write_result,
    write_users_csv,
)

TARGET_CALLS_PER_1000 = 30
SETTLE = 0.2
BATCH_SIZE = 2000  # syncd's default [processing] batch_size
TOKEN = "bench0123456789abcdef0123456789ab"
#: without an ``enrol`` column a row only gives the role (enrolments processor): it names the method
ENROL_HEADER = ("cmd", "rolename", "cid", "uid", "enrol")
FILES = ("users.csv", "enrol.csv")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--users", type=int, default=10_000, help="users rows (default 10000)")
    p.add_argument("--enrolments", type=int, default=30_000, help="enrolment rows (default 30000)")
    p.add_argument("--courses", type=int, default=300, help="courses seeded in the fake (default 300)")
    p.add_argument("--latency", type=float, default=0.005,
                   help="seconds added to each request (default 0.005)")
    p.add_argument("--repeat", type=int, default=3, help="runs; the median is kept (default 3)")
    p.add_argument("--batch-size", type=int, default=BATCH_SIZE,
                   help=f"the daemon's [processing] batch_size (default {BATCH_SIZE}, syncd's own default)")
    p.add_argument("--timeout", type=float, default=600.0, help="deadline per file, seconds")
    p.add_argument("--keep", action="store_true", help="keep the temp folder")
    args = p.parse_args(argv)
    if args.users < 1 or args.courses < 1 or args.enrolments < 1:
        p.error("need users, courses and enrolments")
    if args.enrolments > args.users * args.courses:
        p.error("--enrolments must be at most users x courses (distinct enrolments)")
    return args


def fake_moodle_class() -> Any:
    """The fake Moodle of the test suite (imported here: the repo root is put on sys.path first)."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from tests.moodle_fake import FakeMoodle

    return FakeMoodle


# --- files -------------------------------------------------------------------------------


def enrol_rows(rows: int, users: int, courses: int, seed: int = 7) -> list[tuple[str, ...]]:
    """``rows`` distinct (course, user) enrolments, shuffled: user ``i % users`` in its k-th course."""
    per_user = -(-rows // users)
    step = max(1, courses // per_user)
    out = bench_enrol.enrol_rows(rows, users, courses, seed, step=step, tail=("manual",))
    if len({(r[2], r[3]) for r in out}) != rows:
        raise BenchError("the generated enrolments are not distinct; use more courses")
    return out


def write_enrol_csv(path: Path, rows: int, users: int, courses: int) -> int:
    """The enrolments file; its size."""
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(ENROL_HEADER)
        writer.writerows(enrol_rows(rows, users, courses))
    return path.stat().st_size


def seed_courses(site: Any, count: int) -> None:
    """The courses of bench_enrol's courses file, created directly in the fake site.

    Their manual instance does not send the course welcome message (a site setting that does
    not change syncd's calls): with it on, the fake looks up the course contacts for every
    enrolled user, work of the fake's that would be measured with syncd's.
    """
    categories: dict[str, int] = {}
    for n in range(count):
        faculty, dept = n % 10, n // 10 % 5
        top = f"Faculty {faculty}"
        if top not in categories:
            categories[top] = site.add_category(top)
        path = f"{top}/Department {faculty}.{dept}"
        if path not in categories:
            categories[path] = site.add_category(f"Department {faculty}.{dept}", parent=categories[top])
        site.add_course(f"C{n:05d}", fullname=f"Course {n}: lectures, labs", idnumber=course_idnumber(n),
                        category=categories[path], welcome=False)


# --- one daemon run ----------------------------------------------------------------------


def moodle_config(root: Path, url: str, batch_size: int) -> str:
    """The daemon config on the fake: the bench settings plus ``[platform] kind = "moodle"``."""
    token = root / "moodle.token"
    token.write_text(TOKEN + "\n", encoding="ascii")
    os.chmod(token, 0o600)
    platform = f'\n[platform]\nkind = "moodle"\nurl = "{url}"\ntoken_file = "{token}"\n'
    return config_text(SETTLE, batch_size=batch_size, extra=platform)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (``/proc/<pid>/stat``)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed_file(daemon: Daemon, files: Path, name: str, rows: int, args: argparse.Namespace) -> dict[str, Any]:
    """Rename ``name`` into sync/, wait for its report; the times and counts (all created, no error).

    Also the CPU seconds the daemon and this process (where the fake Moodle runs, if any)
    spent meanwhile: which side the time goes to.
    """
    what = f"{name} ({rows} rows)"
    cpu_daemon, cpu_here = cpu_seconds(daemon.pid), time.process_time()
    renamed, _wall = drop_file(files / name, daemon.sync_dir, name)
    seen = wait_report(daemon, name, renamed + args.timeout, what)
    cpu_daemon, cpu_here = cpu_seconds(daemon.pid) - cpu_daemon, time.process_time() - cpu_here
    done = processed(daemon, name, what)
    if done.get("created") != rows or done.get("error"):
        raise BenchError(f"{what}: expected {rows} created and no error, got {summary(done)}")
    e2e = seen - renamed
    return {"e2e_s": round(e2e, 3), "rows_per_s": round(rows / e2e), "duration_ms": done["duration_ms"],
            "daemon_cpu_s": round(cpu_daemon, 2), "bench_process_cpu_s": round(cpu_here, 2)}


def calls_between(fake: Any, first: int, rows: int) -> dict[str, Any]:
    """The web-service calls from index ``first`` on: total, per 1,000 rows, by function."""
    calls = fake.calls[first:]
    by_function = Counter(c.function for c in calls)
    return {"calls": len(calls), "calls_per_1000_rows": round(len(calls) * 1000 / rows, 1),
            "errors": sum(1 for c in calls if c.error is not None),
            "by_function": dict(by_function.most_common())}


def check_site(site: Any, args: argparse.Namespace) -> None:
    """Every user once (by username) and every enrolment on the fake site."""
    users = Counter(u.username for u in site.snapshot()["users"].values() if u.username.startswith("u"))
    if len(users) != args.users or set(users.values()) != {1}:
        raise BenchError(f"the site holds {len(users)} bench users ({sum(users.values())} rows), "
                         f"expected {args.users} once each")
    enrolments = len(site.snapshot()["enrolments"])
    if enrolments != args.enrolments:
        raise BenchError(f"the site holds {enrolments} enrolments, expected {args.enrolments}")


def moodle_run(files: Path, root: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One fake Moodle (seeded with the courses) and one daemon on it: the two timed files."""
    fake_cls = fake_moodle_class()
    with fake_cls(token=TOKEN, latency=args.latency) as fake:
        seed_courses(fake.site, args.courses)
        root.mkdir(parents=True)
        with Daemon(root, moodle_config(root, fake.url, args.batch_size)) as daemon:
            daemon.start()
            result: dict[str, Any] = {"startup_calls": len(fake.calls)}
            for name, rows in zip(FILES, (args.users, args.enrolments), strict=True):
                first = len(fake.calls)
                result[name] = timed_file(daemon, files, name, rows, args)
                result[name].update(calls_between(fake, first, rows))
        check_site(fake.site, args)
        if fake.problems:
            raise BenchError(f"the fake Moodle failed: {fake.problems[:3]}")
    return result


def sql_run(files: Path, root: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The same files on the embedded SQLite store (courses from a courses file first, not timed)."""
    with Daemon(root, config_text(SETTLE, batch_size=args.batch_size)) as daemon:
        daemon.start()
        renamed, _wall = drop_file(files / "courses.csv", daemon.sync_dir, "courses.csv")
        wait_report(daemon, "courses.csv", renamed + args.timeout, "set-up courses.csv")
        done = processed(daemon, "courses.csv", "set-up courses.csv")
        if done.get("created") != args.courses or done.get("error"):
            raise BenchError(f"set-up courses.csv: expected {args.courses} created, got {summary(done)}")
        return {name: timed_file(daemon, files, name, rows, args)
                for name, rows in zip(FILES, (args.users, args.enrolments), strict=True)}


# --- main ---------------------------------------------------------------------------------


def medians(runs: list[dict[str, Any]], platform: str) -> dict[str, Any]:
    """Per file, the median of each numeric figure over the runs, and of the calls of each function."""
    out: dict[str, Any] = {}
    for name in FILES:
        figures = [r[platform][name] for r in runs]
        numeric = [k for k, v in figures[0].items() if isinstance(v, int | float)]
        out[name] = {k: median([f[k] for f in figures]) for k in numeric}
        if "by_function" in figures[0]:
            functions = sorted({f for figure in figures for f in figure["by_function"]})
            calls = {f: median([figure["by_function"].get(f, 0) for figure in figures]) for f in functions}
            out[name]["by_function"] = dict(sorted(calls.items(), key=lambda kv: -kv[1]))
    return out


def report(result: dict[str, Any]) -> None:
    """The short human summary."""
    print(f"moodle (fake, {result['latency_s'] * 1000:.1f} ms/request) vs sqlite, "
          f"{result['courses']} courses, median of {len(result['runs'])}:")
    for name, rows in zip(FILES, (result["users"], result["enrolments"]), strict=True):
        m, s = result["median"]["moodle"][name], result["median"]["sql"][name]
        verdict = "meets" if m["calls_per_1000_rows"] <= TARGET_CALLS_PER_1000 else "MISSES"
        top = ", ".join(f"{f} {n:.0f}" for f, n in list(m["by_function"].items())[:4])
        print(f"  {name} ({rows} rows): moodle {m['e2e_s']:.2f} s = {m['rows_per_s']:.0f} rows/s; "
              f"sqlite {s['e2e_s']:.2f} s = {s['rows_per_s']:.0f} rows/s; ratio moodle/sqlite "
              f"{result['ratio_rows_per_s'][name]}")
        print(f"    {m['calls']:.0f} calls = {m['calls_per_1000_rows']} per 1,000 rows ({verdict} the "
              f"{TARGET_CALLS_PER_1000} target): {top}")
        print(f"    CPU during the file: daemon {m['daemon_cpu_s']:.1f} s, fake Moodle (bench process) "
              f"{m['bench_process_cpu_s']:.1f} s; sqlite daemon {s['daemon_cpu_s']:.1f} s")


def main(argv: Sequence[str] | None = None) -> int:
    """Generate the files, run both platforms ``--repeat`` times, print, write bench/out/bench_moodle.json."""
    args = parse_args(argv)
    result: dict[str, Any] = {"bench": "moodle", "machine": machine_notes(), "params": vars(args),
                              "users": args.users, "enrolments": args.enrolments, "courses": args.courses,
                              "latency_s": args.latency, "settle_s": SETTLE, "batch_size": args.batch_size}
    begun = time.perf_counter()
    with temp_root("bench-moodle", args.keep) as tmp:
        files = tmp / "files"
        files.mkdir()
        write_users_csv(files / "users.csv", args.users)
        write_courses_csv(files / "courses.csv", args.courses)
        result["enrol_file_bytes"] = write_enrol_csv(files / "enrol.csv", args.enrolments, args.users,
                                                     args.courses)
        runs = []
        for i in range(args.repeat):
            run = {"moodle": moodle_run(files, tmp / f"moodle{i}", args),
                   "sql": sql_run(files, tmp / f"sql{i}", args)}
            runs.append(run)
            print(f"  run {i + 1}: " + "; ".join(
                f"{name} moodle {run['moodle'][name]['rows_per_s']} rows/s "
                f"({run['moodle'][name]['calls_per_1000_rows']} calls/1k), "
                f"sqlite {run['sql'][name]['rows_per_s']}" for name in FILES))
    mid = {"moodle": medians(runs, "moodle"), "sql": medians(runs, "sql")}
    result.update(
        runs=runs, median=mid, target_calls_per_1000_rows=TARGET_CALLS_PER_1000,
        ratio_rows_per_s={n: round(mid["moodle"][n]["rows_per_s"] / mid["sql"][n]["rows_per_s"], 3)
                          for n in FILES},
        meets_target=all(mid["moodle"][n]["calls_per_1000_rows"] <= TARGET_CALLS_PER_1000 for n in FILES),
    )
    report(result)
    result["wall_s"] = round(time.perf_counter() - begun, 1)
    print(f"written {write_result('bench_moodle', result)} ({result['wall_s']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(lambda: main()))
