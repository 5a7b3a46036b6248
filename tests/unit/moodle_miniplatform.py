"""A platform for running the real processors over MoodleEnrolments/MoodleGroups without HTTP.

Enrolments, course roles and groups go to a :class:`~tests.unit.moodle_mini.MiniMoodle`
through the real repositories; users, courses, categories, cohorts and the checkpoints
stay in a :class:`~tests.fakes.FakePlatform` (the other repositories are not under test
here); roles are Moodle's stock ids. Transactions behave like ``MoodlePlatform``'s: one
``Ws`` each, the site cache dropped after a failed transaction and after a dry run.
``run(platform, processor, csv_text)`` applies a file to any platform the way the runner does
(``BatchApplier``: batches, a failed batch split down to the refused row).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from syncd.csvfile import CsvFile, CsvOptions, validate_header
from syncd.domain import RowResult
from syncd.pipeline.apply import BatchApplier, Job
from syncd.platform.base import Platform, UserRecord
from syncd.platform.moodle._ws import SiteCache, Ws, ws_transaction
from syncd.platform.moodle.enrolments import MoodleEnrolments
from syncd.platform.moodle.groups import MoodleGroups
from syncd.processors.base import RunContext
from syncd.processors.registry import REGISTRY
from syncd.settings import MOODLE_ROLES
from tests.fakes import FakePlatform, FakeTx
from tests.unit.moodle_mini import MiniMoodle

CTX = RunContext(timezone=UTC, now=lambda: datetime(2026, 9, 1, tzinfo=UTC))


class _Roles:
    def all(self) -> dict[str, int]:
        return dict(MOODLE_ROLES)


class MiniTx:
    """PlatformTx: Moodle repositories for enrolments and groups, the fake's for the rest."""

    def __init__(self, local: FakeTx, ws: Ws) -> None:
        self._local = local
        self.ws = ws
        self.users = local.users
        self.categories = local.categories
        self.courses = local.courses
        self.cohorts = local.cohorts
        self.files = local.files
        self.content = local.content
        self.pictures = local.pictures
        self.roles = _Roles()
        self.enrolments = MoodleEnrolments(ws)
        self.groups = MoodleGroups(ws)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._local, name)  # checkpoints


class MiniPlatform:
    """Platform over a FakePlatform and a MiniMoodle (see the module docstring)."""

    def __init__(self, mini: MiniMoodle, *, batch_size: int = 100) -> None:
        self.mini = mini
        self.local = FakePlatform()
        self.cache = SiteCache()
        self.batch_size = batch_size

    @contextmanager
    def transaction(self, *, rollback: bool = False) -> Iterator[MiniTx]:
        """A Ws per transaction; the cache dropped after an error or a dry run."""
        with (self.local.transaction(rollback=rollback) as local,
              ws_transaction(self.mini.client, self.batch_size, self.cache,  # type: ignore[arg-type]
                             dry_run=rollback) as ws):
            yield MiniTx(local, ws)

    def close(self) -> None:
        """Nothing to release."""

    def user(self, username: str, idnumber: str) -> int:
        """A user known to both sides; its id."""
        (user,) = self.local.seed(UserRecord(username=username, idnumber=idnumber))
        assert user.id is not None
        self.mini.users.add(user.id)
        return user.id

    def course(self, shortname: str, methods: tuple[str, ...] = ("manual",)) -> int:
        """A course known to both sides (enabled enrolment plugins ``methods``); its id."""
        course = self.local.seed_course(shortname, idnumber=shortname)
        assert course.id is not None
        self.mini.courses[course.id] = list(methods)
        return course.id


_FILE_IDS = itertools.count(1)  # each file applied gets its own checkpoint


def run(platform: Platform, processor: str, csv_text: str, tmp: Path, *, rows_per_batch: int = 500,
        dry_run: bool = False, **options: Any) -> list[RowResult]:
    """Apply ``csv_text`` with the registry's ``processor`` as the runner does; the rows' results."""
    spec = REGISTRY[processor]
    built = spec.factory(options, CTX)
    file_id = next(_FILE_IDS)
    path = tmp / f"{processor}-{file_id}.csv"
    path.write_text(csv_text, encoding="utf-8")
    source = CsvFile(path, CsvOptions())
    source.check()
    header = source.resolve_header(built.schema)
    validate_header(header, built.schema, path.name)
    job = Job(file_id, source, header, built, rows_per_batch)
    applier = BatchApplier(platform)
    if dry_run:
        with platform.transaction(rollback=True) as tx:
            applier.apply_in(job, tx)
            return [saved.result for saved in tx.saved_results(file_id)]
    applier.apply_all(job)
    with platform.transaction() as tx:
        return [saved.result for saved in tx.saved_results(file_id)]


def outcomes(results: list[RowResult]) -> list[str]:
    """``outcome: reason`` per row, for readable assertions."""
    return [f"{r.outcome.value}: {r.reason}" for r in results]


def by_outcome(results: list[RowResult]) -> Mapping[str, int]:
    """How many rows had each outcome."""
    counts: dict[str, int] = {}
    for result in results:
        counts[result.outcome.value] = counts.get(result.outcome.value, 0) + 1
    return counts
