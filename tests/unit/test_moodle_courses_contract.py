"""MoodleCategories and MoodleCourses against the recordings (a scripted client, no HTTP): the
recorded requests, escaped names read unescaped, the key cache and the ids+unknown-id PHP Error
(§5.3), the unknown-category check before update_courses (§5.4), warnings as refusals, sections."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from syncd.domain import PlatformRefused
from syncd.platform.model import CategoryRecord, CourseRecord, SectionRecord
from syncd.platform.moodle._enrolmethods import METHODS
from syncd.platform.moodle._roster import ROSTERS
from syncd.platform.moodle._ws import SiteCache
from syncd.platform.moodle.courses import (
    CONTENTS,
    CREATE,
    CREATE_CATEGORIES,
    DELETE,
    GET,
    GET_CATEGORIES,
    UPDATE,
    MoodleCategories,
    MoodleCourses,
)
from tests.unit.moodle_scripted import Scripted, form, recorded, recorded_form, ws_over

FAC_ST, GE, L3 = recorded(GET_CATEGORIES, "by idnumber - NOTE")["response"][:3]
ECO = recorded(GET, "by shortname (found)")["response"]["courses"][0]
GE201 = recorded(GET, "by idnumber (found)")["response"]["courses"][0]
ATEL = recorded(GET, "by id (found)")["response"]["courses"][0]
PHP_ERROR = recorded(GET, "BUG: field=ids with one unknown id")["response"]


class Site:
    """Answers the category and course reads from recorded entries, as Moodle does (one value per
    shortname/idnumber call, ids comma-separated, any unknown id in ``ids`` a PHP Error)."""

    def __init__(self, categories: list[dict[str, Any]], courses: list[dict[str, Any]],
                 writes: Mapping[str, Any] | None = None) -> None:
        self.categories = categories
        self.courses = courses
        self.writes = dict(writes or {})
        self.client = Scripted(self.answer)

    def answer(self, function: str, params: Mapping[str, Any]) -> Any:
        if function == GET_CATEGORIES:
            assert params.get("addsubcategories") == 0
            return copy.deepcopy(self.categories)
        if function == GET:
            field, value = params["field"], str(params["value"])
            if field == "ids":
                ids = [int(v) for v in value.split(",")]
                if any(i not in {c["id"] for c in self.courses} for i in ids):
                    return PHP_ERROR
                return {"courses": [c for c in self.courses if c["id"] in ids], "warnings": []}
            return {"courses": [c for c in self.courses if str(c[field]) == value], "warnings": []}
        reply = self.writes[function]
        return reply(params) if callable(reply) else copy.deepcopy(reply)


def courses_of(site: Site, *, cache: SiteCache | None = None, dry_run: bool = False,
               batch_size: int = 100) -> MoodleCourses:
    return MoodleCourses(ws_over(site.client, cache=cache, dry_run=dry_run, batch_size=batch_size))


def test_categories_are_read_whole_once_and_unescaped() -> None:
    """all() is one get_categories (addsubcategories=0), cached across transactions; parent 0 is None,
    names unescaped, idnumber null is None."""
    amp = {**GE, "id": 78, "name": "Département de Mathématiques &amp; Économétrie", "idnumber": None}
    site = Site([FAC_ST, GE, amp], [])
    cache = SiteCache()
    found = MoodleCategories(ws_over(site.client, cache=cache)).all()
    assert [(c.id, c.parent_id, c.idnumber) for c in found] == [(75, None, "FAC-ST"), (77, 75, "FAC-ST-GE"),
                                                                 (78, 75, None)]
    assert found[2].name == "Département de Mathématiques & Économétrie"
    MoodleCategories(ws_over(site.client, cache=cache)).all()
    assert len(site.client.sent(GET_CATEGORIES)) == 1


def test_category_add_sends_the_recorded_fields_and_keeps_the_cache() -> None:
    """add() sends the recorded create (parent 0 for the top level) and the new categories join the cache."""
    exchange = recorded(CREATE_CATEGORIES, "success: batch of 2 top-level")
    site = Site([], [], {CREATE_CATEGORIES: exchange["response"]})
    cache = SiteCache()
    rec = recorded_form(exchange)
    new = [CategoryRecord(rec["categories[0][name]"], idnumber="FAC-ST",
                          description=rec["categories[0][description]"]),
           CategoryRecord(rec["categories[1][name]"], idnumber="FAC-LLSH")]
    MoodleCategories(ws_over(site.client, cache=cache)).add(new)
    assert form(site.client.sent(CREATE_CATEGORIES)[0]) == rec
    assert [c.id for c in new] == [75, 76]
    assert [c.id for c in MoodleCategories(ws_over(site.client, cache=cache)).all()] == [75, 76]
    assert len(site.client.sent(GET_CATEGORIES)) == 1


def test_find_reads_one_key_a_call_then_known_courses_by_ids() -> None:
    """The first find asks one call per shortname/idnumber (as recorded); the keys are cached, so
    the next find reads the same courses with one field=ids call. Names are unescaped, dates read."""
    site = Site([], [ECO, GE201])
    cache = SiteCache()
    found = courses_of(site, cache=cache).find(shortnames=["ECO-L3-S5-101"], idnumbers=["2026-GE-201"])
    assert sorted(form(p)["field"] for p in site.client.sent(GET)) == ["idnumber", "shortname"]
    assert form(site.client.sent(GET)[1]) in (recorded_form(recorded(GET, "by shortname (found)")),
                                              recorded_form(recorded(GET, "by idnumber (found)")))
    eco, ge = found
    assert ge.fullname == "Électronique de puissance & énergies renouvelables"
    assert (eco.category_id, eco.startdate, eco.enddate, eco.visible) == (
        78, datetime.fromtimestamp(1788213600, UTC), datetime.fromtimestamp(1801436340, UTC), True)
    site.client.calls.clear()
    again = courses_of(site, cache=cache).find(shortnames=["ECO-L3-S5-101"], idnumbers=["2026-GE-201"])
    assert [c.id for c in again] == [64, 65]
    assert site.client.sent(GET) == [{"field": "ids", "value": "64,65"}]
    assert cache.get(METHODS, dict)[64] == ("manual",)  # handed to the enrolments' cache


def test_an_unknown_id_makes_the_chunk_be_read_one_id_at_a_time() -> None:
    """§5.3: field=ids with an unknown id is a PHP Error; that chunk is read again with field=id."""
    site = Site([], [ECO, GE201, ATEL])
    found = courses_of(site, batch_size=2).find(ids=[64, 65, 66, 999999])
    assert [c.id for c in found] == [64, 65, 66]
    fields = [(p["field"], str(p["value"])) for p in site.client.sent(GET)]
    assert fields == [("ids", "64,65"), ("ids", "66,999999"), ("id", "66"), ("id", "999999")]


def test_a_stale_cached_key_is_checked_and_asked_again() -> None:
    """A shortname whose cached id now has another shortname is looked up by value again."""
    cache = SiteCache()
    site = Site([], [ECO])
    courses_of(site, cache=cache).find(shortnames=["ECO-L3-S5-101"])
    site.courses = [{**ECO, "shortname": "ECO-RENAMED"}]
    assert courses_of(site, cache=cache).find(shortnames=["ECO-L3-S5-101"]) == []
    assert [c.shortname for c in courses_of(site, cache=cache).find(ids=[64])] == ["ECO-RENAMED"]


def test_create_sends_the_recorded_fields() -> None:
    """add() sends the fields of the recorded minimal create (plus the ones syncd always writes) and
    sets the ids."""
    exchange = recorded(CREATE, "success: minimal course")
    site = Site([], [], {CREATE: exchange["response"]})
    rec = recorded_form(exchange)
    course = CourseRecord(rec["courses[0][shortname]"], rec["courses[0][fullname]"], 76,
                          idnumber="2026-LLSH-ATEL")
    courses_of(site).add([course])
    sent = form(site.client.sent(CREATE)[0])
    assert {k: sent[k] for k in rec} == rec
    assert (sent["courses[0][startdate]"], sent["courses[0][enddate]"], sent["courses[0][format]"]) == (
        "0", "0", "topics")
    assert course.id == 66


def test_create_refusal_names_the_course() -> None:
    """Moodle's recorded shortnametaken message is the row's reason, the course named."""
    site = Site([], [], {CREATE: recorded(CREATE, "failure: duplicate shortname")["response"]})
    with pytest.raises(PlatformRefused, match=r"Short name is already used.*course 'X'"):
        courses_of(site).add([CourseRecord("X", "X", 78)])


def test_update_checks_the_category_first() -> None:
    """§5.4: an unknown category is refused before anything is sent (the list is read again once)."""
    site = Site([FAC_ST], [GE201], {UPDATE: {"warnings": []}})
    course = CourseRecord("GE-L3-201", "GE", 999999, id=65)
    with pytest.raises(PlatformRefused, match="category id 999999 does not exist; not sent"):
        courses_of(site).update([course])
    assert site.client.sent(UPDATE) == []
    assert len(site.client.sent(GET_CATEGORIES)) == 2  # loaded, then read again once for the missing id
    course.category_id = 75
    courses_of(site).update([course])
    sent = form(site.client.sent(UPDATE)[0])
    assert (sent["courses[0][id]"], sent["courses[0][categoryid]"]) == ("65", "75")
    assert "courses[0][startdate]" in sent and "courses[0][enddate]" in sent  # never one without the other


def test_update_warnings_name_the_courses() -> None:
    """The recorded shortnametaken warning becomes a refusal naming the course."""
    site = Site([FAC_ST], [], {UPDATE: recorded(UPDATE, "warning: shortname already used")["response"]})
    taken = r"course 'ECO-L3-S5-101' \(id 66\): Short name is already used"
    with pytest.raises(PlatformRefused, match=taken):
        courses_of(site).update([CourseRecord("ECO-L3-S5-101", "A", 75, id=66)])


def test_delete_sends_the_recorded_call_and_drops_the_related_caches() -> None:
    """delete() is the recorded delete_courses; rosters, methods, groups are read again afterwards;
    a warning (unknown id) is a refusal."""
    cache = SiteCache()
    cache.get(ROSTERS, lambda: {69: "roster"})
    site = Site([], [], {DELETE: {"warnings": []}})
    courses_of(site, cache=cache).delete([69, 66])
    expected = recorded_form(recorded(DELETE, "success: batch of 2"))
    sent = form(site.client.sent(DELETE)[0])
    assert sent.keys() == expected.keys() and sorted(sent.values()) == sorted(expected.values())
    assert cache.get(ROSTERS, dict) == {}
    site.writes[DELETE] = recorded(DELETE, "warning: unknown course id")["response"]
    with pytest.raises(PlatformRefused, match="Unknown course ID 999999"):
        courses_of(site).delete([999999])


def test_sections_are_read_and_only_unchanged_ones_are_accepted() -> None:
    """sections() reads the recorded get_contents; put_sections accepts a section as Moodle has it
    and the blank section 0 of a course created in the transaction, and refuses any other change."""
    contents = recorded(CONTENTS, "options excludemodules=1")
    site = Site([], [], {CONTENTS: contents["response"], CREATE: [{"id": 70, "shortname": "N"}]})
    repo = courses_of(site)
    found = repo.sections([64])
    assert form(site.client.sent(CONTENTS)[0]) == recorded_form(contents)
    assert [(s.number, s.name) for s in found][:2] == [(0, "Présentation générale"),
                                                        (1, "Séance 1 — Introduction à l’économétrie")]
    same = SectionRecord(64, 1, found[1].name, found[1].summary)
    repo.put_sections([same])
    assert same.id == found[1].id
    new = CourseRecord("N", "N", 75)
    repo.add([new])
    repo.put_sections([SectionRecord(70, 0)])
    refused = r"not supported on moodle: writing course sections \(section 1 'X'"
    with pytest.raises(PlatformRefused, match=refused):
        repo.put_sections([SectionRecord(64, 1, "X", "")])
    assert len(site.client.sent(CONTENTS)) == 1


def test_dry_run_writes_nothing() -> None:
    """A dry run gives negative ids, pretends the blank section 0 and sends no write."""
    site = Site([FAC_ST], [GE201])
    cache = SiteCache()
    ws = ws_over(site.client, cache=cache, dry_run=True)
    categories = [CategoryRecord("Nouvelle")]
    MoodleCategories(ws).add(categories)
    repo = MoodleCourses(ws)
    course = CourseRecord("NEW", "New", categories[0].id or 0)
    repo.add([course])
    repo.update([CourseRecord("GE-L3-201", "GE", 75, id=65)])
    repo.delete([65])
    assert [s.number for s in repo.sections([course.id or 0])] == [0]
    repo.put_sections([SectionRecord(course.id or 0, 0)])
    assert (categories[0].id, course.id) == (-1, -2)
    assert {name for name, _ in site.client.calls} <= {GET, GET_CATEGORIES}
