"""Logging: one JSON object per line, stdlib loggers in the same chain, no locals, no secrets."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator

import pytest
import structlog
from structlog.contextvars import bind_contextvars, bound_contextvars, clear_contextvars

from syncd.log import configure_logging


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    out = io.StringIO()
    configure_logging("debug", "json", stream=out)
    yield out
    clear_contextvars()
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()


def lines(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_json_lines_with_context(stream: io.StringIO) -> None:
    """A structlog event becomes one JSON line with event, level, UTC ts and bound context."""
    with bound_contextvars(file_id=7, processor="users", run_id="r1"):
        structlog.get_logger("t").info("file_processed", created=3)
    (line,) = lines(stream)
    assert line["event"] == "file_processed" and line["level"] == "info"
    assert str(line["ts"]).endswith("Z") and line["created"] == 3
    assert (line["file_id"], line["processor"], line["run_id"]) == (7, "users", "r1")


def test_stdlib_loggers_share_the_pipeline(stream: io.StringIO) -> None:
    """A stdlib logger (as watchdog or sqlalchemy use) comes out as the same JSON shape."""
    logging.getLogger("watchdog.observers").warning("queue overflow")
    (line,) = lines(stream)
    assert line["event"] == "queue overflow" and line["level"] == "warning"
    assert line["logger"] == "watchdog.observers" and "ts" in line


def test_traceback_has_no_local_variables(stream: io.StringIO) -> None:
    """An exception is rendered as structured frames without the values of local variables."""
    secret_value = "hunter2-password"
    try:
        raise ValueError("bad row")
    except ValueError:
        structlog.get_logger("t").exception("row_crashed")
    text = stream.getvalue()
    assert "bad row" in text and "ValueError" in text
    assert secret_value not in text


def test_secret_keys_are_masked(stream: io.StringIO) -> None:
    """Values under keys named like secrets never reach the log."""
    structlog.get_logger("t").info("auth_tried", password="s3cret", token="abc", user="jdoe")
    (line,) = lines(stream)
    assert line["password"] == "***" and line["token"] == "***" and line["user"] == "jdoe"


def test_context_is_bound_per_thread(stream: io.StringIO) -> None:
    """Context bound inside a thread appears in that thread's lines and does not leak out."""
    bind_contextvars(component="main")

    def work() -> None:
        bind_contextvars(component="worker", file_id=9)
        structlog.get_logger("t").info("file_started")

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    structlog.get_logger("t").info("daemon_started")
    worker, main = lines(stream)
    assert worker["component"] == "worker" and worker["file_id"] == 9
    assert main["component"] == "main" and "file_id" not in main
