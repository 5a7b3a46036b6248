"""Rows of a courses file → typed, validated changes (no platform access).

:func:`parse_row` turns one row into a :class:`CourseChange` or raises RowError naming the
column and the value. Values arrive trimmed. An EMPTY value means "not given": on create
the default applies, on update the course keeps what it has (an ERP export that leaves a
column blank never wipes a course's idnumber or dates).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any

from syncd.csvfile import parse_bool, parse_datetime, parse_int
from syncd.domain import RowError
from syncd.processors.base import Row

IDENTITIES = ("shortname", "idnumber", "id")
#: the store's short text columns are VARCHAR(255)
MAX_TEXT = 255
LAST_TOPIC = 52
DEFAULT_TEACHER_ROLE = "editingteacher"

TOPIC_PATTERN = r"topic(?:[0-9]|[1-4][0-9]|5[0-2])"
TEACHER_PATTERN = r"teacher[1-9][0-9]*_(?:account|role)"
OPTIONAL = frozenset(
    {
        "idnumber",
        "category",
        "summary",
        "format",
        "visible",
        "startdate",
        "enddate",
        "lang",
        "groupmode",
        "maxbytes",
        "self",
        "guest",
        "template",
    }
)

_GROUPMODES = {"0": 0, "none": 0, "1": 1, "separate": 1, "2": 2, "visible": 2}
_FORMAT = re.compile(r"[a-z][a-z0-9_]*")
_LANG = re.compile(r"[a-z]{2,3}(?:_[a-z0-9]+)*")
_TEACHER = re.compile(r"teacher([1-9][0-9]*)_(account|role)")
_ARCHIVE_SUFFIXES = (".mbz", ".zip", ".tar.gz", ".tgz")

#: A category reference: an existing category's id, or a path of names from the top.
CategoryRef = int | tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Teacher:
    """A ``teacher<N>_account`` / ``teacher<N>_role`` pair of one row."""

    column: str  # teacher<N>_account, for error messages and reasons
    username: str  # lowercased
    role: str  # role shortname, lowercased
    role_column: str


@dataclass(slots=True)
class CourseChange:
    """What one valid courses row asks for.

    ``fields`` holds the new value of every CourseRecord attribute whose column is given
    (shortname and category aside). ``key`` is the identity column's value ('' = none).
    ``topics`` maps a section number to (name, summary); a None summary keeps the current one.
    """

    line: int
    shortname: str
    key: str
    fields: dict[str, Any] = field(default_factory=dict)
    category: CategoryRef | None = None
    self_enrol: bool | None = None
    guest: bool | None = None
    template: str | None = None
    topics: dict[int, tuple[str, str | None]] = field(default_factory=dict)
    teachers: list[Teacher] = field(default_factory=list)

    @property
    def idnumber(self) -> str | None:
        """The idnumber the row gives, if any."""
        value = self.fields.get("idnumber")
        return str(value) if value else None

    @property
    def touches_enrolments(self) -> bool:
        """Whether the row needs the course's enrolment methods."""
        return bool(self.teachers) or self.self_enrol is not None or self.guest is not None


def _short(column: str, value: str) -> str:
    if len(value) > MAX_TEXT:
        raise RowError(f"{column}: value longer than {MAX_TEXT} characters {value[:40]!r}…")
    return value


def parse_category(value: str) -> CategoryRef:
    """An all-digit value is a category id; anything else an ``A/B/C`` path of names."""
    if value.isdigit():
        return int(value)
    names = tuple(part.strip() for part in value.split("/"))
    if any(not name for name in names):
        raise RowError(f"category: empty level in path {value!r}")
    for name in names:
        _short("category", name)
    return names


def _groupmode(value: str) -> int:
    mode = _GROUPMODES.get(value.lower())
    if mode is None:
        raise RowError(f"groupmode: invalid value {value!r} (expected 0/1/2 or none/separate/visible)")
    return mode


def _maxbytes(value: str) -> int:
    number = parse_int(value, "maxbytes")
    if number < 0:
        raise RowError(f"maxbytes: negative value {value!r}")
    return number


def _matching(pattern: re.Pattern[str], column: str, what: str) -> Any:
    def convert(value: str) -> str:
        lowered = value.lower()
        if not pattern.fullmatch(lowered) or len(lowered) > MAX_TEXT:
            raise RowError(f"{column}: invalid {what} {value!r}")
        return lowered

    return convert


#: column → converter of a non-empty value, for columns stored on the course record
_FIELDS: dict[str, Any] = {
    "idnumber": lambda v: _short("idnumber", v),
    "summary": lambda v: v,
    "format": _matching(_FORMAT, "format", "course format"),
    "lang": _matching(_LANG, "lang", "language code"),
    "visible": lambda v: parse_bool(v, "visible"),
    "groupmode": _groupmode,
    "maxbytes": _maxbytes,
}


def parse_row(row: Row, identity: str, tz: tzinfo) -> CourseChange:
    """Validate ``row`` into a :class:`CourseChange`; raise RowError on the first bad value."""
    values = row.values
    shortname = _required(values, "shortname")
    change = CourseChange(line=row.line, shortname=shortname, key=values.get(identity, "").strip())
    change.fields["fullname"] = _required(values, "fullname")
    if identity == "id" and change.key and not change.key.isdigit():
        raise RowError(f"id: invalid course id {change.key!r}")
    if identity == "shortname":
        change.key = shortname
    teachers: dict[str, dict[str, str]] = {}
    for column, raw in values.items():
        value = raw.strip()
        if not value:
            continue
        if (convert := _FIELDS.get(column)) is not None:
            change.fields[column] = convert(value)
        elif column in ("startdate", "enddate"):
            change.fields[column] = parse_datetime(value, column, tz)
        elif column.startswith("topic"):
            change.topics[int(column.removeprefix("topic"))] = _topic(value)
        elif (match := _TEACHER.fullmatch(column)) is not None:
            teachers.setdefault(match.group(1), {})[match.group(2)] = value
        else:
            _other(change, column, value)
    change.teachers = _teachers(teachers)
    start, end = change.fields.get("startdate"), change.fields.get("enddate")
    if start is not None and end is not None and end < start:
        raise RowError(f"enddate: {values['enddate']!r} is before startdate {values['startdate']!r}")
    return change


def _required(values: Any, column: str) -> str:
    value = str(values.get(column, "")).strip()
    if not value:
        raise RowError(f"{column}: empty value; a course must have a {column}")
    return _short(column, value)


def _other(change: CourseChange, column: str, value: str) -> None:
    if column == "category":
        change.category = parse_category(value)
    elif column == "self":
        change.self_enrol = parse_bool(value, "self")
    elif column == "guest":
        change.guest = parse_bool(value, "guest")
    elif column == "template":
        change.template = value


def _topic(value: str) -> tuple[str, str | None]:
    """``name|summary`` → (name, summary); ``name`` alone keeps the current summary."""
    name, bar, summary = value.partition("|")
    return _short("topic", name.strip()), (summary.strip() if bar else None)


def _teachers(found: dict[str, dict[str, str]]) -> list[Teacher]:
    """The teacher<N> pairs with an account, in N order; a role without an account is ignored."""
    teachers = []
    for number in sorted(found, key=int):
        pair = found[number]
        account = pair.get("account")
        if account is None:
            continue
        teachers.append(
            Teacher(
                column=f"teacher{number}_account",
                username=account.lower(),
                role=pair.get("role", DEFAULT_TEACHER_ROLE).lower(),
                role_column=f"teacher{number}_role",
            )
        )
    return teachers


def looks_like_archive(value: str) -> bool:
    """Whether a template value names a course archive (a path or an archive file name)."""
    lowered = value.lower()
    return "/" in value or "\\" in value or lowered.endswith(_ARCHIVE_SUFFIXES)


def course_key(row: Row, identity: str) -> str:
    """The identifier of the course a row names (course_delete/check/reset), or RowError."""
    key = row.values.get(identity, "").strip()
    if not key:
        raise RowError(f"{identity}: empty value; a course identifier is required")
    if identity == "id":
        if not key.isdigit():
            raise RowError(f"id: invalid course id {key!r}")
        return str(int(key))  # '012' names course 12
    return key


def course_keys(rows: Sequence[Row], identity: str) -> list[str | RowError]:
    """:func:`course_key` of every row, the error in place of a row that names none."""
    keys: list[str | RowError] = []
    for row in rows:
        try:
            keys.append(course_key(row, identity))
        except RowError as exc:
            keys.append(exc)
    return keys
