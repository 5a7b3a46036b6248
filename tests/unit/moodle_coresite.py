"""A small in-memory Moodle for the users, categories and courses repositories' tests (no HTTP),
and a platform running the real processors over it.

It answers, with the recorded semantics (``../shared/moodle-ws`` README §4, §5), what
``MoodleUsers``, ``MoodleCategories``, ``MoodleCourses`` and ``MoodleEnrolments`` (methods only)
call: users by field (email case-sensitive), create (whole batch: lower-case usernames only,
duplicate username or email, case-insensitive, a password policy, the recorded error bodies),
update (one transaction per item, warnings; a weak password makes the reply ``invalidresponse``
after the other items were applied), delete (scrambled username and email); categories; courses
by field (``ids`` with an unknown id is the PHP Error), create, update (warnings), delete and
sections. State is plain dicts; ``site.count(function)`` counts calls.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from syncd.platform.moodle._ws import SiteCache, Ws, ws_transaction
from syncd.platform.moodle.content import MoodleContent
from syncd.platform.moodle.courses import MoodleCategories, MoodleCourses
from syncd.platform.moodle.enrolments import MoodleEnrolments
from syncd.platform.moodle.users import MoodleUsers
from syncd.settings import MOODLE_ROLES
from tests.fakes import FakePlatform, FakeTx
from tests.unit.moodle_scripted import Scripted, recorded

INVALID = {"exception": "core\\exception\\invalid_parameter_exception", "errorcode": "invalidparameter",
           "message": "Invalid parameter value detected"}
_USERNAME = re.compile(r"[a-z0-9_.@-]+")
_AMP = re.compile(r"&(?!#?[A-Za-z0-9]+;)")


def policy_errors(password: str) -> str:
    """The site's password policy (8 characters, a digit, an upper case letter, a special one) as
    Moodle words a failure: HTML, empty when the password passes."""
    rules = [(len(password) >= 8, "Passwords must be at least 8 characters long."),
             (any(c.isdigit() for c in password), "Passwords must have at least 1 digit(s)."),
             (any(c.isupper() for c in password), "Passwords must have at least 1 upper case letter(s)."),
             (any(not c.isalnum() for c in password),
              "The password must have at least 1 special character(s) such as *, -, or #.")]
    return "".join(f"<div>{text}</div>" for ok, text in rules if not ok)


class CoreSite:
    """Users, categories and courses of a Moodle site, in memory (see the module docstring)."""

    def __init__(self) -> None:
        admin = {"id": 2, "username": "admin", "email": "admin@example.com", "firstname": "Admin",
                 "lastname": "User", "auth": "manual"}
        self.users: dict[int, dict[str, Any]] = {2: admin}
        self.categories: dict[int, dict[str, Any]] = {1: {"id": 1, "name": "Category 1", "parent": 0,
                                                          "idnumber": None, "description": ""}}
        self.courses: dict[int, dict[str, Any]] = {}
        self.sections: dict[int, list[dict[str, Any]]] = {}
        self.imports: list[tuple[int, int]] = []  # (from, to) of core_course_import_course
        self.import_fails = False
        self.langs = {"", "en"}
        self._next = 100
        self.client = Scripted(self.answer)

    def count(self, function: str) -> int:
        """How many calls of ``function`` were made."""
        return len(self.client.sent(function))

    def new_id(self) -> int:
        self._next += 1
        return self._next

    def add_user(self, username: str, **fields: Any) -> int:
        """Seed a user; its id."""
        user_id = self.new_id()
        self.users[user_id] = {"id": user_id, "username": username, "firstname": "Test", "lastname": username,
                               "email": f"{username}@univ.fr", "auth": "manual", **fields}
        return user_id

    def add_course(self, shortname: str, category: int = 1, sections: int = 0, **fields: Any) -> int:
        """Seed a course with sections 0..``sections``; its id."""
        course_id = self.new_id()
        self.courses[course_id] = {"id": course_id, "shortname": shortname, "fullname": shortname,
                                   "idnumber": "", "categoryid": category, "summary": "", "format": "topics",
                                   "visible": 1, "startdate": 0, "enddate": 0, "lang": "", "groupmode": 0,
                                   "maxbytes": 0, **fields}
        self.sections[course_id] = [{"id": self.new_id(), "section": n, "name": "General" if n == 0 else
                                     f"Section {n}", "summary": ""} for n in range(sections + 1)]
        return course_id

    def user(self, username: str) -> dict[str, Any] | None:
        """The live user with this username."""
        live = (u for u in self.users.values() if not u.get("deleted"))
        return next((u for u in live if u["username"] == username), None)

    def course(self, shortname: str) -> dict[str, Any] | None:
        """The course with this shortname."""
        return next((c for c in self.courses.values() if c["shortname"] == shortname), None)

    # -- answers --------------------------------------------------------------------------------

    def answer(self, function: str, params: Mapping[str, Any]) -> Any:
        handler = getattr(self, "_" + function.removeprefix("core_").replace("_", "__", 1), None)
        if handler is None:
            raise AssertionError(f"the mini site does not answer {function}")
        return handler(params)

    def _user__get_users_by_field(self, params: Mapping[str, Any]) -> Any:
        values = {str(v) for v in params["values"]}
        field = params["field"]
        shown = []
        for user in self.users.values():
            if str(user.get(field, "")) in values:
                shown.append({k: v for k, v in user.items() if k not in ("password", "deleted") and v != ""})
        return shown

    def _email_taken(self, email: str, other_than: int | None = None) -> bool:
        return any(u["email"].lower() == email.lower() and u["id"] != other_than and not u.get("deleted")
                   for u in self.users.values())

    def _user__create_users(self, params: Mapping[str, Any]) -> Any:
        created = []
        names: set[str] = set()
        for item in params["users"]:
            username, email = item["username"], item.get("email")
            if not _USERNAME.fullmatch(username) or email is None or "@" not in email:
                return INVALID
            if self.user(username) or username in names or self._email_taken(email):
                return INVALID  # rolled back whole: nothing was stored yet
            if "password" not in item and not item.get("createpassword"):
                return INVALID
            if item.get("lang", "") not in self.langs:
                return INVALID
            if "password" in item and (problems := policy_errors(item["password"])):
                return {"exception": "core\\exception\\moodle_exception", "errorcode": problems,
                        "message": f"error/{problems}"}
            names.add(username)
            created.append(item)
        reply = []
        for item in created:
            user_id = self.new_id()
            skipped = ("customfields", "preferences", "createpassword")
            fields = {k: v for k, v in item.items() if k not in skipped}
            profile = [{"type": "text", "shortname": f["type"], "name": f["type"], "value": f["value"]}
                       for f in item.get("customfields", [])]
            self.users[user_id] = {"id": user_id, **fields, **({"customfields": profile} if profile else {})}
            reply.append({"id": user_id, "username": item["username"]})
        return reply

    def _user__update_users(self, params: Mapping[str, Any]) -> Any:
        warnings = []
        weak = False
        for item in params["users"]:
            user = self.users.get(item["id"])
            if user is None or user.get("deleted"):
                warnings.append({"item": "user", "itemid": item["id"], "warningcode": "invaliduserid",
                                 "message": "Invalid user ID"})
                continue
            email = item.get("email", user["email"])
            if email != user["email"] and self._email_taken(email, user["id"]):
                warnings.append({"item": "user", "itemid": item["id"], "warningcode": "useremailduplicate",
                                 "message": "Duplicate address"})
                continue
            if "username" in item and (other := self.user(item["username"])) and other["id"] != user["id"]:
                warnings.append({"item": "user", "itemid": item["id"], "warningcode": "dmlwriteexception",
                                 "message": "Error writing to database"})
                continue
            if "password" in item and policy_errors(item["password"]):
                weak = True  # the item's transaction is rolled back; the reply cannot be validated
                continue
            user.update({k: v for k, v in item.items() if k != "customfields"})
        if weak:
            return recorded("core_user_update_users", "BUG: batch whose 2nd item")["response"]
        return {"warnings": warnings}

    def _user__delete_users(self, params: Mapping[str, Any]) -> Any:
        ids = params["userids"]
        if 2 in ids:
            return recorded("core_user_delete_users", "failure: site admin")["response"]
        if any(i not in self.users or self.users[i].get("deleted") for i in ids):
            return recorded("core_user_delete_users", "failure: unknown user id")["response"]
        for user_id in ids:
            user = self.users[user_id]
            user.update(deleted=1, username=f"{user['email']}.1795315162", idnumber="",
                        email=hashlib.md5(user["username"].encode()).hexdigest())
        return None

    def _course__get_categories(self, params: Mapping[str, Any]) -> Any:
        assert not params.get("criteria"), "the repository reads the categories whole"
        return [{**c, "name": _AMP.sub("&amp;", c["name"])} for c in self.categories.values()]

    def _course__create_categories(self, params: Mapping[str, Any]) -> Any:
        reply = []
        for item in params["categories"]:
            if item["parent"] and item["parent"] not in self.categories:
                return recorded("core_course_create_categories", "failure: unknown parent")["response"]
            category_id = self.new_id()
            self.categories[category_id] = {"id": category_id, "description": "", "idnumber": None, **item}
            reply.append({"id": category_id, "name": _AMP.sub("&amp;", item["name"])})
        return reply

    def _shown(self, course: Mapping[str, Any]) -> dict[str, Any]:
        return {**course, "fullname": _AMP.sub("&amp;", course["fullname"]),
                "shortname": _AMP.sub("&amp;", course["shortname"]), "enrollmentmethods": ["manual"]}

    def _course__get_courses_by_field(self, params: Mapping[str, Any]) -> Any:
        field, value = params["field"], str(params["value"])
        if field == "ids":
            ids = [int(v) for v in value.split(",")]
            if any(i not in self.courses for i in ids):
                return recorded("core_course_get_courses_by_field", "BUG: field=ids")["response"]
            found = [self.courses[i] for i in ids]
        else:
            key = "categoryid" if field == "category" else field
            found = [c for c in self.courses.values() if str(c[key]) == value]
        return {"courses": [self._shown(c) for c in found], "warnings": []}

    def _course__create_courses(self, params: Mapping[str, Any]) -> Any:
        names: set[str] = set()
        for item in params["courses"]:
            if item["categoryid"] not in self.categories:
                return recorded("core_course_create_courses", "failure: unknown categoryid")["response"]
            if item.get("lang", "") not in self.langs:
                return INVALID
            if self.course(item["shortname"]) or item["shortname"] in names:
                return recorded("core_course_create_courses", "failure: duplicate shortname")["response"]
            names.add(item["shortname"])
        reply = []
        for item in params["courses"]:
            course_id = self.add_course(item["shortname"], item["categoryid"])
            self.courses[course_id].update({k: v for k, v in item.items() if k != "courseformatoptions"})
            reply.append({"id": course_id, "shortname": item["shortname"]})
        return reply

    def _course__update_courses(self, params: Mapping[str, Any]) -> Any:
        warnings = []
        for item in params["courses"]:
            course = self.courses.get(item["id"])
            if course is None:
                warnings.append({"item": "course", "itemid": item["id"], "warningcode": "invalidrecord",
                                 "message": "Can't find data record in database table course."})
                continue
            other = self.course(item.get("shortname", course["shortname"]))
            if other is not None and other["id"] != course["id"]:
                warnings.append({"item": "course", "itemid": item["id"], "warningcode": "shortnametaken",
                                 "message": "Short name is already used for another course "
                                            f"({item['shortname']})"})
                continue
            course.update(item)  # no rollback inside an item (§5.4)
            if item.get("categoryid", 1) not in self.categories:
                warnings.append({"item": "course", "itemid": item["id"], "warningcode": "invalidrecord",
                                 "message": "Can't find data record in database table course_categories."})
        return {"warnings": warnings}

    def _course__delete_courses(self, params: Mapping[str, Any]) -> Any:
        warnings = []
        for course_id in params["courseids"]:
            if self.courses.pop(course_id, None) is None:
                warnings.append({"item": "course", "itemid": course_id,
                                 "warningcode": "unknowncourseidnumber",
                                 "message": f"Unknown course ID {course_id}"})
        return {"warnings": warnings}

    def _course__import_course(self, params: Mapping[str, Any]) -> Any:
        """Sections of the source copied into the target (by number); ``import_fails``: Moodle's
        recorded unknown-course error although both exist (a broken backup, say)."""
        source, target = params["importfrom"], params["importto"]
        if source not in self.courses or target not in self.courses or self.import_fails:
            return recorded("core_course_import_course", "failure: unknown source course")["response"]
        mine = {s["section"]: s for s in self.sections[target]}
        for section in self.sections[source]:
            if section["section"] not in mine:
                self.sections[target].append({**section, "id": self.new_id()})
        self.imports.append((source, target))
        return None

    def _course__get_contents(self, params: Mapping[str, Any]) -> Any:
        if params["courseid"] not in self.courses:
            return recorded("core_course_get_contents", "failure: unknown course id")["response"]
        return [{**s, "name": html.escape(s["name"], quote=False), "modules": []}
                for s in self.sections[params["courseid"]]]


class _Roles:
    def all(self) -> dict[str, int]:
        return dict(MOODLE_ROLES)


class CoreTx:
    """PlatformTx: the Moodle repositories over a CoreSite; the fake's checkpoints and files."""

    def __init__(self, local: FakeTx, ws: Ws) -> None:
        self._local = local
        self.ws = ws
        self.users = MoodleUsers(ws)
        self.categories = MoodleCategories(ws)
        self.courses = MoodleCourses(ws)
        self.enrolments = MoodleEnrolments(ws)
        self.content = MoodleContent(ws)
        self.roles = _Roles()
        self.cohorts = local.cohorts
        self.groups = local.groups
        self.files = local.files
        self.pictures = local.pictures

    def copy_course(self, source_id: int, target_id: int) -> None:
        """As MoodleTx: Moodle's course import."""
        self.courses.import_content(source_id, target_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._local, name)  # checkpoints


class CorePlatform:
    """A platform over a CoreSite, transactions like MoodlePlatform's (cache dropped after an error
    or a dry run)."""

    def __init__(self, site: CoreSite, *, batch_size: int = 100) -> None:
        self.site = site
        self.local = FakePlatform()
        self.cache = SiteCache()
        self.batch_size = batch_size

    @contextmanager
    def transaction(self, *, rollback: bool = False) -> Iterator[CoreTx]:
        """A Ws per transaction over the site's scripted client."""
        with (self.local.transaction(rollback=rollback) as local,
              ws_transaction(self.site.client, self.batch_size, self.cache,  # type: ignore[arg-type]
                             dry_run=rollback) as ws):
            yield CoreTx(local, ws)

    def close(self) -> None:
        """Nothing to release."""
