"""The enrolled users of a course as ``core_enrol_get_enrolled_users`` shows them.

Shared by :class:`~syncd.platform.moodle.enrolments.MoodleEnrolments` (enrolments and
course roles) and :class:`~syncd.platform.moodle.groups.MoodleGroups` (group members):
Moodle's web services have no cheaper way to list who is enrolled in a course, with which
roles and in which groups, than this one call per course. Decisions:

- One :class:`Roster` per course, read once and kept in the site cache under
  :data:`ROSTERS` (across transactions) until the cache is dropped. Every write of the two
  repositories keeps the cached rosters right (or reads them again).
- The main read asks for ``userfields=id,roles,groups`` and shows suspended and expired
  enrolments too. Who is *active* takes a second read (``onlyactive=1``, ids only), made
  only when a caller needs it and the course has someone enrolled (:func:`load_status`).
- ``roles`` are the user's roles in the course context; ``groups`` the course groups the
  user is in. Moodle lists groups of the course's default grouping only (when the course
  has one, groups outside it are not seen) and shows roles of enrolled users only:
  roles syncd gave to users who are not enrolled are remembered in ``role_only``.
- A user who leaves (the last enrolment goes) loses the roles and groups of the course,
  as Moodle does.
- Course ids <= 0 are courses a dry run pretends to create: their roster is empty and
  never read.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from syncd.platform.moodle._ws import Ws

#: the site-cache entry: course id -> Roster
ROSTERS = "moodle.rosters"
ENROLLED_USERS = "core_enrol_get_enrolled_users"


@dataclass(slots=True)
class Roster:
    """Who is enrolled in one course, with roles and groups (see the module docstring)."""

    roles: dict[int, set[int]] = field(default_factory=dict)  # enrolled user -> role ids
    groups: dict[int, set[int]] = field(default_factory=dict)  # enrolled user -> group ids
    role_only: dict[int, set[int]] = field(default_factory=dict)  # not enrolled user -> role ids
    active: set[int] | None = None  # enrolled users onlyactive=1 shows; None = not read
    written: dict[int, bool] = field(default_factory=dict)  # shown or not, by writes before that read

    def is_enrolled(self, user_id: int) -> bool:
        """Whether the user is enrolled (active or not)."""
        return user_id in self.roles

    def roles_of(self, user_id: int) -> set[int]:
        """The user's roles in the course (a copy)."""
        if user_id in self.roles:
            return set(self.roles[user_id])
        return set(self.role_only.get(user_id, ()))

    def enrol(self, user_id: int, shown_active: bool) -> None:
        """The user is enrolled now; ``shown_active``: whether onlyactive=1 lists them."""
        if user_id not in self.roles:
            self.roles[user_id] = self.role_only.pop(user_id, set())
            self.groups[user_id] = set()
        if self.active is None:
            self.written[user_id] = shown_active  # a dry run's read would not show it
        elif shown_active:
            self.active.add(user_id)
        else:
            self.active.discard(user_id)

    def unenrol(self, user_id: int) -> None:
        """The user's last enrolment is gone: and with it their roles and groups here."""
        self.roles.pop(user_id, None)
        self.groups.pop(user_id, None)
        self.role_only.pop(user_id, None)
        self.written.pop(user_id, None)
        if self.active is not None:
            self.active.discard(user_id)

    def give(self, user_id: int, role_id: int) -> None:
        """The user has the role in the course now."""
        held = self.roles[user_id] if user_id in self.roles else self.role_only.setdefault(user_id, set())
        held.add(role_id)

    def take(self, user_id: int, role_id: int) -> None:
        """The user no longer has the role."""
        self.roles.get(user_id, set()).discard(role_id)
        self.role_only.get(user_id, set()).discard(role_id)

    def members(self, group_id: int) -> set[int]:
        """The users in a group of this course."""
        return {user for user, groups in self.groups.items() if group_id in groups}


def cached(ws: Ws) -> dict[int, Roster]:
    """The rosters read so far (course id -> roster), to keep right after a write."""
    empty: dict[int, Roster] = {}
    return ws.cache.get(ROSTERS, lambda: empty)


def drop(ws: Ws, course_ids: Iterable[int] | None = None) -> None:
    """Forget the cached rosters of these courses (every roster when None): read again when needed."""
    if course_ids is None:
        ws.cache.forget(ROSTERS)
        return
    cache = cached(ws)
    for course_id in course_ids:
        cache.pop(course_id, None)


def main_params(course_id: int) -> dict[str, Any]:
    """The request for a course's roster: every enrolled user, with roles and groups."""
    return {"courseid": course_id, "options": [{"name": "userfields", "value": "id,roles,groups"}]}


def status_params(course_id: int) -> dict[str, Any]:
    """The request for a course's active users (ids only)."""
    return {"courseid": course_id, "options": [
        {"name": "userfields", "value": "id"}, {"name": "onlyactive", "value": 1}]}


def _ids(items: Any, key: str) -> set[int]:
    if not isinstance(items, list):
        return set()
    return {int(i[key]) for i in items if isinstance(i, dict) and isinstance(i.get(key), int)}


def parse(reply: Any) -> Roster:
    """A roster from a get_enrolled_users reply."""
    roster = Roster()
    for user in reply if isinstance(reply, list) else []:
        if isinstance(user, dict) and isinstance(user.get("id"), int):
            roster.roles[user["id"]] = _ids(user.get("roles"), "roleid")
            roster.groups[user["id"]] = _ids(user.get("groups"), "id")
    return roster


def rosters(ws: Ws, course_ids: Iterable[int]) -> dict[int, Roster]:
    """The rosters of these courses: cached ones, the others read in parallel and cached."""
    cache = cached(ws)
    wanted = set(course_ids)
    missing = sorted(c for c in wanted if c not in cache)
    real = [c for c in missing if c > 0]
    for course_id, reply in zip(real, ws.read_all(ENROLLED_USERS, [main_params(c) for c in real]),
                                strict=True):
        cache.setdefault(course_id, parse(reply))
    for course_id in missing:
        if course_id <= 0:
            cache.setdefault(course_id, Roster())
    return {c: cache[c] for c in wanted}


def load_status(ws: Ws, found: Mapping[int, Roster], course_ids: Collection[int]) -> None:
    """Read who is active in these courses (where not known and someone is enrolled)."""
    todo = sorted(c for c in course_ids if c > 0 and found[c].active is None and found[c].roles)
    for course_id, reply in zip(todo, ws.read_all(ENROLLED_USERS, [status_params(c) for c in todo]),
                                strict=True):
        roster = found[course_id]
        roster.active = _ids(reply, "id") & set(roster.roles)
        roster.active |= {u for u, shown in roster.written.items() if shown and u in roster.roles}
        roster.active -= {u for u, shown in roster.written.items() if not shown}
        roster.written.clear()
    for course_id in course_ids:
        if found[course_id].active is None and not found[course_id].roles:
            found[course_id].active = set()


def refresh(ws: Ws, course_ids: Collection[int],
            settled: Collection[tuple[int, int]] = ()) -> dict[int, Roster]:
    """Read these rosters again (to check a write), replacing the cached ones.

    Who is active is carried over from the old roster for the users it knew, and for the
    ``settled`` (course, user) pairs whose state the caller is about to set; when someone
    else appeared, it is left unknown (read again when needed). ``role_only`` is kept for
    users who are still not enrolled.
    """
    cache = cached(ws)
    real = sorted(c for c in set(course_ids) if c > 0)
    fresh = dict(zip(real, (parse(r) for r in ws.read_all(ENROLLED_USERS, [main_params(c) for c in real])),
                     strict=True))
    for course_id, roster in fresh.items():
        old = cache.get(course_id)
        if old is not None:
            roster.role_only = {u: r for u, r in old.role_only.items() if u not in roster.roles}
            known = set(old.roles) | {u for c, u in settled if c == course_id}
            if old.active is not None and set(roster.roles) <= known:
                roster.active = old.active & set(roster.roles)
        cache[course_id] = roster
    return fresh
