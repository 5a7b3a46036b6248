"""Tables of the embedded platform store (SQLAlchemy Core).

One :data:`metadata` holds every table; later file kinds (courses, enrolments, cohorts…)
add theirs here. Times are UTC and set by the adapter, not by database defaults, so that
tests can pass a clock in. Usernames are stored lowercased by the users processor, which
also keeps short text values within their VARCHAR(255) (PostgreSQL enforces it; SQLite
does not).
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Engine,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    false,
    func,
)

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


def create_schema(engine: Engine) -> None:
    """Create every missing table and index (idempotent: existing ones are left alone)."""
    metadata.create_all(engine)
