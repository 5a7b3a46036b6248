"""Engine construction shared by the ledger and the embedded platform store.

Called only from ``bootstrap.py`` (and tests): nothing is built at import time.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event


def make_engine(url: str) -> Engine:
    """Build an engine for ``url``; SQLite gets WAL, foreign keys and a busy timeout.

    SQLite: ``synchronous=NORMAL`` under WAL keeps commits durable across a process crash
    (kill -9); only a power loss may drop the last transactions, never corrupt the file.
    """
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_pre_ping=True)
