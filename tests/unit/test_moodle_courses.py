"""MoodleCategories and MoodleCourses through MoodlePlatform over HTTP to the fake Moodle: the courses
and course_delete processors applied as the runner does (a refused row isolated, the others
applied), categories created level by level, the key cache, sections, dry run."""

from __future__ import annotations

from pathlib import Path

from tests.moodle_support import moodle_platform
from tests.unit.moodle_miniplatform import outcomes, run

GET = "core_course_get_courses_by_field"
CREATE = "core_course_create_courses"
UPDATE = "core_course_update_courses"
CATEGORIES = "core_course_get_categories"
CREATE_CATEGORIES = "core_course_create_categories"


def test_courses_file_creates_categories_and_courses_and_isolates_a_refusal(tmp_path: Path) -> None:
    """Missing category levels are created parents first; Moodle refuses a course whose language is
    not installed (the whole create call): that row carries Moodle's message, the others are created."""
    with moodle_platform(tmp_path, batch_size=100) as (platform, fake):
        site = fake.site
        csv = ("shortname,fullname,idnumber,category,lang,summary\n"
               "M101,Maths & stats,M101,Sciences/Maths,,Intro\n"
               "X1,Bad language,X1,Sciences/Maths,xx,\n"
               "P201,Physique,P201,Sciences/Physique,en,\n")
        lines = outcomes(run(platform, "courses", csv, tmp_path))
        assert lines[0] == "created: course 'M101'" and lines[2] == "created: course 'P201'"
        refused = "error: moodle: Invalid parameter value detected (core_course_create_courses)"
        assert lines[1].startswith(refused)
        assert "'X1'" in lines[1]
        m101, p201 = site.course_by_shortname("M101"), site.course_by_shortname("P201")
        assert m101 is not None and p201 is not None and site.course_by_shortname("X1") is None
        assert m101.fullname == "Maths & stats"
        assert site.category_path(m101.category) == ["Sciences", "Maths"]
        assert site.category_path(p201.category) == ["Sciences", "Physique"]
        assert len([c for c in site.rows("categories") if c.name == "Sciences"]) == 1


def test_update_moves_and_renames_and_refuses_an_unknown_category(tmp_path: Path) -> None:
    """With update on, the changed fields are written with update_courses; a category id that does
    not exist is the processor's row error and nothing is sent for that row."""
    with moodle_platform(tmp_path) as (platform, fake):
        site = fake.site
        other = site.add_category("Autre")
        site.add_course("M101", fullname="Old", idnumber="M101")
        csv = f"shortname,fullname,category\nM101,New & improved,{other}\n"
        assert outcomes(run(platform, "courses", csv, tmp_path, update=True)) == [
            "updated: course 'M101': fullname, category"]
        course = site.course_by_shortname("M101")
        assert course is not None and (course.fullname, course.category) == ("New & improved", other)
        assert outcomes(run(platform, "courses", csv, tmp_path, update=True)) == ["unchanged: course 'M101'"]
        bad = "shortname,fullname,category\nM101,New,999999\n"
        assert outcomes(run(platform, "courses", bad, tmp_path, update=True))[0].startswith("error:")
        assert fake.count(UPDATE) == 1


def test_known_courses_are_read_by_ids(tmp_path: Path) -> None:
    """A first file naming few courses asks one call per shortname, one naming many reads every
    course in one call; the same courses later cost one field=ids call per batch_size courses (the
    key cache), and categories are read once."""
    with moodle_platform(tmp_path, batch_size=100) as (platform, fake):
        for n in range(30):
            fake.site.add_course(f"C{n}")
        few = "shortname,fullname\n" + "".join(f"C{n},C{n}\n" for n in range(5))
        run(platform, "courses", few, tmp_path)
        asked = sorted((c.params["field"], c.params["value"]) for c in fake.calls if c.function == GET)
        assert asked == [("shortname", f"C{n}") for n in range(5)]  # in parallel: any order
        csv = "shortname,fullname\n" + "".join(f"C{n},C{n}\n" for n in range(30))
        run(platform, "courses", csv, tmp_path)
        first = fake.count(GET)
        assert first == 5 + 1 + 1  # the 5 known by ids, then the 25 unknown: all courses at once
        assert [c.params for c in fake.calls if c.function == GET][-1] == {}
        again = outcomes(run(platform, "courses", csv, tmp_path))
        assert again[0] == "skipped: course 'C0' exists; update is off"
        assert fake.count(GET) - first == 1
        assert fake.count(CATEGORIES) == 1


def test_topics_cannot_be_written_and_a_template_is_imported_by_moodle(tmp_path: Path) -> None:
    """A topic name the course does not have ends as a 'not supported on moodle' line (the course
    itself is created first: the port cannot refuse earlier); a template is one
    core_course_import_course, which gives the new course the template's activities."""
    with moodle_platform(tmp_path) as (platform, fake):
        template = fake.site.add_course("TPL")
        fake.site.add_module(template, 1, "page", "Welcome page")
        fake.site.add_module(template, 2, "forum", "Questions")
        csv = "shortname,fullname,topic1\nT1,With topic,Introduction|Hello\n"
        (line,) = outcomes(run(platform, "courses", csv, tmp_path))
        assert line.startswith("error: not supported on moodle: writing course sections "
                               "(section 1 'Introduction'")
        csv = "shortname,fullname,template\nT2,From template,TPL\n"
        (line,) = outcomes(run(platform, "courses", csv, tmp_path))
        assert line == "created: course 'T2' from template 'TPL'"
        assert fake.count("core_course_import_course") == 1
        new = fake.site.course_by_shortname("T2")
        assert new is not None
        assert [(m.modname, m.name) for m in fake.site.modules_of(new.id)] == [
            ("page", "Welcome page"), ("forum", "Questions")]


def test_sections_are_read_from_moodle(tmp_path: Path) -> None:
    """sections() gives each section's number, name and summary as Moodle shows them."""
    with moodle_platform(tmp_path) as (platform, fake):
        course = fake.site.add_course("S1", sections=2)
        fake.site.add_section(course, 1, "Séance 1", "<p>Résumé</p>")
        with platform.transaction() as tx:
            sections = tx.courses.sections([course])
        assert [s.number for s in sections] == [0, 1, 2]
        assert (sections[1].name, sections[1].summary) == ("Séance 1", "<p>Résumé</p>")


def test_course_delete_and_dry_run(tmp_path: Path) -> None:
    """course_delete removes the course in Moodle; a dry run of a courses file sends no write."""
    with moodle_platform(tmp_path) as (platform, fake):
        fake.site.add_course("GONE", idnumber="GONE")
        deleted = outcomes(run(platform, "course_delete", "shortname\nGONE\n", tmp_path))
        assert deleted[0].startswith("deleted")
        assert fake.site.course_by_shortname("GONE") is None
        calls = len(fake.calls)
        csv = "shortname,fullname,category\nD1,Dry,New/Cat\n"
        dry = run(platform, "courses", csv, tmp_path, dry_run=True)
        assert outcomes(dry) == ["created: course 'D1'"]
        assert {c.function for c in fake.calls[calls:]} <= {GET, CATEGORIES}
        assert fake.site.course_by_shortname("D1") is None
