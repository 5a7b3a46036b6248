"""A realistic term's command files, generated deterministically, and what they should yield.

:func:`generate_term` builds, from a seed, the files an ERP would push at the start of a
term — ``users.csv`` (students and staff), ``courses.csv`` (in ``Faculty/Department``
category paths, some one level deeper, the first teacher named in the row),
``cohorts.csv`` (programme cohorts in their department's category, plus a few
system-wide ones, one row per member), ``groups.csv`` (tutorial groups, some in a
grouping), ``enrol.csv`` (students and teaching assistants, group commands; at the end
drops, role shifts and group moves that only work in file order), ``enrol_flatfile.csv``
(Moodle's header-less flat file) and ``groupmembers.csv`` — together with
:class:`Expected`, the platform state the files describe when applied in priority order,
row by row.

The files mix what real exports do: a BOM and CRLF line ends (users), ``;`` as the
separator (courses), quoted fields with commas, accents. Nothing here touches a daemon.
"""

from __future__ import annotations

import csv
import io
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

#: faculty -> (department, course code prefix)
FACULTIES: dict[str, tuple[tuple[str, str], ...]] = {
    "Science": (("Physics", "PHYS"), ("Chemistry", "CHEM"), ("Mathematics", "MATH"),
                ("Biology", "BIOL"), ("Computer Science", "COMP")),
    "Humanities": (("History", "HIST"), ("Philosophy", "PHIL"), ("Modern Languages", "LANG"),
                   ("Linguistics", "LING")),
    "Law and Economics": (("Law", "LAWS"), ("Economics", "ECON"), ("Management", "MGMT")),
    "Médecine": (("Anatomie", "ANAT"), ("Pharmacie", "PHAR"), ("Santé publique", "SANT")),
}
TOPICS = ("Foundations", "Methods, tools and practice", "Seminar", "Advanced topics",
          "Project work", "Reading group: classics", "Laboratory", "Fieldwork")
FIRST = ("Jane", "Alan", "María", "José", "Zoë", "Łukasz", "Søren", "Chloé", "Yūki", "Ngozi",
         "Ömer", "Anaïs", "Björn", "Eva", "Priya", "Tomás", "Aoife", "Kai", "Li", "Fatima")
LAST = ("Doe", "Smith", "García", "Müller", "Dvořák", "Nowak", "O'Brien", "Kowalski", "Lefèvre",
        "Yılmaz", "Wang", "Håkansson", "Rossi", "Ivanov", "N'Diaye", "da Silva")
EXTRA_COHORTS = (("INT-ERASMUS", "Erasmus incoming, 2026"), ("INT-ATHLETES", "High-level athletes"),
                 ("INT-REPS", "Student representatives"))
STUDENT_ROLE, TA_ROLE, TEACHER_ROLE = "student", "teacher", "editingteacher"
START, END = "2026-09-01", "2027-02-15 18:00:00"
#: the file names, in the priority order the daemon must apply them
ORDER = ("users.csv", "courses.csv", "cohorts.csv", "groups.csv", "enrol.csv",
         "enrol_flatfile.csv", "groupmembers.csv")

Pair = tuple[str, str]  # (course shortname, user idnumber)


@dataclass(frozen=True, slots=True)
class Person:
    """A user of the term: a student (with a department and year) or a member of staff."""

    number: int
    username: str
    idnumber: str
    firstname: str
    lastname: str
    department: int  # index in :func:`departments`
    year: int  # 1..3 for students, 0 for staff


@dataclass(frozen=True, slots=True)
class Course:
    """A course of the term."""

    shortname: str
    idnumber: str
    fullname: str
    category: str
    department: int
    level: int  # 1..4


@dataclass(slots=True)
class Expected:
    """The platform state the term's files describe (keys are shortnames and idnumbers)."""

    users: set[str] = field(default_factory=set)
    categories: set[str] = field(default_factory=set)  # every path, prefixes included
    courses: dict[str, str] = field(default_factory=dict)  # shortname -> category path
    enrolments: set[Pair] = field(default_factory=set)  # manual, active
    dated: set[Pair] = field(default_factory=set)  # enrolments with the term's start/end dates
    roles: set[tuple[str, str, str]] = field(default_factory=set)  # (course, user, role)
    groups: set[tuple[str, str]] = field(default_factory=set)  # (course, group name)
    groupings: set[tuple[str, str, str]] = field(default_factory=set)  # (course, grouping, group)
    members: set[tuple[str, str, str]] = field(default_factory=set)  # (course, group, user)
    cohorts: dict[str, tuple[str, str]] = field(default_factory=dict)  # idnumber -> (name, category)
    cohort_members: set[Pair] = field(default_factory=set)  # (cohort idnumber, user idnumber)
    outcomes: Counter[str] = field(default_factory=Counter)  # enrol.csv rows by expected outcome

    def enrol(self, course: str, user: str, role: str, dated: bool | None) -> str:
        """An ``add`` through the manual method; ``dated`` None = no date columns. The outcome."""
        pair = (course, user)
        changed = (course, user, role) not in self.roles
        self.roles.add((course, user, role))
        if dated is not None and (pair in self.dated) != dated:
            changed = True
            (self.dated.add if dated else self.dated.discard)(pair)
        if pair not in self.enrolments:
            self.enrolments.add(pair)
            return "created"
        return "updated" if changed else "unchanged"

    def unenrol(self, course: str, user: str) -> str:
        """A ``del`` of the user's only (manual) enrolment: its roles and groups go with it."""
        pair = (course, user)
        self.enrolments.discard(pair)
        self.dated.discard(pair)
        self.roles = {r for r in self.roles if r[:2] != pair}
        self.members = {m for m in self.members if (m[0], m[2]) != pair}
        return "deleted"

    def shift(self, course: str, user: str, role: str) -> str:
        """A ``shift`` of an enrolled user (dates unchanged): ``role`` becomes the only one."""
        before = {r for r in self.roles if r[:2] == (course, user)}
        self.roles = (self.roles - before) | {(course, user, role)}
        return "unchanged" if before == {(course, user, role)} else "updated"

    def replace_group(self, course: str, user: str, group: str) -> str:
        """An ``add`` (unchanged enrolment) with ``greplace``: ``group`` becomes the user's only group."""
        before = {m for m in self.members if (m[0], m[2]) == (course, user)}
        self.members = (self.members - before) | {(course, group, user)}
        return "unchanged" if before == {(course, group, user)} else "updated"


@dataclass(slots=True)
class Term:
    """The generated files (name -> bytes, in :data:`ORDER`) and the expected state."""

    files: dict[str, bytes]
    expected: Expected
    people: list[Person]
    courses: list[Course]


def departments() -> list[tuple[str, str, str]]:
    """Every (faculty, department, code), in a fixed order."""
    return [(fac, dept, code) for fac, depts in FACULTIES.items() for dept, code in depts]


def to_csv(header: Sequence[str] | None, rows: Iterable[Sequence[str]], *, delimiter: str = ",",
           newline: str = "\n", bom: bool = False) -> bytes:
    """A CSV file as UTF-8 bytes (no header line when ``header`` is None)."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator=newline)
    if header is not None:
        writer.writerow(header)
    writer.writerows(rows)
    data = out.getvalue().encode("utf-8")
    return b"\xef\xbb\xbf" + data if bom else data


def make_people(rng: random.Random, students: int, staff: int) -> list[Person]:
    """Students (``s0000123``/``E0000123``) then staff (``t0042``/``P0042``)."""
    ndept = len(departments())
    people = [
        Person(n, f"s{n:07d}", f"E{n:07d}", rng.choice(FIRST), rng.choice(LAST), n % ndept,
               1 + n // ndept % 3)
        for n in range(students)
    ]
    people += [
        Person(n, f"t{n:04d}", f"P{n:04d}", rng.choice(FIRST), rng.choice(LAST), n % ndept, 0)
        for n in range(staff)
    ]
    return people


def make_courses(count: int) -> list[Course]:
    """``count`` courses spread over the departments; levels 3 and 4 one category deeper."""
    depts = departments()
    courses = []
    for n in range(count):
        faculty, dept, code = depts[n % len(depts)]
        k = n // len(depts)
        level = 1 + k % 4
        number = f"{level}{k // 4 + 1:02d}"
        category = f"{faculty}/{dept}" + ("/Graduate studies" if level >= 3 else "")
        fullname = f"{dept} {number}: {TOPICS[k % len(TOPICS)]}"
        courses.append(Course(f"{code}-{number}-26A", f"26A-{code}-{number}", fullname, category,
                              n % len(depts), level))
    return courses


def users_file(people: Sequence[Person], expected: Expected) -> bytes:
    """users.csv: BOM, CRLF, a department with a comma (quoted)."""
    depts = departments()
    header = ("username", "firstname", "lastname", "email", "idnumber", "institution", "department")
    rows = []
    for p in people:
        faculty, dept, _code = depts[p.department]
        rows.append((p.username, p.firstname, p.lastname, f"{p.username}@univ.example.edu", p.idnumber,
                     "Université Exemple", f"{dept}, {faculty}"))
        expected.users.add(p.idnumber)
    return to_csv(header, rows, newline="\r\n", bom=True)


def courses_file(courses: Sequence[Course], staff: Sequence[Person], expected: Expected) -> bytes:
    """courses.csv, ``;``-separated; the course's lead teacher in ``teacher1_account``."""
    header = ("shortname", "fullname", "idnumber", "category", "summary", "startdate", "enddate",
              "teacher1_account", "teacher1_role")
    rows = []
    for n, c in enumerate(courses):
        lead = staff[n % len(staff)]
        rows.append((c.shortname, c.fullname, c.idnumber, c.category, f"<p>{c.fullname}; autumn 2026</p>",
                     START, "2027-01-31", lead.username, TEACHER_ROLE))
        expected.courses[c.shortname] = c.category
        parts = c.category.split("/")
        expected.categories.update("/".join(parts[: i + 1]) for i in range(len(parts)))
        expected.enrol(c.shortname, lead.idnumber, TEACHER_ROLE, dated=None)
    return to_csv(header, rows, delimiter=";")


def cohort_of(p: Person) -> str:
    """The programme cohort of a student: department and year."""
    return f"PRG-{departments()[p.department][2]}-Y{p.year}"


def cohorts_file(rng: random.Random, students: Sequence[Person], expected: Expected) -> bytes:
    """cohorts.csv: one ``add`` row per member; programme cohorts live in their department's category."""
    header = ("cmd", "cidnumber", "cname", "cdescription", "ccategory", "userid")
    rows = []
    depts = departments()
    for p in students:
        faculty, dept, _code = depts[p.department]
        key, category = cohort_of(p), f"{faculty}/{dept}"
        expected.cohorts[key] = (f"{dept}, year {p.year}", category)
        rows.append(("add", key, f"{dept}, year {p.year}", f"Students of {dept} in year {p.year}",
                     category, p.idnumber))
        expected.cohort_members.add((key, p.idnumber))
        if rng.random() < 0.06:
            extra, name = rng.choice(EXTRA_COHORTS)
            expected.cohorts[extra] = (name, "")
            rows.append(("add", extra, name, "", "", p.idnumber))
            expected.cohort_members.add((extra, p.idnumber))
    rng.shuffle(rows)
    return to_csv(header, rows)


def tutorial_groups(n: int) -> tuple[str, ...]:
    """The groups groups.csv makes in course number ``n`` (every other course)."""
    return ("TD 1", "TD 2") if n % 2 == 0 else ()


def groups_file(courses: Sequence[Course], expected: Expected) -> bytes:
    """groups.csv: two tutorial groups in every other course; in every sixth, a grouping too."""
    header = ("courseid", "name", "idnumber", "type", "grouping", "description")
    rows = []
    for n, c in enumerate(courses):
        for name in tutorial_groups(n):
            grouping = "Tutorials" if n % 6 == 0 else ""
            rows.append((c.shortname, name, f"{c.idnumber}-{name.replace(' ', '')}", "group", grouping,
                         f"{name} of {c.fullname}"))
            expected.groups.add((c.shortname, name))
            if grouping:
                expected.groupings.add((c.shortname, grouping, name))
    return to_csv(header, rows)


def _choose_courses(rng: random.Random, p: Person, by_dept: dict[tuple[int, int], list[int]],
                    count: int, per_student: int) -> list[int]:
    """The courses a student takes: their department's at their level, then electives."""
    own = list(by_dept.get((p.department, p.year), []))
    rng.shuffle(own)
    chosen = own[: per_student - 2]
    while len(chosen) < per_student:
        pick = rng.randrange(count)
        if pick not in chosen:
            chosen.append(pick)
    return chosen


def enrol_files(rng: random.Random, people: Sequence[Person], courses: Sequence[Course],
                per_student: int, expected: Expected) -> tuple[bytes, bytes]:
    """enrol.csv (students, TAs, group commands, then drops and shifts) and the flat file."""
    header = ("cmd", "rolename", "uid", "cid", "enrol", "starttime", "endtime", "gcmd", "g1")
    students = [p for p in people if p.year]
    staff = [p for p in people if not p.year]
    by_dept: dict[tuple[int, int], list[int]] = {}
    for n, c in enumerate(courses):
        by_dept.setdefault((c.department, c.level), []).append(n)
    rows: list[tuple[str, ...]] = []
    taken: list[tuple[Person, int]] = []
    flat: list[tuple[str, ...]] = []
    for p in students:
        for n in _choose_courses(rng, p, by_dept, len(courses), per_student):
            if p.number % 50 == 7 and len(flat) < 400:  # a few come through the flat file instead
                flat.append(("add", STUDENT_ROLE, p.idnumber, courses[n].idnumber))
                expected.enrol(courses[n].shortname, p.idnumber, STUDENT_ROLE, dated=None)
                continue
            rows.append(_student_row(n, p, courses[n], expected))
            taken.append((p, n))
    for n, c in enumerate(courses):  # a teaching assistant in every third course, no dates
        if n % 3 == 0:
            ta = staff[(n * 7 + 3) % len(staff)]
            rows.append(("add", TA_ROLE, ta.idnumber, c.idnumber, "", "0", "", "", ""))
            expected.outcomes[expected.enrol(c.shortname, ta.idnumber, TA_ROLE, dated=False)] += 1
    rng.shuffle(rows)
    rows += _changes(rng, taken, courses, expected)
    return to_csv(header, rows), to_csv(None, flat)


def _student_row(n: int, p: Person, c: Course, expected: Expected) -> tuple[str, ...]:
    """An ``add`` of a student, with a group command in courses that have groups."""
    gcmd, group = "", ""
    if tutorial_groups(n):
        gcmd, group = "gadd", tutorial_groups(n)[p.number % 2]
    elif n % 4 == 1:
        gcmd, group = "gaddcreate", f"Lab {1 + p.number % 3}"
        expected.groups.add((c.shortname, group))
    if group:
        expected.members.add((c.shortname, group, p.idnumber))
    expected.outcomes[expected.enrol(c.shortname, p.idnumber, STUDENT_ROLE, dated=True)] += 1
    enrol = "manual" if p.number % 5 == 0 else ""  # empty = manual too
    return ("add", STUDENT_ROLE, p.idnumber, c.idnumber, enrol, START, END, gcmd, group)


def _changes(rng: random.Random, taken: list[tuple[Person, int]], courses: Sequence[Course],
             expected: Expected) -> list[tuple[str, ...]]:
    """Late rows that only work in file order: drops, role shifts, moves to the other group."""
    rows: list[tuple[str, ...]] = []
    for i, (p, n) in enumerate(rng.sample(taken, min(len(taken), 300))):
        c = courses[n]
        if i % 3 == 0:
            rows.append(("del", STUDENT_ROLE, p.idnumber, c.idnumber, "", "", "", "", ""))
            outcome = expected.unenrol(c.shortname, p.idnumber)
        elif i % 3 == 1:
            rows.append(("shift", TA_ROLE, p.idnumber, c.idnumber, "", START, END, "", ""))
            outcome = expected.shift(c.shortname, p.idnumber, TA_ROLE)
        elif tutorial_groups(n):
            other = tutorial_groups(n)[1 - p.number % 2]
            rows.append(("add", STUDENT_ROLE, p.idnumber, c.idnumber, "", START, END, "greplace", other))
            outcome = expected.replace_group(c.shortname, p.idnumber, other)
        else:
            continue
        expected.outcomes[outcome] += 1
    return rows


def groupmembers_file(courses: Sequence[Course], staff: Sequence[Person], expected: Expected) -> bytes:
    """groupmembers.csv: each course's lead teacher joins all its tutorial groups."""
    header = ("courseid", "groupid", "userid", "cmd")
    rows = []
    for n, c in enumerate(courses):
        lead = staff[n % len(staff)]
        for name in tutorial_groups(n):
            rows.append((c.shortname, name, lead.idnumber, "add"))
            expected.members.add((c.shortname, name, lead.idnumber))
    return to_csv(header, rows)


def generate_term(seed: int = 2026, *, students: int = 2850, staff: int = 150, courses: int = 300,
                  per_student: int = 7) -> Term:
    """Every file of a term and the state they describe; the same seed gives the same bytes."""
    if students < 1 or staff < 1 or courses < 1 or not 2 <= per_student <= courses:
        raise ValueError("need students, staff and courses, and 2 <= per_student <= courses")
    rng = random.Random(seed)
    expected = Expected()
    people = make_people(rng, students, staff)
    term_courses = make_courses(courses)
    staff_list = [p for p in people if not p.year]
    student_list = [p for p in people if p.year]
    files = {
        "users.csv": users_file(people, expected),
        "courses.csv": courses_file(term_courses, staff_list, expected),
        "cohorts.csv": cohorts_file(rng, student_list, expected),
        "groups.csv": groups_file(term_courses, expected),
    }
    enrol, flat = enrol_files(rng, people, term_courses, per_student, expected)
    files["enrol.csv"], files["enrol_flatfile.csv"] = enrol, flat
    files["groupmembers.csv"] = groupmembers_file(term_courses, staff_list, expected)
    return Term({name: files[name] for name in ORDER}, expected, people, term_courses)
