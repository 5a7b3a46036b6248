"""A scripted stand-in for MoodleClient and the recordings, for contract tests of the Moodle repositories.

``Scripted(answer)`` records every call (function, params) and answers with
``answer(function, params)``: a reply, or an error body (a dict with ``exception``) that is
raised the way the real client raises it. Params are recorded and answered as Moodle
receives them: encoded to the form and decoded back (None and empty lists left out,
numbers as ints). ``recorded(function, title)`` is the exchange of
``../shared/moodle-ws/<function>.json`` whose title starts with ``title``;
``form(params)`` / ``recorded_form(exchange)`` are the flat form fields of what a
repository sends and of what the recording sent, to compare them field for field.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest

from syncd.platform.moodle._ws import SiteCache, Ws
from syncd.platform.moodle.encoding import encode_params
from syncd.platform.moodle.errors import MoodleError, error_from_body
from tests.unit.test_moodle_client_encoding import decode_form

RECORDINGS = Path(__file__).resolve().parents[3] / "shared" / "moodle-ws"
HEAD = ("wsfunction", "moodlewsrestformat")

Answer = Callable[[str, Mapping[str, Any]], Any]


class Scripted:
    """Duck-typed MoodleClient: calls are recorded and answered by a function."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def call(self, function: str, params: Mapping[str, Any] | None = None, *, idempotent: bool = True) -> Any:
        """Record the call as Moodle receives it (the form decoded), then answer; an error body raises."""
        received = decode_form(encode_params(params or {}))
        self.calls.append((function, received))
        reply = self.answer(function, received)
        if isinstance(reply, dict) and "exception" in reply:
            raise error_from_body(function, reply)
        return reply

    def map(self, function: str, param_list: Iterable[Mapping[str, Any] | None], *,
            idempotent: bool = True) -> list[Any]:
        """One answer (or error) per params, in order."""
        out: list[Any] = []
        for params in param_list:
            try:
                out.append(self.call(function, params))
            except MoodleError as exc:
                out.append(exc)
        return out

    def sent(self, function: str) -> list[dict[str, Any]]:
        """The params of every call of ``function``, in order."""
        return [params for name, params in self.calls if name == function]


def ws_over(client: Scripted, *, batch_size: int = 100, dry_run: bool = False,
            cache: SiteCache | None = None) -> Ws:
    """A Ws talking to the scripted client."""
    return Ws(client, batch_size, cache or SiteCache(), dry_run=dry_run)  # type: ignore[arg-type]


def recorded(function: str, title: str) -> dict[str, Any]:
    """The recorded exchange of ``function`` whose title starts with ``title`` (skips without recordings)."""
    path = RECORDINGS / f"{function}.json"
    if not path.is_file():
        pytest.skip(reason=f"no Moodle recording at {path}")
    for exchange in json.loads(path.read_text(encoding="utf-8")):
        if exchange["title"].startswith(title):
            return dict(exchange)
    raise AssertionError(f"no exchange {title!r} in {path.name}")


def form(params: Mapping[str, Any]) -> dict[str, str]:
    """The form fields ``params`` are sent as."""
    return dict(encode_params(params))


def recorded_form(exchange: Mapping[str, Any]) -> dict[str, str]:
    """The parameter fields of a recorded request (without wsfunction/moodlewsrestformat)."""
    return {k: v for k, v in exchange["request"].items() if k not in HEAD}
