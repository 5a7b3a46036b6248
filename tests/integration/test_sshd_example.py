"""The recommended OpenSSH setup (config/sshd_syncd.conf) is a configuration sshd accepts."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.sshd import SSHD, keygen

EXAMPLE = Path(__file__).parents[2] / "config" / "sshd_syncd.conf"


@pytest.mark.skipif(not SSHD.is_file(), reason=f"no sshd at {SSHD} (Debian package openssh-server)")
def test_sshd_accepts_the_documented_chroot_setup(tmp_path: Path) -> None:
    """sshd -t (its own config check) passes on a config that ends with the example snippet."""
    host_key = keygen(tmp_path / "host_key")
    config = tmp_path / "sshd_config"
    config.write_text(
        f"Port 2222\nListenAddress 127.0.0.1\nHostKey {host_key}\nPidFile {tmp_path / 'pid'}\n"
        "UsePAM no\nSubsystem sftp internal-sftp\n\n" + EXAMPLE.read_text()
    )
    done = subprocess.run([str(SSHD), "-t", "-f", str(config)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == ""
    assert "Match Group syncd-sftp" in EXAMPLE.read_text()
