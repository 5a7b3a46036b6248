"""A MoodlePlatform over the fake Moodle (tests/moodle_fake), for the connector's tests.

``moodle_platform(tmp_path)`` starts a FakeMoodle on 127.0.0.1, a local SQLite store for
the checkpoints and blobs, and a MoodlePlatform between them::

    with moodle_platform(tmp_path, batch_size=3) as (platform, fake):
        with platform.transaction() as tx:
            tx.users.add([...])
        assert fake.count("core_user_create_users") == 1
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from syncd.platform.moodle.adapter import MoodlePlatform
from syncd.platform.moodle.client import MoodleClient
from syncd.platform.sqlstore import SqlPlatform, create_schema
from syncd.settings import MOODLE_ROLES
from syncd.sqlutil import make_engine
from tests.moodle_fake import FakeMoodle

TOKEN = "0123456789abcdef0123456789abcdef"


def local_store(folder: Path) -> SqlPlatform:
    """The local part of a Moodle platform: SQLite under ``folder`` (checkpoints, blobs)."""
    folder.mkdir(parents=True, exist_ok=True)
    engine = make_engine(f"sqlite:///{folder / 'local.db'}")
    create_schema(engine)
    return SqlPlatform(engine, folder / "files")


@contextmanager
def moodle_platform(tmp_path: Path, *, batch_size: int = 100, max_in_flight: int = 4,
                    retries: int = 2, timeout: float = 5.0,
                    **fake_options: Any) -> Iterator[tuple[MoodlePlatform, FakeMoodle]]:
    """A fake Moodle and a MoodlePlatform talking to it over HTTP."""
    with FakeMoodle(token=TOKEN, **fake_options) as fake:
        client = MoodleClient(fake.url, TOKEN, timeout=timeout, retries=retries, backoff=0.01,
                              max_in_flight=max_in_flight)
        platform = MoodlePlatform(client, local_store(tmp_path / "local"), batch_size=batch_size,
                                  role_map=MOODLE_ROLES)
        try:
            yield platform, fake
        finally:
            platform.close()
