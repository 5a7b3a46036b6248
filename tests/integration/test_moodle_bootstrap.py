"""``[platform] kind = "moodle"`` wired end to end: the token file's mode is checked when the app is
built, ``check-config`` asks the site who it is, and a real ``syncd run`` process applies a users.csv
dropped in sync/ to a (fake) Moodle over HTTP, without the token ever reaching a log or a report."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.bootstrap import build_app, moodle_functions
from syncd.domain import ConfigError
from syncd.platform.moodle.adapter import MoodlePlatform
from syncd.settings import Settings, load_settings
from tests.e2e.conftest import Daemon, Layout, syncd_env
from tests.e2e.writers import csv_bytes, user_rows, write_config, write_file
from tests.moodle_fake import FakeMoodle
from tests.moodle_support import TOKEN

UNREACHABLE = "http://127.0.0.1:9"  # nothing listens there: building the app must not call the site


def moodle_config(tmp_path: Path, url: str, mode: int = 0o600) -> Path:
    """A config for a Moodle platform at ``url`` with the token in a file of ``mode``."""
    token = tmp_path / "moodle.token"
    token.write_text(TOKEN + "\n", encoding="utf-8")
    token.chmod(mode)
    platform = {"kind": "moodle", "url": url, "token_file": str(token), "timeout": 10.0, "retries": 1}
    return write_config(tmp_path / "syncd.toml", {"platform": platform})


def settings_of(config: Path, data: Path) -> Settings:
    return load_settings(config, data_dir=data, env={})


def run_cli(tmp_path: Path, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``syncd --config C --data D <args>`` to completion."""
    cmd = [sys.executable, "-m", "syncd", "--config", str(config), "--data", str(tmp_path / "data"), *args]
    return subprocess.run(cmd, cwd=tmp_path, env=syncd_env(), capture_output=True, text=True, timeout=120,
                          check=False)


@pytest.fixture
def fake() -> Iterator[FakeMoodle]:
    """A fake Moodle on 127.0.0.1 accepting the test token."""
    with FakeMoodle(token=TOKEN) as server:
        yield server


def test_a_token_file_others_can_read_is_refused(tmp_path: Path) -> None:
    """Mode 0644: build_app refuses with the file, its mode and the fix; the CLI says so and exits 2."""
    config = moodle_config(tmp_path, UNREACHABLE, 0o644)
    with pytest.raises(ConfigError, match=r"platform\.token_file: .*moodle\.token has mode 0644.*chmod 600"):
        build_app(settings_of(config, tmp_path / "data"))
    done = run_cli(tmp_path, config, "check-config")
    assert done.returncode == 2, done
    assert "has mode 0644" in done.stderr and TOKEN not in done.stderr + done.stdout


def test_a_0600_token_file_builds_a_moodle_platform(tmp_path: Path) -> None:
    """Mode 0600: the app's platform is a MoodlePlatform for the configured site (no call made yet)."""
    app = build_app(settings_of(moodle_config(tmp_path, UNREACHABLE), tmp_path / "data"))
    try:
        assert isinstance(app.platform, MoodlePlatform)
        assert app.platform.client.url.startswith(UNREACHABLE)
        assert TOKEN not in repr(app.platform.client)
    finally:
        app.close()


def test_check_config_reports_the_site_and_the_missing_functions(tmp_path: Path, fake: FakeMoodle) -> None:
    """check-config reads the token, calls core_webservice_get_site_info, prints the site's name and
    version, and lists the functions syncd calls that the token's service lacks (exit 1)."""
    config = moodle_config(tmp_path, fake.url)
    done = run_cli(tmp_path, config, "check-config")
    assert "moodle ok: 'Test Moodle'" in done.stdout and "version 2024100700.09" in done.stdout, done
    assert fake.count("core_webservice_get_site_info") == 1
    offered = set(fake.service_functions)
    missing = sorted(moodle_functions() - offered)
    if missing:
        assert done.returncode == 1 and ", ".join(missing) in done.stdout, done
    else:
        assert done.returncode == 0, done
    fake.service_functions.discard("core_cohort_get_cohort_members")
    again = run_cli(tmp_path, config, "check-config")
    assert again.returncode == 1 and "core_cohort_get_cohort_members" in again.stdout, again
    assert TOKEN not in done.stdout + done.stderr + again.stdout + again.stderr


def test_the_daemon_applies_a_users_file_to_moodle(tmp_path: Path, fake: FakeMoodle) -> None:
    """A real ``syncd run`` with kind = moodle: users.csv dropped in sync/ creates the users in the
    fake site, the file is done with its report, and the token is in no log line and no report."""
    layout = Layout(tmp_path / "data")
    daemon = Daemon(tmp_path, moodle_config(tmp_path, fake.url), layout)
    rows = user_rows(5, "moodle")
    try:
        daemon.start()
        write_file(layout.sync / "users.csv", csv_bytes(rows))
        entry = daemon.wait_file("users.csv", timeout=60)
        assert entry["state"] == "done", (entry, daemon.tail())
    finally:
        daemon.close()
    for username, firstname, lastname, email, idnumber in rows:
        user = fake.site.user_by_username(username)
        assert user is not None and (user.firstname, user.lastname, user.email, user.idnumber) == (
            firstname, lastname, email, idnumber)
    (report,) = layout.report_jsons()
    assert report["counts"]["created"] == len(rows) and report["counts"]["error"] == 0, report["counts"]
    assert fake.count("core_user_create_users") >= 1
    texts = [daemon.tail(100_000)] + [p.read_text(encoding="utf-8", errors="replace")
                                      for p in layout.files(layout.reports)]
    assert all(TOKEN not in text for text in texts)
