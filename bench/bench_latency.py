"""Arrival-to-processing-start latency of many small files through a real daemon.

A daemon with ``settle = 1.0`` s; 1,000 small valid users files (1-3 rows each, distinct
users) are written as ``_uNNNN.csv`` and renamed to ``users_NNNN.csv`` in sync/ at a steady
rate (default 50 files/s, about 20 s). The rename time of each (wall clock, right after the
rename) is matched with the ``ts`` of that file's ``file_started`` event. Reported:
latency p50/p90/p99/max, the same minus the settle time ("beyond settle"), each file's
processing time, and the time to drain all files.

Usage: ``.venv/bin/python bench/bench_latency.py [--files N] [--rate F]``.
Writes ``bench/out/bench_latency.json``.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchlib import (
    BenchError,
    Daemon,
    Event,
    config_text,
    machine_notes,
    percentile,
    run_main,
    temp_root,
    write_result,
    write_users_csv,
)

SETTLE = 1.0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--files", type=int, default=1_000, help="files to drop (default 1000)")
    p.add_argument("--rate", type=float, default=50.0, help="files per second (default 50)")
    p.add_argument("--timeout", type=float, default=300.0, help="deadline to drain after the last file, s")
    p.add_argument("--gather-max", type=float, default=None,
                   help="set [intake] gather_max (default: syncd's own default)")
    p.add_argument("--keep", action="store_true", help="keep the temp folder")
    return p.parse_args(argv)


def name_of(i: int) -> str:
    """The arrival name of file number ``i``."""
    return f"users_{i:04d}.csv"


def drop_stream(sync_dir: Path, files: int, rate: float) -> tuple[dict[str, float], int, float]:
    """Write and rename ``files`` files at ``rate``/s: rename wall times, rows, worst lag (s)."""
    rng = random.Random(7)
    renamed: dict[str, float] = {}
    rows, worst_lag, start_no = 0, 0.0, 0
    t0 = time.perf_counter()
    for i in range(files):
        due = t0 + i / rate
        now = time.perf_counter()
        if due > now:
            time.sleep(due - now)
        worst_lag = max(worst_lag, time.perf_counter() - due)
        count = rng.randint(1, 3)
        hidden = sync_dir / f"_u{i:04d}.csv"
        write_users_csv(hidden, count, start=start_no, prefix="l", seed=i)
        os.rename(hidden, sync_dir / name_of(i))
        renamed[name_of(i)] = time.time()
        rows += count
        start_no += count
    return renamed, rows, worst_lag


def of_files(event: str, names: set[str]) -> Callable[[Event], bool]:
    """A matcher of ``event`` events about one of ``names``."""
    return lambda e: e.name == event and e.data.get("file") in names


def figures(values: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99/max of ``values`` (seconds), rounded to the millisecond."""
    return {
        "p50": round(percentile(values, 50), 3), "p90": round(percentile(values, 90), 3),
        "p99": round(percentile(values, 99), 3), "max": round(max(values), 3),
    }


def _ts_by_file(events: list[Event], renamed: dict[str, float], what: str) -> dict[str, float]:
    by_file = {str(e.data["file"]): e.ts for e in events}
    missing = sorted(set(renamed) - set(by_file))
    if missing:
        raise BenchError(f"{len(missing)} files have no {what} event, e.g. {missing[:5]}")
    return by_file


def summarise(
    renamed: dict[str, float], events: dict[str, list[Event]], rows: int
) -> dict[str, Any]:
    """Latency and drain figures from the rename times and the daemon's events."""
    started = _ts_by_file(events["file_started"], renamed, "file_started")
    received = _ts_by_file(events["file_received"], renamed, "file_received")
    processed = events["file_processed"]
    latency = [started[name] - at for name, at in renamed.items()]
    created = sum(int(e.data.get("created", 0)) for e in processed)
    errors = sum(int(e.data.get("error", 0)) for e in processed)
    if created != rows or errors:
        raise BenchError(f"expected {rows} users created and no error, got created={created} error={errors}")
    last_done = max(e.ts for e in processed)
    first, last = min(renamed.values()), max(renamed.values())
    return {
        "latency_s": figures(latency),
        "beyond_settle_s": figures([x - SETTLE for x in latency]),
        "rename_to_received_s": figures([received[name] - at for name, at in renamed.items()]),
        "received_to_started_s": figures([started[name] - received[name] for name in renamed]),
        "processing_s": figures([e.data["duration_ms"] / 1000 for e in processed]),
        "drain_from_first_rename_s": round(last_done - first, 2),
        "drain_after_last_rename_s": round(last_done - last, 2),
        "stream_s": round(last - first, 2),
        "users_created": created,
        "started_before_last_rename": sum(1 for at in started.values() if at < last),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run, print the summary, write bench/out/bench_latency.json."""
    args = parse_args(argv)
    result: dict[str, Any] = {"bench": "latency", "machine": machine_notes(), "params": vars(args)}
    extra = "" if args.gather_max is None else f"gather_max = {args.gather_max}\n"
    config = config_text(SETTLE).replace("[intake]\n", "[intake]\n" + extra)
    with temp_root("bench-latency", args.keep) as tmp, Daemon(tmp, config) as daemon:
        daemon.start()
        renamed, rows, lag = drop_stream(daemon.sync_dir, args.files, args.rate)
        wanted = set(renamed)
        processed = daemon.wait_for(
            of_files("file_processed", wanted), args.timeout, f"draining {args.files} files", count=args.files
        )
        events = {name: daemon.matching(of_files(name, wanted)) for name in ("file_received", "file_started")}
    events["file_processed"] = processed
    result.update(summarise(renamed, events, rows), settle_s=SETTLE, files=args.files,
                  rows=rows, writer_worst_lag_s=round(lag, 3))
    lat, beyond = result["latency_s"], result["beyond_settle_s"]
    print(f"{args.files} files ({rows} rows) at {args.rate:g}/s over {result['stream_s']} s, "
          f"settle {SETTLE} s:")
    print(f"  rename -> file_started: p50 {lat['p50']:.3f}  p90 {lat['p90']:.3f}  "
          f"p99 {lat['p99']:.3f}  max {lat['max']:.3f} s")
    print(f"  beyond settle:          p50 {beyond['p50']:.3f}  p90 {beyond['p90']:.3f}  "
          f"p99 {beyond['p99']:.3f}  max {beyond['max']:.3f} s")
    intake, queue = result["rename_to_received_s"], result["received_to_started_s"]
    print(f"  of which rename -> file_received (intake) p50 {intake['p50']:.3f} max {intake['max']:.3f} s, "
          f"file_received -> file_started (queue) p50 {queue['p50']:.3f} max {queue['max']:.3f} s")
    print(f"  processing per file: p50 {result['processing_s']['p50'] * 1000:.0f} ms; drained "
          f"{result['drain_from_first_rename_s']} s after the first rename, "
          f"{result['drain_after_last_rename_s']} s after the last (writer lag max {lag * 1000:.0f} ms)")
    print(f"  files started before the last rename: {result['started_before_last_rename']}/{args.files}")
    print(f"written {write_result('bench_latency', result)}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(lambda: main()))
