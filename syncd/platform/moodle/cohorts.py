"""Cohorts and their members on Moodle (implements CohortRepository).

What the web services offer (recordings README §3-§5, Moodle's ``cohort/externallib.php``)
and the decisions taken:

- **Find** by id: ``core_cohort_get_cohorts`` (``cohortids[]``, chunks of ``batch_size``,
  unknown ids are simply absent). By idnumber or name: two ``core_cohort_search_cohorts``
  per value, all in parallel, from the system context: ``includes=all`` (every context)
  finds it, ``includes=parents`` (system cohorts only) places it (see Category). The search
  is a case-insensitive substring match on name, idnumber and description, so the replies
  are filtered for *exact* equality here (an idnumber is compared case included).
  ``limitnum=0`` is always sent: Moodle's default is 25
  results, and 0 means "no limit" to Moodle's database layer (the limit is a page size).
- **Names** come back through ``format_string`` (a bare ``&`` as ``&amp;``, like course
  names, §5.10): they are HTML-unescaped. A description without markup is unescaped too
  (Moodle's HTML cleaning turns ``R&D`` into ``R&amp;D``); one with markup is kept as Moodle
  shows it. An empty idnumber is None (as in the SQL store).
- **Category** (``category_id``): no cohort reply says in which context a cohort lives.
  A cohort is a system one when a search *in the system context* lists it (``includes=
  parents``, as recorded: system cohorts only; one more search per cohort found by id);
  otherwise it belongs to a category, found by
  searching the categories' contexts (``contextlevel=coursecat``, ``includes=self``). The
  map cohort -> category is kept in the site cache (:data:`CATEGORY_OF`, built with one
  ``core_course_get_categories`` and one search per category) and *verified* on every
  find (one search in the cached category): a cohort moved in Moodle's UI is found again,
  never written back to its old category by an update. A cohort neither the system nor
  any category lists is refused (the answer would not be truthful).
- **idnumber is required** by create and update (§5.7); a cohort without one is sent with
  ``""``, which Moodle lets exactly one cohort have: adding a second cohort without an
  idnumber (or two in one batch) is refused here with a message saying so (one read of all
  cohorts, made only then). Moodle checks idnumbers on create; **update does not** (it was
  recorded storing two cohorts with one idnumber): before an update, the cohorts are read
  back, and an idnumber that changes is searched for: taken by another cohort (outside the
  same update) -> refused, nothing sent. So syncd never makes two cohorts share one.
- **Add** ``core_cohort_create_cohorts`` (``categorytype`` ``system`` or ``id``; name,
  idnumber, description; whole-batch transaction): a lost reply is re-read by idnumber
  before anything is sent again. **Update** ``core_cohort_update_cohorts`` (every field,
  ``categorytype`` always). **Delete** ``core_cohort_delete_cohorts`` (whole batch; Moodle
  itself removes the members and deals with the cohort-sync enrolment instances, as its
  cohort-sync settings say).
- **Members**: read with ``core_cohort_get_cohort_members`` (a stock function, in the
  recorded service). Added with ``core_cohort_add_cohort_members`` by cohort id and user id
  (users can only be named by id or username, §5.7); its per-item warnings: ``"3"``
  (already a member) is success, any other (``"2"`` unknown user or cohort, ``"1"``) is a
  refusal in Moodle's words, the other items being applied. Removed with
  ``core_cohort_delete_cohort_members`` (whole batch; a non-member is ignored by Moodle).
- **Cohort sync**: Moodle's own cohort-sync plugin enrols and unenrols members of bound
  cohorts when memberships change, so after a membership write or a delete the cached
  course rosters (and, on delete, enrolment methods) are dropped: they are read again.
- **Dry run**: reads are sent, writes are not; new cohorts get negative ids, whose reads
  find nothing.
"""

from __future__ import annotations

import html
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from syncd.domain import PlatformRefused
from syncd.platform.model import CohortRecord
from syncd.platform.moodle._chunks import send
from syncd.platform.moodle._enrolmethods import METHODS
from syncd.platform.moodle._roster import ROSTERS
from syncd.platform.moodle._ws import PLATFORM, Ws, chunked, refused, warned
from syncd.platform.moodle.errors import MoodleWsError, warnings_of

GET = "core_cohort_get_cohorts"
SEARCH = "core_cohort_search_cohorts"
CREATE = "core_cohort_create_cohorts"
UPDATE = "core_cohort_update_cohorts"
DELETE = "core_cohort_delete_cohorts"
MEMBERS = "core_cohort_get_cohort_members"
ADD_MEMBERS = "core_cohort_add_cohort_members"
REMOVE_MEMBERS = "core_cohort_delete_cohort_members"
CATEGORIES = "core_course_get_categories"
#: the site-cache entry: cohort id -> category id, for category cohorts (verified on use)
CATEGORY_OF = "moodle.cohort.categories"
#: add_cohort_members warning code for "already a member"
ALREADY_MEMBER = "3"
SYSTEM = {"contextlevel": "system", "instanceid": 0}

Item = dict[str, Any]


def search_params(query: str, context: Mapping[str, Any], includes: str) -> dict[str, Any]:
    """core_cohort_search_cohorts parameters, without Moodle's 25-result page limit."""
    return {"query": query, "context": dict(context), "includes": includes, "limitnum": 0}


def category_context(category_id: int) -> dict[str, Any]:
    """A category's context, by level and instance (category replies carry no context id)."""
    return {"contextlevel": "coursecat", "instanceid": category_id}


def name_of(item: Mapping[str, Any]) -> str:
    """A cohort's name as stored (Moodle escapes it with format_string)."""
    return html.unescape(str(item.get("name") or ""))


def idnumber_of(item: Mapping[str, Any]) -> str | None:
    """A cohort's idnumber; None when empty."""
    return str(item.get("idnumber") or "") or None


def description_of(item: Mapping[str, Any]) -> str:
    """A cohort's description: unescaped when it holds no markup."""
    text = str(item.get("description") or "")
    return text if "<" in text else html.unescape(text)


def categorytype(category_id: int | None) -> dict[str, str]:
    """The ``categorytype`` structure create and update require."""
    if category_id is None:
        return {"type": "system", "value": ""}
    return {"type": "id", "value": str(category_id)}


def _cohorts(reply: Any) -> list[Item]:
    """The cohorts of a get_cohorts (list) or search_cohorts (``{"cohorts": [...]}``) reply."""
    items = reply.get("cohorts") if isinstance(reply, dict) else reply
    if not isinstance(items, list):
        return []
    return [i for i in items if isinstance(i, dict) and isinstance(i.get("id"), int)]


def _query(item: Mapping[str, Any]) -> str:
    """The search text that finds ``item``: its idnumber, else its name."""
    return idnumber_of(item) or name_of(item)


class MoodleCohorts:
    """Cohorts and members of a Moodle site (see the module docstring)."""

    def __init__(self, ws: Ws) -> None:
        self._ws = ws

    # -- reads ------------------------------------------------------------------------

    def find(self, *, idnumbers: Collection[str] = (), names: Collection[str] = (),
             ids: Collection[int] = ()) -> list[CohortRecord]:
        """Every cohort matching any key exactly, by id (see the module docstring)."""
        found: dict[int, Item] = {}
        wanted_idnumbers = {v for v in idnumbers if v}
        wanted_names = {v for v in names if v}
        queries = sorted(wanted_idnumbers | wanted_names)
        # each value searched everywhere and in the system context, in parallel
        params = [search_params(q, SYSTEM, inc) for q in queries for inc in ("all", "parents")]
        replies = self._ws.read_all(SEARCH, params)
        system = {c["id"] for reply in replies[1::2] for c in _cohorts(reply)}
        for reply in replies[0::2]:
            for item in _cohorts(reply):
                if idnumber_of(item) in wanted_idnumbers or name_of(item) in wanted_names:
                    found[item["id"]] = item
        searched = set(found)
        for item in _cohorts(self._ws.lookup(GET, sorted(ids), lambda c: {"cohortids": list(c)})):
            found.setdefault(item["id"], item)
        places = self._places([found[i] for i in sorted(found)], system, searched)
        return [CohortRecord(name=name_of(item), idnumber=idnumber_of(item), description=description_of(item),
                             category_id=places[cohort_id], id=cohort_id)
                for cohort_id, item in sorted(found.items())]

    def members(self, cohort_ids: Collection[int]) -> set[tuple[int, int]]:
        """(cohort_id, user_id) memberships: core_cohort_get_cohort_members, in chunks."""
        found: set[tuple[int, int]] = set()
        replies = self._ws.lookup(MEMBERS, sorted(cohort_ids), lambda c: {"cohortids": list(c)})
        for entry in replies:
            if isinstance(entry, dict) and isinstance(entry.get("cohortid"), int):
                found.update((entry["cohortid"], int(u)) for u in entry.get("userids") or ())
        return found

    # -- cohort writes ----------------------------------------------------------------

    def add(self, cohorts: Sequence[CohortRecord]) -> None:
        """Create cohorts (chunks of batch_size) and set their ids."""
        if not cohorts:
            return
        self._check_blank([c for c in cohorts if not c.idnumber], ())
        items = [self._payload(c) for c in cohorts]
        ids = self._ws.create(CREATE, "cohorts", items, self._existing)
        places = self._cached_places()
        for cohort, cohort_id in zip(cohorts, ids, strict=True):
            cohort.id = cohort_id
            if cohort_id > 0 and cohort.category_id is not None:
                places[cohort_id] = cohort.category_id

    def update(self, cohorts: Sequence[CohortRecord]) -> None:
        """Write every field of these cohorts by id, after the idnumber check (module docstring)."""
        real = [c for c in cohorts if c.id is None or c.id > 0]  # dry run: negative = pretended
        if not real:
            return
        if any(c.id is None for c in real):
            raise PlatformRefused(f"{PLATFORM}: a cohort to update has no id")
        self._check_unique(real)
        send(self._ws, UPDATE, "cohorts", real, lambda c: {"id": c.id, **self._payload(c)},
             lambda c: f"cohort {c.name!r} (id {c.id})")
        if self._ws.dry_run:
            return
        places = self._cached_places()
        for cohort in real:
            assert cohort.id is not None
            if cohort.category_id is None:
                places.pop(cohort.id, None)
            else:
                places[cohort.id] = cohort.category_id

    def delete(self, cohort_ids: Collection[int]) -> None:
        """Delete cohorts (Moodle removes their members and handles cohort sync)."""
        ids = sorted({i for i in cohort_ids if i > 0})
        if not ids:
            return
        for chunk in chunked(ids, self._ws.batch_size):
            try:
                self._ws.write(DELETE, {"cohortids": list(chunk)})
            except PlatformRefused as exc:
                if len(chunk) != 1:
                    raise
                raise PlatformRefused(f"{exc}: cohort id {chunk[0]}") from exc.__cause__
        if self._ws.dry_run:
            return
        places = self._cached_places()
        for cohort_id in ids:
            places.pop(cohort_id, None)
        self._ws.cache.forget(ROSTERS)
        self._ws.cache.forget(METHODS)

    # -- member writes ----------------------------------------------------------------

    def add_members(self, members: Collection[tuple[int, int]]) -> None:
        """Add memberships by cohort id and user id; present ones are ignored (warning "3")."""
        pairs = sorted({(c, u) for c, u in members if c > 0})
        if not pairs or self._ws.dry_run:
            return
        try:
            for chunk in chunked(pairs, self._ws.batch_size):
                items = [{"cohorttype": {"type": "id", "value": str(c)},
                          "usertype": {"type": "id", "value": str(u)}} for c, u in chunk]
                try:
                    reply = self._ws.client.call(ADD_MEMBERS, {"members": items})
                except MoodleWsError as exc:
                    raise refused(exc) from exc
                failed = [w for w in warnings_of(reply) if w.warningcode != ALREADY_MEMBER]
                if failed:
                    raise warned(ADD_MEMBERS, failed)
        finally:
            self._ws.cache.forget(ROSTERS)  # cohort sync may have enrolled them

    def remove_members(self, members: Collection[tuple[int, int]]) -> None:
        """Remove memberships (whole-batch calls); absent ones are ignored by Moodle."""
        pairs = sorted({(c, u) for c, u in members if c > 0})
        if not pairs or self._ws.dry_run:
            return
        try:
            send(self._ws, REMOVE_MEMBERS, "members", pairs, lambda p: {"cohortid": p[0], "userid": p[1]},
                 lambda p: f"user {p[1]} in cohort {p[0]}")
        finally:
            self._ws.cache.forget(ROSTERS)  # cohort sync may have unenrolled them

    # -- helpers ----------------------------------------------------------------------

    def _payload(self, cohort: CohortRecord) -> dict[str, Any]:
        return {"categorytype": categorytype(cohort.category_id), "name": cohort.name,
                "idnumber": cohort.idnumber or "", "description": cohort.description}

    def _all(self) -> list[Item]:
        """Every cohort of the site (get_cohorts without ids)."""
        return _cohorts(self._ws.read(GET, {}))

    def _existing(self, chunk: Sequence[Mapping[str, Any]]) -> list[int | None]:
        """After a lost create reply: the id of each item Moodle has (same idnumber and name)."""
        numbers = sorted({str(i["idnumber"]) for i in chunk if i["idnumber"]})
        replies = self._ws.read_all(SEARCH, [search_params(n, SYSTEM, "all") for n in numbers])
        candidates = [c for reply in replies for c in _cohorts(reply)]
        if any(not i["idnumber"] for i in chunk):
            candidates += self._all()
        known = {(idnumber_of(c) or "", name_of(c)): c["id"] for c in candidates}
        return [known.get((str(i["idnumber"]), str(i["name"]))) for i in chunk]

    def _check_blank(self, blanks: Sequence[CohortRecord], leaving: Collection[int]) -> None:
        """Refuse a second cohort without idnumber (Moodle allows one); ``leaving``: cohorts
        of the same write that get an idnumber."""
        if not blanks:
            return
        if len(blanks) > 1:
            raise PlatformRefused(f"{PLATFORM}: cohorts {blanks[0].name!r} and {blanks[1].name!r} both have "
                                  "no idnumber; Moodle allows one cohort without an idnumber")
        blank = blanks[0]
        for other in self._all():
            if not idnumber_of(other) and other["id"] != blank.id and other["id"] not in leaving:
                raise PlatformRefused(
                    f"{PLATFORM}: cohort {blank.name!r} has no idnumber, and Moodle allows only one cohort "
                    f"without an idnumber: cohort {name_of(other)!r} (id {other['id']}) has none; "
                    "give the cohort an idnumber")

    def _check_unique(self, cohorts: Sequence[CohortRecord]) -> None:
        """Refuse an update that would leave two cohorts with one idnumber (Moodle does not check).

        One read of the cohorts as stored; one search per idnumber that changes. A cohort of
        the same update counts with its new idnumber (it may give its old one up)."""
        final: dict[int, str | None] = {}
        owner: dict[str | None, CohortRecord] = {}
        for cohort in cohorts:
            assert cohort.id is not None
            number = cohort.idnumber or None
            if number in owner and owner[number].id != cohort.id:
                raise PlatformRefused(f"{PLATFORM}: cohorts {owner[number].name!r} and {cohort.name!r} "
                                      f"would both have the idnumber {number or ''!r}")
            owner[number] = cohort
            final[cohort.id] = number
        stored = {c["id"]: idnumber_of(c) for c in self._ws.lookup(GET, sorted(final),
                                                                    lambda ids: {"cohortids": list(ids)})}
        changed = [c for c in cohorts if c.id in stored and stored[c.id] != (c.idnumber or None)]
        numbers = sorted({c.idnumber for c in changed if c.idnumber})
        replies = self._ws.read_all(SEARCH, [search_params(n, SYSTEM, "all") for n in numbers])
        for other in (c for reply in replies for c in _cohorts(reply)):
            number = idnumber_of(other)
            if number in numbers and other["id"] not in final:  # in the update: its final idnumber counts
                raise PlatformRefused(
                    f"{PLATFORM}: idnumber {number!r} of cohort {owner[number].name!r} already belongs to "
                    f"cohort {name_of(other)!r} (id {other['id']}); Moodle does not check it on update: "
                    "not sent")
        leaving = [i for i, number in final.items() if number is not None]
        self._check_blank([c for c in changed if not c.idnumber], leaving)

    # -- where cohorts live -----------------------------------------------------------

    def _cached_places(self) -> dict[int, int]:
        """The cached cohort -> category map (an empty one when none: missing entries are
        looked for again)."""
        empty: dict[int, int] = {}
        return self._ws.cache.get(CATEGORY_OF, lambda: empty)

    def _places(self, items: Sequence[Item], system: Collection[int] = (),
                checked: Collection[int] = ()) -> dict[int, int | None]:
        """Cohort id -> category id (None: system context) of these cohorts. ``system``: ids a
        system search listed; ``checked``: ids whose system search was already made."""
        unchecked = [i for i in items if i["id"] not in checked]
        system = set(system) | (self._listed(SYSTEM, "parents", unchecked) if unchecked else set())
        places: dict[int, int | None] = {i["id"]: None for i in items if i["id"] in system}
        others = [i for i in items if i["id"] not in system]
        if others:
            places.update(self._categories_of(others))
        return places

    def _categories_of(self, items: Sequence[Item]) -> dict[int, int]:
        """The category of each of these (non-system) cohorts, from the verified cache."""
        cached = self._cached_places()
        if all(i["id"] in cached for i in items):
            by_category: dict[int, list[Item]] = {}
            for item in items:
                by_category.setdefault(cached[item["id"]], []).append(item)
            if all(self._listed(category_context(cat), "self", group) >= {i["id"] for i in group}
                   for cat, group in sorted(by_category.items())):
                return {i["id"]: cached[i["id"]] for i in items}
        self._ws.cache.forget(CATEGORY_OF)
        rebuilt = self._ws.cache.get(CATEGORY_OF, self._load_places)
        for item in items:
            if item["id"] not in rebuilt:
                raise PlatformRefused(f"{PLATFORM}: cannot tell where cohort {name_of(item)!r} "
                                      f"(id {item['id']}) lives: neither the system context nor any "
                                      "category lists it")
        return {i["id"]: rebuilt[i["id"]] for i in items}

    def _load_places(self) -> dict[int, int]:
        """Cohort -> category for every category cohort: one search per category."""
        categories = sorted({c["id"] for c in self._ws.read(CATEGORIES, {}) or []
                             if isinstance(c, dict) and isinstance(c.get("id"), int)})
        params = [search_params("", category_context(c), "self") for c in categories]
        replies = self._ws.read_all(SEARCH, params)
        return {item["id"]: category for category, reply in zip(categories, replies, strict=True)
                for item in _cohorts(reply)}

    def _listed(self, context: Mapping[str, Any], includes: str, items: Iterable[Item]) -> set[int]:
        """Which of ``items`` a search in ``context`` lists: one search per idnumber or name; a
        cohort without idnumber not found by name (markup in it) is looked for in the full list."""
        items = list(items)
        queries = sorted({_query(i) for i in items})
        replies = self._ws.read_all(SEARCH, [search_params(q, context, includes) for q in queries])
        seen = {c["id"] for reply in replies for c in _cohorts(reply)}
        if any(i["id"] not in seen and not idnumber_of(i) for i in items):
            seen |= {c["id"] for c in _cohorts(self._ws.read(SEARCH, search_params("", context, includes)))}
        return seen & {i["id"] for i in items}
