"""The course_check processor: tell which of the named courses exist; change nothing
(SPEC §4 "course_check").

Each line is ``identifier[,description]`` (the ``identity`` option: shortname, idnumber
or id), the header line optional. Outcomes:

- found → ``unchanged`` ``found: course 'MATH101' (id 12)``: the check passed and,
  true to the word, nothing changed;
- missing → ``error`` ``missing course 'MATH101' (Algebra I)`` (``missing course idnumber
  'C-12'`` with another identity): what the operator runs a
  check for. As an error the line lands in the tryback file, description included, ready
  to be completed into a courses file.

One ``find`` per batch; nothing is written.
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


class CourseCheckProcessor:
    """Reports found / missing courses (implements Processor)."""

    def __init__(self, *, identity: str) -> None:
        self.identity = identity

    @property
    def schema(self) -> Schema:
        """The identity column and an optional description; the header line is optional."""
        return Schema(
            frozenset({self.identity}),
            frozenset({"description"}),
            headerless=(self.identity, "description"),
        )

    def describe(self) -> str:
        """The effective options, for the report."""
        return f"identity={self.identity}"

    def apply(self, rows: Sequence[Row], tx: PlatformTx) -> list[RowResult]:
        """One result per row: unchanged when the course exists, error when it is missing."""
        keys = course_keys(rows, self.identity)
        found = courses_by(tx, self.identity, [k for k in keys if isinstance(k, str)])
        results = []
        for row, key in zip(rows, keys, strict=True):
            if isinstance(key, RowError):
                results.append(RowResult(Outcome.ERROR, str(key)))
                continue
            course = found.get(key)
            if course is not None:
                reason = f"found: course {course.shortname!r} (id {course.id})"
                results.append(RowResult(Outcome.UNCHANGED, reason))
                continue
            description = row.values.get("description", "").strip()
            about = f" ({description})" if description else ""
            by = "" if self.identity == "shortname" else f"{self.identity} "
            results.append(RowResult(Outcome.ERROR, f"missing course {by}{key!r}{about}"))
        return results


def build(options: Mapping[str, Any], ctx: RunContext) -> CourseCheckProcessor:
    """Build the processor from route options; raise ConfigError naming a bad one."""
    return CourseCheckProcessor(identity=option(options, "identity", IDENTITIES, "course_check"))


SPEC = ProcessorSpec(
    name="course_check",
    priority=85,
    factory=build,
    options=frozenset({"identity"}),
)
