"""The users, courses and course_delete processors applied as the runner does (BatchApplier: a
failed batch split down to the refused row) through MoodleUsers, MoodleCategories, MoodleCourses
and MoodleContent over an in-memory Moodle with the recorded semantics (tests/unit/moodle_coresite):
Moodle's refusals become those rows' lines while the other rows are applied; call budgets."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.moodle_coresite import CorePlatform, CoreSite
from tests.unit.moodle_miniplatform import by_outcome, outcomes, run

USERS = "username,firstname,lastname,email,idnumber,password,city,suspended,deleted\n"


MIXED = ("anna,Anna,A,anna@univ.fr,E2,Secret-2026!,Dijon,,\n"
         "bob,Bob,B,ZOE@UNIV.FR,E3,Secret-2026!,,,\n"
         "weak,Weak,W,weak@univ.fr,E4,abcdefgh,,,\n"
         "zoe,Zoé,Z,zoe@univ.fr,E1,,Dijon,,\n"
         "carl,Carl,C,carl@univ.fr,E5,,,1,\n"
         "eve,Eve,E,eve@univ.fr,E9,,,,1\n")


def mixed_site() -> CoreSite:
    """zoe (to update) and eve (to delete) exist."""
    site = CoreSite()
    site.add_user("zoe", email="zoe@univ.fr", idnumber="E1", city="Besançon")
    site.add_user("eve", email="eve@univ.fr", idnumber="E9")
    return site


def test_users_rows_are_applied_or_refused_one_by_one(tmp_path: Path) -> None:
    """A duplicate email in another case and a weak password are refused by Moodle: those rows carry
    Moodle's message (never the password); every other row is created, updated, suspended or deleted."""
    site = mixed_site()
    lines = outcomes(run(CorePlatform(site), "users", USERS + MIXED, tmp_path))
    assert lines[0] == "created: user 'anna'"
    assert lines[1] == ("error: moodle: Invalid parameter value detected (core_user_create_users): "
                        "user 'bob'")
    assert lines[2].startswith("error: moodle: Passwords must have at least 1 digit(s).")
    assert "'weak'" in lines[2] and "abcdefgh" not in lines[2]
    # zoe's update was committed by the refused first attempt and undone before the retry
    assert lines[3] == "updated: user 'zoe': firstname, lastname, city"
    assert lines[4] == "created: user 'carl'"
    assert site.user("bob") is None and site.user("weak") is None and site.user("eve") is None
    anna, zoe, carl = site.user("anna"), site.user("zoe"), site.user("carl")
    assert anna is not None
    assert (anna["city"], anna["idnumber"], anna["password"]) == ("Dijon", "E2", "Secret-2026!")
    assert zoe is not None and (zoe["city"], zoe["firstname"]) == ("Dijon", "Zoé")
    assert carl is not None and carl["suspended"] == 1 and "password" not in carl  # createpassword


def test_what_a_refused_batch_created_is_deleted_before_the_retry(tmp_path: Path) -> None:
    """The users a failed attempt created go again (core_user_delete_users), so the retried rows
    create them anew and their lines say 'created'; one live account per username in the end."""
    site = CoreSite()
    site.add_user("zoe", email="zoe@univ.fr", idnumber="E1")
    csv = USERS + ("amy,Amy,A,amy@univ.fr,F1,Secret-2026!,,,\n"
                   "ben,Ben,B,ben@univ.fr,F2,Secret-2026!,,,\n"
                   "bad,Bad,B,ZOE@UNIV.FR,F3,Secret-2026!,,,\n")  # Moodle: email taken
    platform = CorePlatform(site, batch_size=2)  # amy+ben in one create call, bad in the next
    lines = outcomes(run(platform, "users", csv, tmp_path))
    assert lines[:2] == ["created: user 'amy'", "created: user 'ben'"]
    assert lines[2].startswith("error: ")
    undone = site.client.sent("core_user_delete_users")
    assert len(undone) >= 1 and len(undone[0]["userids"]) == 2  # amy and ben, made by the first attempt
    live = [u["username"] for u in site.users.values() if not u.get("deleted")]
    assert sorted(live) == ["admin", "amy", "ben", "zoe"]


@pytest.mark.xfail(strict=True, reason="Moodle has no rollback and a deleted user cannot be brought back: "
                   "the delete of eve was committed in the batch attempt Moodle refused (create_users), "
                   "so the retried half reads eve as gone ('skipped: no such user to delete'). Exact "
                   "lines need the adapter to remember a refused attempt's committed deletes "
                   "(README Moodle, 'Known limits')")
def test_rows_committed_in_a_refused_attempt_keep_their_outcome(tmp_path: Path) -> None:
    """eve's row says deleted, although her batch was retried in halves after the delete."""
    lines = outcomes(run(CorePlatform(mixed_site()), "users", USERS + MIXED, tmp_path))
    assert lines[5] == "deleted: user 'eve'"


def test_a_thousand_new_users_cost_at_most_thirty_calls(tmp_path: Path) -> None:
    """1,000 new users with idnumbers (batch_size 100, one runner batch): 2 username and 2 idnumber
    look-ups (500 values a call) and 10 creates; the same file again costs the 2 username look-ups."""
    site = CoreSite()
    platform = CorePlatform(site, batch_size=100)
    rows = "".join(f"u{n:04d},First,Last{n},u{n:04d}@univ.fr,ID{n:04d},,,,\n" for n in range(1000))
    results = run(platform, "users", USERS + rows, tmp_path, rows_per_batch=2000)
    assert by_outcome(results) == {"created": 1000}
    assert len(site.client.calls) == 14
    assert site.count("core_user_create_users") == 10
    site.client.calls.clear()
    again = run(platform, "users", USERS + rows, tmp_path, rows_per_batch=2000)
    assert by_outcome(again) == {"unchanged": 1000}
    assert [name for name, _ in site.client.calls] == ["core_user_get_users_by_field"] * 2


def test_passwords_are_sent_once_per_process(tmp_path: Path) -> None:
    """Moodle never shows a password: the first file sets it, the same file again finds the hash syncd
    remembered (unchanged); a new password is sent."""
    site = CoreSite()
    platform = CorePlatform(site)
    site.add_user("zoe", email="zoe@univ.fr")
    csv = "username,firstname,lastname,email,password\nzoe,Test,zoe,zoe@univ.fr,Secret-2026!\n"
    assert outcomes(run(platform, "users", csv, tmp_path)) == ["updated: user 'zoe': password"]
    assert outcomes(run(platform, "users", csv, tmp_path)) == ["unchanged: user 'zoe'"]
    changed = csv.replace("Secret-2026!", "Other-2027!")
    assert outcomes(run(platform, "users", changed, tmp_path)) == ["updated: user 'zoe': password"]
    assert site.count("core_user_update_users") == 2
    assert site.user("zoe")["password"] == "Other-2027!"  # type: ignore[index]


def test_key_swaps_go_through_valid_placeholder_usernames(tmp_path: Path) -> None:
    """a -> c, then b -> a in one batch: the processor moves 'a' aside first; its placeholder is sent
    as a username Moodle accepts, and both renames are applied."""
    site = CoreSite()
    a, b = site.add_user("a"), site.add_user("b")
    csv = "username,oldusername,firstname,lastname\nc,a,Test,a\na,b,Test,b\n"
    results = run(CorePlatform(site), "users", csv, tmp_path)
    assert [r.outcome.value for r in results] == ["updated", "updated"]
    assert (site.users[a]["username"], site.users[b]["username"]) == ("c", "a")
    sent = [u["username"] for p in site.client.sent("core_user_update_users") for u in p["users"]]
    assert sent[0] == f"syncd.vacating.{a}"


def test_a_deleted_user_is_gone_and_a_dry_run_writes_nothing(tmp_path: Path) -> None:
    """After a deletion Moodle scrambles the keys: the same row finds no user to delete. A dry run
    reports the rows and only reads."""
    site = CoreSite()
    platform = CorePlatform(site)
    site.add_user("eve")
    csv = "username,firstname,lastname,deleted\neve,Eve,E,1\n"
    assert outcomes(run(platform, "users", csv, tmp_path)) == ["deleted: user 'eve'"]
    assert outcomes(run(platform, "users", csv, tmp_path)) == ["skipped: no such user to delete"]
    site.client.calls.clear()
    dry = run(platform, "users", USERS + "new,N,N,new@univ.fr,,,,,\n", tmp_path, dry_run=True)
    assert outcomes(dry) == ["created: user 'new'"]
    assert {name for name, _ in site.client.calls} == {"core_user_get_users_by_field"}


def test_courses_rows_create_categories_and_isolate_a_refusal(tmp_path: Path) -> None:
    """Missing category levels are created parents first (one call per level); Moodle refuses a
    course whose language is not installed (the whole create): that row carries Moodle's message,
    the others are created with their manual enrolment method."""
    site = CoreSite()
    csv = ("shortname,fullname,idnumber,category,lang\n"
           "M101,Maths & stats,M101,Sciences/Maths,\n"
           "X1,Bad language,X1,Sciences/Maths,xx\n"
           "P201,Physique,P201,Sciences/Physique,en\n")
    lines = outcomes(run(CorePlatform(site), "courses", csv, tmp_path))
    assert lines[0] == "created: course 'M101'" and lines[2] == "created: course 'P201'"
    assert lines[1] == ("error: moodle: Invalid parameter value detected (core_course_create_courses): "
                        "course 'X1'")
    m101, p201 = site.course("M101"), site.course("P201")
    assert m101 is not None and p201 is not None and site.course("X1") is None
    assert m101["fullname"] == "Maths & stats"
    names = {c["id"]: (c["name"], c["parent"]) for c in site.categories.values()}
    sciences = next(i for i, (name, _) in names.items() if name == "Sciences")
    assert names[m101["categoryid"]] == ("Maths", sciences)
    assert names[p201["categoryid"]] == ("Physique", sciences)
    assert [name for name, _ in names.values()].count("Sciences") == 1


def test_course_updates_and_the_key_cache(tmp_path: Path) -> None:
    """With update on, changed fields go through update_courses; the same file again is unchanged
    and reads the course by id (one call) instead of by shortname; categories are read once."""
    site = CoreSite()
    platform = CorePlatform(site)
    other = 1
    site.add_course("M101", fullname="Old")
    csv = f"shortname,fullname,category,startdate\nM101,New & improved,{other},2026-09-01\n"
    assert outcomes(run(platform, "courses", csv, tmp_path, update=True)) == [
        "updated: course 'M101': fullname, startdate"]
    course = site.course("M101")
    assert course is not None and course["fullname"] == "New & improved" and course["startdate"] > 0
    site.client.calls.clear()
    assert outcomes(run(platform, "courses", csv, tmp_path, update=True)) == ["unchanged: course 'M101'"]
    gets = site.client.sent("core_course_get_courses_by_field")
    assert [g["field"] for g in gets] == ["ids"]
    assert site.count("core_course_get_categories") == 0


def test_topics_are_not_supported_and_a_template_is_a_moodle_course_import(tmp_path: Path) -> None:
    """A topic the course does not have is a 'not supported on moodle' line (the course created
    for the row is deleted again when its batch fails); template = a course is
    core_course_import_course from it into the new course, once."""
    site = CoreSite()
    platform = CorePlatform(site)
    template = site.add_course("TPL", sections=2)
    csv = "shortname,fullname,topic1\nT1,T,Introduction|Hello\n"
    (line,) = outcomes(run(platform, "courses", csv, tmp_path))
    assert line.startswith(
        "error: not supported on moodle: writing course sections (section 1 'Introduction'")
    (line,) = outcomes(run(platform, "courses", "shortname,fullname,template\nT2,T,TPL\n", tmp_path))
    assert line == "created: course 'T2' from template 'TPL'"
    t2 = site.course("T2")
    assert site.course("T1") is None and t2 is not None
    assert site.imports == [(template, t2["id"])]
    assert [s["section"] for s in site.sections[t2["id"]]] == [0, 1, 2]


def test_a_failed_template_import_deletes_the_new_course_and_fails_the_row(tmp_path: Path) -> None:
    """Moodle refuses the import: the course made for the row is deleted again (no course without
    its template) and the row carries Moodle's message; dropped again once Moodle can import, the
    row creates and imports it."""
    site = CoreSite()
    template = site.add_course("TPL", sections=1)
    site.import_fails = True
    platform = CorePlatform(site)
    csv = "shortname,fullname,template\nT3,T,TPL\n"
    (line,) = outcomes(run(platform, "courses", csv, tmp_path))
    assert line == ("error: moodle: You are trying to use an invalid course ID (core_course_import_course "
                    f"from course id {template}); the new course was deleted again")
    assert site.course("T3") is None and site.imports == []
    site.import_fails = False
    assert outcomes(run(platform, "courses", csv, tmp_path)) == ["created: course 'T3' from template 'TPL'"]
    t3 = site.course("T3")
    assert t3 is not None and site.imports == [(template, t3["id"])]


def test_course_delete_and_a_courses_dry_run(tmp_path: Path) -> None:
    """course_delete deletes through core_course_delete_courses; a dry run of a courses file with a
    new category only reads."""
    site = CoreSite()
    platform = CorePlatform(site)
    site.add_course("GONE")
    assert outcomes(run(platform, "course_delete", "shortname\nGONE\n", tmp_path))[0].startswith("deleted")
    assert site.course("GONE") is None
    site.client.calls.clear()
    dry = run(platform, "courses", "shortname,fullname,category\nD1,Dry,New/Cat\n", tmp_path, dry_run=True)
    assert outcomes(dry) == ["created: course 'D1'"]
    assert {name for name, _ in site.client.calls} <= {"core_course_get_courses_by_field",
                                                        "core_course_get_categories"}
    assert site.course("D1") is None and len(site.categories) == 1


def test_a_course_updated_by_a_refused_attempt_gets_its_fields_back_before_the_retry(tmp_path: Path) -> None:
    """A new course with a topic Moodle cannot write fails the batch after the update of another
    course was sent: that course gets the fields it was read with again, so the retried row says
    'updated' (not 'unchanged') and the failing row's new course is deleted again."""
    site = CoreSite()
    site.add_course("OLD", fullname="Old name")
    csv = "shortname,fullname,topic1\nOLD,New name,\nNEW,New course,Intro|Hello\n"
    lines = outcomes(run(CorePlatform(site), "courses", csv, tmp_path, update=True))
    assert lines[0] == "updated: course 'OLD': fullname"
    assert lines[1].startswith("error: not supported on moodle: writing course sections")
    old = site.course("OLD")
    assert old is not None and old["fullname"] == "New name" and site.course("NEW") is None
    restores = [p["courses"] for p in site.client.sent("core_course_update_courses")
                if p["courses"][0]["fullname"] == "Old name"]
    assert len(restores) == 1
