"""A term's worth of command files through a real daemon: priority order across files, checked exactly.

The files of :mod:`tests.e2e.term_data` (thousands of users, hundreds of courses, tens of
thousands of enrolments, groups, cohorts) are dropped together, in the worst order, and
the platform database is then compared, set by set, with what the files say.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import pytest

from tests.e2e.term_data import ORDER, Expected, Term, generate_term
from tests.e2e.writers import slow_write, write_then_rename

if TYPE_CHECKING:
    from tests.e2e.conftest import Daemon, Layout, StartDaemon

#: the processor of each term file, in the order they must run
PROCESSORS = {
    "users.csv": "users", "courses.csv": "courses", "cohorts.csv": "cohorts", "groups.csv": "groups",
    "enrol.csv": "enrolments", "enrol_flatfile.csv": "enrolments", "groupmembers.csv": "group_members",
}
PRIORITY = {"users": 10, "courses": 20, "cohorts": 30, "groups": 40, "enrolments": 50, "group_members": 60}
HEADERLESS = ("enrol_flatfile.csv",)
TERM_TIMEOUT = 120.0
NO_ERRORS = 0


def _category_paths(layout: Layout) -> dict[int, str]:
    """Every category id -> its ``A/B/C`` path of names."""
    rows = {r["id"]: r for r in layout.query("SELECT id, name, parent_id FROM categories")}
    paths: dict[int, str] = {}

    def path(cid: int) -> str:
        if cid not in paths:
            row = rows[cid]
            parent = row["parent_id"]
            paths[cid] = row["name"] if parent is None else f"{path(parent)}/{row['name']}"
        return paths[cid]

    for cid in rows:
        path(cid)
    return paths


def _enrolment_rows(layout: Layout) -> list[dict[str, Any]]:
    return layout.query(
        "SELECT c.shortname, u.idnumber, m.method, e.active, e.timestart, e.timeend FROM user_enrolments e "
        "JOIN enrol_methods m ON m.id = e.method_id JOIN courses c ON c.id = e.course_id "
        "JOIN users u ON u.id = e.user_id"
    )


def _group_state(layout: Layout, state: Expected) -> None:
    """Groups, grouping links and group members, by course shortname and names."""
    q = layout.query
    state.groups = {(r["shortname"], r["name"]) for r in q(
        "SELECT c.shortname, g.name FROM groups g JOIN courses c ON c.id = g.course_id"
    )}
    state.groupings = {(r["shortname"], r["grouping"], r["grp"]) for r in q(
        "SELECT c.shortname, gg.name AS grouping, g.name AS grp FROM grouping_groups l "
        "JOIN groupings gg ON gg.id = l.grouping_id JOIN groups g ON g.id = l.group_id "
        "JOIN courses c ON c.id = gg.course_id"
    )}
    state.members = {(r["shortname"], r["name"], r["idnumber"]) for r in q(
        "SELECT c.shortname, g.name, u.idnumber FROM group_members m JOIN groups g ON g.id = m.group_id "
        "JOIN courses c ON c.id = g.course_id JOIN users u ON u.id = m.user_id"
    )}


def _cohort_state(layout: Layout, state: Expected, cats: dict[int, str]) -> None:
    """Cohorts (name, category path) and their members, by idnumbers."""
    state.cohorts = {r["idnumber"]: (r["name"], cats.get(r["category_id"], "")) for r in layout.query(
        "SELECT idnumber, name, category_id FROM cohorts"
    )}
    state.cohort_members = {(r["cidnumber"], r["idnumber"]) for r in layout.query(
        "SELECT c.idnumber AS cidnumber, u.idnumber FROM cohort_members m "
        "JOIN cohorts c ON c.id = m.cohort_id JOIN users u ON u.id = m.user_id"
    )}


def platform_state(layout: Layout) -> tuple[Expected, dict[str, set[Any]]]:
    """The platform database read back in the shape of :class:`Expected`, plus raw extras."""
    q = layout.query
    cats = _category_paths(layout)
    state = Expected()
    state.users = {r["idnumber"] for r in q("SELECT idnumber FROM users WHERE NOT deleted")}
    state.categories = set(cats.values())
    courses = q("SELECT shortname, category_id FROM courses")
    state.courses = {r["shortname"]: cats[r["category_id"]] for r in courses}
    enrolments = _enrolment_rows(layout)
    state.enrolments = {(r["shortname"], r["idnumber"]) for r in enrolments}
    state.dated = {(r["shortname"], r["idnumber"]) for r in enrolments if r["timestart"] or r["timeend"]}
    state.roles = {(r["shortname"], r["idnumber"], r["role"]) for r in q(
        "SELECT c.shortname, u.idnumber, r.shortname AS role FROM role_assignments a "
        "JOIN courses c ON c.id = a.course_id JOIN users u ON u.id = a.user_id "
        "JOIN roles r ON r.id = a.role_id"
    )}
    _group_state(layout, state)
    _cohort_state(layout, state, cats)
    extras = {
        "methods": {(r["method"], bool(r["active"])) for r in enrolments},
        "dates": {(r["timestart"], r["timeend"]) for r in enrolments if r["timestart"] or r["timeend"]},
    }
    return state, extras


def differences(expected: Expected, actual: Expected, fields: tuple[str, ...]) -> list[str]:
    """One line per field of ``fields`` where the two states differ (counts and examples)."""
    problems = []
    for name in fields:
        want, got = getattr(expected, name), getattr(actual, name)
        if want == got:
            continue
        if isinstance(want, dict):
            want, got = set(want.items()), set(got.items())
        missing, extra = sorted(want - got), sorted(got - want)
        problems.append(
            f"{name}: expected {len(want)}, found {len(got)}; {len(missing)} missing e.g. {missing[:4]}, "
            f"{len(extra)} unexpected e.g. {extra[:4]}"
        )
    return problems


def drop_all(layout: Layout, term: Term, names: tuple[str, ...]) -> None:
    """Upload ``names`` in the given order, each under ``_<name>`` then renamed into sync/."""
    for name in names:
        write_then_rename(layout.sync, name, term.files[name])


def wait_all(daemon: Daemon, names: tuple[str, ...], timeout: float) -> None:
    """Wait until every file of ``names`` is processed (done) or failed."""
    for name in names:
        entry = daemon.wait_file(name, timeout=timeout)
        assert entry["state"] == "done", f"{name}: {entry['state']} ({entry.get('error')})"


def check_reports(layout: Layout, term: Term, names: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """Each file archived once, byte for byte, with a complete report of 0 errors; the reports."""
    reports = {}
    for name in names:
        data = term.files[name]
        if name in HEADERLESS:
            [archive] = layout.archived(name)
            assert archive.read_bytes() == data
            report = layout.report_of(archive)
            assert report["status"] == "done" and len(report["rows"]) == data.count(b"\n")
        else:
            report = layout.done_report(name, data)
        errors = [r for r in report["rows"] if r.get("result") == "error"][:3]
        assert report["counts"]["error"] == NO_ERRORS, f"{name}: {report['counts']}, e.g. {errors}"
        reports[name] = report
    return reports


def assert_enrol_counts(report: dict[str, Any], term: Term) -> None:
    """enrol.csv's counts are those the expected model gives, row by row."""
    counts = {k: v for k, v in report["counts"].items() if v}
    assert counts == dict(term.expected.outcomes), f"enrol.csv: {counts}"


def run_order(daemon: Daemon) -> list[str]:
    """The processors of the files the daemon started, in the order it started them."""
    by_file = {e.get("file"): e.get("processor") for e in daemon.events("file_received")}
    return [str(by_file.get(e.get("file"))) for e in daemon.events("file_started")]


def test_the_term_generator_is_deterministic_and_its_model_consistent() -> None:
    """The same seed gives the same bytes, and every role and group member is an enrolled user."""
    small = {"students": 120, "staff": 6, "courses": 18, "per_student": 4}
    term = generate_term(3, **small)
    assert term.files == generate_term(3, **small).files
    assert term.files != generate_term(4, **small).files
    e = term.expected
    assert {(c, u) for c, u, _role in e.roles} == e.enrolments
    assert {(c, u) for c, _g, u in e.members} <= e.enrolments
    assert {(c, g) for c, g, _u in e.members} <= e.groups
    assert {c for c, _u in e.enrolments} <= set(e.courses) and {u for _c, u in e.enrolments} <= e.users
    assert {u for _c, u in e.cohort_members} <= e.users
    assert {c for c, _u in e.cohort_members} == set(e.cohorts)
    assert set(e.courses.values()) <= e.categories and e.outcomes["deleted"] > 0
    assert list(term.files) == list(ORDER)


@pytest.mark.slow
def test_a_term_dropped_at_once_in_the_worst_order_yields_exactly_what_the_files_say(
    start_daemon: StartDaemon, layout: Layout
) -> None:
    """A term's files renamed in together, users last, apply in priority order, error-free, exactly."""
    term = generate_term()
    daemon = start_daemon()
    names = tuple(reversed(ORDER))  # groupmembers.csv first ... users.csv last
    drop_all(layout, term, names)
    wait_all(daemon, names, TERM_TIMEOUT)

    reports = check_reports(layout, term, names)
    order = run_order(daemon)
    assert order == sorted(order, key=PRIORITY.__getitem__), f"not in priority order: {order}"
    assert sorted(order) == sorted(PROCESSORS.values())
    assert reports["users.csv"]["counts"]["created"] == len(term.people)
    assert reports["courses.csv"]["counts"]["created"] == len(term.courses)
    assert_enrol_counts(reports["enrol.csv"], term)
    actual, extras = platform_state(layout)
    fields = ("users", "categories", "courses", "enrolments", "dated", "roles", "groups", "groupings",
              "members", "cohorts", "cohort_members")
    assert differences(term.expected, actual, fields) == []
    assert extras["methods"] == {("manual", True)}, "every enrolment is manual and active"
    [(start, end)] = extras["dates"]
    assert (str(start)[:19], str(end)[:19]) == ("2026-09-01 00:00:00", "2027-02-15 18:00:00")
    assert daemon.errors() == []
    assert layout.private_problems() == []


def _received_before(daemon: Daemon, first: str, then: str) -> bool:
    names = [e.get("file") for e in daemon.events("file_received")]
    return first in names and then in names and names.index(first) < names.index(then)


@pytest.mark.slow
@pytest.mark.parametrize("upload_name", ["users.csv", "users.csv.filepart"])
def test_enrolments_renamed_in_during_a_slow_users_upload_wait_for_it_then_succeed(
    start_daemon: StartDaemon, layout: Layout, upload_name: str
) -> None:
    """Files renamed in while users.csv still uploads (pauses > settle, under its own name or a
    WinSCP-style temporary one) wait for it, then all succeed."""
    term = generate_term(seed=7, students=240, staff=12, courses=30, per_student=4)
    daemon = start_daemon()
    later = ("enrol.csv", "enrol_flatfile.csv", "groups.csv", "courses.csv")
    users = term.files["users.csv"]
    pauses: list[int] = []

    def during_upload(written: int) -> None:
        if not pauses:
            drop_all(layout, term, later)
        else:
            assert not daemon.events("file_started"), f"a file was started after {written} bytes of users.csv"
        pauses.append(written)

    slow_write(layout.sync / upload_name, users, chunk=math.ceil(len(users) / 4), pause=1.5,
               on_pause=during_upload)
    if upload_name != "users.csv":
        (layout.sync / upload_name).rename(layout.sync / "users.csv")
    wait_all(daemon, ("users.csv", *later), TERM_TIMEOUT)

    assert len(pauses) == 3
    assert _received_before(daemon, "enrol.csv", "users.csv"), "enrol.csv was not waiting for users.csv"
    assert run_order(daemon)[:2] == ["users", "courses"]
    reports = check_reports(layout, term, ("users.csv", *later))
    assert_enrol_counts(reports["enrol.csv"], term)
    actual, _extras = platform_state(layout)
    assert differences(term.expected, actual, ("users", "courses", "enrolments", "dated", "roles")) == []
