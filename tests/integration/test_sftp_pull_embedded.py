"""SFTP pull against syncd's own embedded server: one syncd fetching from another's outbox.

The embedded account serving the outbox needs list, read and delete; the pull removes
each file once it is safely in the local sync/ folder, and an account without delete
permission leaves the remote file (the pull reports the failure and delivers nothing).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.intake.watcher import IntakeOptions, ignore_reason
from syncd.sftp.pull import open_pull
from syncd.sftp.settings import SftpPullSettings
from tests.integration.sftp_embedded import Embedded, embedded_server

OLD = 1_700_000_000


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Embedded]:
    srv = embedded_server(tmp_path / "remote", {
        "pickup": {"permissions": ("list", "read", "delete")},
        "readonly": {"permissions": ("list", "read")},
    })
    yield srv
    srv.server.stop()


def pull_spec(srv: Embedded, account: str) -> SftpPullSettings:
    """A pull of everything in ``account``'s jail into sync/erp, with its key and host key."""
    return SftpPullSettings(
        name="remote-syncd", host="127.0.0.1", port=srv.port, user=account,
        key_file=str(srv.keys[account]), known_hosts=str(srv.known_hosts), target="erp",
        min_age=60, timeout=5, retries=0,
    )


def put_remote(srv: Embedded, account: str, name: str, data: bytes) -> Path:
    path = srv.jail(account) / name
    path.write_bytes(data)
    os.utime(path, (OLD, OLD))
    return path


def test_pull_from_the_embedded_server_moves_each_file_once(outbox: Embedded, tmp_path: Path) -> None:
    """Files land in sync/erp whole and 0600, and are deleted from the embedded outbox."""
    put_remote(outbox, "pickup", "users.csv", b"username\nada\n")
    put_remote(outbox, "pickup", "courses.csv", "shortname,fullname\nC1,Физика\n".encode())
    sync = tmp_path / "local" / "sync"
    puller = open_pull(pull_spec(outbox, "pickup"), sync,
                       lambda rel: ignore_reason(rel, IntakeOptions()), clock=lambda: OLD + 3600)
    result = puller.run(threading.Event())
    assert result.error is None, result.summary()
    assert sorted(result.fetched) == ["courses.csv", "users.csv"]
    landed = sync / "erp"
    assert (landed / "users.csv").read_bytes() == b"username\nada\n"
    assert (landed / "courses.csv").read_text() == "shortname,fullname\nC1,Физика\n"
    assert all((landed / n).stat().st_mode & 0o077 == 0 for n in ("users.csv", "courses.csv"))
    assert sorted(p.name for p in outbox.jail("pickup").iterdir()) == []
    again = puller.run(threading.Event())
    assert again.fetched == [] and again.error is None


def test_an_outbox_account_that_may_not_delete_keeps_its_files(outbox: Embedded, tmp_path: Path) -> None:
    """Without delete permission the remote removal fails: the file stays remote, nothing is delivered."""
    put_remote(outbox, "readonly", "users.csv", b"username\nada\n")
    sync = tmp_path / "local" / "sync"
    puller = open_pull(pull_spec(outbox, "readonly"), sync,
                       lambda rel: ignore_reason(rel, IntakeOptions()), clock=lambda: OLD + 3600)
    result = puller.run(threading.Event())
    assert result.fetched == []
    assert (outbox.jail("readonly") / "users.csv").exists()
    landed = sync / "erp"
    assert not landed.exists() or [p.name for p in landed.iterdir() if not p.name.startswith(".")] == []
    assert result.error is not None or result.skipped, result.summary()
