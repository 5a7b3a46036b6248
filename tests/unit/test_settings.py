"""Settings: TOML + SYNCD_* env, validated once with one-line errors naming the key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from syncd.domain import ConfigError
from syncd.settings import load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "syncd.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_when_no_file(tmp_path: Path) -> None:
    """With no config file every section has its documented default."""
    s = load_settings(None, data_dir=tmp_path, env={})
    assert s.intake.settle == 1.0 and s.intake.mode == "inotify"
    assert s.processing.batch_size == 2000
    assert s.database_url == f"sqlite:///{tmp_path / 'state' / 'syncd.db'}"
    assert s.platform_url == s.database_url


def test_file_values_are_read(tmp_path: Path) -> None:
    """Values from the TOML file override the defaults, routes keep their options."""
    cfg = write(tmp_path, """
data_dir = "/srv/x"
[intake]
settle = 2.5
ignore_suffixes = [".up"]
[[route]]
glob = "hr/*.csv"
processor = "users"
identity = "username"
""")
    s = load_settings(cfg, env={})
    assert s.data_dir == Path("/srv/x")
    assert s.intake.settle == 2.5 and s.intake.ignore_suffixes == (".up",)
    assert s.routes[0].glob == "hr/*.csv" and s.routes[0].options == {"identity": "username"}


def test_env_overrides_file(tmp_path: Path) -> None:
    """SYNCD_<SECTION>__<KEY> wins over the file and is converted to the key's type."""
    cfg = write(tmp_path, "[intake]\nsettle = 2.5\n")
    env = {"SYNCD_INTAKE__SETTLE": "0.25", "SYNCD_INTAKE__DONE_MARKER": "yes",
           "SYNCD_INTAKE__IGNORE_SUFFIXES": ".a, .b", "SYNCD_DATA_DIR": str(tmp_path)}
    s = load_settings(cfg, env=env)
    assert s.intake.settle == 0.25 and s.intake.done_marker is True
    assert s.intake.ignore_suffixes == (".a", ".b")
    assert s.data_dir == tmp_path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[intake]\nsetle = 1\n", "intake.setle: unknown key (allowed:"),
        ("[intake]\nsettle = 'soon'\n", "intake.settle: must be a number (got 'soon')"),
        ("[intake]\nsettle = -1\n", "intake.settle: must be >= 0 (got -1)"),
        ("[intake]\nmode = 'fanotify'\n", "intake.mode: must be one of inotify, polling (got 'fanotify')"),
        ("[processing]\nbatch_size = 1.5\n", "processing.batch_size: must be an integer (got 1.5)"),
        ("[passwords]\ncost = 30\n", "passwords.cost: must be <= 20 (got 30)"),
        ("[csv]\ntimezone = 'Mars/Base'\n", "csv.timezone: unknown time zone 'Mars/Base'"),
        ("colour = 'blue'\n", "colour: unknown key (allowed:"),
        ("[[route]]\nprocessor = 'users'\n", "route[0].glob: required"),
        ("[intake]\ndone_marker = 'yes'\n", "intake.done_marker: must be true or false"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    """Each bad key or value is refused with one line naming it and what is allowed."""
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text), env={})
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_bad_env_name_is_refused(tmp_path: Path) -> None:
    """An env variable for an unknown section is an error, not silently ignored."""
    with pytest.raises(ConfigError, match="SYNCD_INTAEK__SETTLE: unknown section 'intaek'"):
        load_settings(None, data_dir=tmp_path, env={"SYNCD_INTAEK__SETTLE": "1"})


def test_broken_toml_is_one_line(tmp_path: Path) -> None:
    """A TOML syntax error names the file."""
    with pytest.raises(ConfigError, match=r"config file .*syncd\.toml"):
        load_settings(write(tmp_path, "[intake\n"), env={})


def test_missing_explicit_file(tmp_path: Path) -> None:
    """An explicit config path that does not exist is an error."""
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml", env={})


def test_example_config_is_valid() -> None:
    """The documented example config/syncd.toml loads as it is."""
    example = Path(__file__).parents[2] / "config" / "syncd.toml"
    s = load_settings(example, env={})
    assert s.routes[0].processor == "users"
    assert s.processors["users"]["identity"] == "idnumber"


def test_jobs_are_read_with_their_options(tmp_path: Path) -> None:
    """[[job]] tables give name, processor, file, cron, time zone and the rest as options."""
    cfg = write(tmp_path, """
[scheduler]
grace = 60
[[job]]
name = "nightly"
processor = "users"
file = "preselected/users.csv"
cron = "30 2 * * mon-fri"
timezone = "Europe/Paris"
mode = "update_only"
""")
    s = load_settings(cfg, env={})
    (job,) = s.jobs
    assert (job.name, job.processor, job.file, job.cron) == ("nightly", "users", "preselected/users.csv",
                                                            "30 2 * * mon-fri")
    assert job.timezone == "Europe/Paris" and job.options == {"mode": "update_only"}
    assert s.scheduler.grace == 60


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[job]]\nname = 'a'\nprocessor = 'users'\ncron = '* * * * *'\n", "job[0].file: required"),
        ("[[job]]\nname = 'cleanup'\nprocessor = 'users'\nfile = 'x.csv'\ncron = '* * * * *'\n",
         "job[0].name: 'cleanup' is used twice"),
        ("[[job]]\nname = 'a'\nprocessor = 'users'\nfile = 'x.csv'\ncron = '* * * * *'\n"
         "timezone = 'Moon/Base'\n", "job[0].timezone: unknown time zone 'Moon/Base'"),
        ("[cleanup]\ncache_days = -1\n", "cleanup.cache_days: must be >= 0"),
        ("[service]\nstall_timeout = 0\n", "service.stall_timeout: must be >= 1"),
    ],
)
def test_bad_jobs_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    """Job, cleanup and service settings are validated with the key named."""
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text), env={})
    assert message in str(info.value)


def test_moodle_platform_settings_and_role_map(tmp_path: Path) -> None:
    """kind = moodle reads url, token_file and the options; role_map is merged over a stock site's ids."""
    path = write(tmp_path, '[platform]\nkind = "moodle"\nurl = "https://lms.example.edu"\n'
                           'token_file = "/etc/syncd/moodle.token"\nbatch_size = 50\nmax_in_flight = 2\n'
                           '[platform.role_map]\nstudent = 11\ntutor = 12\n')
    settings = load_settings(path, env={})
    p = settings.platform
    assert (p.kind, p.url, p.token_file, p.batch_size, p.max_in_flight, p.verify_tls) == (
        "moodle", "https://lms.example.edu", "/etc/syncd/moodle.token", 50, 2, True)
    assert p.role_map == {"manager": 1, "coursecreator": 2, "editingteacher": 3, "teacher": 4,
                          "student": 11, "guest": 6, "tutor": 12}
    assert settings.platform_url == settings.database_url  # checkpoints stay local


@pytest.mark.parametrize(("text", "message"), [
    ('[platform]\nkind = "moodle"\ntoken_file = "/t"\n', "platform.url: must be the Moodle site's"),
    ('[platform]\nkind = "moodle"\nurl = "https://x"\n', "platform.token_file: required"),
    ('[platform]\nkind = "moodle"\nurl = "https://x"\ntoken_file = "/t"\n'
     '[platform.role_map]\nstudent = "5"\n',
     "platform.role_map.student: must be a Moodle role id"),
    ('[platform]\nkind = "canvas"\n', "platform.kind: must be one of"),
])
def test_bad_moodle_settings_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    """A Moodle platform without url or token file, or a bad role id, is refused naming the key."""
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(write(tmp_path, text), env={})
