"""Enrolment methods, user enrolments and course roles on Moodle (implements EnrolmentRepository).

What Moodle's web services offer, and the decisions taken (recordings README §4, §5):

- **Methods** (see ``_enrolmethods``): read from ``enrollmentmethods`` of
  ``core_course_get_courses_by_field``; synthetic ids (course, plugin). Nothing about an
  enrolment instance can be written: ``add_methods`` accepts only the manual instance a
  course already has (a no-op: a stock course gets one); adding any other (self, guest,
  cohort sync: so ``cohort_courses`` rows get a clear error), enabling, disabling or
  deleting one is ``not supported``. ``methods_of_cohorts`` is empty on purpose: Moodle's
  own cohort sync plugin carries cohort membership changes to courses by itself.
- **Enrolments** are read from the course rosters (``_roster``: one
  ``core_enrol_get_enrolled_users`` per course, cached across transactions, plus one
  ``onlyactive=1`` read when someone's status is asked). Moodle does not say through which
  instance a user is enrolled: every enrolled user is reported as *one* enrolment through
  the manual method (id encodes course and user). Only those can be written:
  ``enrol_manual_enrol_users`` (re-enrolling updates dates and status) and
  ``enrol_manual_unenrol_users``. After an unenrolment the rosters are read again: a user
  still enrolled (through self, cohort...) is a refusal naming them, never a silent "deleted".
- **Status and dates**: ``active`` = listed by ``onlyactive=1`` (Moodle also leaves out an
  enrolment outside its dates there). Dates cannot be read at all. This process remembers
  what it last wrote for each enrolment (``SiteCache.kept``, which a dropped cache keeps)
  and reports that while it agrees with what Moodle shows (listed as active exactly when
  the remembered status and dates say so); otherwise the status seen and no dates. So a
  row with dates is reported "updated" (and sent again, which is harmless) once per
  process for an enrolment it did not write itself; a date changed in Moodle's UI without
  a change of status is not seen (nor a suspension made in Moodle of an enrolment whose
  remembered dates already keep it out of ``onlyactive``). A dry run writes to a copy of the
  memory that goes with the cache at its end.
- **Roles** are the roster's roles of enrolled users (Moodle shows no role of a user who
  is not enrolled; roles syncd gives such users are remembered in the roster).
  ``core_role_assign_roles`` / ``core_role_unassign_roles`` (array ``unassignments``) in
  the course context; already held / absent ones are not sent.
- **A new enrolment is sent with a role**: ``enrol_manual_enrol_users`` needs one and
  assigns it. ``add`` sends at once the enrolments of users who hold a role in the course;
  the others wait for the ``assign`` of the same transaction (every processor gives a role
  with a new enrolment, right after ``add``) and go in one call with their first role. An
  ``assign`` that leaves a waiting enrolment without a role is a refusal (a transaction that
  adds one and never calls ``assign`` would not send it: the port has no end-of-transaction
  hook to catch that, and no processor does it). ``update`` of a
  user with no role in the course enrols with a role some user has there and takes it
  back (two more calls; no such role at all: refused).
- **Errors**: whole-batch calls raise for the batch (the runner isolates the row); a
  one-item refusal names the item. "Message was not sent." after committing (§5.1) is a
  success when the roster read again shows the users enrolled. An unknown user id makes
  ``enrol_manual_enrol_users`` crash with a PHP TypeError (§5.2): refused with that reason.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Any

from syncd.domain import PlatformRefused
from syncd.platform.model import Enrolment, EnrolMethod, RoleAssignment
from syncd.platform.moodle._chunks import send
from syncd.platform.moodle._enrolmethods import (
    MANUAL,
    decode_enrolment,
    decode_method,
    enabled_methods,
    enrolment_id,
    method_id,
)
from syncd.platform.moodle._roster import Roster, load_status, refresh, rosters
from syncd.platform.moodle._ws import Ws, not_supported
from syncd.platform.moodle.errors import MoodleWsError

ENROL = "enrol_manual_enrol_users"
UNENROL = "enrol_manual_unenrol_users"
ASSIGN = "core_role_assign_roles"
UNASSIGN = "core_role_unassign_roles"
#: the kept (never dropped) site-cache entry: (course, user) -> what this process wrote last
DATES = "moodle.enrol.dates"
#: a dry run's copy of it, in the ordinary cache (dropped when the dry run ends)
DRY_DATES = "moodle.enrol.dates.dry"

Pair = tuple[int, int]
Written = tuple[bool, datetime | None, datetime | None]
_PLAIN: Written = (True, None, None)


def _epoch(when: datetime) -> int:
    return int((when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp())


def _shown(state: Written, now: datetime) -> bool:
    """Whether ``onlyactive=1`` lists an enrolment in this state."""
    active, start, end = state
    aware = [None if d is None else (d if d.tzinfo else d.replace(tzinfo=UTC)) for d in (start, end)]
    return active and (aware[0] is None or aware[0] <= now) and (aware[1] is None or aware[1] > now)


def _course_roles(assignment: RoleAssignment) -> dict[str, Any]:
    return {"roleid": assignment.role_id, "userid": assignment.user_id, "contextlevel": "course",
            "instanceid": assignment.course_id}


#: the undo of an unassignment (see _chunks.send)
GIVE_BACK = (ASSIGN, "assignments", _course_roles)


def _unenrol_item(item: tuple[Enrolment, int]) -> dict[str, Any]:
    return {"userid": item[0].user_id, "courseid": item[0].course_id}


def _role_text(assignment: RoleAssignment) -> str:
    return f"role {assignment.role_id} of user {assignment.user_id} in course {assignment.course_id}"


def _enrol_item(item: tuple[Enrolment, int]) -> dict[str, Any]:
    e, role = item
    return {"roleid": role, "userid": e.user_id, "courseid": e.course_id,
            "timestart": None if e.start is None else _epoch(e.start),
            "timeend": None if e.end is None else _epoch(e.end), "suspend": None if e.active else 1}


def _enrol_text(item: tuple[Enrolment, int]) -> str:
    return f"user {item[0].user_id} in course {item[0].course_id} with role {item[1]}"


class MoodleEnrolments:
    """Enrolment methods, user enrolments and course roles of a Moodle site (see the module docstring)."""

    def __init__(self, ws: Ws) -> None:
        self._ws = ws
        self._waiting: dict[Pair, Enrolment] = {}  # new enrolments waiting for their role
        self._left: set[Pair] = set()  # unenrolled by this transaction: Moodle took their roles

    # -- methods ---------------------------------------------------------------------

    def methods(self, course_ids: Collection[int]) -> list[EnrolMethod]:
        """The manual method of every course, and its other enabled methods."""
        found = enabled_methods(self._ws, course_ids)
        methods = []
        for course_id in sorted(found):
            names = found[course_id]
            methods.append(EnrolMethod(course_id, MANUAL, MANUAL in names, id=method_id(course_id, MANUAL)))
            methods += [EnrolMethod(course_id, n, True, id=method_id(course_id, n))
                        for n in names if n != MANUAL]
        return methods

    def methods_of_cohorts(self, cohort_ids: Collection[int]) -> list[EnrolMethod]:
        """None: Moodle's cohort sync follows cohort membership by itself."""
        return []

    def add_methods(self, methods: Sequence[EnrolMethod]) -> None:
        """Only the enabled manual method a course already has (nothing is written)."""
        for method in methods:
            if method.method != MANUAL:
                raise not_supported(f"adding a {method.method!r} enrolment method to a course "
                                    "(enrolment instances cannot be created through the web services)")
        found = enabled_methods(self._ws, [m.course_id for m in methods])
        for method in methods:
            if method.course_id <= 0 and self._ws.dry_run:
                method.id = self._ws.fake_id()
            elif MANUAL in found.get(method.course_id, ()):
                method.id = method_id(method.course_id, MANUAL)
            else:
                raise not_supported(
                    f"adding or enabling the manual enrolment method of course {method.course_id}")

    def update_methods(self, methods: Sequence[EnrolMethod]) -> None:
        """Nothing can change: refused unless the method already is as given."""
        found = enabled_methods(self._ws, [m.course_id for m in methods])
        for method in methods:
            if method.method == "cohort":
                raise not_supported("changing a cohort sync enrolment method")
            if method.enabled != (method.method in found.get(method.course_id, ())):
                verb = "enabling" if method.enabled else "disabling"
                raise not_supported(
                    f"{verb} the {method.method!r} enrolment method of course {method.course_id}")

    def delete_methods(self, method_ids: Collection[int]) -> None:
        """Refused: enrolment instances cannot be removed through the web services."""
        if method_ids:
            raise not_supported("deleting enrolment methods (not possible through the web services)")

    # -- reading enrolments ------------------------------------------------------------

    def find(self, pairs: Collection[tuple[int, int]]) -> list[Enrolment]:
        """The enrolment of each (course, user) pair that is enrolled."""
        found = rosters(self._ws, {c for c, _u in pairs})
        load_status(self._ws, found, {c for c, u in pairs if found[c].is_enrolled(u)})
        return [self._enrolment(c, u, found[c]) for c, u in sorted(set(pairs)) if found[c].is_enrolled(u)]

    def in_courses(self, course_ids: Collection[int]) -> list[Enrolment]:
        """Every enrolled user of these courses."""
        found = rosters(self._ws, course_ids)
        load_status(self._ws, found, course_ids)
        return [self._enrolment(c, u, found[c]) for c in sorted(found) for u in sorted(found[c].roles)]

    def _memory(self) -> dict[Pair, Written]:
        empty: dict[Pair, Written] = {}
        kept = self._ws.cache.kept(DATES, lambda: empty)
        if not self._ws.dry_run:
            return kept
        return self._ws.cache.get(DRY_DATES, lambda: dict(kept))  # dropped with the cache after the dry run

    def _enrolment(self, course_id: int, user_id: int, roster: Roster) -> Enrolment:
        seen = roster.active is None or user_id in roster.active
        written = self._memory().get((course_id, user_id), _PLAIN)
        active, start, end = written if _shown(written, datetime.now(UTC)) == seen else (seen, None, None)
        eid = enrolment_id(course_id, user_id) if course_id > 0 < user_id else self._ws.fake_id()
        return Enrolment(method_id(course_id, MANUAL), course_id, user_id, active, start, end, id=eid)

    # -- writing enrolments ------------------------------------------------------------

    def _check_manual(self, enrolment: Enrolment) -> None:
        if enrolment.method_id < 0 or enrolment.course_id <= 0 or enrolment.user_id <= 0:
            if self._ws.dry_run:
                return
            raise PlatformRefused(f"moodle: enrolment of user {enrolment.user_id} in course "
                                  f"{enrolment.course_id} has no Moodle ids")
        course_id, name = decode_method(enrolment.method_id)
        if course_id != enrolment.course_id:
            raise PlatformRefused(
                f"moodle: method {enrolment.method_id} is not of course {enrolment.course_id}")
        if name != MANUAL:
            raise not_supported(f"writing a {name or 'non-manual'} enrolment (only manual enrolments can be)")

    def add(self, enrolments: Sequence[Enrolment]) -> None:
        """Enrol (manual): at once with a role the user holds, else with the role ``assign`` gives."""
        for enrolment in enrolments:
            self._check_manual(enrolment)
        found = rosters(self._ws, {e.course_id for e in enrolments})
        now: list[tuple[Enrolment, int]] = []
        for e in enrolments:
            real = e.course_id > 0 and e.user_id > 0
            e.id = enrolment_id(e.course_id, e.user_id) if real else self._ws.fake_id()
            held = found[e.course_id].roles_of(e.user_id)
            if held:
                now.append((e, min(held)))
            else:
                self._waiting[(e.course_id, e.user_id)] = e
        self._enrol(now, new=True)

    def update(self, enrolments: Sequence[Enrolment]) -> None:
        """Re-enrol with the new status and dates (and a role the user holds: Moodle needs one)."""
        for enrolment in enrolments:
            self._check_manual(enrolment)
        found = rosters(self._ws, {e.course_id for e in enrolments})
        items: list[tuple[Enrolment, int]] = []
        spares: list[RoleAssignment] = []
        for e in enrolments:
            if (e.course_id, e.user_id) in self._waiting:
                continue  # new in this transaction: sent with its role, as it is then
            roster = found[e.course_id]
            held = roster.roles_of(e.user_id)
            if not held:
                anyone = set().union(*roster.roles.values()) if roster.roles else set()
                if not anyone:
                    raise PlatformRefused(
                        f"moodle: cannot change the enrolment of user {e.user_id} in course {e.course_id}: "
                        f"{ENROL} always gives a role, and no role is held in that course")
                held = {min(anyone)}
                spares.append(RoleAssignment(e.course_id, e.user_id, min(anyone)))
            items.append((e, min(held)))
        self._enrol(items)
        send(self._ws, UNASSIGN, "unassignments", spares, _course_roles, _role_text, done=self._taken,
             undo=GIVE_BACK)

    def _enrol(self, items: Sequence[tuple[Enrolment, int]], *, new: bool = False) -> None:
        """Enrol with a role; ``new`` enrolments are unenrolled again if the transaction fails."""
        def applied(chunk: Sequence[tuple[Enrolment, int]]) -> bool:
            pairs = {(e.course_id, e.user_id) for e, _r in chunk}
            fresh = refresh(self._ws, {c for c, _u in pairs}, pairs)
            return all(fresh[c].is_enrolled(u) for c, u in pairs)

        send(self._ws, ENROL, "enrolments", items, _enrol_item, _enrol_text, done=self._enrolled,
             applied=applied, refusal=_crash, undo=(UNENROL, "enrolments", _unenrol_item) if new else None)

    def _enrolled(self, chunk: Sequence[tuple[Enrolment, int]]) -> None:
        found = rosters(self._ws, {e.course_id for e, _r in chunk})
        now = datetime.now(UTC)
        for e, role in chunk:
            state: Written = (e.active, e.start, e.end)
            roster = found[e.course_id]
            roster.enrol(e.user_id, _shown(state, now))
            roster.give(e.user_id, role)
            pair = (e.course_id, e.user_id)
            self._left.discard(pair)
            if state == _PLAIN:
                self._memory().pop(pair, None)
            else:
                self._memory()[pair] = state

    def delete(self, enrolment_ids: Collection[int]) -> None:
        """Unenrol (manual); then check, on the rosters read again, that the users left."""
        pairs: list[Pair] = []
        for eid in sorted(set(enrolment_ids)):
            if eid < 0 and self._ws.dry_run:
                continue
            course_id, user_id, name = decode_enrolment(eid)
            if name != MANUAL:
                raise not_supported(
                    f"removing a {name or 'non-manual'} enrolment (only manual enrolments can be)")
            pairs.append((course_id, user_id))
        for pair in pairs:
            self._waiting.pop(pair, None)
        send(self._ws, UNENROL, "enrolments", pairs, lambda p: {"userid": p[1], "courseid": p[0]},
             lambda p: f"user {p[1]} in course {p[0]}")
        stayed = self._left_behind(pairs)
        for pair in pairs:
            if pair not in stayed:
                self._left.add(pair)
                self._memory().pop(pair, None)
        if stayed:
            who = ", ".join(f"user {u} in course {c}" for c, u in stayed[:5])
            raise PlatformRefused(
                f"moodle: still enrolled after {UNENROL}: {who}: enrolled through another method than "
                "manual (self, cohort...), which the web services cannot remove")

    def _left_behind(self, pairs: Sequence[Pair]) -> list[Pair]:
        """The unenrolled pairs the rosters, read again, still show (dry run: none; rosters updated)."""
        if not pairs:
            return []
        courses = {c for c, _u in pairs}
        if self._ws.dry_run:
            found = rosters(self._ws, courses)
            for course_id, user_id in pairs:
                found[course_id].unenrol(user_id)
            return []
        fresh = refresh(self._ws, courses)
        return [(c, u) for c, u in pairs if fresh[c].is_enrolled(u)]

    # -- roles -----------------------------------------------------------------------

    def roles(self, pairs: Collection[tuple[int, int]]) -> list[RoleAssignment]:
        """The course roles of these (course, user) pairs."""
        found = rosters(self._ws, {c for c, _u in pairs})
        return [RoleAssignment(c, u, r) for c, u in sorted(set(pairs)) for r in sorted(found[c].roles_of(u))]

    def roles_in_courses(self, course_ids: Collection[int]) -> list[RoleAssignment]:
        """Every course role in these courses."""
        found = rosters(self._ws, course_ids)
        return [RoleAssignment(c, u, r) for c in sorted(found)
                for u in sorted({*found[c].roles, *found[c].role_only}) for r in sorted(found[c].roles_of(u))]

    def assign(self, assignments: Collection[RoleAssignment]) -> None:
        """Give roles; a waiting new enrolment goes with the first role of its pair."""
        ordered = sorted(set(assignments), key=lambda a: (a.course_id, a.user_id, a.role_id))
        given = {(a.course_id, a.user_id) for a in ordered}
        orphans = sorted(p for p in self._waiting if p not in given)
        if orphans:
            self._waiting.clear()
            who = ", ".join(f"user {u} in course {c}" for c, u in orphans[:5])
            raise PlatformRefused(f"moodle: a new enrolment needs a role ({ENROL} gives one); none for {who}")
        items: list[tuple[Enrolment, int]] = []
        rest: list[RoleAssignment] = []
        for a in ordered:
            waiting = self._waiting.pop((a.course_id, a.user_id), None)
            if waiting is not None:
                items.append((waiting, a.role_id))
            else:
                rest.append(a)
        self._enrol(items, new=True)
        found = rosters(self._ws, {a.course_id for a in rest})
        todo = [a for a in rest if a.role_id not in found[a.course_id].roles_of(a.user_id)]
        send(self._ws, ASSIGN, "assignments", todo, _course_roles, _role_text, done=self._given,
             undo=(UNASSIGN, "unassignments", _course_roles))

    def unassign(self, assignments: Collection[RoleAssignment]) -> None:
        """Take roles back (those known absent are not sent)."""
        found = rosters(self._ws, {a.course_id for a in assignments})
        todo = []
        for a in sorted(set(assignments), key=lambda a: (a.course_id, a.user_id, a.role_id)):
            roster = found[a.course_id]
            gone = (a.course_id, a.user_id) in self._left
            if gone or (roster.is_enrolled(a.user_id) and a.role_id not in roster.roles[a.user_id]):
                continue
            todo.append(a)
        send(self._ws, UNASSIGN, "unassignments", todo, _course_roles, _role_text, done=self._taken,
             undo=GIVE_BACK)

    def _given(self, chunk: Sequence[RoleAssignment]) -> None:
        found = rosters(self._ws, {a.course_id for a in chunk})
        for a in chunk:
            found[a.course_id].give(a.user_id, a.role_id)

    def _taken(self, chunk: Sequence[RoleAssignment]) -> None:
        found = rosters(self._ws, {a.course_id for a in chunk})
        for a in chunk:
            found[a.course_id].take(a.user_id, a.role_id)


def _crash(exc: PlatformRefused, chunk: Sequence[tuple[Enrolment, int]]) -> PlatformRefused | None:
    """§5.2: a PHP TypeError (no errorcode) is what Moodle answers for an unknown or deleted user."""
    cause = exc.__cause__
    if not isinstance(cause, MoodleWsError) or cause.errorcode is not None:
        return None
    who = "; ".join(_enrol_text(item) for item in chunk[:5])
    return PlatformRefused(f"moodle: {ENROL} crashed (PHP {cause.exception}), as Moodle does for a user id "
                           f"that does not exist or was deleted: {who}")
