"""The working set of the cohort_courses processor: cohort-sync bindings and what they give.

:class:`Sync` holds, for one batch, every enrolment method of the batch's courses (each
wrapped in a :class:`Binding` with its user enrolments), their role assignments, groups
and group members, and the members of the batch's cohorts. Rows change it in order; the
flush writes the net difference with one call per kind: groups and memberships, deleted,
new and changed methods, deleted, changed and new enrolments, removed and added roles.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Set
from dataclasses import dataclass, field

from syncd.platform.base import PlatformTx
from syncd.platform.model import Enrolment, EnrolMethod, RoleAssignment
from syncd.processors._groupcommon import Group, GroupSet

COHORT = "cohort"
Pair = tuple[int, int]  # (course_id, user_id)


@dataclass(eq=False, slots=True)
class Binding:
    """An enrolment method of a batch's course with its enrolments by user id.

    For a cohort-sync method, ``group`` is the group its members are put in (makegroup).
    """

    method: EnrolMethod
    users: dict[int, Enrolment] = field(default_factory=dict)
    group: Group | None = None
    #: (enabled, role_id, group_id) as stored; None for a method new in this batch
    stored: tuple[bool, int | None, int | None] | None = None
    loaded: frozenset[int] = frozenset()  # ids of the enrolments read
    deleted: bool = False


class Sync:
    """Cohort bindings of a batch's courses, synced row by row, written by :meth:`flush`."""

    def __init__(self, tx: PlatformTx, groups: GroupSet, members: Collection[Pair]) -> None:
        self._tx = tx
        self.groups = groups
        self._cohort_members: dict[int, set[int]] = {}
        for cohort_id, user_id in members:
            self._cohort_members.setdefault(cohort_id, set()).add(user_id)
        self._all: list[Binding] = []
        self._by_course: dict[int, list[Binding]] = {}
        self._bindings: dict[Pair, Binding] = {}  # (course_id, cohort_id) -> live cohort binding
        self._active: dict[int, bool] = {}  # enrolment id -> active as stored
        self._roles: dict[Pair, set[int]] = {}
        self._stored_roles: dict[Pair, frozenset[int]] = {}

    @classmethod
    def load(cls, tx: PlatformTx, course_ids: Collection[int], cohort_ids: Collection[int]) -> Sync:
        """Read the courses' methods, enrolments, roles, groups and members, and the cohorts' members."""
        members = tx.cohorts.members(cohort_ids) if cohort_ids else set()
        if members:  # soft-deleted users are never enrolled by cohort sync
            deleted = tx.users.deleted({user_id for _, user_id in members})
            members = {(c, u) for c, u in members if u not in deleted}
        sync = cls(tx, GroupSet(tx.groups, course_ids, members=True), members)
        if not course_ids:
            return sync
        repo = tx.enrolments
        enrolments: dict[int, dict[int, Enrolment]] = {}
        for enrolment in repo.in_courses(course_ids):
            assert enrolment.id is not None
            enrolments.setdefault(enrolment.method_id, {})[enrolment.user_id] = enrolment
            sync._active[enrolment.id] = enrolment.active
        for method in repo.methods(course_ids):
            assert method.id is not None
            users = enrolments.get(method.id, {})
            group = sync.groups.group_by_id(method.group_id) if method.group_id is not None else None
            stored = (method.enabled, method.role_id, method.group_id)
            loaded = frozenset(e.id for e in users.values() if e.id is not None)
            sync._take(Binding(method, users, group, stored, loaded))
        for assignment in repo.roles_in_courses(course_ids):
            sync._roles.setdefault((assignment.course_id, assignment.user_id), set()).add(assignment.role_id)
        sync._stored_roles = {pair: frozenset(roles) for pair, roles in sync._roles.items()}
        return sync

    def _take(self, binding: Binding) -> None:
        method = binding.method
        self._all.append(binding)
        self._by_course.setdefault(method.course_id, []).append(binding)
        if method.method == COHORT and method.cohort_id is not None:
            self._bindings[(method.course_id, method.cohort_id)] = binding

    def binding(self, course_id: int, cohort_id: int) -> Binding | None:
        """The live binding of this cohort to this course."""
        return self._bindings.get((course_id, cohort_id))

    def add(self, method: EnrolMethod) -> Binding:
        """A new cohort-sync method (written by :meth:`flush`)."""
        binding = Binding(method)
        self._take(binding)
        return binding

    def bindings_of(self, cohort_id: int) -> list[Binding]:
        """The live bindings of this cohort in the loaded courses."""
        return [b for (_, cohort), b in self._bindings.items() if cohort == cohort_id]

    def change_role(self, binding: Binding, role_id: int) -> None:
        """Give the binding another role: its users lose the old one (unless kept otherwise)."""
        old = binding.method.role_id
        binding.method.role_id = role_id
        for user_id in binding.users:
            self._drop_role(binding, user_id, old)

    def sync_members(self, binding: Binding) -> list[str]:
        """Enrol every member of the cohort, unenrol users who left; say what changed."""
        method = binding.method
        assert method.cohort_id is not None and method.role_id is not None
        members = self._cohort_members.get(method.cohort_id, set())
        enrolled = reactivated = given = grouped = 0
        for user_id in sorted(members):
            new, woken, role, group = self.enrol(binding, user_id)
            enrolled += new
            reactivated += woken
            given += role and not new
            grouped += group
        left = [u for u in binding.users if u not in members]
        for user_id in left:
            self.unenrol(binding, user_id)
        counts = (
            (enrolled, "enrolled"),
            (reactivated, "reactivated"),
            (len(left), "unenrolled"),
            (given, "given the role"),
            (grouped, "added to the group"),
        )
        return [f"{count} {what}" for count, what in counts if count]

    def enrol(self, binding: Binding, user_id: int) -> tuple[bool, bool, bool, bool]:
        """Enrol the user through the binding (reactivating a suspended enrolment), give
        the binding's role and put the user in its group; say what changed:
        (enrolled, reactivated, given the role, added to the group)."""
        method = binding.method
        assert method.role_id is not None
        enrolment = binding.users.get(user_id)
        if enrolment is None:
            binding.users[user_id] = Enrolment(method.id or 0, method.course_id, user_id)
        reactivated = enrolment is not None and not enrolment.active
        if enrolment is not None:
            enrolment.active = True
        roles = self._role_set(method.course_id, user_id)
        given = method.role_id not in roles
        roles.add(method.role_id)
        grouped = binding.group is not None and user_id not in binding.group.members
        if binding.group is not None:
            binding.group.members.add(user_id)
        return enrolment is None, reactivated, given, grouped

    def set_enabled(self, binding: Binding, enabled: bool) -> int | None:
        """Enable or disable the binding and its enrolments: how many enrolments changed,
        None when nothing did."""
        switched = [e for e in binding.users.values() if e.active != enabled]
        if binding.method.enabled == enabled and not switched:
            return None
        binding.method.enabled = enabled
        for enrolment in switched:
            enrolment.active = enabled
        return len(switched)

    def delete(self, binding: Binding) -> int:
        """Delete the binding and unenrol its users; return how many there were."""
        method = binding.method
        assert method.cohort_id is not None
        binding.deleted = True
        del self._bindings[(method.course_id, method.cohort_id)]
        users = list(binding.users)
        for user_id in users:
            self.unenrol(binding, user_id)
        return len(users)

    def unenrol(self, binding: Binding, user_id: int) -> None:
        """Remove the enrolment; then as Moodle: no enrolment left in the course = no role
        and no group there; else the binding's role goes unless another method may give it."""
        course_id = binding.method.course_id
        del binding.users[user_id]
        if self._others(binding, user_id):
            self._drop_role(binding, user_id, binding.method.role_id)
            return
        self._role_set(course_id, user_id).clear()
        for group in self.groups.groups_of(course_id):
            group.members.discard(user_id)

    def _others(self, binding: Binding, user_id: int) -> list[Binding]:
        """The other live methods of the course the user is enrolled through."""
        course = self._by_course.get(binding.method.course_id, [])
        return [b for b in course if b is not binding and not b.deleted and user_id in b.users]

    def _drop_role(self, binding: Binding, user_id: int, role_id: int | None) -> None:
        if role_id is None:
            return
        for other in self._others(binding, user_id):
            if other.method.method != COHORT or other.method.role_id == role_id:
                return  # the role may come from there (non-cohort methods do not say)
        self._role_set(binding.method.course_id, user_id).discard(role_id)

    def _role_set(self, course_id: int, user_id: int) -> set[int]:
        return self._roles.setdefault((course_id, user_id), set())

    def flush(self) -> None:
        """Write the batch's changes, one call per kind."""
        self.groups.flush(self._tx.groups)
        repo = self._tx.enrolments
        gone = [b.method.id for b in self._all if b.deleted and b.stored is not None and b.method.id]
        if gone:
            repo.delete_methods(gone)  # their enrolments go with them
        live = [b for b in self._all if not b.deleted]
        for binding in live:
            if binding.method.method == COHORT:
                binding.method.group_id = binding.group.record.id if binding.group is not None else None
        new = [b.method for b in live if b.stored is None]
        if new:
            repo.add_methods(new)
        changed = [b.method for b in live if b.stored not in (None, _state(b.method))]
        if changed:
            repo.update_methods(changed)
        self._flush_enrolments(live)
        self._flush_roles()

    def _flush_enrolments(self, live: list[Binding]) -> None:
        repo = self._tx.enrolments
        removed: list[int] = []
        updated: list[Enrolment] = []
        added: list[Enrolment] = []
        for binding in live:
            kept = set()
            for enrolment in binding.users.values():
                if enrolment.id is None:
                    assert binding.method.id is not None
                    enrolment.method_id = binding.method.id
                    added.append(enrolment)
                    continue
                kept.add(enrolment.id)
                if self._active[enrolment.id] != enrolment.active:
                    updated.append(enrolment)
            removed += sorted(binding.loaded - kept)
        if removed:
            repo.delete(removed)
        if updated:
            repo.update(updated)
        if added:
            repo.add(added)

    def _flush_roles(self) -> None:
        unassign: list[RoleAssignment] = []
        assign: list[RoleAssignment] = []
        empty: frozenset[int] = frozenset()
        for (course_id, user_id), roles in self._roles.items():
            stored = self._stored_roles.get((course_id, user_id), empty)
            unassign += [RoleAssignment(course_id, user_id, r) for r in stored - roles]
            assign += [RoleAssignment(course_id, user_id, r) for r in roles - stored]
        if unassign:
            self._tx.enrolments.unassign(unassign)
        if assign:
            self._tx.enrolments.assign(assign)


def _state(method: EnrolMethod) -> tuple[bool, int | None, int | None]:
    return (method.enabled, method.role_id, method.group_id)


def sync_cohort_changes(tx: PlatformTx, joined: Mapping[int, Set[int]], left: Mapping[int, Set[int]]) -> None:
    """Carry cohort membership changes to the courses the cohorts are bound to, at once.

    ``joined``/``left``: cohort id -> user ids that joined/left it. A joiner is enrolled
    through every enabled binding of the cohort with its role and group (joiners come from
    rows, whose user look-up already leaves soft-deleted users out). A leaver's enrolments
    through every binding of the cohort go, with the usual rule (no enrolment left in the
    course: no role and no group there). One read of the cohorts' methods, then one
    :meth:`Sync.load` of their courses when any; one write per kind.
    """
    cohort_ids = {c for c, users in (*joined.items(), *left.items()) if users}
    methods = tx.enrolments.methods_of_cohorts(cohort_ids) if cohort_ids else []
    if not methods:
        return
    sync = Sync.load(tx, {m.course_id for m in methods}, ())
    for cohort_id in sorted(cohort_ids):
        for binding in sync.bindings_of(cohort_id):
            for user_id in sorted(left.get(cohort_id, ())):
                if user_id in binding.users:
                    sync.unenrol(binding, user_id)
            if binding.method.enabled and binding.method.role_id is not None:
                for user_id in sorted(joined.get(cohort_id, ())):
                    sync.enrol(binding, user_id)
    sync.flush()
