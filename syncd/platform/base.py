"""The platform port: what processors may ask of a learning platform.

Processors see only these Protocols. The embedded SQL store (``platform/sqlstore``) is
the real adapter; ``tests/fakes.py`` has an in-memory one for unit tests.

A :class:`PlatformTx` is one transaction. The runner applies a batch of rows and saves
the file's checkpoint (how many records are done, and each row's result) in the same
transaction, so that after a crash a file resumes exactly where its last commit left it
and no row is applied twice.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol

from syncd.domain import RowResult


@dataclass(slots=True)
class UserRecord:
    """A platform user as the users processor sees it. ``id`` is None until added."""

    username: str
    firstname: str = ""
    lastname: str = ""
    idnumber: str | None = None
    email: str | None = None
    auth: str = "manual"
    password_hash: str | None = None
    #: empty password on a new user: the platform must generate one and force a change
    password_to_generate: bool = False
    must_change_password: bool = False
    institution: str = ""
    department: str = ""
    city: str = ""
    country: str = ""
    lang: str = ""
    timezone: str = ""
    phone1: str = ""
    phone2: str = ""
    address: str = ""
    description: str = ""
    suspended: bool = False
    deleted: bool = False
    profile: dict[str, str] = field(default_factory=dict)
    id: int | None = None


class UserRepository(Protocol):
    """Users of the platform, looked up and written in batches."""

    def find(
        self,
        *,
        usernames: Collection[str] = (),
        idnumbers: Collection[str] = (),
        emails: Collection[str] = (),
    ) -> list[UserRecord]:
        """Every user (deleted ones included) matching any of the given keys.

        ``usernames`` and ``idnumbers`` match exactly; ``emails`` match case-insensitively.
        """
        ...

    def add(self, users: Sequence[UserRecord]) -> None:
        """Insert new users (``id`` None) and set their ``id``."""
        ...

    def update(self, users: Sequence[UserRecord]) -> None:
        """Write every field of these existing users (by ``id``), profile included."""
        ...


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """How far a file got: ``records_done`` data records have been applied and committed."""

    records_done: int


@dataclass(frozen=True, slots=True)
class SavedResult:
    """One row's result as kept with the checkpoint, for the report and the tryback."""

    record: int  # 0-based index of the data record in the file
    line: int  # 1-based physical line where the record starts
    result: RowResult


class PlatformTx(Protocol):
    """One platform transaction: repositories plus the file checkpoint."""

    @property
    def users(self) -> UserRepository:
        """The users of the platform."""
        ...

    def load_checkpoint(self, file_id: int) -> Checkpoint | None:
        """The checkpoint saved for this ledger file, or None when it has not started."""
        ...

    def save_checkpoint(self, file_id: int, checkpoint: Checkpoint, results: Sequence[SavedResult]) -> None:
        """Record progress and the results of the rows just applied, in this transaction."""
        ...

    def saved_results(self, file_id: int) -> Iterator[SavedResult]:
        """Every saved result of this file, in record order (streamed)."""
        ...

    def clear_checkpoint(self, file_id: int) -> None:
        """Forget the checkpoint and results once the report is durable."""
        ...


class Platform(Protocol):
    """A learning platform syncd applies rows to."""

    def transaction(self, *, rollback: bool = False) -> AbstractContextManager[PlatformTx]:
        """Open a transaction: commit on normal exit, roll back on error or when ``rollback``."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
