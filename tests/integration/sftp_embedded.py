"""An embedded SFTP server for tests: started in-process on 127.0.0.1, with client keys.

:func:`embedded_server` builds accounts from plain dicts, makes a host key and a
``known_hosts`` for it, and returns an :class:`Embedded` whose ``client`` runs OpenSSH's
``sftp`` against it (tests/sftp_client.py).
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from syncd.sftp.accounts import build_accounts
from syncd.sftp.server import SftpServer, load_host_key
from syncd.sftp.session import ResultsLookup
from syncd.sftp.settings import SftpAccountSettings, SftpServerSettings
from tests.sftp_client import sftp_batch, start_sftp
from tests.sshd import keygen


@dataclass
class Embedded:
    """A running embedded server, its sync folder and a key per account."""

    server: SftpServer
    sync: Path
    known_hosts: Path
    keys: dict[str, Path]
    workdir: Path
    results: dict[str, dict[str, Path]] = field(default_factory=dict)

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return self.server.port

    def jail(self, account: str) -> Path:
        """The folder an account is jailed in."""
        return self.sync / account

    def run(self, account: str, commands: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        """Run ``commands`` with OpenSSH's sftp as ``account`` (its own key unless given)."""
        kwargs.setdefault("key", self.keys.get(account))
        kwargs.setdefault("known_hosts", self.known_hosts)
        return sftp_batch(self.port, account, commands, workdir=self.workdir, cwd=self.workdir, **kwargs)

    def start(self, account: str, commands: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        """Start ``commands`` (to be watched or killed) as ``account``."""
        kwargs.setdefault("key", self.keys.get(account))
        kwargs.setdefault("known_hosts", self.known_hosts)
        return start_sftp(self.port, account, commands, workdir=self.workdir, cwd=self.workdir, **kwargs)


def embedded_server(
    root: Path, accounts: Mapping[str, Mapping[str, Any]], **server: Any,
) -> Embedded:
    """Start a server under ``root`` with ``accounts`` ({name: extra account settings})."""
    sync, keys_dir, workdir = root / "sync", root / "keys", root / "client"
    for folder in (sync, keys_dir, workdir):
        folder.mkdir(parents=True, exist_ok=True)
    keys: dict[str, Path] = {}
    specs = []
    for name, extra in accounts.items():
        values = {"folder": name, **extra}
        if "keys" not in values:
            keys[name] = keygen(keys_dir / f"{name}_key")
            values["keys"] = (keys[name].with_suffix(".pub").read_text().strip(),)
        specs.append(SftpAccountSettings(name=name, **values))
    results: dict[str, dict[str, Path]] = {}
    lookup: ResultsLookup = lambda folder: dict(results.get(folder, {}))  # noqa: E731
    host_key = load_host_key(root / "state" / "host_key")
    settings = SftpServerSettings(enabled=True, address="127.0.0.1", port=0, **server)
    srv = SftpServer(settings, build_accounts(specs, sync), host_key, lookup, failure_delay=0.0)
    srv.start()
    known_hosts = workdir / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{srv.port} {host_key.get_name()} {host_key.get_base64()}\n")
    return Embedded(srv, sync, known_hosts, keys, workdir, results)
