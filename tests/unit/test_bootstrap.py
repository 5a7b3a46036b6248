"""The composition root validates routes, processor options and jobs before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd.bootstrap import build_router, job_triggers
from syncd.domain import ConfigError
from syncd.settings import load_settings


def settings(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "syncd.toml"
    path.write_text(text)
    return load_settings(path, data_dir=tmp_path, env={})


JOB = "[[job]]\nname = 'j'\nprocessor = '{p}'\nfile = '{f}'\ncron = '{c}'\n"


@pytest.mark.parametrize(
    ("p", "f", "c", "message"),
    [
        ("nope", "x.csv", "* * * * *", "job[0].processor: unknown processor 'nope'"),
        ("users", "../x.csv", "* * * * *", "job[0].file: a path inside store/"),
        ("users", "/etc/x.csv", "* * * * *", "job[0].file: a path inside store/"),
        ("users", "archives/x.csv", "* * * * *", "job[0].file: a path inside store/"),
        ("users", "x.csv", "0 3 * * 0", "job[0].cron: write the day of week with names"),
    ],
)
def test_bad_jobs_are_refused(tmp_path: Path, p: str, f: str, c: str, message: str) -> None:
    """A job with an unknown processor, a path leaving the store or a numeric weekday is refused."""
    with pytest.raises(ConfigError) as info:
        job_triggers(settings(tmp_path, JOB.format(p=p, f=f, c=c)))
    assert message in str(info.value)


def test_jobs_and_cleanup_are_planned(tmp_path: Path) -> None:
    """A valid job and the default cleanup job both get a trigger."""
    planned = job_triggers(settings(tmp_path, JOB.format(p="users", f="pre/users.csv", c="30 2 * * sun")))
    assert [name for name, *_ in planned] == ["j", "cleanup"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[route]]\nglob = '*.csv'\nprocessor = 'users'\nidentity = 'shoe'\n",
         "route[0]: users: option identity must be one of"),
        ("[[route]]\nglob = '*.csv'\nprocessor = 'users'\ncolour = 'red'\n",
         "route[0].colour: unknown option for users"),
        ("[processors.nope]\nx = 1\n", "processors.nope: unknown processor"),
        ("[[route]]\nglob = '*.csv'\nprocessor = 'users'\nencoding = 'utf-16'\n", "utf-16"),
    ],
)
def test_bad_routes_and_options_are_refused(tmp_path: Path, text: str, message: str) -> None:
    """Route and processor options are checked by building each processor once at start."""
    with pytest.raises(ConfigError) as info:
        build_router(settings(tmp_path, text))
    assert message in str(info.value)
