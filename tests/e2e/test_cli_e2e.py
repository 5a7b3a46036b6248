"""The command line end to end: process, dry runs, status, check-config and init, as subprocesses."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.e2e.writers import USERS_HEADER, csv_bytes, user_rows, users_csv, write_file

if TYPE_CHECKING:
    from tests.e2e.conftest import Cli, Layout

HEADER_LINE = (",".join(USERS_HEADER) + "\n").encode()


def _report_path(stdout: str) -> Path:
    """The path printed on the ``report: <path>`` line."""
    found = re.findall(r"^report: (.+)$", stdout, re.MULTILINE)
    assert len(found) == 1, f"expected one 'report:' line in {stdout!r}"
    return Path(found[0])


def _snapshot(layout: Layout) -> dict[str, list[dict[str, Any]]]:
    """Everything the platform and the ledger hold."""
    return {
        "users": layout.users(),
        "profile": layout.query("SELECT * FROM user_profile ORDER BY user_id, field"),
        "ledger": layout.ledger(),
    }


@pytest.mark.parametrize(
    ("data", "code", "status"),
    [
        (users_csv(5, "ok"), 0, "done"),
        (HEADER_LINE + b"ok1,Al,Lee,a@x.org,1\nok2,Bo,Lee,not-an-email,2\n", 1, "done"),
        (b"username,firstname,lastname,shoesize\nok1,Al,Lee,42\n", 2, "failed"),
    ],
    ids=["all-rows-ok", "some-rows-failed", "file-failed"],
)
def test_process_a_file_outside_the_data_folder(
    cli: Cli, layout: Layout, tmp_path: Path, data: bytes, code: int, status: str
) -> None:
    """`process FILE` exits 0/1/2 by outcome, prints the report path, leaves FILE untouched."""
    (tmp_path / "incoming").mkdir()
    source = write_file(tmp_path / "incoming" / "users_cli.csv", data)
    before = source.stat().st_mtime_ns

    result = cli("process", str(source))

    assert result.returncode == code, result.stdout + result.stderr
    report = _report_path(result.stdout)
    assert report.is_file() and report.with_suffix(".json").is_file()
    body = json.loads(report.with_suffix(".json").read_text(encoding="utf-8"))
    assert body["status"] == status
    assert source.read_bytes() == data and source.stat().st_mtime_ns == before
    assert [e["state"] for e in layout.ledger()] == [status]
    if code == 2:
        assert "shoesize" in body["error"]
        assert layout.failed_copies("users_cli.csv")[0].read_bytes() == data
        assert layout.user_count() == 0
    else:
        assert layout.archived("users_cli.csv")[0].read_bytes() == data
        assert body["counts"]["error"] == code
        assert layout.user_count() == body["counts"]["created"] > 0


def test_dry_run_changes_nothing_and_says_simulation(
    cli: Cli, layout: Layout, tmp_path: Path
) -> None:
    """`process --dry-run` leaves the database as it was; every report line says SIMULATION."""
    first = write_file(tmp_path / "users_first.csv", users_csv(3, "dry"))
    assert cli("process", str(first)).returncode == 0
    before = _snapshot(layout)
    archives = layout.files(layout.archives)
    rows = [["dry000000", "Changed", "Name", "dry0@example.org", "dry-id-0"],
            *user_rows(2, "new"), ["bad1", "Bad", "Row", "not-an-email", "bad-1"]]
    data = csv_bytes(rows)
    source = write_file(tmp_path / "users_dry.csv", data)

    result = cli("process", "--dry-run", str(source))

    assert result.returncode == 1, result.stdout + result.stderr
    assert _snapshot(layout) == before
    assert layout.files(layout.archives) == archives
    assert source.read_bytes() == data
    report = _report_path(result.stdout)
    lines = report.read_text(encoding="utf-8").splitlines()
    assert lines and all(line.startswith("SIMULATION") for line in lines), lines
    body = json.loads(report.with_suffix(".json").read_text(encoding="utf-8"))
    assert body["simulation"] is True
    assert (body["counts"]["updated"], body["counts"]["created"], body["counts"]["error"]) == (1, 2, 1)


def test_status_json_lists_processed_files(cli: Cli, layout: Layout, tmp_path: Path) -> None:
    """`status --json` gives each file's id, state, processor, counts, error, report, final path."""
    good = write_file(tmp_path / "users_good.csv", users_csv(4, "st"))
    bad = write_file(tmp_path / "users_bad.csv", b"username,firstname\nst1,Al\n")
    assert cli("process", str(good)).returncode == 0
    assert cli("process", str(bad)).returncode == 2

    result = cli("status", "--json")

    assert result.returncode == 0, result.stderr
    entries = json.loads(result.stdout)
    assert [(e["file"], e["state"], e["processor"]) for e in entries] == [
        (f"cli:{bad}", "failed", "users"), (f"cli:{good}", "done", "users"),
    ]
    failed, done = entries
    assert {"id", "file", "state", "processor", "counts", "error", "report", "final_path"} <= set(done)
    assert done["counts"]["created"] == 4 and done["error"] is None
    assert Path(done["final_path"]).parent == layout.archives and Path(done["final_path"]).is_file()
    assert Path(done["report"]).is_file()
    assert "missing required column 'lastname'" in failed["error"]
    assert Path(failed["final_path"]).parent == layout.failed and Path(failed["report"]).is_file()
    assert failed["id"] > done["id"]


def test_check_config_accepts_a_good_config(cli: Cli) -> None:
    """`check-config` on the test config exits 0 and prints nothing on stderr."""
    result = cli("check-config")

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "ok" in result.stdout


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ('[intake]\nsettle = "soon"\n', "intake.settle"),
        ("[intake]\nsetle = 1.0\n", "intake.setle"),
        ("[passwords]\ncost = 99\n", "passwords.cost"),
        ("[intakes]\nsettle = 1.0\n", "intakes"),
        ('[[route]]\nglob = "hr/*.csv"\nprocessor = "nope"\n', "route[0].processor"),
    ],
    ids=["bad-value", "unknown-key", "out-of-range", "unknown-section", "unknown-processor"],
)
def test_check_config_refuses_a_bad_key_in_one_line(
    cli: Cli, tmp_path: Path, toml: str, key: str
) -> None:
    """A bad config exits 2 with one stderr line `syncd: <key>: ...` naming the key."""
    config = tmp_path / "bad.toml"
    config.write_text(toml, encoding="utf-8")

    result = cli("check-config", config=config)

    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"syncd: {key}: "), lines[0]


def test_init_creates_the_layout_and_a_starter_config(cli: Cli, tmp_path: Path) -> None:
    """`init` on a fresh folder makes the private data layout and a usable 0600 config."""
    fresh = tmp_path / "fresh"
    config, data = fresh / "etc" / "syncd.toml", fresh / "data"

    result = cli("init", config=config, data=data)

    assert result.returncode == 0, result.stderr
    private = [data / "store", data / "state", data / "cache",
               *(data / "store" / r for r in ("archives", "reports", "tryback", "failed"))]
    assert {str(p): oct(stat.S_IMODE(p.stat().st_mode)) for p in private} == {
        str(p): "0o700" for p in private
    }
    for shared in (data, data / "sync"):  # the SFTP side's group may need to reach sync/
        assert shared.is_dir() and stat.S_IMODE(shared.stat().st_mode) & 0o007 == 0, shared
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert cli("check-config", config=config, data=data).returncode == 0
    again = cli("init", config=config, data=data)
    assert again.returncode == 0 and "kept" in again.stdout
