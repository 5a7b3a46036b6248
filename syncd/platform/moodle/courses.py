"""Course categories, courses and sections on Moodle (implements CategoryRepository and
CourseRepository).

What the web services offer (recordings README §3-§5) and the decisions taken:

- **Categories** are few: :meth:`MoodleCategories.all` reads them whole with one
  ``core_course_get_categories`` (``addsubcategories=0``: with criteria Moodle would add
  every descendant, §5.9) and keeps them in the site cache (:data:`CATEGORIES`), updated
  after every add. Names come back HTML-escaped (§5.10) and are unescaped; a description
  without markup is unescaped too; an empty idnumber is None; parent 0 is None.
  ``add`` sends ``core_course_create_categories`` (whole-batch transaction) in chunks:
  the courses processor adds one tree level per call, a level's parents having their ids
  by then. A lost reply is re-read (the whole list again) before anything is re-sent.
- **Find courses**: ``core_course_get_courses_by_field`` takes *one* shortname or idnumber
  a call, but many ids (``field=ids``). The site cache keeps which id each shortname and
  idnumber had (:data:`KEYS`); a find reads the known courses by ids (``batch_size`` a
  call, in parallel) and checks their keys, then asks one call per key still unknown (in
  parallel). So a file naming the same courses batch after batch costs one call per
  ``batch_size`` courses, and every record returned is fresh. A find with more than
  :data:`ALL_COURSES_AT` keys still unknown reads every course at once instead (the
  function without a field, recorded): the first batch of an enrolments file naming
  hundreds of courses costs one call, not hundreds. An unknown id makes
  ``field=ids`` fail whole with a PHP Error (§5.3): that chunk is read again one
  ``field=id`` call per id. Names (fullname, shortname) are unescaped; the
  ``enrollmentmethods`` each reply carries are handed to the enrolments' cache
  (``_enrolmethods.METHODS``), which then needs no call of its own for these courses.
- **Add**: ``core_course_create_courses`` (whole batch). Every field is sent; start and end
  dates always together (``0`` = none). No ``numsections``: the row gives no section count
  (see sections). **Update**: ``core_course_update_courses``, every field, chunks; each
  item is applied on its own: warnings (``shortnametaken``, ``courseidnumbertaken``,
  ``nostartdatenoenddate``...) become one refusal naming the courses. An unknown
  ``categoryid`` would move the course out of every category before the warning (§5.4):
  the category is checked first (the cached list, read again once when it lacks it) and a
  course whose category does not exist is refused, nothing sent. **Delete**:
  ``core_course_delete_courses`` (warnings per item); Moodle deletes everything in the
  course; the cached rosters, groups, groupings and enrolment methods are dropped.
- **Sections**: ``core_course_get_contents`` (``excludemodules=1``), one call per course
  in parallel: id, number, name (as Moodle shows it: an unnamed section has its format's
  default name) and summary. No web service of the recorded service creates, renames or
  describes a section (``numsections`` is read by create only). So ``put_sections`` writes
  nothing: a section that already has the wanted name and summary is left as it is (the
  blank section 0 every new course gets included), anything else is refused as ``not
  supported`` (a ``topicN`` column, or the sections of a template *archive*).
- **Template** (``template = <course shortname>``): :meth:`MoodleCourses.import_content`,
  Moodle's course import (sections, activities, files), undone by deleting the new course
  when it fails.
- **Dry run**: reads only; new categories and courses get negative ids (the pretended
  categories go into the site cache, dropped when the dry run ends); a course with a
  negative id has just its blank section 0.
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import structlog

from syncd.domain import PlatformRefused
from syncd.platform.model import CategoryRecord, CourseRecord, SectionRecord
from syncd.platform.moodle._enrolmethods import METHODS
from syncd.platform.moodle._roster import ROSTERS
from syncd.platform.moodle._ws import PLATFORM, Ws, chunked, not_supported, refused
from syncd.platform.moodle.errors import MoodleError, MoodleTransportError, MoodleWsError, warnings_of
from syncd.platform.moodle.groups import GROUPINGS, GROUPS, LINKS

log = structlog.get_logger(__name__)

GET_CATEGORIES = "core_course_get_categories"
CREATE_CATEGORIES = "core_course_create_categories"
GET = "core_course_get_courses_by_field"
CREATE = "core_course_create_courses"
UPDATE = "core_course_update_courses"
DELETE = "core_course_delete_courses"
CONTENTS = "core_course_get_contents"
IMPORT = "core_course_import_course"
#: more unknown shortnames/idnumbers than this in one find: read every course in one call
#: (``core_course_get_courses_by_field`` without a field) instead of one call per key
ALL_COURSES_AT = 20
#: site-cache entry: category id -> CategoryRecord
CATEGORIES = "moodle.categories"
#: site-cache entry: ("shortname" | "idnumber", value) -> course id (checked on every use)
KEYS = "moodle.course.keys"
HTML = 1  # summaryformat / descriptionformat

Item = dict[str, Any]


def text_of(value: Any) -> str:
    """A text Moodle formatted: unescaped when it holds no markup (``R&amp;D`` -> ``R&D``)."""
    text = "" if value is None else str(value)
    return text if "<" in text else html.unescape(text)


def name_of(value: Any) -> str:
    """A name Moodle escaped with format_string (§5.10)."""
    return html.unescape("" if value is None else str(value))


def epoch(moment: datetime | None) -> int:
    """Seconds since 1970 (a naive datetime is UTC); 0 for None, Moodle's "no date"."""
    if moment is None:
        return 0
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())


def moment(value: Any) -> datetime | None:
    """A Moodle timestamp as a UTC datetime; None for 0."""
    return datetime.fromtimestamp(int(value), UTC) if isinstance(value, int) and value > 0 else None


def category_of(item: Mapping[str, Any]) -> CategoryRecord:
    """A get_categories entry as the port's record."""
    return CategoryRecord(name=name_of(item.get("name")), parent_id=int(item.get("parent") or 0) or None,
                          idnumber=str(item.get("idnumber") or "") or None,
                          description=text_of(item.get("description")), id=int(item["id"]))


def course_of(item: Mapping[str, Any]) -> CourseRecord:
    """A get_courses_by_field entry as the port's record."""
    return CourseRecord(
        shortname=name_of(item.get("shortname")), fullname=name_of(item.get("fullname")),
        category_id=int(item.get("categoryid") or 0), idnumber=str(item.get("idnumber") or "") or None,
        summary=text_of(item.get("summary")), format=str(item.get("format") or "topics"),
        visible=bool(item.get("visible", 1)), startdate=moment(item.get("startdate")),
        enddate=moment(item.get("enddate")), lang=str(item.get("lang") or ""),
        groupmode=int(item.get("groupmode") or 0), maxbytes=int(item.get("maxbytes") or 0),
        id=int(item["id"]))


def _courses(reply: Any) -> list[Item]:
    items = reply.get("courses") if isinstance(reply, dict) else None
    return [i for i in items or () if isinstance(i, dict) and isinstance(i.get("id"), int)]


def _describe(course: CourseRecord) -> str:
    return f"course {course.shortname!r}" + (f" (id {course.id})" if course.id and course.id > 0 else "")


class MoodleCategories:
    """Course categories of a Moodle site, read whole and cached (see the module docstring)."""

    def __init__(self, ws: Ws) -> None:
        self._ws = ws

    def all(self) -> list[CategoryRecord]:
        """Every category (copies of the cached records)."""
        return [dataclasses.replace(c) for _, c in sorted(self.cached().items())]

    def cached(self) -> dict[int, CategoryRecord]:
        """The site cache's categories by id (loaded with one call)."""
        return self._ws.cache.get(CATEGORIES, self._load)

    def missing(self, category_ids: Iterable[int]) -> set[int]:
        """Those of these ids that are not categories of the site (the list is read again once)."""
        wanted = {i for i in category_ids if i > 0}
        missing = wanted - set(self.cached())
        if missing:
            self._ws.cache.forget(CATEGORIES)
            missing -= set(self.cached())
        return missing

    def add(self, categories: Sequence[CategoryRecord]) -> None:
        """Create categories (chunks of batch_size) and set their ids; the cache follows."""
        if not categories:
            return
        if not self._ws.dry_run:
            for category in categories:
                if category.parent_id is not None and category.parent_id <= 0:
                    raise PlatformRefused(f"{PLATFORM}: category {category.name!r} has no parent id yet")
        items = [{"name": c.name, "parent": c.parent_id or 0, "idnumber": c.idnumber or None,
                  "description": c.description or None, "descriptionformat": HTML if c.description else None}
                 for c in categories]
        self.cached()  # loaded first: after a lost reply, _existing compares with it
        ids = self._ws.create(CREATE_CATEGORIES, "categories", items, self._existing)
        cache = self.cached()  # (re-read when a reply was lost)
        for category, category_id in zip(categories, ids, strict=True):
            category.id = category_id
            cache[category_id] = dataclasses.replace(category)

    def _load(self) -> dict[int, CategoryRecord]:
        reply = self._ws.read(GET_CATEGORIES, {"addsubcategories": 0})
        items = [i for i in reply or () if isinstance(i, dict) and isinstance(i.get("id"), int)]
        return {c.id: c for c in map(category_of, items) if c.id is not None}

    def _existing(self, chunk: Sequence[Mapping[str, Any]]) -> list[int | None]:
        """After a lost create reply: the categories Moodle now has that were not there before."""
        before = set(self.cached())
        self._ws.cache.forget(CATEGORIES)
        new = [c for _, c in sorted(self.cached().items()) if c.id not in before]
        ids: list[int | None] = []
        for item in chunk:
            match = next((c for c in new if (c.name, c.parent_id or 0, c.idnumber) ==
                          (item["name"], item["parent"], item["idnumber"])), None)
            ids.append(None if match is None else match.id)
            if match is not None:
                new.remove(match)
        return ids


class MoodleCourses:
    """Courses and sections of a Moodle site (see the module docstring)."""

    def __init__(self, ws: Ws) -> None:
        self._ws = ws
        self._categories = MoodleCategories(ws)
        self._sections: dict[int, dict[int, SectionRecord]] = {}  # read in this transaction
        self._fresh: set[int] = set()  # created in this transaction: a blank section 0 only
        self._before: dict[int, CourseRecord] = {}  # as first read in this transaction (for the undo)

    # -- courses ----------------------------------------------------------------------

    def find(self, *, shortnames: Collection[str] = (), idnumbers: Collection[str] = (),
             ids: Collection[int] = ()) -> list[CourseRecord]:
        """Every course matching a key exactly: known ones by ids, the others one call per key."""
        names = {s for s in shortnames if s}
        numbers = {i for i in idnumbers if i}
        wanted_ids = {i for i in ids if i > 0}
        keys = self._keys()
        guessed = {keys[k] for k in [("shortname", s) for s in names] + [("idnumber", n) for n in numbers]
                   if k in keys}
        found = {c.id: c for c in self._by_ids(sorted(wanted_ids | guessed))}
        have_names = {c.shortname for c in found.values()}
        have_numbers = {c.idnumber for c in found.values()}
        missing = [("shortname", s) for s in sorted(names - have_names)]
        missing += [("idnumber", n) for n in sorted(numbers - have_numbers)]
        if len(missing) > ALL_COURSES_AT:  # one call for every course beats one call per key
            replies = [self._ws.read(GET, {})]
        else:
            replies = self._ws.read_all(GET, [{"field": f, "value": v} for f, v in missing])
        for course in (self._take(i) for reply in replies for i in _courses(reply)):
            found[course.id] = course
        courses = [c for _, c in sorted(found.items())
                   if c.shortname in names or (c.idnumber or "") in numbers or c.id in wanted_ids]
        for course in courses:  # copies: the processor changes the records it gets
            if course.id is not None:
                self._before.setdefault(course.id, dataclasses.replace(course))
        return courses

    def add(self, courses: Sequence[CourseRecord]) -> None:
        """Create courses (chunks of batch_size, whole-batch calls) and set their ids."""
        if not courses:
            return
        for chunk in chunked(courses, self._ws.batch_size):
            try:
                ids = self._ws.create(CREATE, "courses", [self._fields(c) for c in chunk], self._existing)
            except PlatformRefused as exc:
                if len(chunk) == 1:
                    raise PlatformRefused(f"{exc}: {_describe(chunk[0])}") from exc.__cause__
                raise
            for course, course_id in zip(chunk, ids, strict=True):
                course.id = course_id
                self._fresh.add(course_id)
                if course_id > 0:
                    self._remember(course)

    def update(self, courses: Sequence[CourseRecord]) -> None:
        """Write every field of these courses by id, once their categories are known to exist."""
        real = [c for c in courses if c.id is None or c.id > 0]  # dry run: negative = pretended
        if any(c.id is None for c in real):
            raise PlatformRefused(f"{PLATFORM}: a course to update has no id")
        missing = self._categories.missing(c.category_id for c in real)
        for course in real:
            if course.category_id in missing or course.category_id <= 0:
                raise PlatformRefused(
                    f"{PLATFORM}: {_describe(course)}: category id {course.category_id} does not exist; "
                    "not sent (Moodle would take the course out of every category before refusing)")
        if not real or self._ws.dry_run:
            return
        restore = [{"id": b.id, **self._fields(b)} for c in real
                   if c.id is not None and (b := self._before.get(c.id)) is not None]
        if restore:  # the transaction fails: these courses get their fields as read back
            self._ws.undo_later(UPDATE, {"courses": restore})
        for chunk in chunked(real, self._ws.batch_size):
            try:
                items = [{"id": c.id, **self._fields(c)} for c in chunk]
                reply = self._ws.client.call(UPDATE, {"courses": items})
            except MoodleWsError as exc:
                raise refused(exc) from exc
            failed = {w.itemid for w in warnings_of(reply)}
            for course in chunk:
                if course.id not in failed:
                    self._remember(course)
            if failed:
                by_id = {c.id: c for c in chunk}
                texts = [f"{_describe(by_id[w.itemid]) if w.itemid in by_id else f'course id {w.itemid}'}: "
                         f"{w.message or w.warningcode}" for w in warnings_of(reply)[:5]]
                raise PlatformRefused(f"{PLATFORM}: {'; '.join(texts)} ({UPDATE})")

    def delete(self, course_ids: Collection[int]) -> None:
        """Delete courses (Moodle removes everything in them); the related caches are dropped."""
        ids = sorted({i for i in course_ids if i > 0})
        if not ids or self._ws.dry_run:
            return
        try:
            for chunk in chunked(ids, self._ws.batch_size):
                try:
                    self._ws.write(DELETE, {"courseids": list(chunk)})
                except PlatformRefused as exc:
                    if len(chunk) == 1:
                        raise PlatformRefused(f"{exc}: course id {chunk[0]}") from exc.__cause__
                    raise
        finally:
            keys = self._keys()
            for key in [k for k, v in keys.items() if v in ids]:
                del keys[key]
            for name in (METHODS, ROSTERS, GROUPS, GROUPINGS, LINKS):
                self._ws.cache.forget(name)

    def import_content(self, source_id: int, target_id: int) -> None:
        """A ``template``: Moodle's own course import (``core_course_import_course``,
        ``deletecontent=0``: activities, files and section names and summaries copied into
        the new course). Not idempotent, so never re-sent: when it fails in any way, the new
        course (made by this transaction for this row) is deleted again and the row refused,
        so the file's next attempt creates and imports it whole (no course without its
        template). Dry run: nothing sent."""
        if self._ws.dry_run:
            return
        try:
            self._ws.client.call(IMPORT, {"importfrom": source_id, "importto": target_id, "deletecontent": 0},
                                 idempotent=False)
        except (MoodleWsError, MoodleTransportError) as exc:
            reason = (exc.message if isinstance(exc, MoodleWsError) else str(exc)) + \
                f" ({IMPORT} from course id {source_id})"
            try:
                self.delete([target_id])
                self._ws.forget_created(CREATE, [target_id])
            except (PlatformRefused, MoodleTransportError) as undo:
                log.error("moodle_template_undo_failed", course_id=target_id, error=str(undo))
                raise PlatformRefused(f"{PLATFORM}: {reason}; course id {target_id} was created "
                                      f"without its template and could not be deleted: {undo}") from exc
            raise PlatformRefused(f"{PLATFORM}: {reason}; the new course was deleted again") from exc
        finally:
            self._sections.pop(target_id, None)

    # -- sections ---------------------------------------------------------------------

    def sections(self, course_ids: Collection[int]) -> list[SectionRecord]:
        """The sections of these courses, by course then number (one call per course, in parallel)."""
        wanted = sorted(set(course_ids))
        real = [c for c in wanted if c > 0 and c not in self._sections]
        params = [{"courseid": c, "options": [{"name": "excludemodules", "value": 1}]} for c in real]
        for course_id, reply in zip(real, self._ws.read_all(CONTENTS, params) if real else [], strict=True):
            items = [i for i in reply or () if isinstance(i, dict) and isinstance(i.get("section"), int)]
            self._sections[course_id] = {
                int(i["section"]): SectionRecord(course_id, int(i["section"]), name_of(i.get("name")),
                                                 text_of(i.get("summary")), i.get("id")) for i in items}
        for course_id in wanted:
            if course_id <= 0:
                self._sections.setdefault(course_id, {0: SectionRecord(course_id, 0)})
        return [s for c in wanted for _, s in sorted(self._sections.get(c, {}).items())]

    def put_sections(self, sections: Sequence[SectionRecord]) -> None:
        """Accept what Moodle already has; refuse any other section change (not supported)."""
        unknown = [s.course_id for s in sections if s.course_id not in self._sections
                   and not (s.course_id in self._fresh and self._blank_first(s))]
        if unknown:
            self.sections(unknown)
        for section in sections:
            if section.course_id in self._fresh and self._blank_first(section):
                continue
            current = self._sections.get(section.course_id, {}).get(section.number)
            if current is not None and (current.name, current.summary) == (section.name, section.summary):
                section.id = current.id
                continue
            what = f"section {section.number}" + (f" {section.name!r}" if section.name else "")
            raise not_supported(f"writing course sections ({what} of course id {section.course_id}): "
                                "Moodle's web services cannot create, rename or describe a section")

    # -- helpers ----------------------------------------------------------------------

    @staticmethod
    def _blank_first(section: SectionRecord) -> bool:
        return section.number == 0 and not section.name and not section.summary

    def _fields(self, course: CourseRecord) -> Item:
        return {"fullname": course.fullname, "shortname": course.shortname, "categoryid": course.category_id,
                "idnumber": course.idnumber or "", "summary": course.summary, "summaryformat": HTML,
                "format": course.format or "topics", "visible": int(course.visible),
                "startdate": epoch(course.startdate), "enddate": epoch(course.enddate), "lang": course.lang,
                "groupmode": course.groupmode, "maxbytes": course.maxbytes}

    def _keys(self) -> dict[tuple[str, str], int]:
        empty: dict[tuple[str, str], int] = {}
        return self._ws.cache.get(KEYS, lambda: empty)

    def _remember(self, course: CourseRecord) -> None:
        """Index a course's current keys (the ones it had are dropped)."""
        keys = self._keys()
        for key in [k for k, v in keys.items() if v == course.id]:
            del keys[key]
        assert course.id is not None
        keys[("shortname", course.shortname)] = course.id
        if course.idnumber:
            keys[("idnumber", course.idnumber)] = course.id

    def _take(self, item: Mapping[str, Any]) -> CourseRecord:
        """A course read: its keys indexed, its enabled enrolment methods given to the enrolments' cache."""
        course = course_of(item)
        self._remember(course)
        listed = item.get("enrollmentmethods")
        if isinstance(listed, list):
            empty: dict[int, tuple[str, ...]] = {}
            methods = self._ws.cache.get(METHODS, lambda: empty)
            methods[int(item["id"])] = tuple(dict.fromkeys(map(str, listed)))
        return course

    def _by_ids(self, ids: Sequence[int]) -> list[CourseRecord]:
        """Courses by id: ``field=ids`` per chunk in parallel; a chunk with an unknown id (PHP
        Error, §5.3) again one ``field=id`` call per id."""
        if not ids:
            return []
        chunks = list(chunked(ids, self._ws.batch_size))
        replies = self._ws.client.map(GET, [{"field": "ids", "value": ",".join(map(str, c))} for c in chunks])
        items: list[Item] = []
        retry: list[int] = []
        for chunk, reply in zip(chunks, replies, strict=True):
            if isinstance(reply, MoodleWsError) and reply.errorcode is None:
                retry.extend(chunk)
            elif isinstance(reply, MoodleWsError):
                raise refused(reply) from reply
            elif isinstance(reply, MoodleError):
                raise reply
            else:
                items.extend(_courses(reply))
        if retry:
            for reply in self._ws.read_all(GET, [{"field": "id", "value": str(i)} for i in retry]):
                items.extend(_courses(reply))
        return [self._take(i) for i in items]

    def _existing(self, chunk: Sequence[Mapping[str, Any]]) -> list[int | None]:
        """After a lost create reply: the id of each item Moodle has, by shortname."""
        params = [{"field": "shortname", "value": str(c["shortname"])} for c in chunk]
        replies = self._ws.read_all(GET, params)
        return [next((i["id"] for i in _courses(r) if name_of(i.get("shortname")) == c["shortname"]), None)
                for c, r in zip(chunk, replies, strict=True)]

