"""Tables of the embedded platform store (SQLAlchemy Core).

One :data:`metadata` holds every table: users and their profile fields, the course model
(categories, courses, sections, roles, enrolment methods, user enrolments, role
assignments, groups, groupings, cohorts and members), course content (documents, learning
path items, activities), user pictures and the file checkpoints. Times are
UTC and set by the adapter, not by database defaults, so that tests can pass a clock in.
Usernames are stored lowercased by the users processor, which also keeps short text
values within their VARCHAR(255) (PostgreSQL enforces it; SQLite does not).

Foreign keys are declared everywhere, so that a bug cannot leave a dangling reference
(SQLite enforces them with ``PRAGMA foreign_keys=ON``, set by ``make_engine``). Children
that belong to a parent cascade on delete as a safety net; the adapter deletes them
explicitly anyway. Users are never deleted (a deleted user is flagged and keeps its
rows), so nothing cascades from them. Empty idnumbers are stored as NULL: unique when
set, any number of rows without one. Documents and pictures hold the sha256 of their
content; the bytes are blobs in the file store (``blobs.py``), outside the database.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Engine,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    func,
    insert,
    select,
    true,
)

from syncd.platform.model import DEFAULT_ROLES, MAX_KEY, MAX_PATH_BYTES, PATH_KINDS

metadata = MetaData()


def _text(name: str) -> Column[str]:
    """A required short text column that is empty rather than NULL when unknown."""
    return Column(name, String(255), nullable=False, default="", server_default="")


def _flag(name: str) -> Column[bool]:
    return Column(name, Boolean, nullable=False, default=False, server_default=false())


users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(255), nullable=False, unique=True),
    # NULL when empty, so that many users may have none while set ones stay unique
    Column("idnumber", String(255), nullable=True, unique=True),
    Column("email", String(255), nullable=True),
    _text("firstname"),
    _text("lastname"),
    Column("auth", String(255), nullable=False, default="manual", server_default="manual"),
    Column("password_hash", String(255), nullable=True),
    _flag("password_to_generate"),
    _flag("must_change_password"),
    _text("institution"),
    _text("department"),
    _text("city"),
    _text("country"),
    _text("lang"),
    _text("timezone"),
    _text("phone1"),
    _text("phone2"),
    _text("address"),
    Column("description", Text, nullable=False, default="", server_default=""),
    _flag("suspended"),
    _flag("deleted"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

Index("ix_users_email_lower", func.lower(users.c.email))

user_profile = Table(
    "user_profile",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("field", String(255), nullable=False),
    Column("value", Text, nullable=False),
    PrimaryKeyConstraint("user_id", "field"),
)

syncd_checkpoint = Table(
    "syncd_checkpoint",
    metadata,
    Column("file_id", Integer, primary_key=True, autoincrement=False),
    Column("records_done", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

syncd_row_result = Table(
    "syncd_row_result",
    metadata,
    Column("file_id", Integer, nullable=False),
    Column("record", Integer, nullable=False),
    Column("line", Integer, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    PrimaryKeyConstraint("file_id", "record"),
)


def _id() -> Column[int]:
    return Column("id", Integer, primary_key=True, autoincrement=True)


def _ref(name: str, target: str, *, nullable: bool = False, ondelete: str | None = None) -> Column[int]:
    """An integer foreign key column to ``target`` (``table.column``)."""
    return Column(name, Integer, ForeignKey(target, ondelete=ondelete), nullable=nullable)


def _long(name: str) -> Column[str]:
    return Column(name, Text, nullable=False, default="", server_default="")


def _idnumber() -> Column[str]:
    return Column("idnumber", String(255), nullable=True)


def _when(name: str, *, nullable: bool = True) -> Column[object]:
    return Column(name, DateTime(timezone=True), nullable=nullable)


categories = Table(
    "categories",
    metadata,
    _id(),
    Column("name", String(255), nullable=False),
    _ref("parent_id", "categories.id", nullable=True),
    _idnumber(),
    _long("description"),
    UniqueConstraint("idnumber"),
    Index("ix_categories_parent_id", "parent_id"),
)

courses = Table(
    "courses",
    metadata,
    _id(),
    Column("shortname", String(255), nullable=False, unique=True),
    Column("fullname", String(255), nullable=False),
    _ref("category_id", "categories.id"),
    Column("idnumber", String(255), nullable=True, unique=True),
    _long("summary"),
    Column("format", String(255), nullable=False, default="topics", server_default="topics"),
    Column("visible", Boolean, nullable=False, default=True, server_default=true()),
    _when("startdate"),
    _when("enddate"),
    _text("lang"),
    Column("groupmode", Integer, nullable=False, default=0, server_default="0"),
    Column("maxbytes", Integer, nullable=False, default=0, server_default="0"),
    _when("created_at", nullable=False),
    _when("updated_at", nullable=False),
    Index("ix_courses_category_id", "category_id"),
)

course_sections = Table(
    "course_sections",
    metadata,
    _id(),
    _ref("course_id", "courses.id", ondelete="CASCADE"),
    Column("number", Integer, nullable=False),
    _text("name"),
    _long("summary"),
    UniqueConstraint("course_id", "number"),
)

roles = Table(
    "roles",
    metadata,
    _id(),
    Column("shortname", String(255), nullable=False, unique=True),
    _text("name"),
)

cohorts = Table(
    "cohorts",
    metadata,
    _id(),
    Column("name", String(255), nullable=False),
    Column("idnumber", String(255), nullable=True, unique=True),
    _long("description"),
    _ref("category_id", "categories.id", nullable=True),
    Index("ix_cohorts_name", "name"),
    Index("ix_cohorts_category_id", "category_id"),
)

groups = Table(
    "groups",
    metadata,
    _id(),
    _ref("course_id", "courses.id", ondelete="CASCADE"),
    Column("name", String(255), nullable=False),
    _idnumber(),
    _long("description"),
    UniqueConstraint("course_id", "name"),
    UniqueConstraint("course_id", "idnumber"),
)

groupings = Table(
    "groupings",
    metadata,
    _id(),
    _ref("course_id", "courses.id", ondelete="CASCADE"),
    Column("name", String(255), nullable=False),
    _idnumber(),
    _long("description"),
    UniqueConstraint("course_id", "name"),
    UniqueConstraint("course_id", "idnumber"),
)

grouping_groups = Table(
    "grouping_groups",
    metadata,
    _ref("grouping_id", "groupings.id", ondelete="CASCADE"),
    _ref("group_id", "groups.id", ondelete="CASCADE"),
    PrimaryKeyConstraint("grouping_id", "group_id"),
    Index("ix_grouping_groups_group_id", "group_id"),
)

group_members = Table(
    "group_members",
    metadata,
    _ref("group_id", "groups.id", ondelete="CASCADE"),
    _ref("user_id", "users.id"),
    PrimaryKeyConstraint("group_id", "user_id"),
    Index("ix_group_members_user_id", "user_id"),
)

cohort_members = Table(
    "cohort_members",
    metadata,
    _ref("cohort_id", "cohorts.id", ondelete="CASCADE"),
    _ref("user_id", "users.id"),
    PrimaryKeyConstraint("cohort_id", "user_id"),
    Index("ix_cohort_members_user_id", "user_id"),
)

enrol_methods = Table(
    "enrol_methods",
    metadata,
    _id(),
    _ref("course_id", "courses.id", ondelete="CASCADE"),
    Column("method", String(32), nullable=False),
    Column("enabled", Boolean, nullable=False, default=True, server_default=true()),
    _ref("cohort_id", "cohorts.id", nullable=True, ondelete="CASCADE"),
    _ref("role_id", "roles.id", nullable=True),
    _ref("group_id", "groups.id", nullable=True, ondelete="SET NULL"),
    # one cohort-sync instance per course and cohort…
    UniqueConstraint("course_id", "method", "cohort_id"),
    # …the referenced key of user_enrolments' (method_id, course_id)
    UniqueConstraint("id", "course_id"),
    Index("ix_enrol_methods_cohort_id", "cohort_id"),
    Index("ix_enrol_methods_group_id", "group_id"),
)
# …and one instance of every other method per course.
Index(
    "ux_enrol_methods_course_method",
    enrol_methods.c.course_id,
    enrol_methods.c.method,
    unique=True,
    sqlite_where=enrol_methods.c.method != "cohort",
    postgresql_where=enrol_methods.c.method != "cohort",
)

user_enrolments = Table(
    "user_enrolments",
    metadata,
    _id(),
    Column("method_id", Integer, nullable=False),
    # the method's course, kept here for look-ups by (course, user); the composite foreign
    # key below makes it always agree with the method's
    Column("course_id", Integer, nullable=False),
    _ref("user_id", "users.id"),
    Column("active", Boolean, nullable=False, default=True, server_default=true()),
    _when("timestart"),
    _when("timeend"),
    ForeignKeyConstraint(
        ["method_id", "course_id"], ["enrol_methods.id", "enrol_methods.course_id"], ondelete="CASCADE"
    ),
    UniqueConstraint("method_id", "user_id"),
    Index("ix_user_enrolments_course_user", "course_id", "user_id"),
    Index("ix_user_enrolments_user_id", "user_id"),
)

role_assignments = Table(
    "role_assignments",
    metadata,
    _ref("course_id", "courses.id", ondelete="CASCADE"),
    _ref("user_id", "users.id"),
    _ref("role_id", "roles.id"),
    PrimaryKeyConstraint("course_id", "user_id", "role_id"),
    Index("ix_role_assignments_user_id", "user_id"),
)

course_documents = Table(
    "course_documents",
    metadata,
    _id(),
    _ref("course_id", "courses.id", ondelete="CASCADE"),
    Column("path", String(MAX_PATH_BYTES), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    _long("title"),
    _text("mimetype"),
    UniqueConstraint("course_id", "path"),
    Index("ix_course_documents_sha256", "sha256"),
)

course_path_items = Table(
    "course_path_items",
    metadata,
    _id(),
    _ref("course_id", "courses.id", ondelete="CASCADE"),
    Column("key", String(MAX_KEY), nullable=False),
    _long("title"),
    # the parent's key in the same course (checked by the adapter: the whole tree is
    # written at once, so a foreign key would only constrain the insert order)
    Column("parent_key", String(MAX_KEY), nullable=True),
    Column("kind", String(16), nullable=False),
    Column("target", Text, nullable=True),
    Column("position", Integer, nullable=False),
    Column("section", Integer, nullable=True),
    UniqueConstraint("course_id", "key"),
    CheckConstraint("kind IN (" + ", ".join(f"'{k}'" for k in PATH_KINDS) + ")", name="ck_path_item_kind"),
)

course_activities = Table(
    "course_activities",
    metadata,
    _id(),
    _ref("course_id", "courses.id", ondelete="CASCADE"),
    Column("key", String(MAX_KEY), nullable=False),
    # a section number, not a reference: an archive may list activities in sections it does
    # not describe
    Column("section", Integer, nullable=False),
    Column("kind", String(MAX_KEY), nullable=False),
    _long("title"),
    Column("position", Integer, nullable=False),
    UniqueConstraint("course_id", "key"),
)

user_pictures = Table(
    "user_pictures",
    metadata,
    _id(),
    _ref("user_id", "users.id"),
    Column("sha256", String(64), nullable=False),
    Column("mimetype", String(MAX_KEY), nullable=False),
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    UniqueConstraint("user_id"),
)


def create_schema(engine: Engine, extra_roles: Iterable[str] = ()) -> None:
    """Create every missing table and index and the missing roles (idempotent).

    Existing tables, rows and role ids are left alone; :data:`DEFAULT_ROLES` and then
    ``extra_roles`` that are not there yet are added, in that order.
    """
    metadata.create_all(engine)
    wanted = list(dict.fromkeys((*DEFAULT_ROLES, *extra_roles)))
    with engine.begin() as conn:
        present = set(conn.execute(select(roles.c.shortname)).scalars())
        missing = [{"shortname": r, "name": r} for r in wanted if r not in present]
        if missing:
            conn.execute(insert(roles), missing)
