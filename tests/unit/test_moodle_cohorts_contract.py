"""MoodleCohorts against the recordings: requests shaped as the recorded ones, recorded replies read as
the brief says (exact matches out of substring searches, unescaped names, idnumber '' as None, the
add_cohort_members warning codes, update's missing idnumber check done by syncd)."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

import pytest

from syncd.domain import PlatformRefused
from syncd.platform.model import CohortRecord
from syncd.platform.moodle._ws import SiteCache
from syncd.platform.moodle.cohorts import (
    ADD_MEMBERS,
    CATEGORIES,
    CREATE,
    DELETE,
    GET,
    MEMBERS,
    REMOVE_MEMBERS,
    SEARCH,
    UPDATE,
    MoodleCohorts,
)
from tests.unit.moodle_scripted import Scripted, form, recorded, recorded_form, ws_over

ERASMUS: dict[str, Any] = {"id": 41, "name": "Promotion 2026 — Étudiants en échange Erasmus+",
           "idnumber": "PROMO-2026-ERASMUS", "description": "<p>Mobilité entrante, semestre d’automne</p>",
           "descriptionformat": 1, "visible": True}
PREPA: dict[str, Any] = {"id": 42, "name": "Cohorte Sciences — Année préparatoire",
                         "idnumber": "PROMO-2026-ST-PREPA",
         "description": "", "descriptionformat": 1, "visible": True}
DELEGUES: dict[str, Any] = {"id": 43, "name": "Délégués de promotion — Génie Électrique",
                            "idnumber": "COH-GE-DELEGUES",
            "description": "", "descriptionformat": 1, "visible": False}
_AMP = re.compile(r"&(?!#?[A-Za-z0-9]+;)")
BLANK: dict[str, Any] = {"id": 44, "name": "Promotion 2026 — Étudiants en échange Erasmus+", "idnumber": "",
         "description": "", "descriptionformat": 1, "visible": True}


def _shown(cohort: Mapping[str, Any]) -> dict[str, Any]:
    """A stored cohort as Moodle's replies show it: '&' escaped in name and description."""
    return {**cohort, "name": _AMP.sub("&amp;", cohort["name"]),
            "description": _AMP.sub("&amp;", cohort["description"])}


class Site:
    """Answers the cohort reads as Moodle does: searches are case-insensitive substring matches on
    the stored name, idnumber and description; replies escape '&'; ``contexts`` maps cohort id ->
    category id (None: system)."""

    def __init__(self, cohorts: list[dict[str, Any]], contexts: Mapping[int, int | None],
                 writes: Mapping[str, Any] | None = None) -> None:
        self.cohorts = cohorts
        self.contexts = dict(contexts)
        self.writes = dict(writes or {})
        self.client = Scripted(self.answer)

    def _search(self, params: Mapping[str, Any]) -> dict[str, Any]:
        query = str(params["query"]).lower()
        context, includes = params["context"], params["includes"]
        assert params["limitnum"] == 0, "searches are never cut at Moodle's default of 25"
        if context["contextlevel"] == "system":
            where: set[int | None] | None = None if includes == "all" else {None}
        else:
            assert includes == "self"
            where = {context["instanceid"]}
        hits = [c for c in self.cohorts
                if (where is None or self.contexts[c["id"]] in where)
                and any(query in str(c[f]).lower() for f in ("name", "idnumber", "description"))]
        return {"cohorts": [_shown(c) for c in hits]}

    def answer(self, function: str, params: Mapping[str, Any]) -> Any:
        if function == SEARCH:
            return self._search(params)
        if function == GET:
            ids = params.get("cohortids")
            return [_shown(c) for c in self.cohorts if ids is None or c["id"] in ids]
        if function == CATEGORIES:
            return [{"id": c} for c in sorted({c for c in self.contexts.values() if c is not None})]
        reply = self.writes[function]
        return reply(params) if callable(reply) else reply


def site(*cohorts: dict[str, Any], contexts: Mapping[int, int | None] | None = None,
         writes: Mapping[str, Any] | None = None) -> Site:
    return Site(list(cohorts), contexts or {c["id"]: None for c in cohorts}, writes)


def repo_of(fake: Site, *, batch_size: int = 100, dry_run: bool = False,
            cache: SiteCache | None = None) -> MoodleCohorts:
    return MoodleCohorts(ws_over(fake.client, batch_size=batch_size, dry_run=dry_run, cache=cache))


def _subset(sent: Mapping[str, str], recorded_fields: Mapping[str, str], prefix: str) -> None:
    """Every field the repository sends under ``prefix`` is sent as the recording sent it."""
    mine = {k: v for k, v in sent.items() if k.startswith(prefix)}
    assert mine and all(recorded_fields.get(k) == v for k, v in mine.items()), (mine, recorded_fields)


def test_find_by_ids_sends_the_recorded_get_cohorts() -> None:
    """find(ids=...) is the recorded get_cohorts call; records carry Moodle's ids, idnumber '' -> None."""
    exchange = recorded(GET, "by ids (2 found)")
    fake = site(ERASMUS, PREPA, BLANK)
    found = repo_of(fake).find(ids=[41, 42])
    assert form(fake.client.sent(GET)[0]) == recorded_form(exchange)
    assert [(c.id, c.idnumber, c.category_id) for c in found] == [(41, "PROMO-2026-ERASMUS", None),
                                                                   (42, "PROMO-2026-ST-PREPA", None)]
    assert found[0].description == ERASMUS["description"]
    assert [c.idnumber for c in repo_of(fake).find(ids=[44])] == [None]


def test_search_is_sent_as_recorded_plus_limitnum_and_filtered_exactly() -> None:
    """A value is searched as recorded (plus limitnum=0); only exact idnumber or name matches count."""
    exchange = recorded(SEARCH, "search 'Promotion' from system context, includes=all")
    fake = site(ERASMUS, PREPA, DELEGUES, BLANK)
    assert repo_of(fake).find(idnumbers=["Promotion"], names=["Promotion"]) == []
    sent_all = [p for p in fake.client.sent(SEARCH) if p["includes"] == "all"]
    assert form(sent_all[0]) == {**recorded_form(exchange), "limitnum": "0"}
    found = repo_of(fake).find(idnumbers=["PROMO-2026"], names=[BLANK["name"]])
    # by name; the idnumber prefix matches nothing exactly
    assert sorted(c.id or 0 for c in found) == [41, 44]
    assert repo_of(fake).find(idnumbers=["promo-2026-erasmus"]) == []  # exact, case included


def test_names_are_unescaped_and_plain_descriptions_too() -> None:
    """Moodle's format_string/format_text escape '&': names and plain descriptions are read unescaped,
    descriptions with markup are kept as Moodle shows them."""
    escaped = {**PREPA, "name": "R&D — Année", "description": "Labo R&D"}
    markup = {**DELEGUES, "name": "A & B", "description": "<p>A & B</p>"}
    fake = site(escaped, markup)
    found = repo_of(fake).find(names=["R&D — Année"], ids=[43])
    assert _shown(escaped)["name"] == "R&amp;D — Année"
    assert [(c.name, c.description) for c in found] == [("R&D — Année", "Labo R&D"),
                                                         ("A & B", "<p>A &amp; B</p>")]


def test_category_cohorts_get_their_category_from_a_verified_cached_map() -> None:
    """A cohort no system search lists is placed by the category searches; the map is cached and
    verified with one search next time; a cohort moved in Moodle is found in its new category."""
    fake = site(ERASMUS, PREPA, DELEGUES, contexts={41: None, 42: 75, 43: 77})
    cache = SiteCache()
    numbers = ["PROMO-2026-ERASMUS", "PROMO-2026-ST-PREPA", "COH-GE-DELEGUES"]
    found = repo_of(fake, cache=cache).find(idnumbers=numbers)
    assert {c.id: c.category_id for c in found} == {41: None, 42: 75, 43: 77}
    assert len(fake.client.sent(CATEGORIES)) == 1
    fake.client.calls.clear()
    found = repo_of(fake, cache=cache).find(ids=[42])
    assert [c.category_id for c in found] == [75]
    assert fake.client.sent(CATEGORIES) == []  # cached map, verified by a search in category 75
    category_75 = {"contextlevel": "coursecat", "instanceid": 75}
    assert any(p["context"] == category_75 for p in fake.client.sent(SEARCH))
    fake.contexts[42] = 77  # moved in Moodle's UI
    assert [c.category_id for c in repo_of(fake, cache=cache).find(ids=[42])] == [77]


def test_a_cohort_no_context_lists_is_refused() -> None:
    """A cohort neither the system nor any category lists (hidden context) is refused, not guessed."""
    fake = site(PREPA, contexts={42: 999})
    fake.contexts = {42: 999}
    original = fake.answer

    def hiding(function: str, params: Mapping[str, Any]) -> Any:
        return [] if function == CATEGORIES else original(function, params)
    fake.client.answer = hiding
    with pytest.raises(PlatformRefused, match="cannot tell where cohort"):
        repo_of(fake).find(ids=[42])


def test_create_sends_the_recorded_fields_and_sets_ids() -> None:
    """add() sends what the recorded create sent for a system cohort, and takes the ids of the reply."""
    exchange = recorded(CREATE, "success: batch of 3")
    fake = site(writes={CREATE: exchange["response"]})
    new = [CohortRecord(ERASMUS["name"], "PROMO-2026-ERASMUS", ERASMUS["description"]),
           CohortRecord(PREPA["name"], "PROMO-2026-ST-PREPA", category_id=75),
           CohortRecord(DELEGUES["name"], "COH-GE-DELEGUES", category_id=77)]
    repo_of(fake).add(new)
    (sent,) = fake.client.sent(CREATE)
    fields = form(sent)
    _subset(fields, recorded_form(exchange), "cohorts[0]")
    assert fields["cohorts[1][categorytype][type]"] == "id"
    assert fields["cohorts[1][categorytype][value]"] == "75"
    assert [c.id for c in new] == [41, 42, 43]


def test_a_cohort_without_idnumber_is_sent_with_an_empty_one_unless_one_exists() -> None:
    """idnumber None is sent as '' (create requires one); when a cohort already has '' the add is
    refused by syncd with a message saying why (Moodle would only say 'Invalid parameter')."""
    exchange = recorded(CREATE, "same name as an existing cohort with idnumber ''")
    fake = site(ERASMUS, writes={CREATE: exchange["response"]})
    cohort = CohortRecord(BLANK["name"])
    repo_of(fake).add([cohort])
    assert form(fake.client.sent(CREATE)[0]) == {**recorded_form(exchange), "cohorts[0][description]": ""}
    assert cohort.id == 44
    fake = site(ERASMUS, BLANK, writes={CREATE: exchange["response"]})
    with pytest.raises(PlatformRefused, match=r"Moodle allows only one cohort without an idnumber.*id 44"):
        repo_of(fake).add([CohortRecord("Promotion 2026 — Auditeurs libres")])
    with pytest.raises(PlatformRefused, match="both have no idnumber"):
        repo_of(fake).add([CohortRecord("a"), CohortRecord("b")])
    assert fake.client.sent(CREATE) == []


def test_update_sends_the_recorded_fields() -> None:
    """update() sends id, categorytype, name, idnumber and description as the recorded update did."""
    exchange = recorded(UPDATE, "success: batch of 2")
    fake = site(ERASMUS, DELEGUES, writes={UPDATE: None})
    renamed = CohortRecord("Promotion 2026 — Erasmus+ (entrants)", "PROMO-2026-ERASMUS", "Mise à jour", id=41)
    repo_of(fake).update([renamed])
    _subset(form(fake.client.sent(UPDATE)[0]), recorded_form(exchange), "cohorts[0]")


def test_update_refuses_an_idnumber_another_cohort_has() -> None:
    """The recorded update stored a duplicate idnumber: syncd checks first and sends nothing; an idnumber
    the other cohort gives up in the same update is accepted."""
    fake = site(ERASMUS, PREPA, writes={UPDATE: None})
    with pytest.raises(PlatformRefused, match=r"'PROMO-2026-ERASMUS'.*already belongs to cohort .*id 41"):
        repo_of(fake).update([CohortRecord("Cohorte Sciences", "PROMO-2026-ERASMUS", id=42)])
    assert fake.client.sent(UPDATE) == []
    repo_of(fake).update([CohortRecord(ERASMUS["name"], "PROMO-2027", id=41),
                          CohortRecord("Cohorte Sciences", "PROMO-2026-ERASMUS", id=42)])
    assert len(fake.client.sent(UPDATE)) == 1
    with pytest.raises(PlatformRefused, match="would both have the idnumber"):
        repo_of(fake).update([CohortRecord("a", "X", id=41), CohortRecord("b", "X", id=42)])


def test_update_to_no_idnumber_is_checked_like_a_create() -> None:
    """Taking a cohort's idnumber away gives it '', which another cohort may already have: refused."""
    fake = site(ERASMUS, BLANK, writes={UPDATE: None})
    with pytest.raises(PlatformRefused, match="only one cohort without an idnumber"):
        repo_of(fake).update([CohortRecord(ERASMUS["name"], None, id=41)])
    assert fake.client.sent(UPDATE) == []
    repo_of(fake).update([CohortRecord(BLANK["name"], None, "changed", id=44)])  # still '': no check
    assert form(fake.client.sent(UPDATE)[0])["cohorts[0][idnumber]"] == ""


def test_delete_and_member_removal_are_sent_as_recorded() -> None:
    """delete() and remove_members() send the recorded batches of 2."""
    deletion = recorded(DELETE, "success: batch of 2")
    removal = recorded(REMOVE_MEMBERS, "success: batch of 2")
    fake = site(writes={DELETE: None, REMOVE_MEMBERS: None})
    repo = repo_of(fake)
    repo.delete([42, 43])
    repo.remove_members({(41, 16487), (42, 16489)})
    assert form(fake.client.sent(DELETE)[0]) == recorded_form(deletion)
    assert form(fake.client.sent(REMOVE_MEMBERS)[0]) == recorded_form(removal)


def test_members_are_read_with_get_cohort_members() -> None:
    """members() is the recorded core_cohort_get_cohort_members call, read into pairs."""
    exchange = recorded(ADD_MEMBERS, "after add: cohort members")
    fake = site(writes={MEMBERS: exchange["response"]})
    assert repo_of(fake).members([41, 42]) == {(41, 16487), (41, 16488), (42, 16493), (42, 16489)}
    assert form(fake.client.sent(MEMBERS)[0]) == recorded_form(exchange)


def _member_fields(pairs: Collection[tuple[int, int]]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for index, (cohort, user) in enumerate(sorted(pairs)):
        head = f"members[{index}]"
        fields |= {f"{head}[cohorttype][type]": "id", f"{head}[cohorttype][value]": str(cohort),
                   f"{head}[usertype][type]": "id", f"{head}[usertype][value]": str(user)}
    return fields


def test_add_members_by_ids_and_the_warning_codes() -> None:
    """Members go by cohort id and user id; warning "3" (already a member) is success; "2" (unknown
    user) is a refusal in Moodle's words."""
    already = recorded(ADD_MEMBERS, "warning: already a member")
    fake = site(writes={ADD_MEMBERS: already["response"]})
    repo_of(fake).add_members({(41, 16487)})
    assert form(fake.client.sent(ADD_MEMBERS)[0]) == recorded_form(already)
    unknown = recorded(ADD_MEMBERS, "mixed batch: 1st added, 2nd returned as warning")
    fake = site(writes={ADD_MEMBERS: unknown["response"]})
    with pytest.raises(PlatformRefused, match=r"user id=999999 not exists \(core_cohort_add_cohort_members"):
        repo_of(fake).add_members({(42, 16493), (42, 999999)})
    assert form(fake.client.sent(ADD_MEMBERS)[0]) == recorded_form(unknown)


def test_batches_and_dry_run() -> None:
    """Writes go in chunks of batch_size; a dry run reads but sends no write and gives negative ids."""
    fake = site(ERASMUS, PREPA, writes={ADD_MEMBERS: {"warnings": []}, REMOVE_MEMBERS: None, DELETE: None})
    repo_of(fake, batch_size=2).add_members({(41, u) for u in range(1, 6)})
    assert [form(p) for p in fake.client.sent(ADD_MEMBERS)] == [
        _member_fields({(41, 1), (41, 2)}), _member_fields({(41, 3), (41, 4)}), _member_fields({(41, 5)})]
    dry = repo_of(fake, dry_run=True)
    new = [CohortRecord("x", "X"), CohortRecord("y", "Y")]
    dry.add(new)
    dry.update([CohortRecord("z", "Z", id=41)])
    dry.delete([41])
    dry.add_members({(41, 1)})
    dry.remove_members({(41, 1)})
    assert [c.id for c in new] == [-1, -2]
    assert dry.find(ids=[-1]) == [] and dry.members([-1]) == set()
    written = {CREATE, UPDATE, DELETE, REMOVE_MEMBERS}
    assert not [f for f, _ in fake.client.calls if f in written] and len(fake.client.sent(ADD_MEMBERS)) == 3
