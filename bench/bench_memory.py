"""Peak memory of a real daemon applying a 1,000,000-row users file.

The file is generated row by row onto disk (never held in memory, here or in syncd's
reader), dropped into a fresh daemon's sync/ (``_users.csv`` renamed to ``users.csv``),
and the daemon's VmRSS is sampled from ``/proc/<pid>/status`` every 100 ms until the
file is processed; VmHWM (the kernel's own peak) is read at the end, before the daemon
stops. The daemon (``syncd run``), not ``syncd process``, because it is what runs in
production: its footprint includes the watcher, the worker thread and the scheduler.

Usage: ``.venv/bin/python bench/bench_memory.py [--rows N]``.
Writes ``bench/out/bench_memory.json`` (with the RSS timeline).
"""

from __future__ import annotations

import argparse
import resource
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchlib import (
    BenchError,
    Daemon,
    config_text,
    drop_file,
    machine_notes,
    proc_status,
    run_main,
    temp_root,
    write_result,
    write_users_csv,
)

TARGET_MB = 150
SAMPLE_EVERY = 0.1


class RssSampler:
    """Samples a process's VmRSS every ``SAMPLE_EVERY`` seconds on a thread."""

    def __init__(self, pid: int) -> None:
        self._pid = pid
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._t0 = time.perf_counter()
        self.samples: list[tuple[float, int]] = []  # (seconds since start, kB)

    def start(self) -> None:
        """Start sampling; time 0 is now."""
        self._t0 = time.perf_counter()
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = proc_status(self._pid, ("VmRSS",)).get("VmRSS")
            if rss is not None:
                self.samples.append((round(time.perf_counter() - self._t0, 2), rss))
            self._stop.wait(SAMPLE_EVERY)

    def stop(self) -> None:
        """Stop sampling."""
        self._stop.set()
        self._thread.join(2)

    def peak_kb(self) -> int:
        """The largest sample, kB."""
        return max((kb for _, kb in self.samples), default=0)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=1_000_000, help="rows of the users file (default 1000000)")
    p.add_argument("--timeout", type=float, default=400.0, help="deadline for the file, seconds")
    p.add_argument("--keep", action="store_true", help="keep the temp folder")
    return p.parse_args(argv)


def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Generate the file, run it through a fresh daemon while sampling its memory."""
    source = tmp / "users.csv"
    begun = time.perf_counter()
    size = write_users_csv(source, args.rows)
    generated = time.perf_counter() - begun
    with Daemon(tmp / "run", config_text(0.2)) as daemon:
        daemon.start()
        idle = proc_status(daemon.pid)
        sampler = RssSampler(daemon.pid)
        sampler.start()
        try:
            renamed, _ = drop_file(source, daemon.sync_dir, "users.csv")
            what = f"users.csv ({args.rows} rows)"
            _, seen = daemon.wait_report("users.csv", renamed + args.timeout, what)
            done = daemon.wait_for(lambda e: e.name == "file_processed", 120, what)[0].data
        finally:
            sampler.stop()
        final = proc_status(daemon.pid)
    if done.get("created") != args.rows or done.get("error"):
        raise BenchError(f"expected {args.rows} created and no error, got {done}")
    e2e = seen - renamed
    return {
        "rows": args.rows, "file_bytes": size, "generate_s": round(generated, 1),
        "idle_rss_kb": idle.get("VmRSS"), "peak_rss_kb": sampler.peak_kb(),
        "vmhwm_kb": final.get("VmHWM"), "rss_after_kb": final.get("VmRSS"),
        "samples": len(sampler.samples),
        "e2e_s": round(e2e, 2), "e2e_rows_per_s": round(args.rows / e2e),
        "duration_ms": done["duration_ms"],
        "processing_rows_per_s": round(args.rows / max(done["duration_ms"], 1) * 1000),
        "timeline_s_kb": sampler.samples[:: max(1, len(sampler.samples) // 200)],
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run, print the summary, write bench/out/bench_memory.json."""
    args = parse_args(argv)
    result: dict[str, Any] = {"bench": "memory", "machine": machine_notes(), "params": vars(args)}
    with temp_root("bench-memory", args.keep) as tmp:
        m = measure(args, tmp)
    result["run"] = m
    peak_mb = max(m["peak_rss_kb"], m["vmhwm_kb"] or 0) / 1024
    result["target_mb"] = TARGET_MB
    result["meets_target"] = peak_mb <= TARGET_MB
    result["bench_own_maxrss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    verdict = "meets" if result["meets_target"] else "MISSES"
    print(f"{m['rows']} rows ({m['file_bytes'] / 1e6:.0f} MB file) through a real daemon:")
    print(f"  RSS idle {m['idle_rss_kb'] / 1024:.0f} MB, peak sampled {m['peak_rss_kb'] / 1024:.0f} MB, "
          f"VmHWM {(m['vmhwm_kb'] or 0) / 1024:.0f} MB, after {(m['rss_after_kb'] or 0) / 1024:.0f} MB "
          f"({verdict} the {TARGET_MB} MB target)")
    print(f"  end to end {m['e2e_s']:.1f} s = {m['e2e_rows_per_s']} rows/s; "
          f"processing {m['duration_ms'] / 1000:.1f} s = {m['processing_rows_per_s']} rows/s")
    print(f"written {write_result('bench_memory', result)}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(lambda: main()))
