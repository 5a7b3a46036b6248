"""Throughput of a users file through a real daemon, against a raw sqlite3 baseline.

Part 1 (bulk): a generated users file (default 100,000 rows, no password column) is
dropped into a fresh daemon's sync/ (written as ``_users.csv``, renamed to ``users.csv``);
the time from the rename until the report exists is the end-to-end figure (it includes
the 0.2 s settle). The daemon's own ``duration_ms`` (file_processed) is the processing
figure. Baseline, same run: stdlib ``sqlite3`` reads the same CSV and ``executemany``-inserts
it into a fresh file database (WAL, synchronous=NORMAL like syncd, one transaction) whose
``users`` table and indexes are copied from the daemon's database. Each is repeated
(default 3 times, a fresh data folder each time) and the median reported.

Part 2 (passwords): a smaller file (default 1,000 rows) WITH a password column, at scrypt
cost 14 and 12. It is KDF-bound: the reference ceiling is 2 workers / one hash's time.

Usage: ``.venv/bin/python bench/bench_users.py [--rows N] [--repeat K] [--pw-rows N]``.
Writes ``bench/out/bench_users.json``.
"""

from __future__ import annotations

import argparse
import csv
import sqlite3
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchlib import (
    BenchError,
    Daemon,
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

TARGET_ROWS_PER_S = 20_000
SETTLE = 0.2
KDF_WORKERS = 2  # the users processor hashes in a thread pool on 2 cores


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=100_000, help="rows of the bulk file (default 100000)")
    p.add_argument("--repeat", type=int, default=3, help="runs per measurement; the median is kept")
    p.add_argument("--pw-rows", type=int, default=1_000, help="rows of the password file (0: skip)")
    p.add_argument("--pw-costs", default="14,12", help="scrypt costs to try (default 14,12)")
    p.add_argument("--timeout", type=float, default=300.0, help="deadline per daemon run, seconds")
    p.add_argument("--keep", action="store_true", help="keep the temp folder")
    return p.parse_args(argv)


def daemon_run(source: Path, rows: int, root: Path, cost: int, timeout: float) -> dict[str, Any]:
    """One fresh daemon, one file dropped: rename-to-report time and the daemon's figures."""
    with Daemon(root, config_text(SETTLE, cost=cost)) as daemon:
        startup = daemon.start()
        renamed, renamed_wall = drop_file(source, daemon.sync_dir, "users.csv")
        what = f"users.csv ({rows} rows, cost {cost})"
        txt, seen = daemon.wait_report("users.csv", renamed + timeout, what)
        done = daemon.wait_for(
            lambda e: e.name == "file_processed" and e.data.get("file") == "users.csv", 60, what
        )[0].data
        started = daemon.wait_for(lambda e: e.name == "file_started", 5, what)[0]
    if done.get("created") != rows or done.get("error"):
        counts = {k: done.get(k) for k in ("created", "updated", "unchanged", "skipped", "error")}
        raise BenchError(f"{what}: expected {rows} created and no error, got {counts}; {first_error(txt)}")
    e2e = seen - renamed
    return {
        "daemon_startup_s": round(startup, 3),
        "e2e_s": round(e2e, 3),
        "e2e_rows_per_s": round(rows / e2e),
        "rename_to_file_started_s": round(started.ts - renamed_wall, 3),
        "duration_ms": done["duration_ms"],
        "processing_rows_per_s": round(rows / max(done["duration_ms"], 1) * 1000),
    }


def first_error(report: Path) -> str:
    """The first row error line of a report, for an abort message."""
    with report.open(encoding="utf-8", errors="replace") as f:
        for line in f:
            if ": error:" in line:
                return f"first: {line.strip()} ({report})"
    return f"no row error line in {report}"


def _raw_rows(source: Path, fill: Sequence[Any]) -> Iterator[tuple[Any, ...]]:
    with source.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        next(reader)
        for row in reader:
            yield (*row, *fill)


def _fillers(conn: sqlite3.Connection, given: Sequence[str]) -> tuple[list[str], list[Any]]:
    """Required columns without a default that the CSV does not give, and a value for each."""
    now = datetime.now(UTC).isoformat(sep=" ")
    names: list[str] = []
    values: list[Any] = []
    for _cid, name, kind, notnull, default, pk in conn.execute("PRAGMA table_info(users)"):
        if notnull and default is None and not pk and name not in given:
            names.append(name)
            upper = str(kind).upper()
            values.append(now if "DATE" in upper else 0 if "INT" in upper or "BOOL" in upper else "")
    return names, values


def raw_insert(source: Path, schema_db: Path, target: Path) -> float:
    """Seconds to read ``source`` and insert it raw into ``target`` (schema of ``schema_db``)."""
    with sqlite3.connect(schema_db) as src:
        ddl = [sql for (sql,) in src.execute(
            "SELECT sql FROM sqlite_master WHERE tbl_name = 'users' AND sql IS NOT NULL "
            "ORDER BY type = 'table' DESC"
        )]
    if not ddl:
        raise BenchError(f"no users table in {schema_db}")
    conn = sqlite3.connect(target, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        for sql in ddl:
            conn.execute(sql)
        with source.open(encoding="utf-8") as f:
            header = next(csv.reader(f))
        names, values = _fillers(conn, header)
        columns = [*header, *names]
        sql = f"INSERT INTO users ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        begun = time.perf_counter()
        conn.execute("BEGIN")
        conn.executemany(sql, _raw_rows(source, values))
        conn.execute("COMMIT")
        return time.perf_counter() - begun
    finally:
        conn.close()


def bulk(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Part 1: the bulk file through syncd and raw, ``args.repeat`` times each."""
    source = tmp / "users.csv"
    size = write_users_csv(source, args.rows)
    runs = []
    for i in range(args.repeat):
        root = tmp / f"bulk{i}"
        run = daemon_run(source, args.rows, root, 14, args.timeout)
        raw = raw_insert(source, root / "data" / "state" / "syncd.db", root / "raw.db")
        run.update(raw_s=round(raw, 3), raw_rows_per_s=round(args.rows / raw))
        runs.append(run)
        print(f"  bulk run {i + 1}: e2e {run['e2e_s']:.2f} s ({run['e2e_rows_per_s']} rows/s), "
              f"processing {run['processing_rows_per_s']} rows/s, raw {run['raw_s']:.2f} s")
    mid = {key: median([r[key] for r in runs]) for key in runs[0]}
    mid["syncd_over_raw_time"] = round(mid["e2e_s"] / mid["raw_s"], 1)
    return {
        "rows": args.rows, "file_bytes": size, "settle_s": SETTLE, "runs": runs, "median": mid,
        "target_rows_per_s": TARGET_ROWS_PER_S,
        "meets_target": mid["e2e_rows_per_s"] >= TARGET_ROWS_PER_S,
    }


def hash_seconds(cost: int, samples: int = 5) -> float:
    """One scrypt hash's time on one core at ``cost`` (syncd's own hash function)."""
    from syncd.passwords import hash_password

    begun = time.perf_counter()
    for _ in range(samples):
        hash_password("bench-password", cost)
    return (time.perf_counter() - begun) / samples


def passwords(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Part 2: a file with a password column at each cost, ``args.repeat`` times each."""
    source = tmp / "users_pw.csv"
    write_users_csv(source, args.pw_rows, prefix="p", password=True)
    by_cost: dict[str, Any] = {}
    for cost in (int(c) for c in args.pw_costs.split(",")):
        one = hash_seconds(cost)
        runs = [
            daemon_run(source, args.pw_rows, tmp / f"pw{cost}_{i}", cost, args.timeout)
            for i in range(args.repeat)
        ]
        mid = median([r["e2e_rows_per_s"] for r in runs])
        by_cost[str(cost)] = {
            "runs": runs, "median_e2e_rows_per_s": mid,
            "median_processing_rows_per_s": median([r["processing_rows_per_s"] for r in runs]),
            "hash_ms_one_core": round(one * 1000, 1),
            "kdf_ceiling_rows_per_s": round(KDF_WORKERS / one),
        }
        print(f"  passwords cost {cost}: {mid:.0f} rows/s end to end (one hash {one * 1000:.1f} ms; "
              f"ceiling {KDF_WORKERS / one:.0f} rows/s on {KDF_WORKERS} cores)")
    return {"rows": args.pw_rows, "costs": by_cost}


def report(result: dict[str, Any]) -> None:
    """The short human summary."""
    b = result["bulk"]
    m = b["median"]
    verdict = "meets" if b["meets_target"] else "MISSES"
    print(f"bulk {b['rows']} rows, median of {len(b['runs'])}:")
    print_throughput(m, verdict, TARGET_ROWS_PER_S)


def main(argv: Sequence[str] | None = None) -> int:
    """Run both parts, print the summary, write bench/out/bench_users.json."""
    args = parse_args(argv)
    result: dict[str, Any] = {"bench": "users", "machine": machine_notes(), "params": vars(args)}
    begun = time.perf_counter()
    with temp_root("bench-users", args.keep) as tmp:
        result["bulk"] = bulk(args, tmp)
        report(result)
        if args.pw_rows > 0:
            result["passwords"] = passwords(args, tmp)
    result["wall_s"] = round(time.perf_counter() - begun, 1)
    print(f"written {write_result('bench_users', result)} ({result['wall_s']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(lambda: main()))
