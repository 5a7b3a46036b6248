"""Writes of items in chunks, as the enrolment and group repositories send them.

:func:`send` puts ``items`` into calls of ``ws.batch_size`` (``{array}[i][...]``), one
after the other, through :meth:`~syncd.platform.moodle._ws.Ws.write` (dry run: nothing
sent; an error Moodle reports after committing is checked with ``applied(chunk)``). Every
function it is used for is one transaction per call in Moodle (recordings README §4): a
refusal is about the whole chunk. Moodle's messages rarely say which item was wrong, so a
one-item refusal (what the runner's splitting ends with) gets the item described; a
repository may word a refusal better with ``refusal(exc, chunk)``. ``undo = (function,
array, payload)`` names the call that exactly reverses a written chunk: it is remembered
for :meth:`~syncd.platform.moodle._ws.Ws.undo` (a failed transaction).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from syncd.domain import PlatformRefused
from syncd.platform.moodle._ws import Ws, chunked

T = TypeVar("T")


def send(ws: Ws, function: str, array: str, items: Sequence[T], payload: Callable[[T], dict[str, Any]],
         describe: Callable[[T], str], *, done: Callable[[Sequence[T]], None] | None = None,
         applied: Callable[[Sequence[T]], bool] | None = None,
         refusal: Callable[[PlatformRefused, Sequence[T]], PlatformRefused | None] | None = None,
         undo: tuple[str, str, Callable[[T], dict[str, Any]]] | None = None) -> None:
    """Write ``items`` chunk by chunk; ``done(chunk)`` after each chunk is written."""
    for chunk in chunked(items, ws.batch_size):
        try:
            ws.write(function, {array: [payload(item) for item in chunk]},
                     applied=None if applied is None else _bound(applied, chunk))
        except PlatformRefused as exc:
            better = refusal(exc, chunk) if refusal is not None else None
            if better is None and len(chunk) == 1:
                better = PlatformRefused(f"{exc}: {describe(chunk[0])}")
            raise (better or exc) from exc.__cause__
        if undo is not None:
            function_back, array_back, payload_back = undo
            ws.undo_later(function_back, {array_back: [payload_back(item) for item in chunk]})
        if done is not None:
            done(chunk)


def _bound(check: Callable[[Sequence[T]], bool], chunk: Sequence[T]) -> Callable[[], bool]:
    return lambda: check(chunk)
