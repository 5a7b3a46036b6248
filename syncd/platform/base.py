"""The platform port: what processors may ask of a learning platform.

Processors see only these Protocols. The embedded SQL store (``platform/sqlstore``) is
the real adapter; ``tests/fakes.py`` has an in-memory one for unit tests.

A :class:`PlatformTx` is one transaction. The runner applies a batch of rows and saves
the file's checkpoint (how many records are done, and each row's result) in the same
transaction, so that after a crash a file resumes exactly where its last commit left it
and no row is applied twice.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol

from syncd.domain import RowResult
from syncd.platform.content import ContentRepository, FileRepository, PictureRepository
from syncd.platform.model import (
    CategoryRecord,
    CohortRecord,
    CourseRecord,
    Enrolment,
    EnrolMethod,
    GroupingRecord,
    GroupRecord,
    RoleAssignment,
    SectionRecord,
)


@dataclass(slots=True)
class UserRecord:
    """A platform user as the users processor sees it. ``id`` is None until added."""

    username: str
    firstname: str = ""
    lastname: str = ""
    idnumber: str | None = None
    email: str | None = None
    auth: str = "manual"
    password_hash: str | None = None
    #: empty password on a new user: the platform must generate one and force a change
    password_to_generate: bool = False
    must_change_password: bool = False
    institution: str = ""
    department: str = ""
    city: str = ""
    country: str = ""
    lang: str = ""
    timezone: str = ""
    phone1: str = ""
    phone2: str = ""
    address: str = ""
    description: str = ""
    suspended: bool = False
    deleted: bool = False
    profile: dict[str, str] = field(default_factory=dict)
    id: int | None = None
    #: the row's plain password, set beside ``password_hash`` for a platform that hashes
    #: passwords itself (Moodle); the SQL store never stores it; kept out of reprs
    password: str | None = field(default=None, repr=False, compare=False)


class UserRepository(Protocol):
    """Users of the platform, looked up and written in batches."""

    def find(
        self,
        *,
        usernames: Collection[str] = (),
        idnumbers: Collection[str] = (),
        emails: Collection[str] = (),
    ) -> list[UserRecord]:
        """Every user (deleted ones included) matching any of the given keys.

        ``usernames`` and ``idnumbers`` match exactly; ``emails`` match case-insensitively.
        """
        ...

    def deleted(self, user_ids: Collection[int]) -> set[int]:
        """Those of these user ids that belong to soft-deleted users."""
        ...

    def add(self, users: Sequence[UserRecord]) -> None:
        """Insert new users (``id`` None) and set their ``id``."""
        ...

    def update(self, users: Sequence[UserRecord]) -> None:
        """Write every field of these existing users (by ``id``), profile included."""
        ...


class CategoryRepository(Protocol):
    """Course categories: few (hundreds), so they are read whole."""

    def all(self) -> list[CategoryRecord]:
        """Every category."""
        ...

    def add(self, categories: Sequence[CategoryRecord]) -> None:
        """Insert new categories (parents before children) and set their ``id``."""
        ...


class CourseRepository(Protocol):
    """Courses and their sections, in batches."""

    def find(
        self,
        *,
        shortnames: Collection[str] = (),
        idnumbers: Collection[str] = (),
        ids: Collection[int] = (),
    ) -> list[CourseRecord]:
        """Every course matching any key (exact match)."""
        ...

    def add(self, courses: Sequence[CourseRecord]) -> None:
        """Insert new courses and set their ``id``."""
        ...

    def update(self, courses: Sequence[CourseRecord]) -> None:
        """Write every field of these existing courses (by ``id``)."""
        ...

    def delete(self, course_ids: Collection[int]) -> None:
        """Delete courses with everything that belongs to them (sections, enrolment
        methods and enrolments, role assignments, groups, groupings, documents, learning
        path, activities; the blobs of the documents stay in the file store)."""
        ...

    def sections(self, course_ids: Collection[int]) -> list[SectionRecord]:
        """The sections of these courses, by course then number."""
        ...

    def put_sections(self, sections: Sequence[SectionRecord]) -> None:
        """Insert or replace sections by (course_id, number); sets ``id``."""
        ...


class RoleRepository(Protocol):
    """Roles by shortname."""

    def all(self) -> dict[str, int]:
        """Role shortname -> role id."""
        ...


class EnrolmentRepository(Protocol):
    """Enrolment methods of courses, user enrolments and course role assignments."""

    def methods(self, course_ids: Collection[int]) -> list[EnrolMethod]:
        """Every enrolment method of these courses."""
        ...

    def methods_of_cohorts(self, cohort_ids: Collection[int]) -> list[EnrolMethod]:
        """Every cohort-sync method (``method == "cohort"``) bound to these cohorts, in
        whatever course, enabled or not."""
        ...

    def add_methods(self, methods: Sequence[EnrolMethod]) -> None:
        """Insert methods and set their ``id``."""
        ...

    def update_methods(self, methods: Sequence[EnrolMethod]) -> None:
        """Write every field of these methods (by ``id``)."""
        ...

    def delete_methods(self, method_ids: Collection[int]) -> None:
        """Delete methods and the user enrolments through them."""
        ...

    def find(self, pairs: Collection[tuple[int, int]]) -> list[Enrolment]:
        """Every user enrolment of these (course_id, user_id) pairs, whatever the method."""
        ...

    def in_courses(self, course_ids: Collection[int]) -> list[Enrolment]:
        """Every user enrolment in these courses."""
        ...

    def add(self, enrolments: Sequence[Enrolment]) -> None:
        """Insert user enrolments and set their ``id``."""
        ...

    def update(self, enrolments: Sequence[Enrolment]) -> None:
        """Write active/start/end of these enrolments (by ``id``)."""
        ...

    def delete(self, enrolment_ids: Collection[int]) -> None:
        """Remove user enrolments."""
        ...

    def roles(self, pairs: Collection[tuple[int, int]]) -> list[RoleAssignment]:
        """Every role assignment of these (course_id, user_id) pairs."""
        ...

    def roles_in_courses(self, course_ids: Collection[int]) -> list[RoleAssignment]:
        """Every role assignment in these courses."""
        ...

    def assign(self, assignments: Collection[RoleAssignment]) -> None:
        """Add role assignments (already present ones are ignored)."""
        ...

    def unassign(self, assignments: Collection[RoleAssignment]) -> None:
        """Remove role assignments (absent ones are ignored)."""
        ...


class GroupRepository(Protocol):
    """Groups, groupings and their members, per course."""

    def groups(self, course_ids: Collection[int]) -> list[GroupRecord]:
        """Every group of these courses."""
        ...

    def add_groups(self, groups: Sequence[GroupRecord]) -> None:
        """Insert groups and set their ``id``."""
        ...

    def update_groups(self, groups: Sequence[GroupRecord]) -> None:
        """Write name/idnumber/description of these groups (by ``id``)."""
        ...

    def delete_groups(self, group_ids: Collection[int]) -> None:
        """Delete groups with their members and grouping links."""
        ...

    def groupings(self, course_ids: Collection[int]) -> list[GroupingRecord]:
        """Every grouping of these courses."""
        ...

    def add_groupings(self, groupings: Sequence[GroupingRecord]) -> None:
        """Insert groupings and set their ``id``."""
        ...

    def update_groupings(self, groupings: Sequence[GroupingRecord]) -> None:
        """Write name/idnumber/description of these groupings (by ``id``)."""
        ...

    def delete_groupings(self, grouping_ids: Collection[int]) -> None:
        """Delete groupings (their groups stay)."""
        ...

    def grouping_links(self, grouping_ids: Collection[int]) -> set[tuple[int, int]]:
        """(grouping_id, group_id) links of these groupings."""
        ...

    def link(self, links: Collection[tuple[int, int]]) -> None:
        """Put groups in groupings: (grouping_id, group_id); present links are ignored."""
        ...

    def members(self, group_ids: Collection[int]) -> set[tuple[int, int]]:
        """(group_id, user_id) memberships of these groups."""
        ...

    def add_members(self, members: Collection[tuple[int, int]]) -> None:
        """Add (group_id, user_id) memberships; present ones are ignored."""
        ...

    def remove_members(self, members: Collection[tuple[int, int]]) -> None:
        """Remove (group_id, user_id) memberships; absent ones are ignored."""
        ...


class CohortRepository(Protocol):
    """Cohorts and their members."""

    def find(
        self,
        *,
        idnumbers: Collection[str] = (),
        names: Collection[str] = (),
        ids: Collection[int] = (),
    ) -> list[CohortRecord]:
        """Every cohort matching any key (exact match)."""
        ...

    def add(self, cohorts: Sequence[CohortRecord]) -> None:
        """Insert cohorts and set their ``id``."""
        ...

    def update(self, cohorts: Sequence[CohortRecord]) -> None:
        """Write every field of these cohorts (by ``id``)."""
        ...

    def delete(self, cohort_ids: Collection[int]) -> None:
        """Delete cohorts with their members and their cohort-sync enrolment methods."""
        ...

    def members(self, cohort_ids: Collection[int]) -> set[tuple[int, int]]:
        """(cohort_id, user_id) memberships of these cohorts."""
        ...

    def add_members(self, members: Collection[tuple[int, int]]) -> None:
        """Add memberships; present ones are ignored."""
        ...

    def remove_members(self, members: Collection[tuple[int, int]]) -> None:
        """Remove memberships; absent ones are ignored."""
        ...


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """How far a file got: ``records_done`` data records have been applied and committed."""

    records_done: int


@dataclass(frozen=True, slots=True)
class SavedResult:
    """One row's result as kept with the checkpoint, for the report and the tryback."""

    record: int  # 0-based index of the data record in the file
    line: int  # 1-based physical line where the record starts
    result: RowResult


class PlatformTx(Protocol):
    """One platform transaction: repositories plus the file checkpoint."""

    @property
    def users(self) -> UserRepository:
        """The users of the platform."""
        ...

    @property
    def categories(self) -> CategoryRepository:
        """Course categories."""
        ...

    @property
    def courses(self) -> CourseRepository:
        """Courses and sections."""
        ...

    @property
    def roles(self) -> RoleRepository:
        """Roles."""
        ...

    @property
    def enrolments(self) -> EnrolmentRepository:
        """Enrolment methods, user enrolments, role assignments."""
        ...

    @property
    def groups(self) -> GroupRepository:
        """Groups, groupings, members."""
        ...

    @property
    def cohorts(self) -> CohortRepository:
        """Cohorts and members."""
        ...

    @property
    def files(self) -> FileRepository:
        """The blob store (not transactional)."""
        ...

    @property
    def content(self) -> ContentRepository:
        """Course documents, learning paths, activities."""
        ...

    @property
    def pictures(self) -> PictureRepository:
        """User pictures."""
        ...

    def copy_course(self, source_id: int, target_id: int) -> None:
        """Give a course the content of another (a ``template``): the source's sections
        (a target section with a name or summary of its own is kept), documents, learning
        path and activities. A platform with a native copy uses it (Moodle's course import);
        the others copy part by part (:func:`syncd.platform.content.copy_by_parts`)."""
        ...

    def load_checkpoint(self, file_id: int) -> Checkpoint | None:
        """The checkpoint saved for this ledger file, or None when it has not started."""
        ...

    def save_checkpoint(self, file_id: int, checkpoint: Checkpoint, results: Sequence[SavedResult]) -> None:
        """Record progress and the results of the rows just applied, in this transaction."""
        ...

    def saved_results(self, file_id: int) -> Iterator[SavedResult]:
        """Every saved result of this file, in record order (streamed)."""
        ...

    def clear_checkpoint(self, file_id: int) -> None:
        """Forget the checkpoint and results once the report is durable."""
        ...


class Platform(Protocol):
    """A learning platform syncd applies rows to."""

    def transaction(self, *, rollback: bool = False) -> AbstractContextManager[PlatformTx]:
        """Open a transaction: commit on normal exit, roll back on error or when ``rollback``."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
