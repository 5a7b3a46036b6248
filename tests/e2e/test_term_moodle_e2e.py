"""The term's command files through a real daemon on ``[platform] kind = "moodle"``, against the fake Moodle.

The same files as :mod:`tests.e2e.test_term_e2e` (a smaller term) are renamed into ``sync/`` of a
real ``syncd run`` whose platform is a :class:`~tests.moodle_fake.FakeMoodle` served from this test
process; the fake site's state is then read back and compared, set by set, with what
:class:`~tests.e2e.term_data.Expected` says. What Moodle cannot do (cohort-to-course bindings:
Moodle's cohort sync is configured in Moodle) comes as one extra file whose rows must all be
"not supported on moodle" errors, and no other row may say so. A second test kills the daemon
with SIGKILL in the middle of a users file and checks that the restart creates nobody twice.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.e2e.term_data import ORDER, Expected, Term, generate_term, to_csv
from tests.e2e.test_term_e2e import (
    PRIORITY,
    PROCESSORS,
    assert_enrol_counts,
    check_reports,
    differences,
    drop_all,
    run_order,
    wait_all,
)
from tests.e2e.writers import csv_bytes, record_count, user_rows, write_then_rename
from tests.moodle_fake import FakeMoodle, Site
from tests.moodle_fake.records import ACTIVE, ROLES, SYSTEM_CONTEXT
from tests.moodle_support import TOKEN

if TYPE_CHECKING:
    from tests.e2e.conftest import Daemon, Layout, StartDaemon

#: a term small enough for the fake (every row is HTTP calls) yet with every kind of row
SIZE = {"students": 1000, "staff": 50, "courses": 100, "per_student": 5}
TERM_TIMEOUT = 90.0
#: the extra file of rows Moodle cannot apply, and the processor that reads it
UNSUPPORTED = "cohortcourses.csv"
NOT_SUPPORTED = "not supported on moodle"
#: what the stock fake site holds before any file (not the term's)
STOCK_USERS = ("guest", "admin")
STOCK_CATEGORY = "Category 1"
CRASH_NAME = "users_crash.csv"
CRASH_ROWS = 3000


@pytest.fixture
def fake() -> Iterator[FakeMoodle]:
    """A fake Moodle in this process (requests served in parallel, no added latency)."""
    with FakeMoodle(token=TOKEN, latency=0.0) as server:
        yield server


@pytest.fixture
def start_moodle_daemon(fake: FakeMoodle, start_daemon: StartDaemon, tmp_path: Path) -> StartDaemon:
    """Start daemons whose platform is ``fake`` (token in a 0600 file); ``fake`` outlives them."""
    token = tmp_path / "moodle.token"
    token.write_text(TOKEN + "\n", encoding="ascii")
    os.chmod(token, 0o600)
    platform = {"kind": "moodle", "url": fake.url, "token_file": str(token)}

    def start(overrides: Any = None, *, name: str = "syncd", start: bool = True) -> Daemon:
        sections = {"platform": platform, **(overrides or {})}
        return start_daemon(sections, name=name, start=start)

    return start


# -- the fake site read back in the shape of Expected ------------------------------------------------


def _category_paths(tables: dict[str, dict[Any, Any]]) -> dict[int, str]:
    """Every category id -> its ``A/B/C`` path of names."""
    cats = tables["categories"]

    def path(catid: int) -> str:
        cat = cats[catid]
        return cat.name if not cat.parent else f"{path(cat.parent)}/{cat.name}"

    return {catid: path(catid) for catid in cats}


def _groups_state(tables: dict[str, dict[Any, Any]], state: Expected, shortname: dict[int, str],
                  idnumber: dict[int, str]) -> None:
    """Groups, grouping links and group members, by course shortname, names and user idnumbers."""
    groups = tables["groups"]
    state.groups = {(shortname[g.courseid], g.name) for g in groups.values()}
    state.groupings = {
        (shortname[tables["groupings"][grouping].courseid], tables["groupings"][grouping].name,
         groups[group].name)
        for grouping, group in tables["grouping_groups"]
    }
    state.members = {(shortname[groups[g].courseid], groups[g].name, idnumber[u])
                     for g, u in tables["group_members"]}


def site_state(site: Site) -> tuple[Expected, dict[str, set[Any]]]:
    """The fake site read back in the shape of :class:`Expected` (stock content left out), plus extras."""
    tables = site.snapshot()
    cats = _category_paths(tables)
    users = {uid: u for uid, u in tables["users"].items() if not u.deleted and u.username not in STOCK_USERS}
    idnumber = {uid: u.idnumber for uid, u in users.items()}
    courses = {cid: c for cid, c in tables["courses"].items() if cid != 1}  # 1 = the site course
    shortname = {cid: c.shortname for cid, c in courses.items()}
    state = Expected()
    state.users = set(idnumber.values())
    state.categories = set(cats.values()) - {STOCK_CATEGORY}
    state.courses = {c.shortname: cats[c.category] for c in courses.values()}
    enrolments = [e for (cid, uid), e in tables["enrolments"].items() if cid in courses and uid in users]
    pairs = {(e.courseid, e.userid): (shortname[e.courseid], idnumber[e.userid]) for e in enrolments}
    state.enrolments = set(pairs.values())
    state.dated = {pairs[e.courseid, e.userid] for e in enrolments if e.timestart or e.timeend}
    context_course = {c.contextid: cid for cid, c in courses.items()}
    state.roles = {(shortname[context_course[ctx]], idnumber[uid], ROLES[role])
                   for ctx, uid, role in tables["role_assignments"] if ctx in context_course}
    _groups_state(tables, state, shortname, idnumber)
    context_path = {c.contextid: cats[catid] for catid, c in tables["categories"].items()}
    context_path[SYSTEM_CONTEXT] = ""
    state.cohorts = {c.idnumber: (c.name, context_path[c.contextid]) for c in tables["cohorts"].values()}
    cohort_key = {cid: c.idnumber for cid, c in tables["cohorts"].items()}
    state.cohort_members = {(cohort_key[c], idnumber[u]) for c, u in tables["cohort_members"]}
    extras = {
        "statuses": {e.status for e in enrolments},
        "dates": {(e.timestart, e.timeend) for e in enrolments if e.timestart or e.timeend},
        "other_roles": {key for key in tables["role_assignments"] if key[0] not in context_course},
    }
    return state, extras


# -- the file Moodle cannot apply -----------------------------------------------------------------


def unsupported_file(term: Term) -> bytes:
    """cohortcourses.csv: programme cohorts bound to a few courses (Moodle's cohort sync is set in Moodle)."""
    cohorts = sorted(term.expected.cohorts)[:4]
    courses = [c.shortname for c in term.courses[:3]]
    rows = [("add", cohort, course, "student", "") for cohort in cohorts for course in courses]
    return to_csv(("cmd", "cohort", "course", "role", "makegroup"), rows)


def not_supported_lines(layout: Layout) -> set[tuple[str, int]]:
    """(report file, line) of every report row whose reason says "not supported on moodle"."""
    return {
        (report["_path"].name, row["line"])
        for report in layout.report_jsons()
        for row in report["rows"]
        if NOT_SUPPORTED in str(row.get("reason", "")).lower()
    }


def _epoch(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


@pytest.mark.slow
def test_a_term_on_moodle_yields_exactly_what_the_files_say_and_refuses_only_cohort_bindings(
    fake: FakeMoodle, start_moodle_daemon: StartDaemon, layout: Layout
) -> None:
    """A term's files renamed in together (worst order) apply on the fake Moodle in priority order;
    the site then holds exactly what the files say, and only the cohort-binding rows are refused
    as "not supported on moodle"."""
    term = generate_term(11, **SIZE)
    daemon = start_moodle_daemon()
    names = tuple(reversed(ORDER))
    drop_all(layout, term, names)
    refused = unsupported_file(term)
    write_then_rename(layout.sync, UNSUPPORTED, refused)
    wait_all(daemon, (*names, UNSUPPORTED), TERM_TIMEOUT)

    reports = check_reports(layout, term, names)
    order = run_order(daemon)
    assert order[-1] == "cohort_courses" and order[:-1] == sorted(order[:-1], key=PRIORITY.__getitem__)
    assert sorted(order[:-1]) == sorted(PROCESSORS.values())
    assert reports["users.csv"]["counts"]["created"] == len(term.people)
    assert reports["courses.csv"]["counts"]["created"] == len(term.courses)
    assert_enrol_counts(reports["enrol.csv"], term)

    bindings = layout.done_report(UNSUPPORTED, refused)
    assert bindings["counts"]["error"] == record_count(refused) > 0, bindings["counts"]
    assert not_supported_lines(layout) == {(bindings["_path"].name, r["line"]) for r in bindings["rows"]}
    [tryback] = layout.files(layout.tryback)
    assert tryback.read_bytes() == refused, "the tryback holds the refused bindings, and only them"

    actual, extras = site_state(fake.site)
    fields = ("users", "categories", "courses", "enrolments", "dated", "roles", "groups", "groupings",
              "members", "cohorts", "cohort_members")
    assert differences(term.expected, actual, fields) == []
    assert extras["statuses"] == {ACTIVE}, "every enrolment is active"
    assert extras["dates"] == {(_epoch("2026-09-01 00:00:00"), _epoch("2027-02-15 18:00:00"))}
    assert extras["other_roles"] == set(), "no role outside the term's courses"
    rejected = [(c.function, c.error) for c in fake.calls if c.error is not None]
    assert rejected == [], "Moodle refused calls: syncd sent something the site could not apply"
    assert daemon.errors() == []
    assert layout.private_problems() == []


def _created_on_site(fake: FakeMoodle, prefix: str) -> int:
    """Users of this file the site holds so far."""
    return sum(1 for name in fake.site.users_by_username() if name.startswith(prefix))


@pytest.mark.slow
def test_kill_9_mid_users_file_on_moodle_then_restart_creates_nobody_twice(
    fake: FakeMoodle, start_moodle_daemon: StartDaemon, layout: Layout
) -> None:
    """SIGKILL while a large users file is applied on Moodle, then a restart: every username exists
    once on the site, every user was sent to a successful create once, and the report has every
    row once, each created or (the batch in flight at the kill) unchanged."""
    fake.latency = 0.005  # a site's per-call cost, so that the kill lands mid-file
    rows = user_rows(CRASH_ROWS, "crash")
    data = csv_bytes(rows)
    daemon = start_moodle_daemon({"processing": {"batch_size": 200}})
    write_then_rename(layout.sync, CRASH_NAME, data, temp=".name.tmp")

    # a third of the file and one platform chunk (100) more: mid-batch (the daemon's batch is 200 rows)
    mid = CRASH_ROWS // 3 + 100
    daemon.wait_for(lambda: _created_on_site(fake, "crash") >= mid, timeout=60, what=f"{mid} users")
    daemon.kill9()
    states = [e["state"] for e in layout.entries(CRASH_NAME)]
    assert states and states[-1] not in ("done", "failed"), f"killed too late: {states}"
    before = _created_on_site(fake, "crash")
    assert mid <= before < CRASH_ROWS

    daemon.start()
    assert daemon.wait_file(CRASH_NAME, timeout=TERM_TIMEOUT)["state"] == "done"
    report = layout.done_report(CRASH_NAME, data)
    assert sorted(r["line"] for r in report["rows"]) == list(range(2, CRASH_ROWS + 2))
    counts = {k: v for k, v in report["counts"].items() if v}
    assert set(counts) <= {"created", "unchanged"} and sum(counts.values()) == CRASH_ROWS, counts
    assert counts["created"] >= CRASH_ROWS - before, "rows created after the restart are reported created"

    site_users = Counter(u.username for u in fake.site.snapshot()["users"].values())
    assert {name: n for name, n in site_users.items() if n != 1} == {}
    assert {name for name in site_users if name.startswith("crash")} == {r[0] for r in rows}
    sent = Counter(
        user["username"]
        for call in fake.calls if call.function == "core_user_create_users" and call.error is None
        and call.fault is None
        for user in call.params.get("users", [])
    )
    assert set(sent) == {r[0] for r in rows} and set(sent.values()) == {1}, "a user was created twice"
    assert layout.files(layout.tryback) == []
    assert daemon.stop() == 0
