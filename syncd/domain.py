"""The vocabulary shared by every layer: file states, row results and error types.

Nothing here does I/O. Only the ledger writes a file's state, and only along the edges
of :data:`TRANSITIONS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class FileState(StrEnum):
    """Where an arrival stands. The ledger is the only writer."""

    PENDING = "pending"  # intake decided to take it; still in sync/, move to store/ under way
    RECEIVED = "received"  # in store/, routed to a processor, waiting for the worker
    STORED = "stored"  # in store/, no route: waits for a scheduled job or `syncd process`
    PROCESSING = "processing"  # rows being applied; resumes from its checkpoint after a crash
    DONE = "done"  # archived, report written (tryback too when some row failed)
    FAILED = "failed"  # could not be processed at all: in failed/ with its report
    VANISHED = "vanished"  # disappeared from sync/ before the move (deleted by the uploader)


#: The legal transitions. Anything else is a bug and the ledger refuses it.
TRANSITIONS: dict[FileState, frozenset[FileState]] = {
    FileState.PENDING: frozenset({FileState.RECEIVED, FileState.STORED, FileState.VANISHED}),
    FileState.RECEIVED: frozenset({FileState.PROCESSING, FileState.FAILED}),
    # stored -> received: a scheduled job (or `syncd process`) queued the file
    FileState.STORED: frozenset({FileState.RECEIVED, FileState.PROCESSING, FileState.FAILED}),
    FileState.PROCESSING: frozenset({FileState.DONE, FileState.FAILED}),
    FileState.DONE: frozenset(),
    FileState.FAILED: frozenset(),
    FileState.VANISHED: frozenset(),
}

#: States in which the ledger entry still has work to do.
OPEN_STATES = frozenset({FileState.PENDING, FileState.RECEIVED, FileState.PROCESSING})


def can_transition(old: FileState, new: FileState) -> bool:
    """Tell whether ``old -> new`` is an edge of :data:`TRANSITIONS`."""
    return new in TRANSITIONS[old]


class Outcome(StrEnum):
    """The result of applying one row."""

    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"
    UNCHANGED = "unchanged"
    SKIPPED = "skipped"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class RowResult:
    """What happened to one row: an outcome and a human reason (never a secret)."""

    outcome: Outcome
    reason: str = ""


class SyncdError(Exception):
    """Base of syncd's own errors."""


class ConfigError(SyncdError):
    """The configuration is invalid; the message is one line naming the key."""


class RejectFile(SyncdError):
    """This file cannot be processed at all: it goes to failed/ with its report."""


class RetryLater(SyncdError):
    """A transient condition (database busy, file still moving): try the file again later."""


class PlatformRefused(SyncdError):
    """The platform refused a change in its own words, or cannot make it at all.

    Raised by a platform adapter (never by the embedded store), e.g. Moodle rejecting a
    user it is asked to create, or a change Moodle's web services cannot make ("not
    supported on moodle"). The runner applies the batch again in halves down to the one
    row that causes it; that row's result is this message, the others are applied.
    """


class RowError(SyncdError):
    """One row cannot be applied. The message names the column and the value."""
