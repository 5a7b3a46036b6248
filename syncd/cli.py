"""``syncd run | process FILE | status | check-config | schedules | init | hash-password``.

Errors a user can fix (bad config, bad path, bad input) are one line on stderr,
``syncd: <what>``, and exit code 2. ``process`` exits 0 when every row applied, 1 when
some rows failed (see the report), 2 when the file could not be processed at all.
``check-config`` with a Moodle platform also reads the token file and asks the site who it
is: exit 1 when the token's service lacks functions syncd calls (they are listed).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import shutil
import sys
import threading
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from syncd.bootstrap import (
    App,
    build_app,
    build_pull_jobs,
    build_router,
    build_scheduler,
    check_moodle_site,
    job_triggers,
)
from syncd.domain import ConfigError, FileState, SyncdError
from syncd.intake.arrivals import sha256_of
from syncd.intake.ledger import process_owner
from syncd.intake.store import FileStore
from syncd.log import configure_logging
from syncd.passwords import DEFAULT_COST, hash_password
from syncd.pipeline.runner import RunOutcome
from syncd.settings import Settings, find_config, load_settings

STARTER_CONFIG = """\
# syncd configuration: the full reference with every key is config/syncd.toml in the
# source tree (and the README). Environment overrides: SYNCD_<SECTION>__<KEY>.
data_dir = "{data_dir}"

[intake]
settle = 1.0          # seconds a complete upload must stay unchanged

[log]
level = "info"

# [[route]]
# glob = "hr/staff*.csv"
# processor = "users"
# identity = "username"
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="syncd", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--config", type=Path,
        help="config file (default: $SYNCD_CONFIG, ./syncd.toml, /etc/syncd/syncd.toml)",
    )
    parser.add_argument("--data", type=Path, help="data folder (overrides data_dir)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run the daemon in the foreground")
    process = sub.add_parser("process", help="process one command file now")
    process.add_argument("file", type=Path)
    process.add_argument("--processor", help="processor name (default: routed by name or header)")
    process.add_argument(
        "--dry-run", action="store_true",
        help="apply in a rolled-back transaction; report marked SIMULATION",
    )
    status = sub.add_parser("status", help="recent files and their outcome")
    status.add_argument("--limit", type=int, default=20)
    status.add_argument("--json", action="store_true")
    sub.add_parser("check-config", help="validate the configuration and exit")
    sub.add_parser("schedules", help="list the scheduled jobs and their next run")
    sub.add_parser("init", help="create the data layout and a starter config")
    hashpw = sub.add_parser(
        "hash-password", help="hash an SFTP account password (read from stdin) for password_hash",
    )
    hashpw.add_argument("--cost", type=int, default=DEFAULT_COST, help="scrypt cost, log2 N (10..20)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``syncd`` console script."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "init":
            return _init(args)
        if args.command == "hash-password":
            return _hash_password(args)
        settings = load_settings(args.config, data_dir=args.data)
        if args.command == "check-config":
            build_router(settings)
            job_triggers(settings)
            build_pull_jobs(settings, settings.data_dir / "sync", threading.Event())  # keys, known_hosts
            print(f"config ok: {settings.config_path or '(defaults)'}; data_dir {settings.data_dir}")
            return _check_moodle(settings) if settings.platform.kind == "moodle" else 0
        # The daemon logs on stdout (journald); one-shot commands keep stdout for their answer.
        stream = None if args.command == "run" else sys.stderr
        configure_logging(settings.log.level, settings.log.format, stream=stream)
        if args.command == "run":
            return _run(settings, args)
        app = build_app(settings)
        try:
            if args.command == "status":
                return _status(app, args)
            if args.command == "schedules":
                return _schedules(app)
            return _process(app, args)
        finally:
            app.close()
    except (ConfigError, SyncdError) as exc:
        print(f"syncd: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"syncd: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 2


def _run(settings: Settings, args: argparse.Namespace) -> int:
    from syncd.service import Service  # the daemon's threads are not needed by other commands

    app = build_app(settings)
    return Service(app, lambda: load_settings(args.config, data_dir=args.data)).run()


def _check_moodle(settings: Settings) -> int:
    """The site's name and version; 1 when the token's service lacks functions syncd calls."""
    site = check_moodle_site(settings)
    print(f"moodle ok: {site.sitename!r} at {settings.platform.url} (Moodle {site.release}, "
          f"version {site.version})")
    if site.missing:
        print(f"missing from the token's service ({len(site.missing)}), rows needing them will fail: "
              + ", ".join(site.missing))
        return 1
    return 0


def _hash_password(args: argparse.Namespace) -> int:
    """Print the hash of one password: asked twice on a terminal, else the first stdin line."""
    if sys.stdin.isatty():
        plain = getpass.getpass("password: ")
        if getpass.getpass("again: ") != plain:
            print("syncd: the passwords differ", file=sys.stderr)
            return 2
    else:
        plain = sys.stdin.readline().rstrip("\r\n")
    if not plain:
        print("syncd: empty password", file=sys.stderr)
        return 2
    try:
        print(hash_password(plain, args.cost))
    except ValueError as exc:
        print(f"syncd: {exc}", file=sys.stderr)
        return 2
    return 0


def _init(args: argparse.Namespace) -> int:
    config = find_config(args.config) or Path("syncd.toml")
    data = args.data
    if data is None:
        data = load_settings(config).data_dir if config.is_file() else load_settings(None).data_dir
    FileStore(data).ensure_layout()
    print(f"data layout ready under {data}")
    if config.exists():
        print(f"config kept: {config} (already there)")
    else:
        config.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(STARTER_CONFIG.format(data_dir=os.path.abspath(data)))
        print(f"starter config written: {config}")
    return 0


def _status(app: App, args: argparse.Namespace) -> int:
    entries = app.ledger.recent(args.limit)
    if args.json:
        rows = [
            {
                "id": e.id, "file": e.original_path, "state": e.state.value, "processor": e.processor,
                "arrived_at": e.arrived_at.isoformat(), "counts": e.counts, "error": e.error,
                "report": e.report_path, "final_path": e.final_path,
            }
            for e in entries
        ]
        print(json.dumps(rows, indent=1))
        return 0
    print(f"{app.ledger.open_count()} file(s) waiting or in progress")
    for e in entries:
        counts = " ".join(f"{k}={v}" for k, v in e.counts.items() if v)
        detail = e.error or counts or ""
        print(f"{e.id:>6}  {e.arrived_at:%Y-%m-%d %H:%M:%S}  {e.state.value:<10} "
              f"{(e.processor or '-'):<12} {e.original_path}  {detail}")
    return 0


def _schedules(app: App) -> int:
    pulls = build_pull_jobs(app.settings, app.store.sync_dir, threading.Event())
    scheduler = build_scheduler(app, lambda: None, pulls)
    for name, cron, when in scheduler.next_runs():
        last = app.ledger.last_fire(name)
        nxt = when.isoformat() if when else "never"
        print(f"{name:<24} {cron:<20} next {nxt}  last {last.isoformat() if last else '-'}")
    if not app.settings.jobs:
        print("(no [[job]] configured)")
    return 0


def _process(app: App, args: argparse.Namespace) -> int:
    path: Path = args.file
    if path.is_symlink() or not path.is_file():
        raise SyncdError(f"{path}: not a regular file")
    path = path.resolve()
    if args.processor:
        name, options, priority = args.processor, {}, 1000
        if name not in app.runner.registry:
            known = ", ".join(sorted(app.runner.registry))
            raise ConfigError(f"--processor: unknown processor '{name}' (known: {known})")
        priority = app.runner.registry[name].priority
    else:
        match = app.router.route(PurePosixPath(path.name), path)
        if match is None:
            raise SyncdError(f"{path}: no route for this file; name a processor with --processor")
        name, options, priority = match.spec.name, dict(match.options), match.spec.priority
    if args.dry_run:
        return _report(app.runner.simulate(path, path.name, name, options))
    stored = _into_store(app.store, path)
    file_id = app.ledger.record_stored(
        f"cli:{path}", str(stored), stored.stat().st_size, stored.stat().st_mtime, sha256_of(stored),
        processor=name, options=options, routed_by="cli", priority=priority, owner=process_owner(),
    )
    return _report(app.runner.run(app.ledger.get(file_id)))


def _into_store(store: FileStore, path: Path) -> Path:
    """A file already in the store is processed in place; any other is copied in first."""
    reserved = [store.store_dir / r for r in FileStore.RESERVED]
    if path.is_relative_to(store.store_dir) and not any(path.is_relative_to(r) for r in reserved):
        return path
    dest = store.store_path_for(PurePosixPath(path.name))
    dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out, path.open("rb") as src:
        shutil.copyfileobj(src, out)
    return dest


def _report(outcome: RunOutcome) -> int:
    if outcome.state is FileState.FAILED:
        print(f"failed: {outcome.error}\nreport: {outcome.report}")
        return 2
    if outcome.state is None:
        print(f"not finished: {outcome.error}")
        return 2
    assert outcome.summary is not None
    counts = " ".join(f"{k}={v}" for k, v in outcome.summary.counts.items())
    print(f"{counts}\nreport: {outcome.report}")
    return 1 if outcome.summary.failed else 0
