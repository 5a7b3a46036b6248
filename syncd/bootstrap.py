"""The composition root: the only place that builds engines, adapters and processors.

The platform is the embedded SQL store (``[platform] kind = "sql"``) or a Moodle site
(``kind = "moodle"``): then the token file is read (mode 0600 checked) when the app is
built, and the local part of the platform (checkpoints, saved results, blobs) is a SQL
store on the ledger's database. The Moodle modules are imported only for a Moodle site.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import Engine

from syncd.domain import ConfigError
from syncd.health import Heartbeat
from syncd.intake.ledger import Ledger
from syncd.intake.store import FileStore
from syncd.intake.watcher import IntakeOptions, ignore_reason
from syncd.jobs import Cleanup, PreselectedFile
from syncd.pipeline.routes import Route, Router
from syncd.pipeline.runner import RUNNER_OPTIONS, Runner, csv_options
from syncd.platform.base import Platform
from syncd.platform.sqlstore import SqlPlatform, create_schema
from syncd.processors.base import ProcessorSpec, RunContext
from syncd.processors.registry import REGISTRY
from syncd.schedule import Job, JobAction, Scheduler, parse_cron
from syncd.settings import JobSettings, Settings, zone
from syncd.sftp.accounts import build_accounts
from syncd.sftp.pull import PullAction, open_pull
from syncd.sftp.server import SftpServer, load_host_key
from syncd.sftp.session import ResultsLookup
from syncd.sqlutil import make_engine


def utc_now() -> datetime:
    """The real clock (tests pass their own)."""
    return datetime.now(UTC)


@dataclass
class App:
    """Everything a command needs, built once."""

    settings: Settings
    store: FileStore
    ledger: Ledger
    platform: Platform
    runner: Runner
    router: Router
    clock: Callable[[], datetime] = utc_now
    engines: list[Engine] = field(default_factory=list)
    #: the worker's sign of life (beats after every committed batch)
    heartbeat: Heartbeat = field(default_factory=Heartbeat)

    def close(self) -> None:
        """Release the platform (a Moodle site's HTTP connections) and database connections."""
        self.platform.close()
        for engine in self.engines:
            engine.dispose()


def build_router(settings: Settings, registry: Mapping[str, ProcessorSpec] = REGISTRY) -> Router:
    """The router for ``settings``; ConfigError names a bad route or option."""
    validate_processors(settings, registry)
    routes = [Route(r.glob, r.processor, dict(r.options)) for r in settings.routes]
    return Router(
        routes, registry, use_defaults=settings.default_routes,
        csv_options=csv_options(settings, {}),
    )


def validate_processors(settings: Settings, registry: Mapping[str, ProcessorSpec]) -> None:
    """Build every configured processor once so a bad option fails at start, not at 3 am."""
    ctx = RunContext(timezone=settings.tz, now=utc_now, password_cost=settings.passwords.cost)
    for name, options in settings.processors.items():
        if name not in registry:
            raise ConfigError(f"processors.{name}: unknown processor (known: {', '.join(sorted(registry))})")
        _check_options(f"processors.{name}", registry[name], options, ctx)
    for i, route in enumerate(settings.routes):
        spec = registry.get(route.processor)
        if spec is None:
            raise ConfigError(
                f"route[{i}].processor: unknown processor '{route.processor}' "
                f"(known: {', '.join(sorted(registry))})"
            )
        merged = {**settings.processors.get(route.processor, {}), **route.options}
        _check_options(f"route[{i}]", spec, merged, ctx)
        csv_options(settings, route.options)  # encoding/delimiter must be valid too


def _check_options(where: str, spec: ProcessorSpec, options: Mapping[str, object], ctx: RunContext) -> None:
    allowed = spec.options | RUNNER_OPTIONS
    for key in options:
        if key not in allowed:
            known = ", ".join(sorted(allowed))
            raise ConfigError(f"{where}.{key}: unknown option for {spec.name} (allowed: {known})")
    try:
        spec.factory({k: v for k, v in options.items() if k not in RUNNER_OPTIONS}, ctx)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def job_triggers(settings: Settings) -> list[tuple[str, str, CronTrigger, JobSettings | None]]:
    """(name, cron, trigger, job settings or None for cleanup) of every job, validated."""
    default_tz = zone(settings.scheduler.timezone, "scheduler.timezone")
    planned: list[tuple[str, str, CronTrigger, JobSettings | None]] = []
    for i, spec in enumerate(settings.jobs):
        where = f"job[{i}]"
        if spec.processor not in REGISTRY:
            known = ", ".join(sorted(REGISTRY))
            raise ConfigError(f"{where}.processor: unknown processor '{spec.processor}' (known: {known})")
        rel = PurePosixPath(spec.file)
        if rel.is_absolute() or ".." in rel.parts or rel.parts[0] in FileStore.RESERVED:
            raise ConfigError(f"{where}.file: a path inside store/, not in {', '.join(FileStore.RESERVED)}")
        tz = zone(spec.timezone, f"{where}.timezone") if spec.timezone else default_tz
        planned.append((spec.name, spec.cron, parse_cron(spec.cron, tz, f"{where}.cron"), spec))
    if settings.cleanup.enabled:
        trigger = parse_cron(settings.cleanup.cron, default_tz, "cleanup.cron")
        planned.append(("cleanup", settings.cleanup.cron, trigger, None))
    return planned


def build_pull_jobs(settings: Settings, sync_dir: Path, stop: threading.Event) -> list[Job]:
    """One scheduled job per ``[[sftp.pull]]``, its key and known_hosts checked (ConfigError).

    Each run goes on its own thread (the scheduler never waits for a slow remote) and
    stops between files, or mid-download, once ``stop`` is set.
    """
    default_tz = zone(settings.scheduler.timezone, "scheduler.timezone")
    options = intake_options(settings)
    jobs = []
    for i, spec in enumerate(settings.sftp.pulls):
        tz = zone(spec.timezone, f"sftp.pull[{i}].timezone") if spec.timezone else default_tz
        trigger = parse_cron(spec.cron, tz, f"sftp.pull[{i}].cron")
        puller = open_pull(spec, sync_dir, lambda rel: ignore_reason(rel, options))
        jobs.append(Job(f"sftp-pull-{spec.name}", spec.cron, trigger, PullAction(puller, stop)))
    return jobs


def build_scheduler(app: App, wake: Callable[[], None], extra: Sequence[Job] = ()) -> Scheduler:
    """The scheduler with the configured preselected-file jobs, the cleanup job and ``extra``
    jobs (the SFTP pulls, built once by the service: SIGHUP does not rebuild them)."""
    settings = app.settings
    jobs: list[Job] = list(extra)
    for name, cron, trigger, spec in job_triggers(settings):
        action: JobAction
        if spec is None:
            cleanup = settings.cleanup
            action = Cleanup(app.store, app.clock, cleanup.cache_days, cleanup.retention_days)
        else:
            action = PreselectedFile(
                store=app.store, ledger=app.ledger, spec=REGISTRY[spec.processor], file=spec.file,
                options=spec.options, wake=wake,
            )
        jobs.append(Job(name, cron, trigger, action, spec.options if spec else {}))
    return Scheduler(jobs, app.ledger, app.clock, settings.scheduler.grace)


def intake_options(settings: Settings) -> IntakeOptions:
    """The watcher's options from the settings."""
    i = settings.intake
    return IntakeOptions(
        mode=i.mode, settle=i.settle, scan_settle=i.scan_settle,
        rescan_interval=i.rescan_interval, poll_interval=i.poll_interval,
        ignore_suffixes=i.ignore_suffixes, done_marker=i.done_marker,
        done_suffix=i.done_suffix, reserved=FileStore.RESERVED,
    )


def build_app(settings: Settings, *, clock: Callable[[], datetime] = utc_now) -> App:
    """Create the data layout, open the databases and wire the pipeline."""
    router = build_router(settings)
    store = FileStore(settings.data_dir, settings.cache_dir)
    store.ensure_layout()
    ledger_engine = make_engine(settings.database_url)
    engines = [ledger_engine]
    platform_engine = ledger_engine
    if settings.platform_url != settings.database_url:
        platform_engine = make_engine(settings.platform_url)
        engines.append(platform_engine)
    try:
        ledger = Ledger(ledger_engine, clock)
        ledger.create_schema()
        platform = build_platform(settings, platform_engine)
    except BaseException:
        for engine in engines:
            engine.dispose()
        raise
    heartbeat = Heartbeat()
    runner = Runner(
        ledger=ledger, platform=platform, store=store, registry=REGISTRY,
        settings=settings, clock=clock, heartbeat=heartbeat,
    )
    return App(settings, store, ledger, platform, runner, router, clock, engines, heartbeat)


def build_platform(settings: Settings, engine: Engine) -> Platform:
    """The platform rows are applied to; ``engine`` holds the SQL store (for Moodle: only
    its local part). A Moodle token file that is missing, readable by others or not one
    word is a ConfigError."""
    create_schema(engine, extra_roles=settings.platform.roles if settings.platform.kind == "sql" else ())
    local = SqlPlatform(engine, settings.data_dir / "files")  # document and picture blobs
    if settings.platform.kind != "moodle":
        return local
    from syncd.platform.moodle.adapter import connect  # not loaded for the SQL store

    p = settings.platform
    return connect(p.url, Path(p.token_file), local, timeout=p.timeout, verify_tls=p.verify_tls,
                   retries=p.retries, max_in_flight=p.max_in_flight, batch_size=p.batch_size,
                   role_map=p.role_map)


#: the site-info function check-config calls (needed too)
SITE_INFO = "core_webservice_get_site_info"
_FUNCTION = re.compile(r"""["']((?:core|enrol|tool|mod|local|block)_[a-z0-9]+(?:_[a-z0-9]+)+)["']""")


@dataclass(frozen=True, slots=True)
class SiteCheck:
    """What ``check-config`` learns from a Moodle site."""

    sitename: str
    release: str
    version: str
    #: functions the adapter calls that the token's service does not offer
    missing: tuple[str, ...]


def moodle_functions() -> frozenset[str]:
    """Every web-service function the Moodle adapter names, read from its own source, so
    the list cannot fall behind the code."""
    package = resources.files("syncd.platform.moodle")
    names = {SITE_INFO}
    for entry in package.iterdir():
        if entry.name.endswith(".py"):
            names.update(_FUNCTION.findall(entry.read_text(encoding="utf-8")))
    return frozenset(names)


def check_moodle_site(settings: Settings) -> SiteCheck:
    """Read the token file (mode checked), call core_webservice_get_site_info and compare its
    functions with :func:`moodle_functions`. Errors are SyncdErrors without the token."""
    from syncd.platform.moodle.client import MoodleClient, load_token

    p = settings.platform
    token = load_token(Path(p.token_file))
    with MoodleClient(p.url, token, timeout=p.timeout, verify_tls=p.verify_tls, retries=p.retries,
                      max_in_flight=1) as client:
        info: Any = client.call(SITE_INFO)
    if not isinstance(info, dict):
        info = {}
    offered = {str(f.get("name")) for f in info.get("functions") or () if isinstance(f, dict)}
    text = {key: str(info.get(key, "")) for key in ("sitename", "release", "version")}
    missing = tuple(sorted(moodle_functions() - offered))
    return SiteCheck(text["sitename"], text["release"], text["version"], missing)


def ledger_results(ledger: Ledger) -> ResultsLookup:
    """The SFTP ``_results/`` view: reports (.txt, .json) and tryback files of a folder's uploads."""
    def lookup(folder: str) -> dict[str, Path]:
        found: dict[str, Path] = {}
        for report, tryback in ledger.results_from(folder):
            paths = [Path(report), Path(report).with_suffix(".json")] if report else []
            paths += [Path(tryback)] if tryback else []
            for path in paths:
                found.setdefault(path.name, path)
        return found
    return lookup


def host_key_path(settings: Settings, store: FileStore) -> Path:
    """The embedded server's host key file (default: in the state folder)."""
    configured = settings.sftp.server.host_key
    return Path(configured) if configured else store.state_dir / "sftp_host_ed25519_key"


def build_sftp_server(app: App) -> SftpServer | None:
    """The embedded SFTP server if ``[sftp.server] enabled`` (host key made on first start)."""
    sftp = app.settings.sftp
    if not sftp.server.enabled:
        return None
    accounts = build_accounts(sftp.accounts, app.store.sync_dir)
    host_key = load_host_key(host_key_path(app.settings, app.store))
    return SftpServer(sftp.server, accounts, host_key, ledger_results(app.ledger))
