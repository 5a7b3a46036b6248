"""Records of the learning-platform model, as processors see them (no I/O here).

Shaped after Moodle's model so that a Moodle adapter can sit behind the same port:
categories (a tree), courses with numbered sections, roles, enrolment methods per course
(manual, self, guest, cohort, flatfile...), user enrolments (one per method and user),
role assignments in a course, groups, groupings, cohorts and their members. ``id`` is
None until a repository's ``add`` sets it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

#: roles seeded in every platform store (more come from config)
DEFAULT_ROLES = ("manager", "editingteacher", "teacher", "student", "guest")
#: enrolment method names the embedded store knows
ENROL_METHODS = ("manual", "self", "guest", "cohort", "flatfile")


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
