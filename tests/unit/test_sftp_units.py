"""The embedded SFTP server's parts without a network: settings, jail paths, throttle, host key."""

from __future__ import annotations

import base64
import os
import re
import struct
from pathlib import Path
from typing import Any

import pytest

from syncd.domain import ConfigError
from syncd.settings import load_settings
from syncd.sftp.accounts import AuthThrottle, build_accounts
from syncd.sftp.handlers import free_name, temp_names
from syncd.sftp.jail import Jail, JailError, canonical, is_upload_temp, split
from syncd.sftp.server import load_host_key
from syncd.sftp.settings import SftpAccountSettings, check_key_line


def key_line(kind: str = "ssh-ed25519", body: bytes = b"\x01" * 32) -> str:
    """An authorized_keys line whose blob embeds ``kind``."""
    blob = struct.pack(">I", len(kind)) + kind.encode() + struct.pack(">I", len(body)) + body
    return f"{kind} {base64.b64encode(blob).decode()} erp@host"


def settings_with(tmp_path: Path, text: str) -> Any:
    path = tmp_path / "syncd.toml"
    path.write_text(text)
    return load_settings(path, data_dir=tmp_path, env={})


ACCOUNT = f'[[sftp.account]]\nname = "erp"\nfolder = "erp"\nkeys = ["{key_line()}"]\n'


def test_accounts_and_server_are_read_from_toml(tmp_path: Path) -> None:
    """[sftp.server] and [[sftp.account]] become typed settings with upload-only defaults."""
    s = settings_with(tmp_path, "[sftp.server]\nenabled = true\nport = 2022\n" + ACCOUNT)
    assert s.sftp.server.enabled and s.sftp.server.port == 2022
    (account,) = s.sftp.accounts
    assert account.name == "erp" and account.permissions == ("upload", "list")


@pytest.mark.parametrize(("extra", "message"), [
    ('folder = "../up"', "without '..'"),
    ('folder = "/abs"', "relative to sync/"),
    ('folder = "_hidden"', "intake ignores those"),
    ('folder = "reports"', "'reports' is reserved"),
    ('permissions = ["upload", "root"]', "unknown 'root'"),
    ('password_hash = "plain-text"', "syncd hash-password"),
    ('name = "bad name"', "letters, digits"),
])
def test_bad_account_settings_are_named(tmp_path: Path, extra: str, message: str) -> None:
    """Each bad account value is refused with the key and the rule in one line."""
    key = extra.split(" = ")[0]
    lines = [line for line in ACCOUNT.splitlines() if not line.startswith(key + " ")]
    with pytest.raises(ConfigError, match=r"sftp\.account") as exc:
        settings_with(tmp_path, "\n".join([*lines, extra]) + "\n")
    assert message in str(exc.value)


def test_an_account_needs_a_way_to_log_in(tmp_path: Path) -> None:
    """An account with neither keys nor password_hash is refused."""
    with pytest.raises(ConfigError, match="give keys or password_hash"):
        settings_with(tmp_path, '[[sftp.account]]\nname = "erp"\nfolder = "erp"\n')


def test_nested_jails_are_refused(tmp_path: Path) -> None:
    """No account's folder may contain another's."""
    inner = ACCOUNT.replace('"erp"', '"hr"').replace('folder = "hr"', 'folder = "erp/hr"')
    with pytest.raises(ConfigError, match="inside the folder of 'erp'"):
        settings_with(tmp_path, ACCOUNT + inner)


def test_server_without_accounts_is_refused(tmp_path: Path) -> None:
    """Enabling the server with no account is a config error, not a useless listener."""
    with pytest.raises(ConfigError, match="at least one"):
        settings_with(tmp_path, "[sftp.server]\nenabled = true\n")


@pytest.mark.parametrize(("line", "message"), [
    ("ssh-ed25519", "expected"),
    ('from="10.0.0.1" ssh-ed25519 AAAA', "options are not supported"),
    ("ssh-dss AAAA", "not supported"),
    ("ssh-ed25519 !!!notbase64", "not valid base64"),
    (key_line("ssh-rsa").replace("ssh-rsa ", "ssh-ed25519 ", 1), "the line says ssh-ed25519"),
])
def test_bad_key_lines_are_refused(line: str, message: str) -> None:
    """A key line that is not '<type> <base64 of that type>' is refused with the reason."""
    with pytest.raises(ConfigError, match=r"sftp\.account") as exc:
        check_key_line("sftp.account[0].keys", line)
    assert message in str(exc.value)


def test_accounts_are_jailed_under_sync(tmp_path: Path) -> None:
    """build_accounts roots each account at sync/<folder> and keeps its key blobs."""
    spec = SftpAccountSettings(name="erp", folder="erp/in", keys=(key_line(),))
    account = build_accounts([spec], tmp_path / "sync")["erp"]
    assert account.root == tmp_path / "sync" / "erp" / "in"
    assert account.key_allowed(check_key_line("k", key_line())[1])
    assert not account.password_ok("anything")


@pytest.mark.parametrize(("path", "parts"), [
    ("/", ()), (".", ()), ("", ()), ("a/b.csv", ("a", "b.csv")), ("/a//./b", ("a", "b")),
])
def test_split_keeps_paths_below_the_root(path: str, parts: tuple[str, ...]) -> None:
    """Client paths become components below the jail root."""
    assert split(path) == parts


@pytest.mark.parametrize("path", ["..", "../x", "a/../../x", "/..", "a\\..\\x", "a\0b"])
def test_split_refuses_climbing_and_nul(path: str) -> None:
    """'..' anywhere (also with backslashes) and NUL bytes are refused, not clamped."""
    with pytest.raises(JailError) as exc:
        split(path)
    assert exc.value.code == "denied"


def test_canonical_is_absolute_and_virtual() -> None:
    """REALPATH answers are absolute paths of the virtual tree."""
    assert canonical(".") == "/"
    assert canonical("a/./b") == "/a/b"
    assert canonical("/../x") == "/x"


def test_jail_refuses_a_symlinked_folder_on_the_way(tmp_path: Path) -> None:
    """Walking through a symlinked folder is refused by the kernel (O_NOFOLLOW), not followed."""
    root = tmp_path / "jail"
    root.mkdir()
    (tmp_path / "outside").mkdir()
    os.symlink(tmp_path / "outside", root / "link")
    jail = Jail(root)
    with pytest.raises(JailError, match="symlinks are not followed"), jail.folder(("link",)):
        pass
    with pytest.raises(JailError, match="symlinks are not followed"):
        jail.open_file(("link", "x"), os.O_WRONLY | os.O_CREAT)
    assert list((tmp_path / "outside").iterdir()) == []


def test_jail_listing_hides_uploads_in_progress(tmp_path: Path) -> None:
    """Entries named like our hidden uploads never appear in a listing."""
    (tmp_path / "users.csv").write_text("x")
    (tmp_path / ".users.csv.filepart").write_text("x")
    assert [name for name, _ in Jail(tmp_path).entries(())] == ["users.csv"]
    assert all(is_upload_temp(n) for n in temp_names("users.csv"))


def test_free_name_counts_before_the_extension() -> None:
    """A taken name becomes stem-2.ext, stem-3.ext..."""
    taken = {"users.csv", "users-2.csv", "README"}
    assert free_name(taken.__contains__, "users.csv") == "users-3.csv"
    assert free_name(taken.__contains__, "README") == "README-2"
    assert free_name(taken.__contains__, "new.csv") == "new.csv"


def test_throttle_bans_after_max_failures_within_the_window() -> None:
    """max_failures within the window ban the address until ban_time has passed."""
    now = [0.0]
    throttle = AuthThrottle(max_failures=3, window=60, ban_time=300, clock=lambda: now[0])
    assert not throttle.failed("10.0.0.1")
    now[0] = 70.0  # the first failure left the window
    assert not throttle.failed("10.0.0.1")
    assert not throttle.failed("10.0.0.1")
    assert throttle.failed("10.0.0.1")
    assert throttle.banned("10.0.0.1") and not throttle.banned("10.0.0.2")
    now[0] = 370.0
    assert not throttle.banned("10.0.0.1")


def test_a_login_clears_the_failures() -> None:
    """A successful login forgets the address's earlier failures."""
    throttle = AuthThrottle(max_failures=2, window=60, ban_time=300, clock=lambda: 0.0)
    throttle.failed("a")
    throttle.succeeded("a")
    assert not throttle.failed("a")


def test_host_key_is_made_once_private_and_kept(tmp_path: Path) -> None:
    """The first start makes an Ed25519 key (0600); later starts load the same key."""
    path = tmp_path / "state" / "host_key"
    first = load_host_key(path)
    assert first.get_name() == "ssh-ed25519"
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_host_key(path).fingerprint == first.fingerprint


def test_a_broken_host_key_is_never_replaced(tmp_path: Path) -> None:
    """An unreadable key file stops the server with an error and stays as it was."""
    path = tmp_path / "host_key"
    path.write_text("not a key")
    path.chmod(0o600)
    with pytest.raises(ConfigError, match="never replaced automatically"):
        load_host_key(path)
    assert path.read_text() == "not a key"


def test_a_host_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    """Like sshd, a host key with group or world bits is refused."""
    path = tmp_path / "host_key"
    load_host_key(path)
    path.chmod(0o640)
    with pytest.raises(ConfigError, match="readable by others"):
        load_host_key(path)


def test_example_sftp_sections_are_valid_when_uncommented(tmp_path: Path) -> None:
    """The commented [[sftp.account]] and [[sftp.pull]] examples of config/syncd.toml load as written."""
    example = (Path(__file__).parents[2] / "config" / "syncd.toml").read_text()
    block = example[example.index("[sftp.server]"):]
    setting = re.compile(r"# (\[\[?sftp\.|[a-z_]+ = )")
    text = "\n".join(line[2:] if setting.match(line) else line for line in block.splitlines())
    s = settings_with(tmp_path, text.replace("enabled = false", "enabled = true"))
    assert s.sftp.server.enabled and s.sftp.server.port == 2222
    assert [a.name for a in s.sftp.accounts] == ["erp"]
    assert s.sftp.accounts[0].permissions == ("upload", "list", "results")
    (pull,) = s.sftp.pulls
    assert (pull.name, pull.after, pull.archive_dir, pull.min_age) == ("sis", "move", "outbox/done", 60.0)
