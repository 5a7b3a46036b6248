"""The systemd unit and its sysusers.d/tmpfiles.d snippets, checked with systemd's own tools.

``systemd-analyze verify`` must print nothing on stderr (it exits 0 on warnings), the
offline security score must stay below :data:`EXPOSURE_BOUND` (the bound the README
states), and the hardening directives the service relies on must be there. The
snippets are applied with ``--root=<tmp_path>``: users and folders are created inside the
test's folder, never on this machine.
"""

from __future__ import annotations

import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from syncd.service import DRAIN_DEADLINE

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "systemd" / "syncd.service"
SYSUSERS = REPO / "systemd" / "syncd.sysusers.conf"
TMPFILES = REPO / "systemd" / "syncd.tmpfiles.conf"
INSTALLED_BINARY = "/opt/syncd/bin/syncd"

#: the highest `systemd-analyze security` exposure the unit may score (README: "below 2.0")
EXPOSURE_BOUND = 2.0

_SPAN_UNITS = {
    "us": 1e-6, "usec": 1e-6, "ms": 1e-3, "msec": 1e-3, "": 1.0, "s": 1.0, "sec": 1.0,
    "second": 1.0, "seconds": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0, "minutes": 60.0,
    "h": 3600.0, "hr": 3600.0, "hour": 3600.0, "hours": 3600.0,
}
_TRUE = {"1", "yes", "true", "on"}


def _tool(name: str) -> str:
    """The path of a systemd tool; the test is skipped when it is missing."""
    found = shutil.which(name)
    if found is None:
        pytest.skip(reason=f"{name} not installed (apt-get install systemd)")
    return found


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)


def _syncd_script() -> Path:
    """The test venv's ``syncd`` console script (``pip install -e .`` makes it)."""
    script = Path(sys.executable).with_name("syncd")
    if not script.is_file():
        found = shutil.which("syncd")
        assert found, f"no syncd console script beside {sys.executable}: run pip install -e ."
        script = Path(found)
    return script


@pytest.fixture
def unit_copy(tmp_path: Path) -> Path:
    """The unit as ``tmp_path/syncd.service``, ExecStart pointing at this venv's syncd."""
    text = UNIT.read_text(encoding="utf-8")
    assert INSTALLED_BINARY in text, f"{UNIT}: ExecStart no longer runs {INSTALLED_BINARY}"
    copy = tmp_path / "syncd.service"
    copy.write_text(text.replace(INSTALLED_BINARY, str(_syncd_script())), encoding="utf-8")
    return copy


def service_directives(path: Path) -> dict[str, list[str]]:
    """The ``[Service]`` section of a unit file: every value of every key, in order."""
    found: dict[str, list[str]] = {}
    section = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif section == "Service" and "=" in line:
            key, value = line.split("=", 1)
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def timespan(value: str) -> float:
    """Seconds of a systemd time span such as ``90``, ``90s``, ``1min 30s`` or ``2h``."""
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", value.strip().lower())
    assert parts and "".join(n + u for n, u in parts) == re.sub(r"\s+", "", value.lower()), (
        f"not a systemd time span: {value!r}"
    )
    total = 0.0
    for number, unit in parts:
        assert unit in _SPAN_UNITS, f"unknown time unit {unit!r} in {value!r}"
        total += float(number) * _SPAN_UNITS[unit]
    return total


def _one(directives: dict[str, list[str]], key: str) -> str:
    values = directives.get(key)
    assert values, f"{UNIT.name}: [Service] has no {key}="
    return values[-1]


def test_timespan_reads_systemd_spans() -> None:
    """The span parser the directive checks rely on reads systemd's notations."""
    assert timespan("90") == 90.0
    assert timespan("90s") == 90.0
    assert timespan("1min 30s") == 90.0
    assert timespan("2h") == 7200.0
    assert timespan("500ms") == 0.5


def test_systemd_analyze_verify_prints_nothing(unit_copy: Path) -> None:
    """`systemd-analyze verify` accepts the unit without a single warning on stderr."""
    result = _run(_tool("systemd-analyze"), "verify", str(unit_copy))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == "", f"systemd-analyze verify warned:\n{result.stderr}"


def test_security_exposure_is_below_the_stated_bound(unit_copy: Path) -> None:
    """`systemd-analyze security --offline=true` scores the unit below EXPOSURE_BOUND."""
    result = _run(_tool("systemd-analyze"), "security", "--offline=true", "--no-pager", str(unit_copy))
    output = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)
    match = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", output)
    assert match, f"no exposure level in the output (exit {result.returncode}):\n{output[-2000:]}"
    exposure = float(match.group(1))
    assert exposure < EXPOSURE_BOUND, f"exposure {exposure} >= {EXPOSURE_BOUND}:\n{output}"


def test_unit_has_the_service_and_hardening_directives() -> None:
    """Type=notify, a dedicated user, the three directories and the hardening the issue lists."""
    d = service_directives(UNIT)
    assert _one(d, "Type") == "notify"
    assert _one(d, "User") not in ("", "root", "0")
    for key in ("StateDirectory", "CacheDirectory", "ConfigurationDirectory"):
        assert _one(d, key) == "syncd", f"{key}={_one(d, key)}"
    assert _one(d, "ProtectSystem") == "strict"
    for key in ("NoNewPrivileges", "PrivateTmp", "ProtectHome"):
        assert _one(d, key).lower() in _TRUE, f"{key}={_one(d, key)}"
    families = set(" ".join(d.get("RestrictAddressFamilies", [])).split())
    assert "AF_UNIX" in families, "sd_notify and journald need AF_UNIX"
    assert families <= {"AF_UNIX", "AF_INET", "AF_INET6"}, f"RestrictAddressFamilies={families}"
    assert "@system-service" in " ".join(d.get("SystemCallFilter", [])).split()
    umask = int(_one(d, "UMask"), 8)
    assert umask & 0o077 == 0o077, f"UMask={_one(d, 'UMask')}: files must be 0600, folders 0700"
    assert _one(d, "Restart") == "on-failure"
    assert timespan(_one(d, "WatchdogSec")) > 0


def test_stop_timeout_leaves_room_for_the_drain() -> None:
    """TimeoutStopSec is longer than the drain deadline, so systemd never kills a clean stop."""
    d = service_directives(UNIT)
    assert timespan(_one(d, "TimeoutStopSec")) > DRAIN_DEADLINE


def test_exec_start_runs_the_daemon_in_the_foreground() -> None:
    """ExecStart runs `syncd ... run` (the Type=notify main process) with the /etc/syncd config."""
    d = service_directives(UNIT)
    argv = _one(d, "ExecStart").split()
    assert argv[0] == INSTALLED_BINARY and argv[-1] == "run", argv
    assert "--config" in argv and argv[argv.index("--config") + 1].startswith("/etc/syncd/")


def _apply_sysusers(root: Path) -> str:
    """Create the snippet's user inside ``root`` (its own /etc), return root's passwd."""
    (root / "etc").mkdir(parents=True)
    result = _run(_tool("systemd-sysusers"), f"--root={root}", str(SYSUSERS))
    assert result.returncode == 0, result.stdout + result.stderr
    noise = [line for line in result.stderr.splitlines() if not line.startswith("Creating ")]
    assert noise == [], f"systemd-sysusers complained:\n{result.stderr}"
    return (root / "etc" / "passwd").read_text(encoding="utf-8")


def test_sysusers_snippet_creates_a_system_user_without_a_login(tmp_path: Path) -> None:
    """systemd-sysusers (under --root) makes user syncd: system uid, home /var/lib/syncd, no shell."""
    passwd = _apply_sysusers(tmp_path / "root")
    lines = [line.split(":") for line in passwd.splitlines() if line.startswith("syncd:")]
    assert len(lines) == 1, passwd
    _name, _pw, uid, gid, _gecos, home, shell = lines[0]
    assert 0 < int(uid) < 1000 and 0 < int(gid) < 1000, lines[0]
    assert home == "/var/lib/syncd"
    assert shell in ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false"), shell
    group = (tmp_path / "root" / "etc" / "group").read_text(encoding="utf-8")
    assert any(line.startswith(f"syncd:x:{gid}:") for line in group.splitlines()), group


def test_tmpfiles_snippet_makes_the_drop_folder_group_writable_and_setgid(tmp_path: Path) -> None:
    """systemd-tmpfiles --create (under --root) makes <data>/sync 2770, owned by syncd:syncd."""
    root = tmp_path / "root"
    passwd = _apply_sysusers(root)
    uid, gid = next(line.split(":")[2:4] for line in passwd.splitlines() if line.startswith("syncd:"))
    result = _run(_tool("systemd-tmpfiles"), "--create", f"--root={root}", str(TMPFILES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == "", f"systemd-tmpfiles warned:\n{result.stderr}"
    sync = root / "var" / "lib" / "syncd" / "sync"
    st = sync.lstat()
    assert stat.S_ISDIR(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o2770, oct(stat.S_IMODE(st.st_mode))
    assert (st.st_uid, st.st_gid) == (int(uid), int(gid))
