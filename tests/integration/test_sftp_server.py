"""The embedded SFTP server against OpenSSH's real ``sftp`` client.

Uploads (normal, rate-limited, killed halfway), WinSCP-style ``.filepart`` renames, and
every refusal the issue lists: wrong key, wrong password (throttled), ``..`` and
absolute paths, symlinks, another account's folder, oversize uploads, reading or
deleting without permission. Each refusal is checked for its log event and for nothing
written outside the jail.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import stat
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from syncd.passwords import hash_password
from tests.integration.sftp_embedded import Embedded, embedded_server
from tests.sftp_client import kill
from tests.sftp_client import skip_reason as client_missing
from tests.sshd import keygen

pytestmark = pytest.mark.skipif(client_missing() is not None, reason=str(client_missing()))

Logs = list[dict[str, Any]]


def wait_until(predicate: Callable[[], object], timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll ``predicate`` until it is truthy (a condition, not a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def events(logs: Logs, name: str, **match: object) -> Logs:
    """The captured events called ``name`` whose fields include ``match``."""
    return [e for e in logs if e["event"] == name and all(e.get(k) == v for k, v in match.items())]


def tree(root: Path) -> list[str]:
    """Every path below ``root`` (relative) but the client's own folder, to compare before and after."""
    found = (str(p.relative_to(root)) for p in root.rglob("*"))
    return sorted(p for p in found if p != "client" and not p.startswith("client/"))


@pytest.fixture
def logs() -> Iterator[Logs]:
    with capture_logs() as captured:
        yield captured


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., Embedded]]:
    servers: list[Embedded] = []

    def make(accounts: dict[str, dict[str, Any]], **server: Any) -> Embedded:
        srv = embedded_server(tmp_path, accounts, **server)
        servers.append(srv)
        return srv

    yield make
    for srv in servers:
        srv.server.stop()


@pytest.fixture
def upload(tmp_path: Path) -> Callable[[str, bytes], Path]:
    def write(name: str, data: bytes) -> Path:
        path = tmp_path / "client" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    return write


def test_upload_is_published_complete_and_private(make_server, upload, logs) -> None:
    """A put lands under its name, byte for byte, 0600, with one file event and one session event."""
    srv = make_server({"erp": {}})
    data = os.urandom(300_000)
    upload("users.csv", data)
    done = srv.run("erp", ["put users.csv"])
    assert done.returncode == 0, done.stderr
    target = srv.jail("erp") / "users.csv"
    assert target.read_bytes() == data
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert tree(srv.jail("erp")) == ["users.csv"]
    assert events(logs, "sftp_file_received", outcome="complete", path="/users.csv", bytes=len(data))
    ended = wait_until(lambda: events(logs, "sftp_session_ended", account="erp"), what="session event")
    assert ended[0]["files"] == 1 and ended[0]["bytes"] == len(data)


def test_openssh_clients_learn_the_larger_request_size(make_server, upload) -> None:
    """The server answers limits@openssh.com, so OpenSSH writes 255 KiB requests (not 32 KiB)."""
    srv = make_server({"erp": {}})
    data = os.urandom(2_000_000)
    upload("big.bin", data)
    done = srv.run("erp", ["put big.bin"], extra_args=["-vvv"])
    assert done.returncode == 0, done.stderr[-2000:]
    assert "server upload/download buffer sizes 261120 / 261120" in done.stderr
    assert (srv.jail("erp") / "big.bin").read_bytes() == data


def test_slow_upload_is_invisible_until_the_client_closes_it(make_server, upload) -> None:
    """During a rate-limited upload only the hidden .filepart exists; the name appears at the end."""
    srv = make_server({"erp": {}})
    data = os.urandom(1_000_000)
    upload("big.csv", data)
    proc = srv.start("erp", ["put big.csv"], rate_kbit=2000)  # ~4 s
    temp = srv.jail("erp") / ".big.csv.filepart"
    wait_until(lambda: temp.exists() and temp.stat().st_size > 0, what="upload under way")
    assert not (srv.jail("erp") / "big.csv").exists()
    assert proc.wait(timeout=60) == 0
    final = srv.jail("erp") / "big.csv"
    assert hashlib.sha256(final.read_bytes()).digest() == hashlib.sha256(data).digest()
    assert not temp.exists()


def test_upload_killed_halfway_leaves_nothing(make_server, upload, logs) -> None:
    """A client killed mid-upload leaves no visible file and no temp file; the file is logged aborted."""
    srv = make_server({"erp": {}})
    upload("users.csv", os.urandom(2_000_000))
    proc = srv.start("erp", ["put users.csv"], rate_kbit=1000)
    temp = srv.jail("erp") / ".users.csv.filepart"
    wait_until(lambda: temp.exists() and temp.stat().st_size > 50_000, what="half an upload")
    kill(proc)
    wait_until(lambda: events(logs, "sftp_file_received", outcome="aborted"), what="aborted event")
    assert tree(srv.jail("erp")) == []
    ended = wait_until(lambda: events(logs, "sftp_session_ended"), what="session event")
    assert ended[0]["aborted"] == 1 and ended[0]["files"] == 0


def test_winscp_style_filepart_then_rename(make_server, upload) -> None:
    """Upload as name.filepart then rename: the final name appears; renaming onto it again is refused."""
    srv = make_server({"erp": {}})
    upload("users.csv", b"username\na\n")
    done = srv.run("erp", ["put users.csv users.csv.filepart", "rename users.csv.filepart users.csv"])
    assert done.returncode == 0, done.stderr
    assert tree(srv.jail("erp")) == ["users.csv"]
    again = srv.run("erp", ["put users.csv other.filepart", "rename other.filepart users.csv"])
    assert again.returncode != 0
    assert tree(srv.jail("erp")) == ["other.filepart", "users.csv"]


def test_existing_name_needs_overwrite(make_server, upload, logs) -> None:
    """A second put of a name still waiting is refused, unless the account may overwrite."""
    srv = make_server({"erp": {}, "hr": {"permissions": ("upload", "list", "overwrite")}})
    upload("users.csv", b"one\n")
    assert srv.run("erp", ["put users.csv"]).returncode == 0
    assert srv.run("hr", ["put users.csv"]).returncode == 0
    upload("users.csv", b"two\n")
    refused = srv.run("erp", ["put users.csv"])
    assert refused.returncode != 0
    assert (srv.jail("erp") / "users.csv").read_bytes() == b"one\n"
    assert events(logs, "sftp_request_refused", op="put", account="erp")
    assert srv.run("hr", ["put users.csv"]).returncode == 0
    assert (srv.jail("hr") / "users.csv").read_bytes() == b"two\n"


def test_wrong_key_is_refused_and_logged(make_server, upload, tmp_path, logs) -> None:
    """A key that is not the account's gets no session and writes nothing."""
    srv = make_server({"erp": {}})
    stranger = keygen(tmp_path / "stranger_key")
    upload("users.csv", b"x\n")
    done = srv.run("erp", ["put users.csv"], key=stranger)
    assert done.returncode != 0
    assert "Permission denied" in done.stderr
    assert tree(srv.jail("erp")) == []
    assert events(logs, "sftp_key_refused", user="erp")
    assert not events(logs, "sftp_session_ended")


def test_wrong_passwords_get_the_address_banned(make_server, upload, logs) -> None:
    """After max_auth_failures wrong passwords even the right password and key are refused."""
    secret = "correct horse battery staple"
    srv = make_server({"erp": {"password_hash": hash_password(secret, 10)}},
                      max_auth_failures=3, ban_time=600)
    upload("users.csv", b"x\n")
    assert srv.run("erp", ["put users.csv"], key=None, password=secret).returncode == 0
    for _ in range(3):
        assert srv.run("erp", ["ls"], key=None, password="guess").returncode != 0
    assert events(logs, "sftp_address_banned", address="127.0.0.1")
    assert srv.run("erp", ["ls"], key=None, password=secret).returncode != 0
    assert srv.run("erp", ["ls"]).returncode != 0  # the account's key, from a banned address
    assert events(logs, "sftp_connection_refused", reason="banned after failed logins")
    assert all(secret not in repr(e) and "guess" not in repr(e) for e in logs)


@pytest.mark.parametrize("target", ["../x", "../../etc/x", "sub/../../x", "/../x"])
def test_dotdot_paths_are_refused(make_server, upload, logs, target) -> None:
    """A put whose path climbs with '..' is refused and logged; nothing appears above the jail."""
    srv = make_server({"erp": {"permissions": ("upload", "list", "mkdir")}})
    upload("f.csv", b"x\n")
    before = tree(srv.sync.parent)
    done = srv.run("erp", [f"put f.csv {target}"])
    assert done.returncode != 0
    assert tree(srv.sync.parent) == before
    assert events(logs, "sftp_request_refused", reason="path escapes the jail ('..')")


def test_absolute_paths_stay_inside_the_jail(make_server, upload) -> None:
    """'/etc/x' means <jail>/etc/x: refused as missing, and /etc is untouched."""
    srv = make_server({"erp": {}})
    upload("f.csv", b"x\n")
    done = srv.run("erp", ["put f.csv /etc/syncd-test-x"])
    assert done.returncode != 0
    assert not Path("/etc/syncd-test-x").exists()
    assert tree(srv.jail("erp")) == []
    assert srv.run("erp", ["put f.csv /f.csv"]).returncode == 0  # "/" is the jail itself
    assert tree(srv.jail("erp")) == ["f.csv"]


def test_symlinks_cannot_be_made_or_followed(make_server, upload, tmp_path, logs) -> None:
    """The symlink command is refused, and a link planted in the jail is never followed."""
    srv = make_server({"erp": {"permissions": ("upload", "list", "read")}})
    upload("f.csv", b"x\n")
    assert srv.run("erp", ["put f.csv"]).returncode == 0
    assert srv.run("erp", ["symlink f.csv link.csv"]).returncode != 0
    assert events(logs, "sftp_request_refused", op="symlink")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    os.symlink(outside, srv.jail("erp") / "out")
    os.symlink(outside / "secret.txt", srv.jail("erp") / "link.txt")
    assert srv.run("erp", ["put f.csv out/x.csv"]).returncode != 0
    listing = srv.run("erp", ["ls out/"])
    assert "secret.txt" not in listing.stdout
    assert srv.run("erp", ["get link.txt got.txt"]).returncode != 0
    assert sorted(os.listdir(outside)) == ["secret.txt"]
    assert not (srv.workdir / "got.txt").exists()
    assert events(logs, "sftp_request_refused", reason="symlinks are not followed")


def test_another_accounts_folder_is_out_of_reach(make_server, upload) -> None:
    """An account with every permission cannot list, read or write a neighbour's folder."""
    everything = ("upload", "list", "read", "delete", "mkdir", "overwrite")
    srv = make_server({"alice": {"permissions": everything}, "bob": {}})
    upload("bob.csv", b"bob's\n")
    assert srv.run("bob", ["put bob.csv"]).returncode == 0
    for command in ["ls ../bob", "get ../bob/bob.csv", "put bob.csv ../bob/x.csv", "rm ../bob/bob.csv",
                    "ls /bob", "get /bob/bob.csv"]:
        assert srv.run("alice", [command]).returncode != 0, command
    assert tree(srv.jail("bob")) == ["bob.csv"]
    assert srv.run("alice", ["put bob.csv"], key=srv.keys["bob"]).returncode != 0


def test_oversize_upload_is_refused_and_discarded(make_server, upload, logs) -> None:
    """Writes past max_file_size fail, the partial upload is removed, and the refusal is logged."""
    srv = make_server({"erp": {"max_file_size": 100_000}})
    upload("big.csv", os.urandom(400_000))
    done = srv.run("erp", ["put big.csv"])
    assert done.returncode != 0
    wait_until(lambda: events(logs, "sftp_file_received", outcome="aborted", reason="too large"),
               what="discarded upload")
    assert tree(srv.jail("erp")) == []
    assert events(logs, "sftp_request_refused", op="write")


def test_upload_only_account_cannot_read_or_delete(make_server, upload) -> None:
    """The default permissions allow put and ls, not get, rm, mkdir or _results/."""
    srv = make_server({"erp": {}})
    upload("users.csv", b"x\n")
    assert srv.run("erp", ["put users.csv", "ls -l"]).returncode == 0
    for command in ["get users.csv copy.csv", "rm users.csv", "mkdir sub", "ls _results"]:
        assert srv.run("erp", [command]).returncode != 0, command
    assert tree(srv.jail("erp")) == ["users.csv"]


def test_results_view_shows_only_the_accounts_reports(make_server, tmp_path) -> None:
    """_results/ lists and serves the reports of the account's own files, read-only."""
    srv = make_server({"erp": {"permissions": ("upload", "list", "results")}})
    report = tmp_path / "store" / "reports" / "20261122-070000_users.csv.report.txt"
    report.parent.mkdir(parents=True)
    report.write_text("users.csv: 3 rows, 0 failed\n")
    srv.results["erp"] = {report.name: report}
    listing = srv.run("erp", ["ls _results"])
    assert listing.returncode == 0 and report.name in listing.stdout
    got = srv.run("erp", [f"get _results/{report.name} got.txt"])
    assert got.returncode == 0, got.stderr
    assert (srv.workdir / "got.txt").read_text() == report.read_text()
    assert srv.run("erp", [f"rm _results/{report.name}"]).returncode != 0
    assert srv.run("erp", ["put got.txt _results/x.txt"]).returncode != 0
    assert srv.run("erp", ["get _results/other.report.txt"]).returncode != 0
    assert report.exists()



def _host_key_sha256(srv: Embedded) -> str:
    line = srv.known_hosts.read_text().split()
    return base64.b64encode(hashlib.sha256(base64.b64decode(line[2])).digest()).decode()


@pytest.mark.skipif(shutil.which("curl") is None, reason="no curl on PATH")
def test_curl_uploads_with_its_sftp_support(make_server, upload) -> None:
    """curl (libssh2) puts a file with the account's key and the pinned host key; it is published whole."""
    srv = make_server({"erp": {}})
    path = upload("users.csv", b"username\ncurl\n")
    key = srv.keys["erp"]
    done = subprocess.run(
        ["curl", "-sS", "-T", str(path), f"sftp://127.0.0.1:{srv.port}/users.csv", "-u", "erp:",
         "--key", str(key), "--pubkey", f"{key}.pub", "--hostpubsha256", _host_key_sha256(srv)],
        capture_output=True, text=True, timeout=60,
    )
    if "Protocol \"sftp\" not supported" in done.stderr:
        pytest.skip(reason=f"this curl has no sftp support: {done.stderr.strip()[:200]}")
    assert done.returncode == 0, done.stderr
    assert (srv.jail("erp") / "users.csv").read_bytes() == b"username\ncurl\n"


@pytest.mark.skipif(shutil.which("rclone") is None, reason="no rclone on PATH (Debian package rclone)")
def test_rclone_copies_a_file_with_strict_host_key_checking(make_server, upload) -> None:
    """rclone's sftp backend uploads (and sets the time) through the jail; nothing else appears."""
    srv = make_server({"erp": {}})
    path = upload("users.csv", b"username\nrclone\n")
    remote = (f":sftp,host=127.0.0.1,port={srv.port},user=erp,key_file={srv.keys['erp']},"
              f"known_hosts_file={srv.known_hosts}:users.csv")
    done = subprocess.run(["rclone", "copyto", str(path), remote], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "RCLONE_CONFIG": "/dev/null"})
    assert done.returncode == 0, done.stderr
    assert tree(srv.jail("erp")) == ["users.csv"]
    assert (srv.jail("erp") / "users.csv").read_bytes() == b"username\nrclone\n"
