"""SFTP end to end: a real ``syncd run`` with its embedded server, and OpenSSH's sftp client.

The ERP's view: upload command files (one slowed down with ``-l`` so it takes seconds,
one killed halfway), then fetch the reports from ``_results/``. syncd must process
each complete file exactly once and never the partial one, and keep running.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from subprocess import CompletedProcess
from typing import TYPE_CHECKING

import paramiko
import pytest

from tests.e2e.writers import users_csv
from tests.sftp_client import kill, sftp_batch, start_sftp
from tests.sftp_client import skip_reason as client_missing
from tests.sshd import free_port, keygen, start_sshd
from tests.sshd import skip_reason as sshd_missing

if TYPE_CHECKING:
    from tests.e2e.conftest import Daemon, Layout, StartDaemon

pytestmark = pytest.mark.skipif(client_missing() is not None, reason=str(client_missing()))


def start_with_sftp(start_daemon: StartDaemon, tmp_path: Path) -> tuple[Daemon, int, Path, Path]:
    """A daemon whose embedded server has account 'erp' (key, results view); (daemon, port, key, workdir)."""
    workdir = tmp_path / "erp-client"
    workdir.mkdir()
    key = keygen(workdir / "erp_key")
    port = free_port()
    daemon = start_daemon(start=False)
    account = {
        "name": "erp", "folder": "erp", "keys": [key.with_suffix(".pub").read_text().strip()],
        "permissions": ["upload", "list", "results"],
    }
    with daemon.config.open("a", encoding="utf-8") as cfg:
        cfg.write(f'[sftp.server]\nenabled = true\naddress = "127.0.0.1"\nport = {port}\n\n')
        cfg.write("[[sftp.account]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in account.items()))
    daemon.start()
    started = daemon.wait_event("sftp_server_started", port=port)
    host_key = paramiko.PKey.from_path(daemon.layout.root / "state" / "sftp_host_ed25519_key")
    assert started["host_key"] == host_key.fingerprint
    line = f"[127.0.0.1]:{port} {host_key.get_name()} {host_key.get_base64()}\n"
    (workdir / "known_hosts").write_text(line)
    return daemon, port, key, workdir


def erp(port: int, workdir: Path, key: Path, commands: list[str], **kwargs: object) -> CompletedProcess[str]:
    """Run ``commands`` as the ERP: its key, the daemon's host key checked strictly."""
    return sftp_batch(port, "erp", commands, workdir=workdir, cwd=workdir, key=key,
                      known_hosts=workdir / "known_hosts", **kwargs)


def test_uploads_are_processed_once_and_the_partial_one_never(
    start_daemon: StartDaemon, layout: Layout, tmp_path: Path
) -> None:
    """A normal upload, a slow one (-l) and one killed halfway: two files processed once, one never."""
    daemon, port, key, workdir = start_with_sftp(start_daemon, tmp_path)
    small, slow, killed = users_csv(50, "small"), users_csv(6000, "slow"), users_csv(9000, "gone")
    for name, data in (("users_small.csv", small), ("users_slow.csv", slow), ("users_gone.csv", killed)):
        (workdir / name).write_bytes(data)

    done = erp(port, workdir, key, ["put users_small.csv"])
    assert done.returncode == 0, done.stderr
    assert daemon.wait_file("erp/users_small.csv")["state"] == "done"

    partial = start_sftp(port, "erp", ["put users_gone.csv"], workdir=workdir, cwd=workdir,
                         key=key, known_hosts=workdir / "known_hosts", rate_kbit=400)
    temp = layout.sync / "erp" / ".users_gone.csv.filepart"
    daemon.wait_for(lambda: temp.exists() and temp.stat().st_size > 20_000, what="half an upload")
    kill(partial)
    daemon.wait_event("sftp_file_received", outcome="aborted", path="/users_gone.csv")

    started = time.monotonic()
    done = erp(port, workdir, key, ["put users_slow.csv"], rate_kbit=800)
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started > 2.0, "the rate limit did not slow the upload down"
    assert daemon.wait_file("erp/users_slow.csv")["state"] == "done"

    layout.done_report("users_small.csv", small)
    layout.done_report("users_slow.csv", slow)
    assert layout.entries("erp/users_gone.csv") == []
    assert layout.places("users_gone.csv") == []
    assert not any(u["username"].startswith("gone") for u in layout.users())
    assert layout.user_count() == 6050
    assert daemon.alive() and daemon.errors() == []


def test_the_erp_fetches_its_report_and_tryback_over_sftp(
    start_daemon: StartDaemon, layout: Layout, tmp_path: Path
) -> None:
    """After processing, _results/ lists the file's report and tryback file and serves them."""
    daemon, port, key, workdir = start_with_sftp(start_daemon, tmp_path)
    data = users_csv(3, "ok") + b"bad user,,,not-an-email,x\n"
    (workdir / "users.csv").write_bytes(data)
    assert erp(port, workdir, key, ["put users.csv"]).returncode == 0
    entry = daemon.wait_file("erp/users.csv")
    report, tryback = Path(entry["report_path"]), Path(entry["tryback_path"])
    listing = erp(port, workdir, key, ["ls -1 _results"])
    assert listing.returncode == 0, listing.stderr
    shown = {Path(n).name for n in listing.stdout.split()}
    assert {report.name, report.with_suffix(".json").name, tryback.name} <= shown
    got = erp(port, workdir, key, [f"get _results/{tryback.name} tryback.csv"])
    assert got.returncode == 0, got.stderr
    assert (workdir / "tryback.csv").read_bytes() == tryback.read_bytes()
    assert b"bad user" in tryback.read_bytes()
    assert os.stat(tryback).st_mode & 0o077 == 0


@pytest.mark.slow
def test_the_daemon_pulls_a_remote_outbox_at_its_cron_time(
    start_daemon: StartDaemon, layout: Layout, tmp_path: Path
) -> None:
    """At the next minute the pull job fetches the file from a real sshd, deletes it there, and
    the file is processed from sync/<target> like any upload."""
    reason = sshd_missing()
    if reason is not None:
        pytest.skip(reason=reason)
    sshd = start_sshd(tmp_path / "sshd")
    try:
        data = users_csv(20, "pulled")
        remote = sshd.served / "users_pulled.csv"
        remote.write_bytes(data)
        os.utime(remote, (1_700_000_000, 1_700_000_000))
        daemon = start_daemon(start=False)
        pull = {
            "name": "sis", "host": "127.0.0.1", "port": sshd.port, "user": sshd.user,
            "key_file": str(sshd.client_key), "known_hosts": str(sshd.known_hosts),
            "cron": "* * * * *", "target": "sis", "glob": "*.csv",
        }
        with daemon.config.open("a", encoding="utf-8") as cfg:
            cfg.write("[[sftp.pull]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in pull.items()))
        daemon.start()
        pulled = daemon.wait_event("sftp_file_pulled", timeout=90)
        assert pulled["bytes"] == len(data)
        entry = daemon.wait_file("sis/users_pulled.csv")
        assert entry["state"] == "done"
        layout.done_report("users_pulled.csv", data)
        assert not remote.exists()
        assert daemon.events("job_ran", job="sftp-pull-sis")
        assert daemon.errors() == []
    finally:
        sshd.stop()
