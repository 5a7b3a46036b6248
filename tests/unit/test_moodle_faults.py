"""Transport faults between the adapter and the fake Moodle (tests/moodle_fake), over HTTP: what is
retried (reads and idempotent writes after a 5xx, a dropped connection or a timeout), what is never
re-sent blindly (a create whose reply was lost is looked up first), and what waits for the file's
next attempt (RetryLater) without creating anything twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd.domain import RetryLater
from tests.moodle_support import moodle_platform
from tests.unit.moodle_miniplatform import outcomes, run

CREATE = "core_user_create_users"
UPDATE = "core_user_update_users"
GET = "core_user_get_users_by_field"
COURSES = "core_course_create_courses"
HEADER = "username,firstname,lastname,email,idnumber,password\n"
ROWS = "".join(f"u{n},First,Last,u{n}@univ.fr,ID{n},Secret-2026!\n" for n in range(5))


def test_a_lost_create_reply_is_looked_up_and_nothing_is_created_twice(tmp_path: Path) -> None:
    """The create is committed but its reply lost: the adapter reads the users back, finds all five,
    sends no second create, and every row says created."""
    with moodle_platform(tmp_path) as (platform, fake):
        fake.fail_next(CREATE, "drop_after")
        lines = outcomes(run(platform, "users", HEADER + ROWS, tmp_path))
        assert lines == [f"created: user 'u{n}'" for n in range(5)]
        assert fake.count(CREATE) == 1
        assert sorted(fake.site.users_by_username()) == ["admin", "guest", *[f"u{n}" for n in range(5)]]


def test_a_create_refused_before_it_reached_moodle_is_sent_again_once(tmp_path: Path) -> None:
    """The connection drops before Moodle ran the create: the look-up finds nobody, the create goes
    once more, and each user exists once."""
    with moodle_platform(tmp_path) as (platform, fake):
        fake.fail_next(CREATE, "drop")
        lines = outcomes(run(platform, "users", HEADER + ROWS, tmp_path))
        assert lines == [f"created: user 'u{n}'" for n in range(5)]
        assert fake.count(CREATE) == 2
        assert len([u for u in fake.site.users_by_username() if u.startswith("u")]) == 5


def test_reads_and_updates_are_retried_after_a_5xx_or_a_drop(tmp_path: Path) -> None:
    """A 500 on a look-up and a dropped update are retried by the client (they are safe to send
    again); the rows are applied once."""
    with moodle_platform(tmp_path) as (platform, fake):
        for n in range(2):
            fake.site.add_user(f"u{n}", email=f"u{n}@univ.fr", idnumber=f"ID{n}", city="Old")
        fake.fail_next(GET, "500")
        fake.fail_next(UPDATE, "drop")
        csv = "username,firstname,lastname,email,idnumber,city\n" + "".join(
            f"u{n},First,Last,u{n}@univ.fr,ID{n},Dijon\n" for n in range(2))
        lines = outcomes(run(platform, "users", csv, tmp_path))
        assert all(line.startswith("updated: user 'u") for line in lines), lines
        assert [c.fault for c in fake.calls if c.fault] == ["500", "drop"]
        for n in range(2):
            user = fake.site.user_by_username(f"u{n}")
            assert user is not None and user.city == "Dijon"


def test_a_site_that_keeps_failing_makes_the_file_wait(tmp_path: Path) -> None:
    """Every try of a look-up fails (5xx): RetryLater (the file waits and resumes from its
    checkpoint); nothing was created."""
    with moodle_platform(tmp_path, retries=2) as (platform, fake):
        fake.fail_next(GET, "500", times=10)
        with pytest.raises(RetryLater):
            run(platform, "users", HEADER + ROWS, tmp_path)
        assert fake.count(CREATE) == 0


def test_a_lost_course_create_reply_is_read_back(tmp_path: Path) -> None:
    """A course whose create reply was lost is found by the re-read (by the same fields) and taken
    as created: one create call, one course, the row says created."""
    with moodle_platform(tmp_path) as (platform, fake):
        fake.fail_next(COURSES, "drop_after")
        (line,) = outcomes(run(platform, "courses", "shortname,fullname\nC1,Course one\n", tmp_path))
        assert line == "created: course 'C1'"
        assert fake.count(COURSES) == 1
        assert len([c for c in fake.site.iter_rows("courses") if c.shortname == "C1"]) == 1
