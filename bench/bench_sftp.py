"""Upload throughput of the embedded SFTP server against OpenSSH's sshd, same run, same client.

A file of random bytes (default 100 MB = 10^8 bytes) is uploaded with OpenSSH's ``sftp``
client (batch mode, one ``put``) to two servers on 127.0.0.1 started here: the embedded
server (syncd.sftp.server in this process, one account holding the client's key) and a
real ``sshd`` serving ``internal-sftp`` (tests/sshd.py; needs root). Uploads alternate (the
order flips every round), each case ``--runs`` times; reported: the median MB/s (10^6
bytes per second of the whole client session, login included), the ratio embedded/OpenSSH,
and "xfer MB/s" = size / (median session - the server's median login-only session). An
upload counts only once the file that arrived has the right size and sha256.

Both servers get the same client options: cipher and MAC pinned (default aes128-ctr with
hmac-sha2-256-etm, what a default OpenSSH client negotiates with paramiko), the client's
defaults otherwise; its ``-v`` lines show what was negotiated (a mismatch aborts). Server
CPU seconds: the embedded server's from ``getrusage(RUSAGE_SELF)`` (this process's other
threads only wait), sshd's from ``/proc/<pid>/stat`` (its own + its reaped session
processes'); the client's (sftp + ssh) from ``RUSAGE_CHILDREN``.

``--variants`` adds, in the same run: the embedded server with other window / packet sizes
(``--windows``), the other cipher family, ``-B 255KiB`` (the write size the client uses with
sshd, which offers ``limits@openssh.com``; paramiko does not, so it gets 32 KiB) and the
client's defaults, each against sshd with the same options. ``--profile`` uploads once more
to the embedded server with cProfile (thread CPU time) on its transport and SFTP threads.

Usage: ``.venv/bin/python bench/bench_sftp.py [--size-mb 100] [--runs 3] [--variants] [--profile]``;
``--quick``: 20 MB, one run. Writes ``bench/out/bench_sftp.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import hashlib
import importlib
import os
import pstats
import re
import resource
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from benchlib import REPO, BenchError, machine_notes, median, run_main, temp_root, write_result

SFTP = shutil.which("sftp")
MB, KIB, MIB = 1_000_000, 1024, 1024 * 1024
CHUNK = 4 * MIB
LIMITS_WRITE = 255 * KIB  # what OpenSSH's client writes per request to a server with limits@openssh.com
KEX_LINE = re.compile(r"kex: client->server cipher: (\S+) MAC: (\S+)")
CTR_PAIR = ("aes128-ctr", "hmac-sha2-256-etm@openssh.com")
GCM_PAIR = ("aes128-gcm@openssh.com", "")


@dataclass(frozen=True)
class Case:
    """One way of uploading: the server, the client's options, the embedded server's sizes."""

    label: str
    server: str  # "embedded" or "openssh"
    cipher: str = ""  # "" = the client's default
    mac: str = ""
    buffer: int = 0  # sftp -B; 0 = the client's default
    window: int = 0  # embedded only: WINDOW_SIZE / MAX_PACKET for this case; 0 = as shipped
    packet: int = 0
    baseline: str = ""  # the OpenSSH case this one is compared with


@dataclass
class Target:
    """A running server: how to reach it, where uploads land, its CPU clock, when it is idle."""

    port: int
    user: str
    dest: Path
    known_hosts: Path
    cpu: Callable[[], float]
    idle: Callable[[], bool]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size-mb", type=int, default=100, help="file size in MB of 10^6 bytes (default 100)")
    p.add_argument("--runs", type=int, default=3, help="uploads per case; the median is kept (default 3)")
    p.add_argument("--quick", action="store_true", help="smoke run: 20 MB, one run")
    p.add_argument("--cipher", default=CTR_PAIR[0], help=f"cipher pinned for both (default {CTR_PAIR[0]})")
    p.add_argument("--mac", default="", help=f"MAC pinned for both, non-AEAD ciphers (default {CTR_PAIR[1]})")
    p.add_argument("--variants", action="store_true", help="also measure window/packet, cipher, write size")
    p.add_argument("--windows", default="2:32,64:256",
                   help="with --variants: embedded window MiB:packet KiB pairs (default 2:32,64:256)")
    p.add_argument("--profile", action="store_true", help="one more upload under cProfile; top costs")
    p.add_argument("--timeout", type=float, default=300.0, help="deadline per client session, seconds")
    p.add_argument("--keep", action="store_true", help="keep the temp folder")
    args = p.parse_args(argv)
    if args.quick:
        args.size_mb, args.runs = 20, 1
    if not args.mac and "gcm" not in args.cipher and "poly1305" not in args.cipher:
        args.mac = CTR_PAIR[1]
    return args


def make_source(path: Path, size: int) -> str:
    """Write ``size`` random bytes to ``path``; their sha256."""
    digest = hashlib.sha256()
    with path.open("wb") as f:
        for start in range(0, size, CHUNK):
            block = os.urandom(min(CHUNK, size - start))
            digest.update(block)
            f.write(block)
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    """The sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


# --- the two servers ------------------------------------------------------------------------


def _proc_cpu(pid: int) -> float:
    """CPU seconds of ``pid`` and its reaped children (utime + stime + cutime + cstime)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _has_children(pid: int) -> bool:
    return bool(Path(f"/proc/{pid}/task/{pid}/children").read_text().strip())


def _rusage_cpu(who: int = resource.RUSAGE_SELF) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _embedded_idle() -> bool:
    # the server names each connection's thread syncd-sftp-<address>:<port>
    return not any(t.name.startswith("syncd-sftp-") for t in threading.enumerate())


@contextlib.contextmanager
def servers(root: Path, size: int) -> Iterator[tuple[dict[str, Target], Path]]:
    """Start sshd and the embedded server; ({server: Target}, the client's key). Stops both."""
    from syncd.log import configure_logging
    from syncd.sftp.accounts import build_accounts
    from syncd.sftp.server import SftpServer, load_host_key
    from syncd.sftp.settings import GIB, SftpAccountSettings, SftpServerSettings

    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))  # the bench shares the test suite's sshd starter
    sshd_mod = importlib.import_module("tests.sshd")
    reason = sshd_mod.skip_reason() or (None if SFTP else "no OpenSSH sftp client on PATH")
    if reason:
        raise BenchError(f"cannot run the OpenSSH baseline: {reason}")
    configure_logging("warning", "json", stream=sys.stderr)
    try:
        sshd = sshd_mod.start_sshd(root / "openssh", root / "openssh" / "served")
    except RuntimeError as exc:
        raise BenchError(f"sshd did not start: {exc}") from None
    embedded: SftpServer | None = None
    try:
        key_line = sshd.client_key.with_suffix(".pub").read_text().strip()
        spec = SftpAccountSettings(name="bench", folder="bench", keys=(key_line,),
                                   max_file_size=max(GIB, size + 1))
        host_key = load_host_key(root / "embedded" / "state" / "host_key")
        settings = SftpServerSettings(enabled=True, address="127.0.0.1", port=0)
        sync = root / "embedded" / "sync"
        embedded = SftpServer(settings, build_accounts([spec], sync), host_key, lambda _f: {},
                              failure_delay=0.0)
        embedded.start()
        known = root / "embedded" / "known_hosts"
        known.write_text(f"[127.0.0.1]:{embedded.port} {host_key.get_name()} {host_key.get_base64()}\n")
        pid = sshd.process.pid
        yield {
            "embedded": Target(embedded.port, "bench", sync / "bench", known, _rusage_cpu, _embedded_idle),
            "openssh": Target(sshd.port, sshd.user, sshd.served, sshd.known_hosts,
                              lambda: _proc_cpu(pid), lambda: not _has_children(pid)),
        }, sshd.client_key
    finally:
        if embedded is not None:
            embedded.stop()
        sshd.stop()


@contextlib.contextmanager
def embedded_sizes(case: Case) -> Iterator[None]:
    """Set the embedded server's window / packet sizes for ``case`` (read at each connection)."""
    from syncd.sftp import server as server_mod

    saved = server_mod.WINDOW_SIZE, server_mod.MAX_PACKET
    if case.window:
        server_mod.WINDOW_SIZE, server_mod.MAX_PACKET = case.window, case.packet
    try:
        yield
    finally:
        server_mod.WINDOW_SIZE, server_mod.MAX_PACKET = saved


# --- client sessions ------------------------------------------------------------------------


def client_argv(case: Case, target: Target, key: Path, batch: Path) -> list[str]:
    """OpenSSH's sftp in batch mode, no config files or agent, the case's options, ``-v``."""
    argv = [SFTP or "sftp", "-v", "-F", "none", "-P", str(target.port), "-i", str(key), "-b", str(batch),
            "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o", "ConnectTimeout=10",
            "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={target.known_hosts}"]
    if case.cipher:
        argv += ["-c", case.cipher]
    if case.mac:
        argv += ["-o", f"MACs={case.mac}"]
    if case.buffer:
        argv += ["-B", str(case.buffer)]
    return [*argv, f"{target.user}@127.0.0.1"]


def wait_until(ready: Callable[[], bool], seconds: float, what: str) -> None:
    """Poll ``ready`` until true; BenchError after ``seconds``."""
    deadline = time.perf_counter() + seconds
    while not ready():
        if time.perf_counter() > deadline:
            raise BenchError(f"{what}: still busy after {seconds:.0f} s")
        time.sleep(0.01)


def session(case: Case, target: Target, key: Path, batch: Path, timeout: float) -> dict[str, Any]:
    """One client session running ``batch``: wall and CPU seconds, negotiated crypto."""
    wait_until(target.idle, 30, f"{case.label}: server before the session")
    cpu0, client0, t0 = target.cpu(), _rusage_cpu(resource.RUSAGE_CHILDREN), time.perf_counter()
    with embedded_sizes(case):
        try:
            proc = subprocess.run(client_argv(case, target, key, batch), stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise BenchError(f"{case.label}: a session outlasted {timeout:g} s (see --timeout)") from None
        wall = time.perf_counter() - t0
        wait_until(target.idle, 30, f"{case.label}: server after the session")
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-4:])
        raise BenchError(f"{case.label}: sftp exited {proc.returncode}: {tail}")
    kex = KEX_LINE.search(proc.stderr)
    return {
        "wall_s": round(wall, 3), "server_cpu_s": round(target.cpu() - cpu0, 2),
        "client_cpu_s": round(_rusage_cpu(resource.RUSAGE_CHILDREN) - client0, 2),
        "cipher": kex.group(1) if kex else "?", "mac": kex.group(2) if kex else "?",
    }


def upload(case: Case, target: Target, key: Path, source: Path, digest: str,
           timeout: float) -> dict[str, Any]:
    """Upload ``source`` once as ``case`` says; its figures, after checking what arrived."""
    batch = source.parent / "upload.batch"
    batch.write_text(f"put {source} bench.bin\n")
    run = session(case, target, key, batch, timeout)
    arrived, size = target.dest / "bench.bin", source.stat().st_size
    if not arrived.is_file() or arrived.stat().st_size != size or sha256_of(arrived) != digest:
        raise BenchError(f"{case.label}: the uploaded file is missing or differs from the source")
    arrived.unlink()
    return {"mb_s": round(size / run["wall_s"] / MB, 1), **run}


def login_only(case: Case, target: Target, key: Path, folder: Path, timeout: float) -> float:
    """Wall seconds of a session that logs in, asks the remote folder and leaves."""
    batch = folder / "login.batch"
    batch.write_text("pwd\n")
    return float(session(case, target, key, batch, timeout)["wall_s"])


# --- cases, rounds, summary -----------------------------------------------------------------


def cases(args: argparse.Namespace) -> list[Case]:
    """The pinned pair, plus the variants when asked."""
    pin = {"cipher": args.cipher, "mac": args.mac}
    found = [Case("openssh", "openssh", **pin), Case("embedded", "embedded", baseline="openssh", **pin)]
    if not args.variants:
        return found
    for pair in args.windows.split(","):
        window, packet = (int(x) for x in pair.split(":"))
        found.append(Case(f"embedded window {window} MiB / packet {packet} KiB", "embedded",
                          window=window * MIB, packet=packet * KIB, baseline="openssh", **pin))
    other = CTR_PAIR if "gcm" in args.cipher else GCM_PAIR
    found += [Case(f"openssh {other[0]}", "openssh", cipher=other[0], mac=other[1]),
              Case(f"embedded {other[0]}", "embedded", cipher=other[0], mac=other[1],
                   baseline=f"openssh {other[0]}")]
    big = "-B 255KiB"
    found += [Case(f"openssh {big}", "openssh", buffer=LIMITS_WRITE, **pin),
              Case(f"embedded {big}", "embedded", buffer=LIMITS_WRITE, baseline=f"openssh {big}", **pin)]
    found += [Case("openssh client defaults", "openssh"),
              Case("embedded client defaults", "embedded", baseline="openssh client defaults")]
    return found


def rounds(args: argparse.Namespace, plan: list[Case], targets: dict[str, Target], key: Path,
           source: Path, digest: str) -> tuple[dict[str, list[dict[str, Any]]], dict[str, list[float]]]:
    """Every case ``args.runs`` times, round by round (the order flipped every other round),
    and a login-only session per server each round: (runs per case, login seconds per server)."""
    runs: dict[str, list[dict[str, Any]]] = {c.label: [] for c in plan}
    logins: dict[str, list[float]] = {name: [] for name in targets}
    for i in range(args.runs):
        for case in plan[:2]:
            target = targets[case.server]
            logins[case.server].append(login_only(case, target, key, source.parent, args.timeout))
        for case in plan if i % 2 == 0 else plan[::-1]:
            run = upload(case, targets[case.server], key, source, digest, args.timeout)
            runs[case.label].append(run)
            print(f"  round {i + 1}: {case.label:<40} {run['mb_s']:7.1f} MB/s  server CPU "
                  f"{run['server_cpu_s']:5.2f} s  ({run['cipher']}, {run['mac']})", flush=True)
    return runs, logins


def summarise(plan: list[Case], runs: dict[str, list[dict[str, Any]]], logins: dict[str, list[float]],
              size: int) -> list[dict[str, Any]]:
    """Medians per case, the transfer alone (minus the server's median login), ratios to OpenSSH."""
    rows: list[dict[str, Any]] = []
    for case in plan:
        mine = runs[case.label]
        wall, login = median([r["wall_s"] for r in mine]), median(logins[case.server])
        row: dict[str, Any] = {
            "case": case.label, "server": case.server,
            "client_options": {k: v for k, v in vars(case).items() if k in ("cipher", "mac", "buffer") and v},
            "mb_s": round(median([r["mb_s"] for r in mine]), 1),
            "transfer_mb_s": round(size / (wall - login) / MB, 1) if wall > login else None,
            "login_s": round(login, 3),
            "server_cpu_s": round(median([r["server_cpu_s"] for r in mine]), 2),
            "client_cpu_s": round(median([r["client_cpu_s"] for r in mine]), 2),
            "negotiated": sorted({f"{r['cipher']} / {r['mac']}" for r in mine}), "runs": mine,
        }
        if case.window:
            row["window"], row["packet"] = case.window, case.packet
        if case.baseline:
            base = next(r for r in rows if r["case"] == case.baseline)
            if case.cipher and base["negotiated"] != row["negotiated"]:
                raise BenchError(f"{case.label}: negotiated {row['negotiated']}, its baseline "
                                 f"{base['negotiated']}: not the same crypto")
            row["ratio_to_openssh"] = round(row["mb_s"] / base["mb_s"], 3)
        rows.append(row)
    return rows


def print_summary(args: argparse.Namespace, rows: list[dict[str, Any]]) -> None:
    """The table of medians."""
    print(f"\n{args.size_mb} MB upload, OpenSSH sftp client, median of {args.runs} "
          f"(MB/s = 10^6 bytes/s, whole session):")
    print(f"  {'case':<40} {'MB/s':>7} {'ratio':>6} {'xfer MB/s':>9} {'srv CPU s':>9} {'cli CPU s':>9}"
          "  negotiated")
    for row in rows:
        ratio = f"{row['ratio_to_openssh']:.3f}" if "ratio_to_openssh" in row else ""
        xfer = f"{row['transfer_mb_s']:.1f}" if row["transfer_mb_s"] else "-"
        print(f"  {row['case']:<40} {row['mb_s']:7.1f} {ratio:>6} {xfer:>9} {row['server_cpu_s']:9.2f} "
              f"{row['client_cpu_s']:9.2f}  {', '.join(row['negotiated'])}")
    logins = {r["server"]: r["login_s"] for r in rows}
    print(f"  login-only session (median): embedded {logins['embedded']:.3f} s, "
          f"OpenSSH {logins['openssh']:.3f} s; xfer MB/s = size / (median session - that)")


# --- profile --------------------------------------------------------------------------------


@contextlib.contextmanager
def profiled(sink: list[cProfile.Profile]) -> Iterator[None]:
    """cProfile (thread CPU time) on every paramiko Transport and subsystem thread started inside."""
    import paramiko

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        def run(self: Any, *a: Any, **kw: Any) -> Any:
            prof = cProfile.Profile(time.thread_time)
            sink.append(prof)
            prof.enable()
            try:
                return fn(self, *a, **kw)
            finally:
                prof.disable()
        return run

    saved = paramiko.Transport.run, paramiko.SubsystemHandler._run
    paramiko.Transport.run, paramiko.SubsystemHandler._run = wrap(saved[0]), wrap(saved[1])
    try:
        yield
    finally:
        paramiko.Transport.run, paramiko.SubsystemHandler._run = saved


def profile(args: argparse.Namespace, case: Case, targets: dict[str, Target], key: Path,
            source: Path, digest: str, count: int = 15) -> dict[str, Any]:
    """One profiled upload to the embedded server; the functions with the most own CPU time."""
    sink: list[cProfile.Profile] = []
    with profiled(sink):
        run = upload(case, targets["embedded"], key, source, digest, args.timeout)
    stats = pstats.Stats(sink[0])
    for prof in sink[1:]:
        stats.add(prof)
    table: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in table.values())
    ranked = sorted(table.items(), key=lambda item: item[1][2], reverse=True)[:count]
    top = [{"function": f"{Path(f).name}:{line}({name})", "calls": v[1], "own_s": round(v[2], 3),
            "cumulative_s": round(v[3], 3)} for (f, line, name), v in ranked]
    print(f"\nprofiled upload ({run['mb_s']} MB/s under cProfile); server threads' CPU {total:.2f} s, "
          "top own time:")
    for c in top:
        print(f"  {c['own_s']:7.3f} s  {c['calls']:>8} calls  {c['function']}")
    return {"run": run, "total_cpu_s": round(total, 3), "top_own_cpu": top}


def main(argv: Sequence[str] | None = None) -> int:
    """Run, print the summary, write bench/out/bench_sftp.json."""
    args = parse_args(argv)
    size = args.size_mb * MB
    result: dict[str, Any] = {"bench": "sftp", "machine": machine_notes(), "params": vars(args)}
    plan = cases(args)
    with temp_root("bench-sftp", args.keep) as tmp:
        source = tmp / "source.bin"
        digest = make_source(source, size)
        with servers(tmp, size) as (targets, key):
            print(f"uploading {args.size_mb} MB, {len(plan)} cases x {args.runs} runs:", flush=True)
            rows = summarise(plan, *rounds(args, plan, targets, key, source, digest), size)
            if args.profile:
                result["profile"] = profile(args, replace(plan[1], label="embedded (profiled)"),
                                            targets, key, source, digest)
    result["cases"] = rows
    print_summary(args, rows)
    print(f"written {write_result('bench_sftp', result)}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(lambda: main()))
