"""SFTP pull against a real OpenSSH sshd (internal-sftp) on a loopback port.

Normal pulls (delete, move to an archive), what is left remote (ignored, too young, too
big, changed while downloading, local name taken), refusals (changed or unlisted host
key, wrong client key), retries against a closed port, crash leftovers, modes and
non-ASCII names. Ages come from an injected clock and old mtimes, never from sleeping.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from structlog.contextvars import get_contextvars
from structlog.testing import capture_logs

from syncd.domain import ConfigError
from syncd.intake.watcher import IntakeOptions, ignore_reason
from syncd.schedule import Job, parse_cron
from syncd.sftp.pull import PullAction, Puller, PullResult, open_pull
from syncd.sftp.settings import SftpPullSettings
from tests.sshd import Sshd, free_port, keygen, known_hosts_line

NOW = datetime(2026, 11, 22, 3, 17, tzinfo=UTC).timestamp()
OLD = NOW - 3600
Logs = list[dict[str, Any]]


def intake_ignore(rel: PurePosixPath) -> str | None:
    """Intake's default ignore rules, as the daemon wires them."""
    return ignore_reason(rel, IntakeOptions())


class Rig:
    """An sshd outbox, a local sync/ folder and a pull spec pointing from one to the other."""

    def __init__(self, sshd: Sshd, tmp_path: Path) -> None:
        self.sshd = sshd
        self.outbox = sshd.served
        self.sync = tmp_path / "sync"
        self.sync.mkdir()
        self.spec = SftpPullSettings(
            name="erp", host=sshd.host, port=sshd.port, user=sshd.user, key_file=str(sshd.client_key),
            known_hosts=str(sshd.known_hosts), target="erp", min_age=60, timeout=5, retries=1,
            retry_delay=0.01,
        )
        self.ignore: Callable[[PurePosixPath], str | None] = intake_ignore

    def put(self, name: str, data: bytes, mtime: float = OLD) -> Path:
        path = self.outbox / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (mtime, mtime))
        return path

    def puller(self, **changes: Any) -> Puller:
        return open_pull(replace(self.spec, **changes), self.sync, self.ignore, clock=lambda: NOW)

    def run(self, **changes: Any) -> PullResult:
        return self.puller(**changes).run(threading.Event())

    @property
    def landed(self) -> Path:
        return self.sync / "erp"

    def local_names(self) -> list[str]:
        """Visible files in sync/erp (the hidden work folder excluded)."""
        if not self.landed.is_dir():
            return []
        return sorted(p.name for p in self.landed.iterdir() if not p.name.startswith("."))

    def remote_names(self) -> list[str]:
        return sorted(p.name for p in self.outbox.iterdir())


@pytest.fixture
def rig(sshd: Sshd, tmp_path: Path) -> Rig:
    return Rig(sshd, tmp_path)


@pytest.fixture
def logs() -> Iterator[Logs]:
    with capture_logs() as captured:
        yield captured


def events(logs: Logs, name: str) -> Logs:
    return [e for e in logs if e["event"] == name]


def test_pull_fetches_private_copies_and_deletes_remote(rig: Rig, logs: Logs) -> None:
    """Ready files land in sync/<target> byte for byte, mode 0600 (folders 0700), and are deleted remotely."""
    rig.put("users.csv", b"username,firstname,lastname\nann,Ann,Lee\n")
    rig.put("enrol.csv", b"x" * 300_000)
    result = rig.run()
    assert result.error is None and sorted(result.fetched) == ["enrol.csv", "users.csv"]
    assert rig.local_names() == ["enrol.csv", "users.csv"] and rig.remote_names() == []
    assert (rig.landed / "users.csv").read_bytes() == b"username,firstname,lastname\nann,Ann,Lee\n"
    assert (rig.landed / "enrol.csv").read_bytes() == b"x" * 300_000
    for name in ("users.csv", "enrol.csv"):
        st = (rig.landed / name).stat()
        assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_nlink == 1 and st.st_mtime == OLD
    assert stat.S_IMODE(rig.landed.stat().st_mode) == 0o700
    assert list((rig.landed / ".syncd-pull-erp").rglob("*")) == [rig.landed / ".syncd-pull-erp" / "incoming"]
    pulled = events(logs, "sftp_file_pulled")
    assert {(e["name"], e["bytes"], e["remote_action"]) for e in pulled} == {
        ("users.csv", 40, "deleted"), ("enrol.csv", 300_000, "deleted"),
    }
    assert events(logs, "sftp_pull_finished")[0]["fetched"] == 2
    assert result.summary() == "fetched 2 file(s), left 0 remote"


def test_after_move_creates_archive_and_suffixes_a_clash(rig: Rig, logs: Logs) -> None:
    """after=move makes the missing archive folder, never replaces a file there: a clash gets a timestamp."""
    rig.put("users.csv", b"first\n")
    assert rig.run(after="move", archive_dir="done/2026").fetched == ["users.csv"]
    archive = rig.outbox / "done" / "2026"
    assert stat.S_IMODE(archive.stat().st_mode) == 0o700
    assert (archive / "users.csv").read_bytes() == b"first\n"
    (rig.landed / "users.csv").unlink()  # intake took the first copy
    rig.put("users.csv", b"second\n")
    assert rig.run(after="move", archive_dir="done/2026").fetched == ["users.csv"]
    assert (archive / "users.csv").read_bytes() == b"first\n"
    assert (archive / "users-20261122-031700.csv").read_bytes() == b"second\n"
    assert (rig.landed / "users.csv").read_bytes() == b"second\n"
    assert rig.remote_names() == ["done"]  # the archive folder is listed but never reported
    actions = [e["remote_action"] for e in events(logs, "sftp_file_pulled")]
    assert actions == ["moved to done/2026/users.csv", "moved to done/2026/users-20261122-031700.csv"]


def test_ignored_young_and_odd_entries_stay_remote(rig: Rig) -> None:
    """Hidden and partial names, files modified within min_age and non-files are left alone; others pass."""
    for name in ("_users.csv", ".enrol.csv", "courses.csv.filepart", "groups.csv.part"):
        rig.put(name, b"partial")
    rig.put("fresh.csv", b"still being written", mtime=NOW - 10)
    rig.put("ready.csv", b"ok")
    rig.put("readme.txt", b"not matching the glob")
    (rig.outbox / "sub").mkdir()
    os.symlink("/etc/passwd", rig.outbox / "link.csv")
    result = rig.run(glob="*.CSV*")  # globs are case-insensitive, like routes
    assert result.fetched == ["ready.csv"]
    reasons = dict(result.skipped)
    assert reasons == {
        "_users.csv": "ignored: hidden", ".enrol.csv": "ignored: hidden",
        "courses.csv.filepart": "ignored: partial upload", "groups.csv.part": "ignored: partial upload",
        "fresh.csv": "too young: modified less than 60 s ago", "link.csv": "not a regular file",
    }
    assert rig.local_names() == ["ready.csv"]
    assert "fresh.csv" in rig.remote_names() and "readme.txt" in rig.remote_names()


def test_done_markers_travel_with_their_files(rig: Rig) -> None:
    """In done-marker mode the marker is pulled too, else the pulled file would wait forever."""
    rig.ignore = lambda rel: ignore_reason(rel, IntakeOptions(done_marker=True))
    rig.put("users.csv", b"data")
    rig.put("users.csv.done", b"")
    assert rig.run().fetched == ["users.csv", "users.csv.done"]


def test_oversize_file_is_logged_and_left_remote(rig: Rig, logs: Logs) -> None:
    """A file bigger than max_file_size is skipped with a log line; one at the limit is pulled."""
    rig.put("big.csv", b"x" * 11)
    rig.put("fits.csv", b"x" * 10)
    result = rig.run(max_file_size=10)
    assert result.fetched == ["fits.csv"]
    assert result.skipped == [("big.csv", "too big: 11 bytes > max_file_size 10")]
    assert rig.remote_names() == ["big.csv"]
    assert [e["name"] for e in events(logs, "sftp_pull_skipped_file")] == ["big.csv"]


def test_changed_host_key_is_refused_before_login(rig: Rig, tmp_path: Path, logs: Logs) -> None:
    """A known_hosts key for this host:port that the server does not have refuses the connection, no retry."""
    other = keygen(tmp_path / "other_host_key")
    rig.sshd.known_hosts.write_text(known_hosts_line(other.with_name("other_host_key.pub"), rig.sshd.port))
    rig.put("users.csv", b"secret rows")
    result = rig.run(retries=3)
    assert result.error is not None and "HostKeyRefused" in result.error and "changed" in result.error
    assert result.fetched == [] and rig.local_names() == [] and rig.remote_names() == ["users.csv"]
    assert [e["attempt"] for e in events(logs, "sftp_pull_failed")] == [1]
    assert "Accepted publickey" not in rig.sshd.log_text()


def test_host_missing_from_known_hosts_is_refused(rig: Rig, tmp_path: Path) -> None:
    """At start an unlisted host is a config error; if known_hosts loses it later, the run refuses the key."""
    rig.put("users.csv", b"rows")
    good = rig.sshd.known_hosts.read_text()
    rig.sshd.known_hosts.write_text(good.replace(f"]:{rig.sshd.port} ", f"]:{rig.sshd.port + 1} "))
    with pytest.raises(ConfigError, match=r"sftp\.pull\[erp\]\.known_hosts: .* has no key for \[127"):
        rig.puller()
    puller = Puller(rig.spec, rig.sync, intake_ignore, clock=lambda: NOW)  # checked at start, edited since
    result = puller.run(threading.Event())
    assert result.error is not None and "which known_hosts does not list" in result.error
    assert rig.remote_names() == ["users.csv"] and rig.local_names() == []


def test_wrong_client_key_is_refused(rig: Rig, tmp_path: Path, logs: Logs) -> None:
    """A key the server does not authorise fails the login, not retried; nothing downloaded or deleted."""
    stranger = keygen(tmp_path / "stranger_key")
    rig.put("users.csv", b"rows")
    result = rig.run(key_file=str(stranger), retries=3)
    assert result.error is not None and "AuthenticationException" in result.error
    assert [e["attempt"] for e in events(logs, "sftp_pull_failed")] == [1]
    assert rig.remote_names() == ["users.csv"] and rig.local_names() == []


def test_local_name_taken_leaves_remote_for_next_run(rig: Rig) -> None:
    """If an earlier copy still waits in sync/, the remote file stays where it is."""
    rig.landed.mkdir()
    (rig.landed / "users.csv").write_bytes(b"earlier copy")
    rig.put("users.csv", b"newer copy")
    result = rig.run()
    assert result.fetched == [] and result.skipped == [
        ("users.csv", "local name taken: an earlier copy still waits in sync/"),
    ]
    assert (rig.landed / "users.csv").read_bytes() == b"earlier copy"
    assert rig.remote_names() == ["users.csv"]


@pytest.mark.parametrize("change", ["append", "touch"])
def test_file_changed_while_downloading_is_discarded(rig: Rig, change: str) -> None:
    """A file that grows, or gets a new mtime, between listing and download is dropped and left remote."""
    path = rig.put("users.csv", b"header\n")

    def writer_still_busy(rel: PurePosixPath) -> str | None:  # runs after the listing, before the download
        if change == "append":
            with path.open("ab") as out:
                out.write(b"one more row\n")
        else:
            os.utime(path, (OLD + 5, OLD + 5))
        return None

    rig.ignore = writer_still_busy
    result = rig.run()
    assert result.fetched == [] and result.skipped[0][1].startswith("changed while downloading")
    assert rig.remote_names() == ["users.csv"] and rig.local_names() == []
    assert list((rig.landed / ".syncd-pull-erp").rglob("*.part")) == []


def test_unreachable_host_is_retried_with_backoff_then_given_up(rig: Rig, logs: Logs) -> None:
    """A closed port is tried retries+1 times, waiting retry_delay, 2x, 4x on stop; run() does not raise."""

    class RecordingStop(threading.Event):
        def __init__(self) -> None:
            super().__init__()
            self.waits: list[float | None] = []

        def wait(self, timeout: float | None = None) -> bool:
            self.waits.append(timeout)
            return super().wait(0)

    stop, closed = RecordingStop(), free_port()
    with rig.sshd.known_hosts.open("a") as known:
        known.write(known_hosts_line(rig.sshd.host_pub, closed))
    puller = open_pull(replace(rig.spec, port=closed, retries=3, retry_delay=0.5), rig.sync,
                       intake_ignore, clock=lambda: NOW)
    result = puller.run(stop)
    assert stop.waits == [0.5, 1.0, 2.0]
    assert result.error is not None and "Unable to connect" in result.error
    failed = events(logs, "sftp_pull_failed")
    assert [(e["attempt"], e["retry_in"]) for e in failed] == [(1, 0.5), (2, 1.0), (3, 2.0), (4, None)]
    assert result.summary().startswith("fetched 0 file(s), left 0 remote; failed: NoValidConnectionsError")


def test_interrupted_run_partial_download_is_removed(rig: Rig) -> None:
    """A .part left by a killed run is deleted when the next run starts; the file is pulled afresh."""
    incoming = rig.landed / ".syncd-pull-erp" / "incoming"
    incoming.mkdir(parents=True)
    (incoming / "users.csv.part").write_bytes(b"half a fi")
    rig.put("users.csv", b"the whole file\n")
    assert rig.run().fetched == ["users.csv"]
    assert list(incoming.iterdir()) == []
    assert (rig.landed / "users.csv").read_bytes() == b"the whole file\n"


def test_verified_copy_is_delivered_when_the_remote_was_already_deleted(rig: Rig, logs: Logs) -> None:
    """A crash after the remote delete left only the verified copy: the next run delivers it."""
    work = rig.landed / ".syncd-pull-erp"
    work.mkdir(parents=True)
    (work / "users.csv").write_bytes(b"only copy left\n")
    assert rig.run().fetched == ["users.csv"]
    assert (rig.landed / "users.csv").read_bytes() == b"only copy left\n"
    assert not (work / "users.csv").exists()
    assert events(logs, "sftp_file_pulled")[0]["recovered"] is True


def test_verified_copy_is_dropped_when_the_remote_is_unchanged(rig: Rig) -> None:
    """A crash before the remote delete: the copy is dropped and the remote file fetched once, normally."""
    work = rig.landed / ".syncd-pull-erp"
    work.mkdir(parents=True)
    (work / "users.csv").write_bytes(b"same file\n")
    os.utime(work / "users.csv", (OLD, OLD))
    rig.put("users.csv", b"same file\n")
    assert rig.run().fetched == ["users.csv"]
    assert rig.local_names() == ["users.csv"] and rig.remote_names() == []
    assert not (work / "users.csv").exists()


def test_failed_remote_action_keeps_the_copy_until_the_next_run_settles_it(rig: Rig, logs: Logs) -> None:
    """A failed remote move leaves the file remote and undelivered; once fixed, it arrives exactly once."""
    rig.put("done", b"a file where the archive folder should be")
    rig.put("users.csv", b"rows\n")
    rig.put("groups.csv", b"g\n", mtime=OLD + 1)
    result = rig.run(after="move", archive_dir="done", glob="*.csv")
    assert result.fetched == [] and [name for name, _ in result.skipped] == ["users.csv", "groups.csv"]
    assert all(reason.startswith("failed: ") for _, reason in result.skipped)
    assert [e["name"] for e in events(logs, "sftp_pull_failed")] == ["users.csv", "groups.csv"]
    assert rig.local_names() == [] and "users.csv" in rig.remote_names()
    work = rig.landed / ".syncd-pull-erp"
    assert sorted(p.name for p in work.iterdir()) == ["groups.csv", "incoming", "users.csv"]
    (rig.outbox / "done").unlink()
    assert rig.run(after="move", archive_dir="done", glob="*.csv").fetched == ["users.csv", "groups.csv"]
    assert rig.local_names() == ["groups.csv", "users.csv"] and rig.remote_names() == ["done"]
    assert sorted(p.name for p in (rig.outbox / "done").iterdir()) == ["groups.csv", "users.csv"]
    assert [p.name for p in work.iterdir()] == ["incoming"]


def test_non_ascii_names_round_trip(rig: Rig) -> None:
    """UTF-8 names (accents, CJK, spaces) arrive under the same name."""
    names = ["élèves été.csv", "用户.csv"]
    for name in names:
        rig.put(name, name.encode())
    assert sorted(rig.run().fetched) == sorted(names)
    for name in names:
        assert (rig.landed / name).read_bytes() == name.encode()
    assert rig.remote_names() == []


def test_stop_already_set_fetches_nothing(rig: Rig) -> None:
    """A run started while the daemon stops does nothing and says so without an error."""
    rig.put("users.csv", b"rows")
    stop = threading.Event()
    stop.set()
    result = rig.puller().run(stop)
    assert result.fetched == [] and result.error is None and rig.remote_names() == ["users.csv"]


def test_pull_action_runs_in_background_and_skips_an_overlap(rig: Rig, logs: Logs) -> None:
    """The job returns at once; a tick while the pull is still running is skipped; logs carry pull=<name>."""
    gate, context = threading.Event(), {}

    def slow_ignore(rel: PurePosixPath) -> str | None:
        context.update(get_contextvars())
        gate.wait(10)  # the remote is slow: the run holds here until the test lets it go
        return None

    rig.ignore = slow_ignore
    rig.put("users.csv", b"rows")
    action = PullAction(rig.puller(), threading.Event())
    job = Job("pull-erp", "*/5 * * * *", parse_cron("*/5 * * * *", ZoneInfo("UTC"), "x"), action)
    fired = datetime.fromtimestamp(NOW, UTC)
    assert action(job, fired) == "started"
    assert action(job, fired) == "skipped: previous pull still running"
    gate.set()
    assert action.join(10)
    assert action.last_result is not None and action.last_result.fetched == ["users.csv"]
    assert len(events(logs, "sftp_pull_started")) == 1
    assert context["pull"] == "erp" and context["job"] == "pull-erp"
