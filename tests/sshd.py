"""Start a real OpenSSH ``sshd`` on 127.0.0.1 for tests and benchmarks.

Everything lives in one temporary folder: host key, a client key pair, ``sshd_config``,
``authorized_keys``, the ``known_hosts`` a client needs, the pid file and the log. The
server offers SFTP only (``ForceCommand internal-sftp``), starts every session in the
served folder and accepts public-key logins of one user (default: the current user).
sshd needs root (privilege separation, switching to the user), so callers check
:func:`skip_reason` first and skip with its text.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SSHD = Path("/usr/sbin/sshd")
PRIVSEP_DIR = Path("/run/sshd")
_START_TIMEOUT = 10.0


def skip_reason() -> str | None:
    """Why a real sshd cannot be started here, or None if it can."""
    if not SSHD.is_file():
        return f"no sshd at {SSHD}"
    if shutil.which("ssh-keygen") is None:
        return "no ssh-keygen on PATH"
    if os.geteuid() != 0:
        return "sshd needs root (privilege separation and user switching); tests run as non-root"
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def keygen(path: Path, kind: str = "ed25519", passphrase: str = "") -> Path:
    """Make a key pair ``path`` / ``path.pub`` with ssh-keygen; returns the private key's path."""
    args = ["ssh-keygen", "-q", "-t", kind, "-N", passphrase, "-C", path.name, "-f", str(path)]
    subprocess.run(args, check=True, capture_output=True)
    return path


def known_hosts_line(pub_key: Path, port: int, host: str = "127.0.0.1") -> str:
    """A ``known_hosts`` line for ``host:port`` from a ``.pub`` file (``[host]:port`` unless 22)."""
    kind, blob = pub_key.read_text().split()[:2]
    name = host if port == 22 else f"[{host}]:{port}"
    return f"{name} {kind} {blob}\n"


@dataclass
class Sshd:
    """A running sshd and the files a client needs to reach it."""

    root: Path
    served: Path
    port: int
    user: str
    client_key: Path
    known_hosts: Path
    host_pub: Path
    log_file: Path
    process: subprocess.Popen[bytes]

    @property
    def host(self) -> str:
        """The address sshd listens on."""
        return "127.0.0.1"

    def log_text(self) -> str:
        """What sshd logged so far (LogLevel VERBOSE)."""
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def stop(self) -> None:
        """Kill sshd (and its session children) and wait for it."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=_START_TIMEOUT)


def _config(root: Path, served: Path, port: int, user: str) -> str:
    return "\n".join([
        f"Port {port}",
        "ListenAddress 127.0.0.1",
        f"HostKey {root / 'host_ed25519_key'}",
        f"PidFile {root / 'sshd.pid'}",
        f"AuthorizedKeysFile {root / 'authorized_keys'}",
        "StrictModes no",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "PermitRootLogin prohibit-password",
        f"AllowUsers {user}",
        "AllowTcpForwarding no",
        "X11Forwarding no",
        "Subsystem sftp internal-sftp",
        f"ForceCommand internal-sftp -d {served}",
        "LogLevel VERBOSE",
        "",
    ])


def _wait_listening(proc: subprocess.Popen[bytes], port: int, log_file: Path) -> None:
    """Return once 127.0.0.1:port accepts; raise if sshd exits or never listens."""
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited with {proc.returncode}: {log_file.read_text(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)  # polling a condition (the port accepts), not a fixed wait
    proc.kill()
    raise RuntimeError(f"sshd did not listen on 127.0.0.1:{port} within {_START_TIMEOUT} s")


def start_sshd(root: Path, served: Path | None = None, user: str | None = None) -> Sshd:
    """Start sshd with its own keys and config in ``root``, serving ``served`` (default root/served)."""
    reason = skip_reason()
    if reason is not None:
        raise RuntimeError(reason)
    root.mkdir(parents=True, exist_ok=True)
    served = served if served is not None else root / "served"
    served.mkdir(parents=True, exist_ok=True)
    user = user or getpass.getuser()
    PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
    keygen(root / "host_ed25519_key")
    client_key = keygen(root / "client_key")
    (root / "authorized_keys").write_text(client_key.with_suffix(".pub").read_text())
    host_pub = root / "host_ed25519_key.pub"
    log_file = root / "sshd.log"
    for _ in range(3):  # the free port may be taken between probing and binding
        port = free_port()
        config = root / "sshd_config"
        config.write_text(_config(root, served, port, user))
        args = [str(SSHD), "-D", "-e", "-E", str(log_file), "-f", str(config)]
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            _wait_listening(proc, port, log_file)
        except RuntimeError:
            if "Address already in use" in log_file.read_text(errors="replace"):
                continue
            raise
        known_hosts = root / "known_hosts"
        known_hosts.write_text(known_hosts_line(host_pub, port))
        return Sshd(root, served, port, user, client_key, known_hosts, host_pub, log_file, proc)
    raise RuntimeError("sshd: no free port after 3 tries")
