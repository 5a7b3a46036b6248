"""What the Moodle repositories share: batched calls, error mapping, dry run, the site cache.

Rules every repository follows through :class:`Ws`:

- **Look-ups** go in chunks of ``lookup_size`` values per call (``values[0]``,
  ``values[1]``…: ``batch_size``, at least :data:`LOOKUP_VALUES`), the chunks sent in
  parallel (up to the client's ``max_in_flight``).
- **Writes** go in chunks of ``batch_size`` items, one chunk after the other (row order
  is kept where it matters: a later row may depend on an earlier one).
- **A Moodle error reply** to a write becomes :class:`~syncd.domain.PlatformRefused`
  with Moodle's own message (``moodle: <message> (<function>)``): the runner applies the
  batch again in halves, down to the row that causes it, whose report line carries the
  message. To a read it is a refusal too (the row's line says why the look-up failed).
- **Transport errors** (connection, timeout, 5xx) are retried by the client for
  idempotent calls; a create is never re-sent blindly: :meth:`Ws.create` re-reads with
  the repository's look-up first and sends again only the items that are not there.
  When the client gives up, its error is a :class:`~syncd.domain.RetryLater`: the file
  waits and resumes from its checkpoint; nothing is created twice because processors look
  before they write.
- **Undo**: Moodle has no rollback across calls, so when a transaction fails (a later
  call of the batch was refused), what it did that has an exact inverse is undone
  (:meth:`Ws.undo`, newest first, best effort, logged): users, courses, groups and
  cohorts it created are deleted, users and courses it updated get their fields as read
  back (not a password), new manual enrolments unenrolled, role assignments and group
  memberships it added or removed put back. The runner then applies the batch again in
  halves and those rows do it anew and say so, instead of reading it back as already
  there. Categories and groupings cannot be deleted through the service: they stay, and
  the retry finds and reuses them. Deletes, cohort updates, re-enrolments and cohort
  memberships committed by the failed attempt stay applied (README "Moodle").
- **Dry run** (``transaction(rollback=True)``): reads go to Moodle, writes are not sent;
  created records get negative ids (``-1``, ``-2``…) so the rest of the batch can refer to
  them, and look-ups by a negative id find nothing.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import structlog

from syncd.domain import PlatformRefused
from syncd.platform.moodle.client import MoodleClient
from syncd.platform.moodle.errors import (
    MoodleError,
    MoodleTransportError,
    MoodleWarning,
    MoodleWsError,
    warnings_of,
)

log = structlog.get_logger(__name__)

T = TypeVar("T")
PLATFORM = "moodle"


def not_supported(what: str) -> PlatformRefused:
    """The refusal for a change Moodle's web services cannot make."""
    return PlatformRefused(f"not supported on moodle: {what}")


def refused(exc: MoodleWsError) -> PlatformRefused:
    """A Moodle error reply as a row's refusal, in Moodle's words."""
    return PlatformRefused(f"{PLATFORM}: {exc.message} ({exc.function})")


def warned(function: str, warnings: Sequence[MoodleWarning]) -> PlatformRefused:
    """Per-item warnings of a reply (the other items were applied) as one refusal."""
    texts = "; ".join(w.message or (w.warningcode or "warning") for w in warnings[:5])
    return PlatformRefused(f"{PLATFORM}: {texts} ({function})")


def chunked(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """``items`` in slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


class SiteCache:
    """State kept between transactions (one per platform): a few read-mostly look-ups.

    Entries are named by the repository that owns them; ``forget`` drops one (or all)
    after a write whose effect on it is not known.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, Any] = {}
        self._kept: dict[str, Any] = {}

    def get(self, name: str, load: Callable[[], T]) -> T:
        """The cached value of ``name``, loaded once."""
        with self._lock:
            if name in self._values:
                return self._values[name]  # type: ignore[no-any-return]
        value = load()
        with self._lock:
            return self._values.setdefault(name, value)  # type: ignore[no-any-return]

    def forget(self, name: str | None = None) -> None:
        """Drop ``name`` (every entry when None)."""
        with self._lock:
            if name is None:
                self._values.clear()
            else:
                self._values.pop(name, None)

    def kept(self, name: str, load: Callable[[], T]) -> T:
        """The value of ``name`` in a second store that :meth:`forget` leaves alone, loaded once.

        Only for what this process wrote and Moodle's web services cannot read back (the
        dates of user enrolments): a fact Moodle can show again belongs in :meth:`get`.
        """
        with self._lock:
            return self._kept.setdefault(name, load())  # type: ignore[no-any-return]


#: values per look-up call at least (one form field each: Moodle requires PHP's
#: max_input_vars >= 5000, so this is far from the limit even with batch_size 1000)
LOOKUP_VALUES = 500

#: create function -> (the function deleting what it made, its array parameter)
UNDO = {
    "core_user_create_users": ("core_user_delete_users", "userids"),
    "core_course_create_courses": ("core_course_delete_courses", "courseids"),
    "core_group_create_groups": ("core_group_delete_groups", "groupids"),
    "core_cohort_create_cohorts": ("core_cohort_delete_cohorts", "cohortids"),
}


class Ws:
    """One transaction's access to the site: the client, the batch size, dry run."""

    def __init__(self, client: MoodleClient, batch_size: int, cache: SiteCache, *,
                 dry_run: bool = False) -> None:
        self.client = client
        self.batch_size = batch_size
        self.cache = cache
        self.dry_run = dry_run
        self._fake_ids = itertools.count(-1, -1)
        self._undo: list[tuple[str, dict[str, Any]]] = []  # (function, params) undoing a write

    def undo_later(self, function: str, params: Mapping[str, Any]) -> None:
        """Remember the call that undoes a write just committed (sent by :meth:`undo`)."""
        if not self.dry_run:
            self._undo.append((function, dict(params)))

    @property
    def lookup_size(self) -> int:
        """Values per look-up call: ``batch_size``, at least :data:`LOOKUP_VALUES`."""
        return max(self.batch_size, LOOKUP_VALUES)

    def forget_created(self, function: str, ids: Sequence[int]) -> None:
        """``ids`` made by ``function`` were removed already (nothing to undo for them)."""
        gone = set(ids)
        undo, array = UNDO[function]
        kept = []
        for name, params in self._undo:
            if name == undo:
                params = {array: [i for i in params[array] if i not in gone]}
            kept.append((name, params))
        self._undo = kept

    def undo(self) -> None:
        """Undo this transaction's remembered writes, newest first (it failed); failures are
        logged and the rest still tried."""
        for function, params in reversed(self._undo):
            if not any(params.values()):
                continue
            try:
                self.client.call(function, params)
                log.info("moodle_undo", function=function)
            except MoodleError as exc:
                log.error("moodle_undo_failed", function=function, error=str(exc))
        self._undo.clear()

    # -- reads --------------------------------------------------------------------------

    def read(self, function: str, params: Mapping[str, Any] | None = None) -> Any:
        """One idempotent call; a Moodle error reply is a refusal."""
        try:
            return self.client.call(function, params)
        except MoodleWsError as exc:
            raise refused(exc) from exc

    def read_all(self, function: str, param_list: Sequence[Mapping[str, Any]]) -> list[Any]:
        """Several idempotent calls in parallel, replies in order; the first error raises."""
        replies = self.client.map(function, param_list)
        for reply in replies:
            if isinstance(reply, MoodleWsError):
                raise refused(reply) from reply
            if isinstance(reply, BaseException):
                raise reply
        return replies

    def lookup(self, function: str, values: Sequence[Any],
               params: Callable[[Sequence[Any]], Mapping[str, Any]]) -> list[Any]:
        """Call ``function`` with ``params(chunk)`` for every chunk of ``values`` (in
        parallel); the replies' lists concatenated (a dict reply contributes its one list)."""
        real = [v for v in dict.fromkeys(values) if not (isinstance(v, int) and v < 0)]
        if not real:
            return []
        found: list[Any] = []
        for reply in self.read_all(function, [params(c) for c in chunked(real, self.lookup_size)]):
            found.extend(_listed(reply))
        return found

    # -- writes -------------------------------------------------------------------------

    def fake_id(self) -> int:
        """A negative id for a record a dry run pretends to create."""
        return next(self._fake_ids)

    def write(self, function: str, params: Mapping[str, Any],
              applied: Callable[[], bool] | None = None) -> Any:
        """One write that is safe to send again (update, delete, enrol, assign...).

        Dry run: nothing is sent, None returned. Warnings in the reply are a refusal
        (the items without a warning were applied). An error Moodle may send *after*
        committing (recordings README §5.1: "Message was not sent.") is checked with
        ``applied()``, a re-read: when the change is there, the call succeeded.
        """
        if self.dry_run:
            return None
        try:
            reply = self.client.call(function, params)
        except MoodleWsError as exc:
            if exc.maybe_applied and applied is not None and applied():
                log.warning("moodle_error_after_commit", function=function, error=exc.message,
                            note="the change was applied (re-read)")
                return None
            raise refused(exc) from exc
        if warnings := warnings_of(reply):
            raise warned(function, warnings)
        return reply

    def create(self, function: str, array: str, items: Sequence[Mapping[str, Any]],
               existing: Callable[[Sequence[Mapping[str, Any]]], list[int | None]]) -> list[int]:
        """Create ``items`` (``{array}[i][...]``) chunk by chunk; their new ids, in order.

        A create is never re-sent blindly: when a chunk's reply was lost (the request may
        have reached Moodle), ``existing(chunk)`` re-reads it (one id or None per item) and
        only the missing items are sent again, once. Dry run: negative ids, nothing sent.
        """
        if self.dry_run:
            return [self.fake_id() for _ in items]
        ids: list[int] = []
        for chunk in chunked(items, self.batch_size):
            made = self._create_chunk(function, array, chunk, existing)
            if function in UNDO:
                undo, ids_array = UNDO[function]
                self.undo_later(undo, {ids_array: list(made)})
            ids.extend(made)
        return ids

    def _create_chunk(self, function: str, array: str, chunk: Sequence[Mapping[str, Any]],
                      existing: Callable[[Sequence[Mapping[str, Any]]], list[int | None]]) -> list[int]:
        try:
            reply = self.client.call(function, {array: list(chunk)}, idempotent=False)
            return _ids(reply, function, len(chunk))
        except MoodleWsError as exc:
            raise refused(exc) from exc
        except MoodleTransportError as exc:
            if not exc.maybe_applied:
                raise
            log.warning("moodle_create_unknown_fate", function=function, items=len(chunk),
                        note="re-reading before sending again")
            found = existing(chunk)
        missing = [item for item, known in zip(chunk, found, strict=True) if known is None]
        created = iter(self._create_chunk(function, array, missing, _nothing) if missing else [])
        return [known if known is not None else next(created) for known in found]


@contextmanager
def ws_transaction(client: MoodleClient, batch_size: int, cache: SiteCache, *,
                   dry_run: bool = False) -> Iterator[Ws]:
    """One transaction's :class:`Ws`. When the transaction fails, what it did is undone
    (:meth:`Ws.undo`) and the site cache dropped (what Moodle holds after a failed call is
    read again); a dry run drops the cache too (it may hold what it pretended to write)."""
    ws = Ws(client, batch_size, cache, dry_run=dry_run)
    try:
        yield ws
    except BaseException:
        ws.undo()
        cache.forget()
        raise
    if dry_run:
        cache.forget()


def _nothing(chunk: Sequence[Mapping[str, Any]]) -> list[int | None]:
    """A second unknown fate is not re-read again: the file waits (RetryLater)."""
    raise MoodleTransportError("create", "the reply to a create was lost twice", retryable=False)


def _ids(reply: Any, function: str, count: int) -> list[int]:
    items = _listed(reply)
    ids = [item.get("id") for item in items if isinstance(item, dict)]
    if len(ids) != count or not all(isinstance(i, int) for i in ids):
        raise PlatformRefused(f"{PLATFORM}: {function} answered {len(ids)} ids for {count} items")
    return [int(i) for i in ids]  # type: ignore[arg-type]


def _listed(reply: Any) -> list[Any]:
    """The list a reply holds: itself, or the one list value of a dict (``{"courses": [...]}``)."""
    if isinstance(reply, list):
        return reply
    if isinstance(reply, dict):
        lists = [v for k, v in reply.items() if isinstance(v, list) and k != "warnings"]
        return lists[0] if len(lists) == 1 else []
    return []
