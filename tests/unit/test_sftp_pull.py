"""SFTP pull logic without a server: file selection, archive names, start-up checks, the landing folder."""

from __future__ import annotations

import io
import os
import stat
import threading
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from zoneinfo import ZoneInfo

import paramiko
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from structlog.contextvars import get_contextvars

from syncd.domain import ConfigError
from syncd.intake.watcher import IntakeOptions, ignore_reason
from syncd.schedule import Job, parse_cron
from syncd.sftp._landing import FileChanged, Landing, PullStopped
from syncd.sftp._remote import RemoteFile, archive_names, host_key_name
from syncd.sftp.pull import PullAction, PullResult, open_pull, select
from syncd.sftp.settings import SftpPullSettings

NOW = 1_800_000_000.0
REG, DIR, LNK = stat.S_IFREG | 0o644, stat.S_IFDIR | 0o755, stat.S_IFLNK | 0o777


def spec(**changes: object) -> SftpPullSettings:
    base: dict[str, object] = {"name": "erp", "host": "sftp.example.org", "user": "syncd",
                               "key_file": "k", "known_hosts": "kh", "min_age": 60, "max_file_size": 100}
    base.update(changes)
    return SftpPullSettings(**base)  # type: ignore[arg-type]


def intake(rel: PurePosixPath) -> str | None:
    return ignore_reason(rel, IntakeOptions())


def rf(name: str, size: int | None = 10, age: float = 3600, mode: int = REG) -> RemoteFile:
    return RemoteFile(name, size, int(NOW - age), mode)


# --- selection -------------------------------------------------------------------------------


def test_select_takes_ready_files_oldest_first_then_by_name() -> None:
    """Ready files come back oldest first, ties by name, so an ERP's write order is kept."""
    files = [rf("b.csv", age=100), rf("a.csv", age=100), rf("old.csv", age=9000)]
    chosen, skipped = select(files, spec(), NOW, intake)
    assert [f.name for f in chosen] == ["old.csv", "a.csv", "b.csv"] and skipped == []


def test_select_reports_why_each_file_stays_remote() -> None:
    """Ignored names, young files, oversize files, links and attribute-less entries are left with a reason."""
    files = [rf("_x.csv"), rf("y.csv.filepart"), rf("young.csv", age=59), rf("big.csv", size=101),
             rf("link.csv", mode=LNK), rf("nosize.csv", size=None), rf("limit.csv", size=100, age=60)]
    chosen, skipped = select(files, spec(), NOW, intake)
    assert [f.name for f in chosen] == ["limit.csv"]
    assert dict(skipped) == {
        "_x.csv": "ignored: hidden", "y.csv.filepart": "ignored: partial upload",
        "young.csv": "too young: modified less than 60 s ago",
        "big.csv": "too big: 101 bytes > max_file_size 100", "link.csv": "not a regular file",
        "nosize.csv": "the server sent no size or mtime",
    }


def test_select_silently_passes_over_folders_and_other_names() -> None:
    """Folders and names outside the glob are not ours: neither taken nor reported."""
    files = [rf("archive", mode=DIR), rf("notes.txt"), rf("USERS.CSV")]
    chosen, skipped = select(files, spec(glob="users*.csv"), NOW, intake)
    assert [f.name for f in chosen] == ["USERS.CSV"] and skipped == []


def test_select_asks_ignore_about_the_path_under_sync() -> None:
    """The ignore rule sees target/name, so a target in a folder intake ignores leaves everything remote."""
    seen: list[PurePosixPath] = []

    def ignore(rel: PurePosixPath) -> str | None:
        seen.append(rel)
        return "reserved folder" if rel.parts[0] == "erp" else None

    chosen, skipped = select([rf("users.csv")], spec(target="erp/in"), NOW, ignore)
    assert seen == [PurePosixPath("erp/in/users.csv")]
    assert chosen == [] and skipped == [("users.csv", "ignored: reserved folder")]


def test_select_pulls_done_markers() -> None:
    """A done marker is pulled with its file: intake needs both."""
    def ignore(rel: PurePosixPath) -> str | None:
        return ignore_reason(rel, IntakeOptions(done_marker=True))

    chosen, _ = select([rf("users.csv"), rf("users.csv.done", size=0)], spec(), NOW, ignore)
    assert [f.name for f in chosen] == ["users.csv", "users.csv.done"]


def test_archive_names_keep_the_extension_and_count_on() -> None:
    """The archive name is the file's own, then name-timestamp, then name-timestamp-N."""
    names = archive_names("users.csv", datetime(2026, 11, 22, 3, 17, 5, tzinfo=UTC))
    assert [next(names) for _ in range(4)] == [
        "users.csv", "users-20261122-031705.csv",
        "users-20261122-031705-2.csv", "users-20261122-031705-3.csv",
    ]
    assert list(archive_names("README", datetime(2026, 1, 2, tzinfo=UTC)))[:2] == [
        "README", "README-20260102-000000",
    ]


def test_host_key_name_uses_brackets_off_port_22() -> None:
    """known_hosts names a host bare on port 22 and as [host]:port elsewhere."""
    assert host_key_name("h.example", 22) == "h.example"
    assert host_key_name("h.example", 2222) == "[h.example]:2222"


def test_summary_counts_and_error() -> None:
    """The job outcome line counts files and carries the error that ended the run."""
    assert PullResult(["a"], [("b", "too young")]).summary() == "fetched 1 file(s), left 1 remote"
    failed = PullResult(error="TimeoutError: timed out").summary()
    assert failed == "fetched 0 file(s), left 0 remote; failed: TimeoutError: timed out"


# --- start-up checks ---------------------------------------------------------------------------


def _write_key(path: Path, key: object, password: bytes | None = None, pem: bool = False) -> Path:
    encryption = (serialization.BestAvailableEncryption(password) if password
                  else serialization.NoEncryption())
    fmt = serialization.PrivateFormat.TraditionalOpenSSL if pem else serialization.PrivateFormat.OpenSSH
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, fmt, encryption))  # type: ignore[attr-defined]
    path.chmod(0o600)
    return path


def _host_line(name: str) -> str:
    public = ed25519.Ed25519PrivateKey.generate().public_key()
    blob = public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    return f"{name} {blob}\n"


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    key = _write_key(tmp_path / "id_ed25519", ed25519.Ed25519PrivateKey.generate())
    known = tmp_path / "known_hosts"
    known.write_text("# comment\n\n" + _host_line("[sftp.example.org]:2222"))
    return key, known


def _open(key: Path, known: Path, port: int = 2222) -> object:
    return open_pull(spec(key_file=str(key), known_hosts=str(known), port=port), Path("/nonexistent"), intake)


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa", "rsa-pem"])
def test_open_pull_accepts_unencrypted_keys(tmp_path: Path, files: tuple[Path, Path], kind: str) -> None:
    """Ed25519, ECDSA (OpenSSH format) and RSA (PEM) keys without passphrase pass; nothing connects."""
    key = {"ed25519": lambda: ed25519.Ed25519PrivateKey.generate(),
           "ecdsa": lambda: ec.generate_private_key(ec.SECP256R1()),
           "rsa-pem": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)}[kind]()
    path = _write_key(tmp_path / "k", key, pem=kind == "rsa-pem")
    assert _open(path, files[1]).name == "erp"  # type: ignore[attr-defined]


@pytest.mark.parametrize("pem", [False, True])
def test_open_pull_refuses_an_encrypted_key(tmp_path: Path, files: tuple[Path, Path], pem: bool) -> None:
    """A key with a passphrase is refused at start with a message naming the key_file setting."""
    key = _write_key(tmp_path / "enc", rsa.generate_private_key(public_exponent=65537, key_size=2048),
                     password=b"hunter2", pem=pem)
    with pytest.raises(ConfigError, match=r"^sftp\.pull\[erp\]\.key_file: .* protected by a passphrase"):
        _open(key, files[1])


@pytest.mark.parametrize("content", [None, b"", b"not a key\n", b"ssh-ed25519 AAAA comment\n"])
def test_open_pull_refuses_a_missing_or_unusable_key(
    tmp_path: Path, files: tuple[Path, Path], content: bytes | None
) -> None:
    """A missing key file, an empty one, junk or a public key is a ConfigError naming key_file."""
    key = tmp_path / "bad_key"
    if content is not None:
        key.write_bytes(content)
    with pytest.raises(ConfigError, match=r"^sftp\.pull\[erp\]\.key_file: ") as caught:
        _open(key, files[1])
    assert "AAAA" not in str(caught.value)


@pytest.mark.parametrize(("text", "message"), [
    (None, "cannot read"),
    ("", "has no key for \\[sftp.example.org\\]:2222"),
    ("# only comments\n", "has no key for"),
    ("sftp.example.org ssh-ed25519\n", "line 1: '<hosts> <key type> <base64 key>' expected"),
    ("[sftp.example.org]:2222 ssh-ed25519 !!!notbase64\n", "line 1: not a valid known_hosts entry"),
    ("@revoked * ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA\n", "line 1: markers .* are not supported"),
])
def test_open_pull_refuses_a_bad_known_hosts(
    tmp_path: Path, files: tuple[Path, Path], text: str | None, message: str
) -> None:
    """known_hosts must exist, parse, and list the host (``[host]:port`` off port 22)."""
    known = tmp_path / "kh"
    if text is not None:
        known.write_text(text)
    with pytest.raises(ConfigError, match=rf"^sftp\.pull\[erp\]\.known_hosts: .*{message}"):
        _open(files[0], known)


def test_open_pull_bare_host_entry_is_for_port_22(tmp_path: Path, files: tuple[Path, Path]) -> None:
    """A bare-host entry is for port 22 only, as in OpenSSH; a hashed entry for the right name counts."""
    known = tmp_path / "kh"
    known.write_text(_host_line("sftp.example.org"))
    assert _open(files[0], known, port=22) is not None
    with pytest.raises(ConfigError, match=r"has no key for \[sftp\.example\.org\]:2222"):
        _open(files[0], known, port=2222)
    known.write_text(_host_line(paramiko.HostKeys.hash_host("[sftp.example.org]:2222")))
    assert _open(files[0], known, port=2222) is not None


# --- the landing folder ------------------------------------------------------------------------


def test_prepare_makes_private_folders_and_removes_partials(tmp_path: Path) -> None:
    """Folders are created 0700 (parents too) and partial downloads of a killed run are deleted."""
    landing = Landing(tmp_path / "sync", "erp/in", "p1")
    landing.prepare()
    (landing.incoming / "users.csv.part").write_bytes(b"half")
    assert landing.prepare() == ["users.csv.part"] and list(landing.incoming.iterdir()) == []
    for folder in (tmp_path / "sync", landing.folder.parent, landing.folder, landing.work, landing.incoming):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_receive_writes_a_verified_private_copy(tmp_path: Path) -> None:
    """A complete download becomes a 0600 work copy with the remote mtime; no .part is left."""
    landing = Landing(tmp_path, "", "p1")
    landing.prepare()
    data = io.BytesIO(b"abc" * 100_000)
    copy = landing.receive("users.csv", data, 300_000, 1_700_000_000, threading.Event())
    assert copy == landing.work / "users.csv" and copy.read_bytes() == b"abc" * 100_000
    st = copy.stat()
    assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_mtime == 1_700_000_000
    assert list(landing.incoming.iterdir()) == [] and landing.taken("users.csv")


@pytest.mark.parametrize("data", [b"short", b"longer than listed"])
def test_receive_refuses_a_byte_count_other_than_listed(tmp_path: Path, data: bytes) -> None:
    """Fewer or more bytes than the listing said is FileChanged, and nothing is kept."""
    landing = Landing(tmp_path, "", "p1")
    landing.prepare()
    with pytest.raises(FileChanged):
        landing.receive("users.csv", io.BytesIO(data), 10, 0, threading.Event())
    assert list(landing.incoming.iterdir()) == [] and landing.verified() == []


def test_receive_stops_when_asked(tmp_path: Path) -> None:
    """A set stop event abandons the download and removes the partial file."""
    landing = Landing(tmp_path, "", "p1")
    landing.prepare()
    stop = threading.Event()
    stop.set()
    with pytest.raises(PullStopped):
        landing.receive("users.csv", io.BytesIO(b"data"), 4, 0, stop)
    assert list(landing.incoming.iterdir()) == []


def test_deliver_never_replaces_a_file(tmp_path: Path) -> None:
    """Delivering onto a taken name uses the next free name-N and leaves the other file alone."""
    landing = Landing(tmp_path, "", "p1")
    landing.prepare()
    (tmp_path / "users.csv").write_bytes(b"someone else's")
    copy = landing.receive("users.csv", io.BytesIO(b"ours"), 4, 0, threading.Event())
    final = landing.deliver(copy)
    assert final == tmp_path / "users-2.csv" and final.read_bytes() == b"ours"
    assert (tmp_path / "users.csv").read_bytes() == b"someone else's"
    assert not copy.exists() and os.stat(final).st_nlink == 1


# --- the job action ----------------------------------------------------------------------------


class SlowPuller:
    """Stands in for a Puller whose remote is slow: run() waits for ``gate``."""

    name = "erp"

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.context: dict[str, object] = {}

    def run(self, stop: threading.Event) -> PullResult:
        self.context = dict(get_contextvars())
        self.gate.wait(10)
        return PullResult(fetched=["users.csv"])


def test_pull_action_starts_in_background_and_skips_while_running() -> None:
    """The action returns at once, skips a tick while the run goes on, binds pull=<name> in its thread."""
    puller = SlowPuller()
    action = PullAction(puller, threading.Event())  # type: ignore[arg-type]
    job = Job("pull-erp", "* * * * *", parse_cron("* * * * *", ZoneInfo("UTC"), "x"), action)
    fired = datetime(2026, 11, 22, tzinfo=UTC)
    assert action(job, fired) == "started"
    assert action(job, fired) == "skipped: previous pull still running"
    puller.gate.set()
    assert action.join(10) and action.last_result == PullResult(fetched=["users.csv"])
    assert puller.context["pull"] == "erp" and puller.context["job"] == "pull-erp"
    puller.gate.clear()
    assert action(job, fired) == "started"  # the previous run has finished
    puller.gate.set()
    assert action.join(10)
