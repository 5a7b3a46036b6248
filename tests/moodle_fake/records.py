"""The rows of the fake Moodle's tables: frozen dataclasses, changed with ``dataclasses.replace``.

Frozen on purpose: every change goes through :meth:`Store.put`, which journals the previous
row, so a whole-batch function can roll back (README §4). Field names follow Moodle's tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Context levels (lib/accesslib.php) and the names core_role_assign_roles accepts.
SYSTEM, USER, COURSECAT, COURSE, MODULE, BLOCK = 10, 30, 40, 50, 70, 80
CONTEXT_LEVELS = {"system": SYSTEM, "user": USER, "coursecat": COURSECAT, "course": COURSE,
                  "module": MODULE, "block": BLOCK}
SYSTEM_CONTEXT = 1

#: roles of a stock Moodle (``_roles.json``): id → shortname
ROLES = {1: "manager", 2: "coursecreator", 3: "editingteacher", 4: "teacher", 5: "student",
         6: "guest", 7: "user", 8: "frontpage"}
#: the context levels where each role can be assigned (get_default_contextlevels)
ROLE_LEVELS = {1: {SYSTEM, COURSECAT, COURSE}, 2: {SYSTEM, COURSECAT}, 3: {COURSE, MODULE},
               4: {COURSE, MODULE}, 5: {COURSE, MODULE}, 6: set(), 7: set(), 8: set()}
#: roles holding a capability (only the few the fake is asked about), in the course or above
CAPABILITIES = {
    "moodle/course:update": {1, 3},
    "moodle/course:manageactivities": {1, 3},
    "moodle/grade:edit": {1, 3},
    "moodle/course:viewparticipants": {1, 3, 4},
    "moodle/grade:viewall": {1, 3, 4},
    "mod/assign:submit": {5},
}
EDITINGTEACHER = 3  # the course contact role ($CFG->coursecontact)
ACTIVE, SUSPENDED = 0, 1


@dataclass(frozen=True, slots=True)
class User:
    """A ``user`` row (plus its custom profile fields and preferences)."""

    id: int
    username: str
    firstname: str
    lastname: str
    email: str
    auth: str = "manual"
    idnumber: str = ""
    password: str = ""
    suspended: int = 0
    deleted: int = 0
    confirmed: int = 1
    city: str = ""
    country: str = ""
    lang: str = "en"
    timezone: str = "99"
    theme: str = ""
    calendartype: str = "gregorian"
    institution: str = ""
    department: str = ""
    description: str = ""
    phone1: str = ""
    phone2: str = ""
    address: str = ""
    mailformat: int = 1
    maildisplay: int = 2
    picture: int = 0
    contextid: int = 0
    timecreated: int = 0
    timemodified: int = 0
    customfields: tuple[tuple[str, str], ...] = ()
    preferences: tuple[tuple[str, str], ...] = ()
    extra: tuple[tuple[str, Any], ...] = ()  # other accepted fields (middlename, interests...)

    @property
    def fullname(self) -> str:
        """``fullname()`` with the default format: first name, space, last name."""
        return f"{self.firstname} {self.lastname}"


@dataclass(frozen=True, slots=True)
class Category:
    """A ``course_categories`` row (``idnumber`` None when never set, as Moodle returns it)."""

    id: int
    name: str
    parent: int = 0
    idnumber: str | None = None
    description: str = ""
    descriptionformat: int = 1
    visible: int = 1
    theme: str = ""
    contextid: int = 0
    timemodified: int = 0


@dataclass(frozen=True, slots=True)
class Course:
    """A ``course`` row with its format options and its manual enrolment instance settings."""

    id: int
    category: int
    fullname: str
    shortname: str
    idnumber: str = ""
    summary: str = ""
    summaryformat: int = 1
    format: str = "topics"
    showgrades: int = 1
    newsitems: int = 5
    startdate: int = 0
    enddate: int = 0
    maxbytes: int = 0
    showreports: int = 0
    visible: int = 1
    groupmode: int = 0
    groupmodeforce: int = 0
    defaultgroupingid: int = 0
    enablecompletion: int = 1
    completionnotify: int = 0
    lang: str = ""
    theme: str = ""
    contextid: int = 0
    timecreated: int = 0
    timemodified: int = 0
    cacherev: int = 0
    #: manual instance: None = no instance, True = enabled, False = disabled
    manual: bool | None = True
    #: the manual instance's "send course welcome message" (customint1)
    welcome: bool = True
    #: other enabled enrolment methods listed by core_enrol_get_course_enrolment_methods
    methods: tuple[str, ...] = ()
    #: sortorder kept from the last category the course was in (for orphaned courses)
    lastsortorder: int = 0
    customfields: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Enrolment:
    """A ``user_enrolments`` row of the manual instance."""

    courseid: int
    userid: int
    status: int = ACTIVE
    timestart: int = 0
    timeend: int = 0
    timecreated: int = 0


@dataclass(frozen=True, slots=True)
class Group:
    """A ``groups`` row (``enrolmentkey`` None when never set)."""

    id: int
    courseid: int
    name: str
    description: str = ""
    descriptionformat: int = 1
    enrolmentkey: str | None = None
    idnumber: str = ""
    visibility: int = 0
    participation: bool = True


@dataclass(frozen=True, slots=True)
class Grouping:
    """A ``groupings`` row."""

    id: int
    courseid: int
    name: str
    description: str = ""
    descriptionformat: int = 1
    idnumber: str = ""


@dataclass(frozen=True, slots=True)
class Cohort:
    """A ``cohort`` row."""

    id: int
    contextid: int
    name: str
    idnumber: str
    description: str = ""
    descriptionformat: int = 1
    visible: bool = True
    theme: str = ""


@dataclass(frozen=True, slots=True)
class Section:
    """A ``course_sections`` row (``name`` None = the format's default name)."""

    id: int
    courseid: int
    section: int
    name: str | None = None
    summary: str = ""
    summaryformat: int = 1
    visible: int = 1


@dataclass(frozen=True, slots=True)
class Module:
    """A course module (``course_modules`` + its instance), enough for core_course_get_contents."""

    id: int
    courseid: int
    sectionid: int
    modname: str
    name: str
    instance: int
    contextid: int
    visible: int = 1
    url: str = ""  # for mod_url
    timemodified: int = 0


@dataclass(frozen=True, slots=True)
class DraftFile:
    """A file uploaded to a draft area by /webservice/upload.php."""

    filename: str
    mimetype: str
    data: bytes = field(repr=False)
    fileid: int = 0
