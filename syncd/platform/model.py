"""Records of the learning-platform model, as processors see them (no I/O here).

Shaped after Moodle's model so that a Moodle adapter can sit behind the same port:
categories (a tree), courses with numbered sections, roles, enrolment methods per course
(manual, self, guest, cohort, flatfile...), user enrolments (one per method and user),
role assignments in a course, groups, groupings, cohorts and their members; course content
(documents, the learning path, activities) and user pictures. ``id`` is None until a
repository's ``add`` (or ``put``/``replace``) sets it.

The ``check_*`` functions are the content rules both stores apply before writing (the SQL
store and the unit tests' fake raise the same ValueError for the same mistake).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

#: roles seeded in every platform store (more come from config)
DEFAULT_ROLES = ("manager", "editingteacher", "teacher", "student", "guest")
#: enrolment method names the embedded store knows
ENROL_METHODS = ("manual", "self", "guest", "cohort", "flatfile")
#: kinds of learning path items
PATH_KINDS = ("folder", "document", "activity", "sco", "link")
#: longest document path, in UTF-8 bytes
MAX_PATH_BYTES = 1024
#: longest key, kind or mimetype, in characters (a VARCHAR(255) column)
MAX_KEY = 255


@dataclass(slots=True)
class CategoryRecord:
    """A course category; ``parent_id`` None = top level."""

    name: str
    parent_id: int | None = None
    idnumber: str | None = None
    description: str = ""
    id: int | None = None


@dataclass(slots=True)
class CourseRecord:
    """A course. ``shortname`` unique; ``idnumber`` unique when set."""

    shortname: str
    fullname: str
    category_id: int
    idnumber: str | None = None
    summary: str = ""
    format: str = "topics"
    visible: bool = True
    startdate: datetime | None = None
    enddate: datetime | None = None
    lang: str = ""
    groupmode: int = 0  # 0 no groups, 1 separate, 2 visible
    maxbytes: int = 0
    id: int | None = None


@dataclass(slots=True)
class SectionRecord:
    """A course section (topic): number 0 is the general section."""

    course_id: int
    number: int
    name: str = ""
    summary: str = ""
    id: int | None = None


@dataclass(slots=True)
class EnrolMethod:
    """An enrolment instance of a course. Cohort sync instances carry their cohort and role."""

    course_id: int
    method: str
    enabled: bool = True
    cohort_id: int | None = None
    role_id: int | None = None
    group_id: int | None = None  # cohort sync: the group members are added to (makegroup)
    id: int | None = None


@dataclass(slots=True)
class Enrolment:
    """A user's enrolment through one method of a course."""

    method_id: int
    course_id: int
    user_id: int
    active: bool = True
    start: datetime | None = None
    end: datetime | None = None
    id: int | None = None


@dataclass(frozen=True, slots=True)
class RoleAssignment:
    """A role of a user in a course."""

    course_id: int
    user_id: int
    role_id: int


@dataclass(slots=True)
class GroupRecord:
    """A group of a course; (course_id, name) unique, idnumber unique in the course when set."""

    course_id: int
    name: str
    idnumber: str | None = None
    description: str = ""
    id: int | None = None


@dataclass(slots=True)
class GroupingRecord:
    """A grouping (a group of groups) of a course."""

    course_id: int
    name: str
    idnumber: str | None = None
    description: str = ""
    id: int | None = None


@dataclass(slots=True)
class CohortRecord:
    """A cohort in the system context (``category_id`` None) or a category's."""

    name: str
    idnumber: str | None = None
    description: str = ""
    category_id: int | None = None
    id: int | None = None


@dataclass(slots=True)
class DocumentRecord:
    """A file of a course: ``path`` (POSIX, relative, unique in the course) names it, the
    content is the blob ``sha256`` of ``size`` bytes in the file store (shared by every
    document and picture with the same content)."""

    course_id: int
    path: str
    sha256: str
    size: int
    title: str = ""
    mimetype: str = ""
    id: int | None = None


@dataclass(slots=True)
class PathItemRecord:
    """One node of a course's learning path (a tree): ``key`` is unique in the course,
    ``parent_key`` None = top level. ``kind`` is one of :data:`PATH_KINDS`; ``target`` says
    what the item opens: a document path (document, sco), an activity key (activity), a URL
    (link), None for a folder. ``position`` orders the items of the course (a preorder walk
    numbering them 0, 1, 2… reads as an outline); ``section`` is the section number it shows
    in, if any."""

    course_id: int
    key: str
    title: str
    parent_key: str | None
    kind: str
    target: str | None
    position: int
    section: int | None
    id: int | None = None


@dataclass(slots=True)
class ActivityRecord:
    """An activity listed by a course import (resource, page, url, label…): ``key`` unique
    in the course, shown in section number ``section`` at ``position``. The section need
    not exist (nothing refers to it by key)."""

    course_id: int
    key: str
    section: int
    kind: str
    title: str
    position: int
    id: int | None = None


@dataclass(slots=True)
class PictureRecord:
    """A user's picture (at most one per user): the blob ``sha256`` in the file store."""

    user_id: int
    sha256: str
    mimetype: str
    width: int
    height: int
    id: int | None = None


_SHA256 = re.compile(r"[0-9a-f]{64}")


def check_sha256(value: str) -> str:
    """``value`` when it is a sha256 in lowercase hex; ValueError otherwise."""
    if not _SHA256.fullmatch(value):
        raise ValueError(f"not a lowercase hex sha256: {value!r}")
    return value


def check_document_path(path: str) -> str:
    """``path`` when it is a relative POSIX path with no empty, ``.`` or ``..`` part, no
    backslash or NUL, of at most :data:`MAX_PATH_BYTES` bytes; ValueError otherwise."""
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts) or "\\" in path or "\0" in path:
        raise ValueError(f"not a relative POSIX path without '.', '..' or empty parts: {path!r}")
    if len(path.encode("utf-8")) > MAX_PATH_BYTES:
        raise ValueError(f"document path longer than {MAX_PATH_BYTES} bytes: {path[:60]!r}…")
    return path


def _check_key(value: str, what: str) -> None:
    if not value or len(value) > MAX_KEY:
        raise ValueError(f"{what} must have 1 to {MAX_KEY} characters: {value[:60]!r}")


def check_document(record: DocumentRecord) -> None:
    """ValueError unless the path, hash, size and mimetype of ``record`` are valid."""
    check_document_path(record.path)
    check_sha256(record.sha256)
    if record.size < 0:
        raise ValueError(f"negative document size {record.size} for {record.path!r}")
    if len(record.mimetype) > MAX_KEY:
        raise ValueError(f"mimetype longer than {MAX_KEY} characters for {record.path!r}")


def check_picture(record: PictureRecord) -> None:
    """ValueError unless the hash, mimetype and size of ``record`` are valid."""
    check_sha256(record.sha256)
    _check_key(record.mimetype, "picture mimetype")
    if record.width < 0 or record.height < 0:
        raise ValueError(f"negative picture size {record.width}x{record.height}")


def _check_keys(course_id: int, items: Sequence[PathItemRecord | ActivityRecord], what: str) -> None:
    seen: set[str] = set()
    for item in items:
        if item.course_id != course_id:
            raise ValueError(f"{what} {item.key!r} belongs to course {item.course_id}, not {course_id}")
        _check_key(item.key, f"{what} key")
        _check_key(item.kind, f"{what} kind")
        if item.key in seen:
            raise ValueError(f"{what} key {item.key!r} twice in course {course_id}")
        seen.add(item.key)


def check_activities(course_id: int, items: Sequence[ActivityRecord]) -> None:
    """ValueError unless every activity is of ``course_id``, keys and kinds are 1 to
    :data:`MAX_KEY` characters and no key comes twice."""
    _check_keys(course_id, items, "activity")


def check_path(course_id: int, items: Sequence[PathItemRecord]) -> None:
    """ValueError unless ``items`` form one course's learning path: the rules of
    :func:`check_activities`, a kind of :data:`PATH_KINDS`, every ``parent_key`` an item of
    the list and no cycle."""
    _check_keys(course_id, items, "path item")
    parents = {item.key: item.parent_key for item in items}
    for item in items:
        if item.kind not in PATH_KINDS:
            raise ValueError(f"path item {item.key!r}: kind {item.kind!r} is not one of {PATH_KINDS}")
        if item.parent_key is not None and item.parent_key not in parents:
            raise ValueError(f"path item {item.key!r}: no parent {item.parent_key!r} in the path")
    rooted: set[str] = set()  # keys whose ancestors are known to end at the top level
    for key in parents:
        walked: dict[str, None] = {}  # ordered set
        up: str | None = key
        while up is not None and up not in rooted:
            if up in walked:
                raise ValueError(f"path item {key!r}: its parents form a cycle through {up!r}")
            walked[up] = None
            up = parents[up]
        rooted.update(walked)
