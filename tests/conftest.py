"""Shared fixtures: database URLs for SQLite and PostgreSQL (skipped only when absent)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text

from syncd.sqlutil import make_engine

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _pg_admin() -> Engine:
    engine = create_engine(PG_URL, connect_args={"connect_timeout": 2})
    try:
        with engine.connect() as conn:
            conn.execute(text("select 1"))
    except Exception as exc:
        engine.dispose()
        pytest.skip(reason=f"no PostgreSQL at 127.0.0.1:5432: {type(exc).__name__}: {exc}")
    return engine


@pytest.fixture
def pg_engine() -> Iterator[Engine]:
    """An engine on a fresh PostgreSQL schema, dropped afterwards."""
    admin = _pg_admin()
    schema = f"syncd_test_{uuid.uuid4().hex[:10]}"
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = create_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"})
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """The same test on a SQLite file and on PostgreSQL."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('db') / 'syncd.db'}")
        yield engine
        engine.dispose()
    else:
        yield request.getfixturevalue("pg_engine")
