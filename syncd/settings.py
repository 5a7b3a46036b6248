"""One frozen :class:`Settings`, loaded and validated once (TOML file + ``SYNCD_*`` env).

Every section is a frozen dataclass; field metadata says what a value may be. A bad key or
value raises :class:`~syncd.domain.ConfigError` with one line naming the key and what is
allowed, e.g. ``intake.settle: must be a number >= 0 (got 'soon')``.

Environment overrides: ``SYNCD_DATA_DIR=/srv/syncd`` for a top-level key,
``SYNCD_<SECTION>__<KEY>`` for a section key (``SYNCD_INTAKE__SETTLE=2``,
``SYNCD_LOG__LEVEL=debug``); lists are comma-separated.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from syncd.confparse import EnvValue, convert, names, section
from syncd.domain import ConfigError
from syncd.sftp.settings import SftpSettings, parse_sftp

CONFIG_SEARCH = (Path("syncd.toml"), Path("/etc/syncd/syncd.toml"))


def _choices(*values: str) -> dict[str, Any]:
    return {"choices": values}


def _min(low: float) -> dict[str, Any]:
    return {"min": low}


@dataclass(frozen=True, slots=True)
class IntakeSettings:
    """How the drop folder is watched (SPEC §2)."""

    mode: str = field(default="inotify", metadata=_choices("inotify", "polling"))
    settle: float = field(default=1.0, metadata=_min(0))
    scan_settle: float = field(default=10.0, metadata=_min(0))
    rescan_interval: float = field(default=30.0, metadata=_min(1))
    poll_interval: float = field(default=2.0, metadata=_min(0.1))
    ignore_suffixes: tuple[str, ...] = (
        ".filepart", ".part", ".partial", ".tmp", ".swp", ".crdownload",
    )
    done_marker: bool = False
    done_suffix: str = ".done"
    #: files arriving together are ordered by processor priority: the worker waits while
    #: uploads are still settling, at most this long
    gather_max: float = field(default=60.0, metadata=_min(0))


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    """The ledger database; empty url = SQLite under <data>/state/syncd.db."""

    url: str = ""


#: Moodle role ids of a stock site (shortname -> id); ``[platform.role_map]`` overrides
MOODLE_ROLES: Mapping[str, int] = {
    "manager": 1, "coursecreator": 2, "editingteacher": 3, "teacher": 4, "student": 5, "guest": 6,
}


@dataclass(frozen=True, slots=True)
class PlatformSettings:
    """The platform rows are applied to: the embedded SQL store, or a Moodle site.

    ``kind = "sql"``: ``url`` is the store's database (empty = the ledger's), ``roles``
    extra role shortnames. ``kind = "moodle"``: ``url`` is the site's address
    (``https://moodle.example.edu``), ``token_file`` a file of mode 0600 holding the web
    service token; checkpoints (and blobs) stay local, in the ledger's database.
    """

    kind: str = field(default="sql", metadata=_choices("sql", "moodle"))
    #: sql: empty = the ledger's database (one transaction covers rows and checkpoint);
    #: moodle: the site's base URL
    url: str = ""
    #: role shortnames seeded besides manager, editingteacher, teacher, student, guest
    roles: tuple[str, ...] = ()
    token_file: str = ""
    timeout: float = field(default=30.0, metadata=_min(0.1))
    #: items per web-service call (look-ups, creates, updates)
    batch_size: int = field(default=100, metadata={"min": 1, "max": 1000})
    verify_tls: bool = True
    #: web-service requests sent at once
    max_in_flight: int = field(default=4, metadata={"min": 1, "max": 32})
    #: attempts after a transport error (connection, timeout, 5xx), with backoff
    retries: int = field(default=3, metadata={"min": 0, "max": 10})
    #: role shortname -> Moodle role id (``[platform.role_map]``; merged over a stock site's)
    role_map: Mapping[str, int] = field(default_factory=lambda: dict(MOODLE_ROLES))


@dataclass(frozen=True, slots=True)
class CsvSettings:
    """Defaults of the CSV reader (SPEC §4)."""

    encoding: str = field(default="utf-8", metadata=_choices("utf-8", "cp1252", "latin-1"))
    delimiter: str = field(default="auto", metadata=_choices("auto", ",", ";", "\t", "|"))
    timezone: str = "UTC"
    max_record_bytes: int = field(default=16 * 1024 * 1024, metadata=_min(1024))


@dataclass(frozen=True, slots=True)
class ProcessingSettings:
    """How files are applied."""

    batch_size: int = field(default=2000, metadata=_min(1))
    #: seconds before a file that hit a transient error (database busy...) is tried again
    retry_delay: float = field(default=5.0, metadata=_min(0))


@dataclass(frozen=True, slots=True)
class PasswordSettings:
    """The salted KDF for imported passwords (scrypt; cost = log2 N)."""

    cost: int = field(default=14, metadata={"min": 10, "max": 20})


@dataclass(frozen=True, slots=True)
class LogSettings:
    """Log level and format (auto = console on a TTY, JSON otherwise)."""

    level: str = field(default="info", metadata=_choices("debug", "info", "warning", "error"))
    format: str = field(default="auto", metadata=_choices("auto", "json", "console"))


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    """The daemon's health rules (systemd watchdog)."""

    #: a thread (worker, intake) that shows no progress for this long is stuck: the
    #: WATCHDOG=1 pings stop and systemd restarts the service after WatchdogSec
    stall_timeout: float = field(default=120.0, metadata=_min(1))


@dataclass(frozen=True, slots=True)
class SchedulerSettings:
    """Scheduled jobs in general (SPEC §6)."""

    #: time zone of cron expressions without their own
    timezone: str = "UTC"
    #: a run missed while syncd was down is made up at start if it was due this recently
    grace: float = field(default=3600.0, metadata=_min(0))


@dataclass(frozen=True, slots=True)
class CleanupSettings:
    """The cache-cleanup and retention job."""

    enabled: bool = True
    cron: str = "17 3 * * *"
    #: files in <data>/cache older than this many days are removed
    cache_days: float = field(default=7.0, metadata=_min(0))
    #: files in store/archives, reports, tryback and failed older than this are removed
    retention_days: float = field(default=90.0, metadata=_min(0))


@dataclass(frozen=True, slots=True)
class JobSettings:
    """A preselected-file job: at each cron tick, run store/<file> with <processor> if present."""

    name: str
    processor: str
    file: str
    cron: str
    timezone: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RouteSettings:
    """One configured route: a glob on the path relative to sync/ -> a processor."""

    glob: str
    processor: str
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything syncd is configured with. Build it with :func:`load_settings`."""

    data_dir: Path = Path("/var/lib/syncd")
    #: None = <data>/cache, or $CACHE_DIRECTORY under systemd (CacheDirectory=)
    cache_dir: Path | None = None
    database: DatabaseSettings = DatabaseSettings()
    platform: PlatformSettings = PlatformSettings()
    intake: IntakeSettings = IntakeSettings()
    csv: CsvSettings = CsvSettings()
    processing: ProcessingSettings = ProcessingSettings()
    passwords: PasswordSettings = PasswordSettings()
    log: LogSettings = LogSettings()
    service: ServiceSettings = ServiceSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    cleanup: CleanupSettings = CleanupSettings()
    jobs: tuple[JobSettings, ...] = ()
    #: the embedded SFTP server, its accounts and the remote outboxes pulled (SPEC §8)
    sftp: SftpSettings = field(default_factory=SftpSettings)
    #: configured routes, tried before the default ones
    routes: tuple[RouteSettings, ...] = ()
    default_routes: bool = True
    #: default options per processor: ``[processors.users] identity = "username"``
    processors: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    config_path: Path | None = None

    @property
    def database_url(self) -> str:
        """The ledger URL, defaulting to SQLite in the state folder."""
        return self.database.url or f"sqlite:///{self.data_dir / 'state' / 'syncd.db'}"

    @property
    def platform_url(self) -> str:
        """The embedded platform store URL, defaulting to the ledger's.

        On Moodle, the local part (checkpoints, blobs' index) lives in the ledger's database.
        """
        if self.platform.kind == "moodle":
            return self.database_url
        return self.platform.url or self.database_url

    @property
    def tz(self) -> ZoneInfo:
        """The time zone naive dates in command files are read in."""
        return ZoneInfo(self.csv.timezone)


SECTIONS: dict[str, type[Any]] = {
    "database": DatabaseSettings,
    "platform": PlatformSettings,
    "intake": IntakeSettings,
    "csv": CsvSettings,
    "processing": ProcessingSettings,
    "passwords": PasswordSettings,
    "log": LogSettings,
    "service": ServiceSettings,
    "scheduler": SchedulerSettings,
    "cleanup": CleanupSettings,
}
TOP_KEYS = frozenset({
    "data_dir", "cache_dir", "default_routes", "route", "job", "processors", "sftp", *SECTIONS,
})


def default_data_dir(cwd: Path | None = None) -> Path:
    """``/var/lib/syncd``, or ``./var`` in a dev checkout (a syncd pyproject.toml in cwd).

    Under systemd, ``$STATE_DIRECTORY`` (from ``StateDirectory=``) wins.
    """
    if state := os.environ.get("STATE_DIRECTORY"):
        return Path(state.split(":")[0])
    here = cwd or Path.cwd()
    project = here / "pyproject.toml"
    if project.is_file() and 'name = "syncd"' in project.read_text(errors="replace"):
        return here / "var"
    return Path("/var/lib/syncd")


def find_config(explicit: Path | None) -> Path | None:
    """The config file to read: explicit, ``$SYNCD_CONFIG``, ./syncd.toml, /etc/syncd."""
    if explicit is not None:
        return explicit
    if env := os.environ.get("SYNCD_CONFIG"):
        return Path(env)
    return next((p for p in CONFIG_SEARCH if p.is_file()), None)


def load_settings(
    config: Path | None = None,
    *,
    data_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Read, merge (file < env < explicit arguments) and validate the settings."""
    env = os.environ if env is None else env
    path = find_config(config)
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {path}: not found") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {path}: {exc}") from None
    _apply_env(raw, env)
    settings = _build(raw, path)
    if data_dir is not None:
        settings = dataclasses.replace(settings, data_dir=data_dir)
    return settings


def _apply_env(raw: dict[str, Any], env: Mapping[str, str]) -> None:
    for name, value in env.items():
        if not name.startswith("SYNCD_") or name == "SYNCD_CONFIG":
            continue
        key = name.removeprefix("SYNCD_").lower()
        if "__" in key:
            section, sub = key.split("__", 1)
            if section not in SECTIONS:
                raise ConfigError(f"{name}: unknown section '{section}' (allowed: {names(SECTIONS)})")
            raw.setdefault(section, {})[sub] = EnvValue(value)
        elif key in ("data_dir", "cache_dir", "default_routes"):
            raw[key] = EnvValue(value)
        else:
            raise ConfigError(
                f"{name}: unknown setting (use SYNCD_DATA_DIR, SYNCD_CACHE_DIR or SYNCD_<SECTION>__<KEY>)"
            )


def _build(raw: dict[str, Any], path: Path | None) -> Settings:
    unknown = sorted(set(raw) - TOP_KEYS)
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown key (allowed: {names(TOP_KEYS)})")
    kwargs: dict[str, Any] = {"config_path": path}
    for name, cls in SECTIONS.items():
        table = raw.get(name, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{name}: must be a table")
        if name == "platform":
            table = dict(table)
            role_map = _role_map(table.pop("role_map", {}))
            kwargs[name] = dataclasses.replace(section(name, cls, table), role_map=role_map)
            _check_platform(kwargs[name])
            continue
        kwargs[name] = section(name, cls, table)
    data = raw.get("data_dir")
    kwargs["data_dir"] = convert("data_dir", data, Path) if data is not None else default_data_dir()
    cache = raw.get("cache_dir") or os.environ.get("CACHE_DIRECTORY", "").split(":")[0]
    kwargs["cache_dir"] = convert("cache_dir", cache, Path) if cache else None
    if "default_routes" in raw:
        kwargs["default_routes"] = convert("default_routes", raw["default_routes"], bool)
    kwargs["routes"] = tuple(_route(i, r) for i, r in enumerate(raw.get("route", [])))
    kwargs["jobs"] = _jobs(raw.get("job", []))
    kwargs["processors"] = _processors(raw.get("processors", {}))
    kwargs["sftp"] = parse_sftp(raw.get("sftp", {}))
    settings = Settings(**kwargs)
    zones = {"csv.timezone": settings.csv.timezone, "scheduler.timezone": settings.scheduler.timezone}
    zones.update({f"job[{i}].timezone": j.timezone for i, j in enumerate(settings.jobs) if j.timezone})
    pulls = enumerate(settings.sftp.pulls)
    zones.update({f"sftp.pull[{i}].timezone": p.timezone for i, p in pulls if p.timezone})
    for key, name in zones.items():
        zone(name, key)
    return settings


def _role_map(raw: Any) -> dict[str, int]:
    """``[platform.role_map]`` (shortname = id) merged over a stock Moodle's role ids."""
    if not isinstance(raw, dict):
        raise ConfigError("platform.role_map: must be a table of role shortname = Moodle role id")
    roles = dict(MOODLE_ROLES)
    for name, value in raw.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"platform.role_map.{name}: must be a Moodle role id >= 1 (got {value!r})")
        roles[name] = value
    return roles


def _check_platform(platform: PlatformSettings) -> None:
    if platform.kind != "moodle":
        return
    if not platform.url.startswith(("https://", "http://")):
        raise ConfigError(f"platform.url: must be the Moodle site's http(s) address (got {platform.url!r})")
    if not platform.token_file:
        raise ConfigError("platform.token_file: required with kind = \"moodle\" (a file of mode 0600)")


def zone(name: str, key: str) -> ZoneInfo:
    """The time zone ``name``; ConfigError naming ``key`` when unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{key}: unknown time zone '{name}' (an IANA name, e.g. Europe/Paris)") from None


def _route(index: int, raw: Any) -> RouteSettings:
    key = f"route[{index}]"
    if not isinstance(raw, dict):
        raise ConfigError(f"{key}: must be a table with glob and processor")
    options = dict(raw)
    glob, processor = options.pop("glob", None), options.pop("processor", None)
    if not isinstance(glob, str) or not glob.strip():
        raise ConfigError(f"{key}.glob: required, a glob like 'hr/users*.csv'")
    if not isinstance(processor, str) or not processor:
        raise ConfigError(f"{key}.processor: required, a processor name")
    return RouteSettings(glob=glob.strip(), processor=processor, options=options)


def _jobs(raw: Any) -> tuple[JobSettings, ...]:
    if not isinstance(raw, list):
        raise ConfigError("job: must be an array of tables ([[job]])")
    jobs: list[JobSettings] = []
    for index, table in enumerate(raw):
        key = f"job[{index}]"
        if not isinstance(table, dict):
            raise ConfigError(f"{key}: must be a table with name, processor, file and cron")
        options = dict(table)
        values = {}
        for name in ("name", "processor", "file", "cron"):
            value = options.pop(name, None)
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"{key}.{name}: required, a non-empty string")
            values[name] = value.strip()
        tz = options.pop("timezone", None)
        if tz is not None and not isinstance(tz, str):
            raise ConfigError(f"{key}.timezone: must be a string like 'Europe/Paris'")
        if values["name"] in {j.name for j in jobs} or values["name"] == "cleanup":
            raise ConfigError(f"{key}.name: '{values['name']}' is used twice (or is the reserved 'cleanup')")
        jobs.append(JobSettings(**values, timezone=tz, options=options))
    return tuple(jobs)


def _processors(raw: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise ConfigError("processors: must be tables like [processors.users]")
    return {name: dict(opts) for name, opts in raw.items()}
