"""Enrolment methods of Moodle courses as syncd sees them, and the ids syncd gives them.

Moodle's web services list no enrolment instance with its id:
``core_enrol_get_course_enrolment_methods`` never lists the manual instance (recordings
README §5.12) and costs a call per course, while ``core_course_get_courses_by_field``
(``field=ids``, many courses a call) gives each course's ``enrollmentmethods``: the plugin
names of its *enabled* instances, manual included. Decisions:

- A course's methods are read that way, a chunk of ``batch_size`` courses a call, and kept
  in the site cache (:data:`METHODS`). An unknown id makes ``field=ids`` fail whole with a
  PHP Error (§5.3): that chunk is then read again one ``field=id`` call per course.
- One :class:`~syncd.platform.model.EnrolMethod` per plugin name and course (several
  instances of one plugin, e.g. two cohort syncs, show as one), with a synthetic id that
  encodes (course id, plugin): ``course_id * 16 + code``. A user enrolment's id encodes
  (method id, user id): ``method_id << 32 | user_id``. Both decode back (see ``decode_*``).
- The manual method is reported for every course: enabled when Moodle lists it, else
  disabled (Moodle does not say whether a missing one is disabled or deleted; either way
  ``enrol_manual_enrol_users`` refuses it with ``wsnoinstance``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from syncd.domain import PlatformRefused
from syncd.platform.moodle._ws import Ws, chunked
from syncd.platform.moodle.errors import MoodleWsError

MANUAL = "manual"
#: the site-cache entry: course id -> plugin names of its enabled instances
METHODS = "moodle.enrol.methods"
COURSES_BY_FIELD = "core_course_get_courses_by_field"
#: enrolment plugins of a stock Moodle, coded 1..14 in method ids (15 = any other plugin)
PLUGINS = ("manual", "self", "guest", "cohort", "flatfile", "meta", "category", "database", "fee",
           "imsenterprise", "ldap", "lti", "mnet", "paypal")
_OTHER = 15
_USER_BITS = 32


def method_id(course_id: int, name: str) -> int:
    """The synthetic id of a course's method ``name``."""
    code = PLUGINS.index(name) + 1 if name in PLUGINS else _OTHER
    return course_id * 16 + code


def decode_method(method: int) -> tuple[int, str | None]:
    """(course id, plugin name) of a method id; the name is None for a plugin not in :data:`PLUGINS`."""
    course_id, code = divmod(method, 16)
    return course_id, PLUGINS[code - 1] if 1 <= code <= len(PLUGINS) else None


def enrolment_id(course_id: int, user_id: int, name: str = MANUAL) -> int:
    """The synthetic id of a user's enrolment through a course's method."""
    if not 0 < user_id < 1 << _USER_BITS:
        raise PlatformRefused(f"moodle: user id {user_id} is out of the range syncd can address")
    return method_id(course_id, name) << _USER_BITS | user_id


def decode_enrolment(enrolment: int) -> tuple[int, int, str | None]:
    """(course id, user id, plugin name) of an enrolment id."""
    course_id, name = decode_method(enrolment >> _USER_BITS)
    return course_id, enrolment & ((1 << _USER_BITS) - 1), name


def _cache(ws: Ws) -> dict[int, tuple[str, ...]]:
    empty: dict[int, tuple[str, ...]] = {}
    return ws.cache.get(METHODS, lambda: empty)


def _names(reply: Any) -> dict[int, tuple[str, ...]]:
    courses = reply.get("courses") if isinstance(reply, dict) else None
    found: dict[int, tuple[str, ...]] = {}
    for course in courses if isinstance(courses, list) else []:
        if isinstance(course, dict) and isinstance(course.get("id"), int):
            listed = course.get("enrollmentmethods")
            names = [str(n) for n in listed] if isinstance(listed, list) else []
            found[course["id"]] = tuple(dict.fromkeys(names))
    return found


def _php_error(exc: PlatformRefused) -> bool:
    cause = exc.__cause__
    return isinstance(cause, MoodleWsError) and cause.errorcode is None


def enabled_methods(ws: Ws, course_ids: Iterable[int]) -> dict[int, tuple[str, ...]]:
    """Plugin names of the enabled instances of these courses (unknown courses left out)."""
    cache = _cache(ws)
    wanted = {c for c in course_ids if c > 0}
    missing = sorted(c for c in wanted if c not in cache)
    for chunk in chunked(missing, ws.batch_size):
        try:
            reply = ws.read(COURSES_BY_FIELD, {"field": "ids", "value": ",".join(map(str, chunk))})
            found = _names(reply)
        except PlatformRefused as exc:
            if not _php_error(exc):
                raise
            found = {}  # one of them does not exist (§5.3): ask one by one
            for one in ws.read_all(COURSES_BY_FIELD, [{"field": "id", "value": str(c)} for c in chunk]):
                found.update(_names(one))
        for course_id, names in found.items():
            cache[course_id] = names
    return {c: cache[c] for c in wanted if c in cache}
