"""The course_delete processor: delete courses named one per line (SPEC §4 "course_delete").

The file holds one course identifier per line (the ``identity`` option: shortname,
idnumber or id), with or without a header line: a first line that is not a known column
name is data. A course that does not exist (any more) is skipped, so that dropping the
same file twice is harmless. Deleting a course takes everything that belongs to it
(sections, enrolment methods and enrolments, role assignments, groups, groupings): the
repository does the cascade. One ``find`` per batch, one ``delete`` at its end.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from syncd.csvfile import Schema
from syncd.domain import Outcome, RowError, RowResult
from syncd.platform.base import PlatformTx
from syncd.processors._courserows import IDENTITIES, course_keys
from syncd.processors._lookup import courses_by, option
from syncd.processors.base import ProcessorSpec, Row, RunContext


class CourseDeleteProcessor:
    """Deletes the courses a file names (implements Processor)."""

    def __init__(self, *, identity: str) -> None:
        self.identity = identity

    @property
    def schema(self) -> Schema:
        """The identity column; the header line is optional."""
        return Schema(frozenset({self.identity}), headerless=(self.identity,))

    def describe(self) -> str:
        """The effective options, for the report."""
        return f"identity={self.identity}"

    def apply(self, rows: Sequence[Row], tx: PlatformTx) -> list[RowResult]:
        """Delete every named course that exists, in one call at the end of the batch."""
        keys = course_keys(rows, self.identity)
        found = courses_by(tx, self.identity, [k for k in keys if isinstance(k, str)])
        gone: list[int] = []
        results = []
        for key in keys:
            if isinstance(key, RowError):
                results.append(RowResult(Outcome.ERROR, str(key)))
                continue
            course = found.pop(key, None)
            if course is None or course.id is None:
                results.append(RowResult(Outcome.SKIPPED, f"no such course {key!r} ({self.identity})"))
                continue
            gone.append(course.id)
            results.append(RowResult(Outcome.DELETED, f"course {course.shortname!r} (id {course.id})"))
        if gone:
            tx.courses.delete(gone)
        return results


def build(options: Mapping[str, Any], ctx: RunContext) -> CourseDeleteProcessor:
    """Build the processor from route options; raise ConfigError naming a bad one."""
    return CourseDeleteProcessor(identity=option(options, "identity", IDENTITIES, "course_delete"))


SPEC = ProcessorSpec(
    name="course_delete",
    priority=95,
    factory=build,
    options=frozenset({"identity"}),
)
