"""Drive OpenSSH's ``sftp`` client in batch mode, as an ERP's upload job would.

:func:`sftp_batch` runs ``sftp -b <file>`` with a private ``known_hosts`` (strict
checking) or none, key or password login (the password through ``SSH_ASKPASS``, never a
terminal) and an optional rate limit (``-l`` Kbit/s) so an upload lasts long enough to be
watched or killed; batch and askpass files go in ``workdir``. :func:`start_sftp` returns
the running process for tests that interrupt it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

SFTP = shutil.which("sftp")


def skip_reason() -> str | None:
    """Why the OpenSSH client cannot be used here, or None."""
    return None if SFTP else "no OpenSSH sftp client on PATH (Debian package openssh-client)"


def _argv(
    port: int, user: str, *, key: Path | None, known_hosts: Path | None, rate_kbit: int | None,
    password: bool, host: str, extra_args: Sequence[str] = (),
) -> list[str]:
    argv = [SFTP or "sftp", *extra_args, "-P", str(port), "-o", "ConnectTimeout=10"]
    argv += ["-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o", "NumberOfPasswordPrompts=1"]
    if known_hosts is None:
        argv += ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]
    else:
        argv += ["-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known_hosts}"]
    if password:
        # sftp -b turns BatchMode on (no password prompt) unless an earlier -o says otherwise
        argv += ["-o", "BatchMode=no", "-o", "PreferredAuthentications=password"]
        argv += ["-o", "PubkeyAuthentication=no"]
    else:
        argv += ["-o", "PreferredAuthentications=publickey", "-o", "BatchMode=yes"]
    if key is not None:
        argv += ["-i", str(key)]
    if rate_kbit:
        argv += ["-l", str(rate_kbit)]
    return [*argv, f"{user}@{host}"]


def _env(password: str | None, workdir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("SSH_AUTH_SOCK", None)
    if password is not None:
        script = workdir / "askpass.sh"
        secret = workdir / "askpass.secret"
        secret.write_text(password)
        secret.chmod(0o600)
        script.write_text(f"#!/bin/sh\ncat '{secret}'\n")
        script.chmod(0o700)
        env.update(SSH_ASKPASS=str(script), SSH_ASKPASS_REQUIRE="force", DISPLAY=env.get("DISPLAY", ":0"))
    return env


def start_sftp(
    port: int, user: str, commands: Sequence[str], *, workdir: Path, key: Path | None = None,
    known_hosts: Path | None = None, rate_kbit: int | None = None, password: str | None = None,
    cwd: Path | None = None, host: str = "127.0.0.1", extra_args: Sequence[str] = (),
) -> subprocess.Popen[bytes]:
    """Start ``sftp -b <batch file>`` running ``commands`` (own process group, for killing)."""
    argv = _argv(port, user, key=key, known_hosts=known_hosts, rate_kbit=rate_kbit,
                 password=password is not None, host=host, extra_args=extra_args)
    workdir.mkdir(parents=True, exist_ok=True)
    batch = workdir / f"batch-{os.getpid()}-{id(commands)}.txt"
    batch.write_text("\n".join(commands) + "\n")
    return subprocess.Popen(
        [*argv[:-1], "-b", str(batch), argv[-1]], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, env=_env(password, workdir), cwd=cwd, start_new_session=True,
    )


def sftp_batch(
    port: int, user: str, commands: Sequence[str], *, timeout: float = 120.0, **kwargs: object,
) -> subprocess.CompletedProcess[str]:
    """Run ``commands`` and return the finished process (stdout/stderr as text)."""
    proc = start_sftp(port, user, commands, **kwargs)  # type: ignore[arg-type]
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill(proc)
        out, err = proc.communicate()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out.decode(errors="replace"),
                                       err.decode(errors="replace"))


def kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the client and its ssh child (the whole process group): a dropped connection."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
