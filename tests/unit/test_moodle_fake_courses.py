"""The fake Moodle's course functions (tests/moodle_fake/ws_courses.py) replay the recordings of
../shared/moodle-ws: each recorded request, sent in order to a site seeded with the recorded ids,
gives the recorded reply (error bodies exactly; success bodies exactly or, for big read replies,
the same keys and the values the test can know)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.moodle_fake.replay import RECORDINGS, direct_reply, load
from tests.moodle_fake.site import Site

VOLATILE = {"timemodified", "timecreated", "cacherev", "sortorder", "courseimage", "contextid", "instance"}

pytestmark = pytest.mark.skipif(not RECORDINGS.is_dir(), reason="no Moodle recordings")






def stable(value: Any) -> Any:
    """A reply without the values that depend on the clock or on the site's other content."""
    if isinstance(value, dict):
        return {k: stable(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [stable(v) for v in value]
    return value


def replay(site: Site, name: str, exact: bool = True) -> int:
    """Replay every exchange of a file in order; check each reply; how many were checked."""
    for exchange in load(f"{name}.json"):
        got = direct_reply(site, exchange["request"])
        want = exchange["response"]
        assert stable(got) == stable(want) if exact else _same_shape(got, want), exchange["title"]
    return len(load(f"{name}.json"))


def _same_shape(got: Any, want: Any) -> bool:
    if isinstance(want, dict):
        return (
            isinstance(got, dict)
            and set(got) == set(want)
            and all(_same_shape(got[k], want[k]) for k in want)
        )
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and all(map(_same_shape, got, want))
    return True


def category_site() -> Site:
    """A site whose next category id is the recorded first one (75)."""
    site = Site()
    site.set_next_id("categories", 75)
    return site


def course_site() -> Site:
    """The recorded categories (75..79) and the next course id the recording starts with (64)."""
    site = category_site()
    faculty = site.add_category("Faculté des Sciences et Techniques", idnumber="FAC-ST")
    letters = site.add_category("Faculté des Lettres, Langues et Sciences humaines", idnumber="FAC-LLSH")
    ge = site.add_category("Département de Génie Électrique", parent=faculty, idnumber="FAC-ST-GE")
    site.add_category("Département de Mathématiques & Économétrie", parent=faculty, idnumber="FAC-ST-MATH")
    site.add_category("Licence 3 — Parcours Énergies renouvelables", parent=ge, idnumber="FAC-ST-GE-L3")
    assert letters == 76
    site.set_next_id("courses", 64)
    direct_reply(site, load("core_course_create_courses.json")[0]["request"])
    return site


def test_create_and_get_categories_replay_the_recording() -> None:
    """create_categories (names escaped, idnumber unique, unknown parent, whole-batch failure) and then
    get_categories (addsubcategories, ANDed criteria, ids, criteriaerror, 'abc' cleaned) as recorded."""
    site = category_site()
    assert replay(site, "core_course_create_categories") == 9
    assert site.category_by_idnumber("FAC-IUT") is None  # the failed batch left nothing
    assert replay(site, "core_course_get_categories") == 7


def test_create_courses_replays_the_recording_and_rolls_back_a_failed_batch() -> None:
    """Every create_courses exchange gives the recorded reply (same ids); the failed batch's first
    course is not kept although it consumed an id."""
    site = course_site()
    site.drop_where("courses", lambda key, _row: key in (64, 65))
    site.set_next_id("courses", 64)
    assert replay(site, "core_course_create_courses") == 8
    assert site.course_by_shortname("ECO-M1-BAYES") is None
    assert [s.section for s in site.sections_of(64)] == [0, 1, 2, 3]
    assert site.course(67) is not None and site.course(67).format == "inexistant"  # type: ignore[union-attr]


def test_get_courses_by_field_replays_the_recording() -> None:
    """Same keys as recorded for every exchange; the names escaped; the PHP Error without errorcode for
    an unknown id in ids; dml_read_exception for a non-numeric one; enabled methods only."""
    site = course_site()
    site.add_course(
        "LLSH-ATEL-01", fullname="Atelier d’écriture créative", category=76, id=66, idnumber="2026-LLSH-ATEL"
    )
    site.add_course("ECO-FMT-X", fullname="Cours au format inconnu", category=78, id=67, format="inexistant")
    records = {e["title"]: e for e in load("core_course_get_courses_by_field.json")}
    for title, exchange in records.items():
        got, want = direct_reply(site, exchange["request"]), exchange["response"]
        if "exception" in want or not want["courses"] or title.startswith("no field"):
            if "exception" in want:
                assert got == want, title
            continue
        assert _same_shape(got, want), title
        assert stable(got["courses"][0]) == stable(want["courses"][0]) or _differs_only_in_updates(
            got, want
        ), title
    eco = direct_reply(site, {"wsfunction": "core_course_get_courses_by_field", "field": "id", "value": "65"})
    assert eco["courses"][0]["fullname"] == "Électronique de puissance &amp; énergies renouvelables"
    site.set_manual_instance(65, False)
    eco = direct_reply(site, {"wsfunction": "core_course_get_courses_by_field", "field": "id", "value": "65"})
    assert eco["courses"][0]["enrollmentmethods"] == []


def _differs_only_in_updates(got: dict[str, Any], want: dict[str, Any]) -> bool:
    """The recorded course 64 was renamed by update_courses before it was read."""
    mine, theirs = stable(got["courses"][0]), stable(want["courses"][0])
    return {k for k in theirs if mine[k] != theirs[k]} <= {"fullname", "displayname", "summary"}


def test_update_courses_replays_warnings_and_the_orphaned_category() -> None:
    """Warnings per item as recorded; the first item of a mixed batch is applied; an unknown category
    is saved before the warning (§5.4) and a later update repairs it."""
    site = course_site()
    site.add_course(
        "LLSH-ATEL-01", fullname="Atelier d’écriture créative", category=76, id=66, idnumber="2026-LLSH-ATEL"
    )
    assert replay(site, "core_course_update_courses") == 9
    course = site.course(66)
    assert course is not None and course.fullname == "Atelier d’écriture créative et poésie contemporaine"
    assert course.idnumber == "2026-LLSH-ATEL"
    assert site.course(65).category == 79  # type: ignore[union-attr]


def test_delete_courses_replays_the_recording() -> None:
    """Unknown ids and the site course are warnings; the others are deleted with their content."""
    site = course_site()
    for courseid in (66, 69):
        site.add_course(f"C{courseid}", id=courseid, sections=2)
    site.enrol(site.add_user("zoe"), 66)
    assert replay(site, "core_course_delete_courses") == 6
    assert [site.course(c) for c in (65, 66, 69)] == [None, None, None]
    assert site.enrolments(66) == {} and site.sections_of(69) == []


def _content_source(site: Site) -> None:
    """Course 64's recorded sections, an Announcements forum, a page and a url."""
    for number, name in enumerate(
        [
            "Présentation générale",
            "Séance 1 — Introduction à l’économétrie",
            "Séance 2 — Régression linéaire",
            "Évaluation finale",
        ]
    ):
        site.add_section(64, number, name, f"<p>Résumé de « {name} »</p>")
    site.add_module(64, 0, "forum", "Announcements")
    site.add_module(64, 1, "page", "Syllabus détaillé")
    site.add_module(64, 2, "url", "Données INSEE (lien externe)", url="https://www.insee.fr/fr/statistiques")


def test_get_contents_import_and_duplicate_replay_the_recording() -> None:
    """get_contents has the recorded shape (excludemodules, excludecontents); import copies sections and
    modules; duplicate gives {id, shortname}, the fullname in shortnametaken, invalidextparam."""
    site = course_site()
    _content_source(site)
    site.add_course("LLSH-ATEL-01", category=76, id=66, sections=1)
    site.add_module(66, 1, "page", "Old page")
    for exchange in load("core_course_get_contents.json"):
        assert _same_shape(direct_reply(site, exchange["request"]), exchange["response"]), exchange["title"]
    for exchange in load("core_course_import_course.json"):
        got, want = direct_reply(site, exchange["request"]), exchange["response"]
        if exchange["request"]["wsfunction"] == "core_course_import_course":
            assert got == want, exchange["title"]
        else:
            assert _same_shape(got, want) and stable(got)[1]["modules"][0]["name"] == "Syllabus détaillé"
    assert [m.name for m in site.modules_of(66)] == [
        "Announcements",
        "Syllabus détaillé",
        "Données INSEE (lien externe)",
    ]
    site.set_next_id("courses", 69)
    for exchange in load("core_course_duplicate_course.json"):
        got, want = direct_reply(site, exchange["request"]), exchange["response"]
        if exchange["request"]["wsfunction"] == "core_course_get_contents":  # section ids are the site's
            assert [(s["section"], s["name"], s["summary"]) for s in got] == [
                (s["section"], s["name"], s["summary"]) for s in want
            ]
        else:
            assert stable(got) == stable(want), exchange["title"]


def test_names_are_html_escaped_and_a_failed_batch_leaves_nothing() -> None:
    """A bare & comes back as &amp; (an entity is kept); a 2-course batch whose 2nd item fails keeps
    neither course."""
    site = course_site()
    reply = direct_reply(site, {"wsfunction": "core_course_create_categories",
                                "categories[0][name]": "R&D &amp; co"})
    assert reply[0]["name"] == "R&amp;D &amp; co"
    before = site.snapshot()["courses"]
    failed = direct_reply(
        site,
        {
            "wsfunction": "core_course_create_courses",
            "courses[0][fullname]": "A",
            "courses[0][shortname]": "A",
            "courses[0][categoryid]": "1",
            "courses[1][fullname]": "B",
            "courses[1][shortname]": "A",
            "courses[1][categoryid]": "1",
        },
    )
    assert failed["errorcode"] == "shortnametaken"
    assert site.snapshot()["courses"] == before
