"""In-memory fakes of syncd's ports, for unit tests.

:class:`FakePlatform` keeps users, checkpoints and saved results in dicts. A transaction
works on the live state and restores a snapshot on rollback or on an exception, as a
database would. Records handed out or taken in are copies, so a processor's unsaved
changes never leak into the store. Usernames and idnumbers are unique, checked user by
user like a database's unique constraints.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from syncd.platform.base import Checkpoint, SavedResult, UserRecord


class FakeIntegrityError(Exception):
    """A write broke a uniqueness rule (what a database's IntegrityError would be)."""


def _copy(user: UserRecord) -> UserRecord:
    return copy.deepcopy(user)


@dataclass
class _State:
    users: dict[int, UserRecord] = field(default_factory=dict)
    next_id: int = 1
    checkpoints: dict[int, Checkpoint] = field(default_factory=dict)
    results: dict[int, dict[int, SavedResult]] = field(default_factory=dict)


class FakeUsers:
    """UserRepository over a dict of users by id."""

    def __init__(self, state: _State) -> None:
        self._state = state

    def find(
        self,
        *,
        usernames: Collection[str] = (),
        idnumbers: Collection[str] = (),
        emails: Collection[str] = (),
    ) -> list[UserRecord]:
        """Copies of every user matching any key (emails case-insensitively)."""
        names, ids, mails = set(usernames), set(idnumbers), {e.lower() for e in emails}
        return [
            _copy(u)
            for u in self._state.users.values()
            if u.username in names
            or (u.idnumber is not None and u.idnumber in ids)
            or (u.email is not None and u.email.lower() in mails)
        ]

    def add(self, users: Sequence[UserRecord]) -> None:
        """Store copies of new users and give them ids."""
        for user in users:
            assert user.id is None, "add() takes new users only"
            user.id = self._state.next_id
            self._state.next_id += 1
            self._put(user)

    def update(self, users: Sequence[UserRecord]) -> None:
        """Replace existing users by id, profile included."""
        for user in users:
            assert user.id in self._state.users, f"update() of unknown user id {user.id}"
            self._put(user)

    def _put(self, user: UserRecord) -> None:
        assert user.id is not None
        for other in self._state.users.values():
            if other.id == user.id:
                continue
            if other.username == user.username:
                raise FakeIntegrityError(f"duplicate username {user.username!r}")
            if user.idnumber is not None and other.idnumber == user.idnumber:
                raise FakeIntegrityError(f"duplicate idnumber {user.idnumber!r}")
        self._state.users[user.id] = _copy(user)


class FakeTx:
    """One transaction of :class:`FakePlatform` (implements PlatformTx)."""

    def __init__(self, state: _State) -> None:
        self._state = state
        self._users = FakeUsers(state)

    @property
    def users(self) -> FakeUsers:
        """The users of the platform."""
        return self._users

    def load_checkpoint(self, file_id: int) -> Checkpoint | None:
        """The saved checkpoint of this file, if any."""
        return self._state.checkpoints.get(file_id)

    def save_checkpoint(self, file_id: int, checkpoint: Checkpoint, results: Sequence[SavedResult]) -> None:
        """Record progress and results."""
        self._state.checkpoints[file_id] = checkpoint
        saved = self._state.results.setdefault(file_id, {})
        for result in results:
            assert result.record not in saved, f"result {result.record} saved twice"
            saved[result.record] = result

    def saved_results(self, file_id: int) -> Iterator[SavedResult]:
        """Saved results of this file in record order."""
        saved = self._state.results.get(file_id, {})
        for record in sorted(saved):
            yield saved[record]

    def clear_checkpoint(self, file_id: int) -> None:
        """Forget checkpoint and results of this file."""
        self._state.checkpoints.pop(file_id, None)
        self._state.results.pop(file_id, None)


class FakePlatform:
    """An in-memory platform (implements Platform), with inspection helpers for tests."""

    def __init__(self) -> None:
        self._state = _State()
        self.transactions = 0
        self.rollbacks = 0
        self.closed = False

    @contextmanager
    def transaction(self, *, rollback: bool = False) -> Iterator[FakeTx]:
        """Commit on normal exit; restore the state on an exception or when ``rollback``."""
        snapshot = copy.deepcopy(self._state)
        self.transactions += 1
        try:
            yield FakeTx(self._state)
        except BaseException:
            self._restore(snapshot)
            raise
        if rollback:
            self._restore(snapshot)

    def _restore(self, snapshot: _State) -> None:
        self.rollbacks += 1
        self._state.__dict__.update(snapshot.__dict__)

    def close(self) -> None:
        """Mark the platform closed."""
        self.closed = True

    # -- inspection helpers (not part of the port) --

    def users(self) -> list[UserRecord]:
        """Copies of every stored user, by id."""
        return [_copy(u) for _, u in sorted(self._state.users.items())]

    def user(self, username: str) -> UserRecord | None:
        """A copy of the stored user with this username, or None."""
        for user in self._state.users.values():
            if user.username == username:
                return _copy(user)
        return None

    def seed(self, *users: UserRecord) -> list[UserRecord]:
        """Store users directly (outside any transaction); return them with their ids."""
        FakeUsers(self._state).add(list(users))
        return list(users)
