"""The courses processor: create and update courses, their category, sections, teachers
and self/guest enrolment methods (SPEC §4 "courses").

A batch is applied against an in-memory working set (``_coursework``): one ``find`` for
every course key of the batch (identity keys, shortnames, idnumbers, templates), one
``categories.all()``, one user look-up for the teacher accounts, and — only when rows need
them — one read each of sections, enrolment methods, enrolments and role assignments.
Rows are applied in order (a later row sees the courses, categories and sections earlier
rows made), then each kind is written with one call.

Rules beyond the column list:

- An existing course is skipped unless the ``update`` option is on; an update changes only
  the columns the row gives (an empty value is "not given") and, with ``protect_category``,
  never the category. ``template`` only applies to a NEW course (its sections are copied
  first, then the row's ``topicN`` columns); on update it is ignored.
- A category path ``A/B/C`` is matched level by level by name under its parent; missing
  levels are created. A number must be an existing category id. A new course without a
  category goes to the ``default_category`` path (default ``Miscellaneous``, created if missing).
- Every new course gets a manual enrolment method; ``self``/``guest`` = yes enables (adding
  if missing) that method, = no disables it. ``teacher<N>_account`` enrols the user through
  the manual method and gives ``teacher<N>_role`` (default editingteacher).
- A shortname or idnumber another course holds is a row error, on create and on rename.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from syncd.csvfile import Schema
from syncd.domain import ConfigError, Outcome, RowError, RowResult
from syncd.platform.base import PlatformTx, UserRecord
from syncd.platform.model import CourseRecord
from syncd.processors._courserows import (
    IDENTITIES,
    OPTIONAL,
    TEACHER_PATTERN,
    TOPIC_PATTERN,
    CourseChange,
    Teacher,
    parse_row,
)
from syncd.processors._coursework import CategoryTree, CourseSet, EnrolSet, SectionSet, TempIds
from syncd.processors._lookup import flag, option, role_id, unknown, users_by
from syncd.processors._templates import Templates
from syncd.processors.base import ProcessorSpec, Row, RunContext

DEFAULT_CATEGORY = "Miscellaneous"


class _Batch:
    """Everything one batch reads once, and the working sets its rows change."""

    def __init__(
        self, tx: PlatformTx, changes: Sequence[CourseChange], identity: str, store_dir: Path | None
    ) -> None:
        self.tx = tx
        temp = TempIds()
        self.templates = Templates(store_dir, temp)
        self.courses = CourseSet(tx.courses.find(**_course_keys(changes, identity)), temp)
        self.tree = CategoryTree(tx.categories.all(), temp)
        loaded = self.courses.loaded_ids
        wants_sections = loaded and any(c.topics or c.template for c in changes)
        self.sections = SectionSet(tx.courses.sections(loaded) if wants_sections else [], temp)
        wants_methods = loaded and any(c.touches_enrolments for c in changes)
        self.enrols = EnrolSet(tx.enrolments.methods(loaded) if wants_methods else [], temp)
        accounts = {t.username for c in changes for t in c.teachers}
        self.users: dict[str, UserRecord] = users_by(tx, "username", accounts)
        self.roles: dict[str, int] = tx.roles.all() if accounts else {}
        pairs = self._teacher_pairs(changes, identity)
        if pairs:
            self.enrols.learn(pairs, tx.enrolments.find(pairs), tx.enrolments.roles(pairs))

    def _teacher_pairs(self, changes: Sequence[CourseChange], identity: str) -> set[tuple[int, int]]:
        """(course, user) pairs of existing courses a row may name, for its teachers."""
        pairs: set[tuple[int, int]] = set()
        for change in changes:
            users = [u.id for t in change.teachers if (u := self.users.get(t.username)) and u.id]
            if not users:
                continue
            candidates = (
                self.courses.by_shortname.get(change.shortname),
                self.courses.by_idnumber.get(change.idnumber) if change.idnumber else None,
                self.courses.by_id.get(int(change.key)) if identity == "id" and change.key else None,
            )
            for course in candidates:
                if course is not None and course.id is not None:
                    pairs.update((course.id, user_id) for user_id in users)
        return pairs

    def flush(self) -> None:
        """Write the batch: categories, courses, sections, then enrolment methods and the rest."""
        self.tree.flush(self.tx)
        self.courses.flush(self.tx.courses)
        self.sections.flush(self.tx.courses)
        self.enrols.flush(self.tx)
        self.templates.write(self.tx)


def _course_keys(changes: Sequence[CourseChange], identity: str) -> dict[str, Any]:
    shortnames = {c.shortname for c in changes} | {c.template for c in changes if c.template}
    idnumbers = {c.idnumber for c in changes if c.idnumber}
    ids = {int(c.key) for c in changes if identity == "id" and c.key}
    return {"shortnames": shortnames, "idnumbers": idnumbers, "ids": ids}


class CoursesProcessor:
    """Applies courses rows (implements Processor)."""

    def __init__(
        self, *, identity: str, update: bool, protect_category: bool, default_category: tuple[str, ...],
        ctx: RunContext,
    ) -> None:
        self.identity = identity
        self.update = update
        self.protect_category = protect_category
        self.default_category = default_category
        self._tz = ctx.timezone
        self._store_dir = ctx.store_dir

    @property
    def schema(self) -> Schema:
        """shortname and fullname, plus the identity column; topicN and teacherN_* by pattern."""
        required = frozenset({"shortname", "fullname", self.identity})
        return Schema(required, OPTIONAL - required, (TOPIC_PATTERN, TEACHER_PATTERN))

    def describe(self) -> str:
        """The effective options, for the report."""
        return (
            f"identity={self.identity} update={_yes(self.update)} "
            f"protect_category={_yes(self.protect_category)} "
            f"default_category={'/'.join(self.default_category)}"
        )

    def apply(self, rows: Sequence[Row], tx: PlatformTx) -> list[RowResult]:
        """Apply ``rows`` in order against one working set; write it once at the end."""
        parsed: list[CourseChange | RowError] = []
        for row in rows:
            try:
                parsed.append(parse_row(row, self.identity, self._tz))
            except RowError as exc:
                parsed.append(exc)
        changes = [p for p in parsed if isinstance(p, CourseChange)]
        if not changes:
            return [RowResult(Outcome.ERROR, str(p)) for p in parsed]
        batch = _Batch(tx, changes, self.identity, self._store_dir)
        results = [
            self._apply_one(p, batch) if isinstance(p, CourseChange) else RowResult(Outcome.ERROR, str(p))
            for p in parsed
        ]
        batch.flush()
        return results

    def _apply_one(self, change: CourseChange, batch: _Batch) -> RowResult:
        try:
            course = self._find(change, batch.courses)
            if course is None:
                return self._create(change, batch)
            if not self.update:
                return RowResult(Outcome.SKIPPED, f"course {course.shortname!r} exists; update is off")
            return self._update(change, course, batch)
        except RowError as exc:
            return RowResult(Outcome.ERROR, str(exc))

    def _find(self, change: CourseChange, courses: CourseSet) -> CourseRecord | None:
        """The course this row is about, by the identity; None when it is new."""
        if self.identity == "id":
            if not change.key:
                return None
            course = courses.by_id.get(int(change.key))
            if course is None:
                raise unknown("course", change.key, "id")
            return course
        if self.identity == "idnumber" and change.key:
            course = courses.by_idnumber.get(change.key)
            if course is not None:
                return course
            # A course known by shortname alone may take on its first idnumber; one with
            # another idnumber is another course (_check_keys reports the collision).
            course = courses.by_shortname.get(change.shortname)
            return course if course is not None and course.idnumber is None else None
        return courses.by_shortname.get(change.shortname)

    def _create(self, change: CourseChange, batch: _Batch) -> RowResult:
        _check_keys(change, None, batch.courses)
        teachers = _teachers(change, batch)
        category = change.category if change.category is not None else self.default_category
        course = CourseRecord(
            shortname=change.shortname, category_id=batch.tree.resolve(category), **change.fields
        )
        template = batch.templates.plan(change.template, batch.courses) if change.template else None
        batch.courses.add(course)
        assert course.id is not None
        source = batch.templates.attach(template, course, batch.sections) if template else ""
        if 0 not in batch.sections.of(course.id):
            batch.sections.put(course.id, 0, "", "")
        for number, (name, summary) in sorted(change.topics.items()):
            batch.sections.put(course.id, number, name, summary)
        batch.enrols.switch(course.id, "manual", True)
        for method, on in (("self", change.self_enrol), ("guest", change.guest)):
            if on:
                batch.enrols.switch(course.id, method, True)
        for _teacher, user_id, role in teachers:
            batch.enrols.enrol(course.id, user_id, role)
        return RowResult(Outcome.CREATED, f"course {course.shortname!r}{source}")

    def _update(self, change: CourseChange, course: CourseRecord, batch: _Batch) -> RowResult:
        _check_keys(change, course, batch.courses)
        teachers = _teachers(change, batch)
        values = {k: v for k, v in change.fields.items() if not _same(getattr(course, k), v)}
        if change.shortname != course.shortname:
            values = {"shortname": change.shortname, **values}
        _check_dates(course, values)
        if change.category is not None and not self.protect_category:
            category_id = batch.tree.resolve(change.category)
            if category_id != course.category_id:
                values["category_id"] = category_id
        names = ["category" if k == "category_id" else k for k in values]
        label = f"course {change.shortname!r}"
        if change.shortname != course.shortname:
            label += f" (was {course.shortname!r})"
        if values:
            batch.courses.change(course, values)
        assert course.id is not None
        for number, (name, summary) in sorted(change.topics.items()):
            if batch.sections.put(course.id, number, name, summary):
                names.append(f"topic{number}")
        for method, on in (("self", change.self_enrol), ("guest", change.guest)):
            if on is not None and batch.enrols.switch(course.id, method, on):
                names.append(method)
        for teacher, user_id, role in teachers:
            batch.enrols.ensure(batch.tx, course.id, user_id)
            if batch.enrols.enrol(course.id, user_id, role):
                names.append(teacher.column.removesuffix("_account"))
        if not names:
            return RowResult(Outcome.UNCHANGED, label)
        return RowResult(Outcome.UPDATED, f"{label}: {', '.join(names)}")


def _check_keys(change: CourseChange, course: CourseRecord | None, courses: CourseSet) -> None:
    """Refuse a shortname or idnumber that belongs to another course than ``course``."""
    owner = courses.by_shortname.get(change.shortname)
    if owner is not None and owner is not course:
        raise RowError(f"shortname: {change.shortname!r} already belongs to another course ({_who(owner)})")
    idnumber = change.idnumber
    owner = courses.by_idnumber.get(idnumber) if idnumber else None
    if owner is not None and owner is not course:
        raise RowError(
            f"idnumber: {idnumber!r} already belongs to another course (shortname {owner.shortname!r})"
        )


def _who(course: CourseRecord) -> str:
    if course.idnumber:
        return f"idnumber {course.idnumber!r}"
    return f"id {course.id}" if course.id is not None and course.id > 0 else "created by an earlier row"


def _teachers(change: CourseChange, batch: _Batch) -> list[tuple[Teacher, int, int]]:
    """(teacher, user id, role id) of each teacher column pair, or the row error naming one."""
    resolved = []
    for teacher in change.teachers:
        user = batch.users.get(teacher.username)
        if user is None or user.id is None:
            raise unknown("user", teacher.username, teacher.column)
        resolved.append((teacher, user.id, role_id(batch.roles, teacher.role, teacher.role_column)))
    return resolved


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _same(old: Any, new: Any) -> bool:
    """Equal values; datetimes compared as instants (a naive stored one is UTC)."""
    if isinstance(old, datetime) and isinstance(new, datetime):
        return _utc(old) == _utc(new)
    return bool(old == new)


def _check_dates(course: CourseRecord, values: Mapping[str, Any]) -> None:
    """Refuse an update that would end the course before it starts."""
    if "startdate" not in values and "enddate" not in values:
        return
    start = values.get("startdate", course.startdate)
    end = values.get("enddate", course.enddate)
    if start is not None and end is not None and _utc(end) < _utc(start):
        column = "enddate" if "enddate" in values else "startdate"
        raise RowError(
            f"{column}: course {course.shortname!r} would end ({end.isoformat()}) "
            f"before it starts ({start.isoformat()})"
        )


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def _default_category(options: Mapping[str, Any]) -> tuple[str, ...]:
    value = options.get("default_category", DEFAULT_CATEGORY)
    names = tuple(part.strip() for part in value.split("/")) if isinstance(value, str) else ()
    if not names or any(not name for name in names):
        raise ConfigError(
            f"courses: option default_category must be a category path like 'A/B' (got {value!r})"
        )
    return names


def build(options: Mapping[str, Any], ctx: RunContext) -> CoursesProcessor:
    """Build the processor from route options; raise ConfigError naming a bad one."""
    return CoursesProcessor(
        identity=option(options, "identity", IDENTITIES, "courses"),
        update=flag(options, "update", False, "courses"),
        protect_category=flag(options, "protect_category", False, "courses"),
        default_category=_default_category(options),
        ctx=ctx,
    )


SPEC = ProcessorSpec(
    name="courses",
    priority=20,
    factory=build,
    sniff=frozenset({"shortname", "fullname"}),
    options=frozenset({"identity", "update", "protect_category", "default_category"}),
)
