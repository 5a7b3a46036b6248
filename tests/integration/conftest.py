"""Fixtures for integration tests that need real external parts (a real OpenSSH sshd)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sshd import Sshd, skip_reason, start_sshd


@pytest.fixture
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    """A real sshd (SFTP only) on 127.0.0.1:<free port> with its own keys; skipped with the reason."""
    reason = skip_reason()
    if reason is not None:
        pytest.skip(reason=reason)
    server = start_sshd(Path(tmp_path_factory.mktemp("sshd")))
    try:
        yield server
    finally:
        server.stop()
