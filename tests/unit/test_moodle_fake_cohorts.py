"""The fake Moodle's core_cohort_* functions (tests/moodle_fake/ws_cohorts.py), called directly on a Site.

Every recorded exchange of the cohort files of ../shared/moodle-ws is replayed in the recorded
order against a site seeded with the recording's categories, users, pre-existing cohort and id
sequence: the reply (or the error body) must be the recorded one, and with debugging on the error
must carry the debuginfo of the ``debuginfo/`` twin. Then the batch semantics of README §4 and §5.7.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.moodle_fake import FakeMoodle
from tests.moodle_fake.errors import WsError
from tests.moodle_fake.replay import (
    ID_KEYS,
    LOOSE_KEYS,
    RECORDINGS,
    Replayer,
    direct_reply,
    load_files,
    run_function,
)
from tests.moodle_fake.site import Site

pytestmark = pytest.mark.skipif(not RECORDINGS.is_dir(), reason=f"no Moodle recordings at {RECORDINGS}")

#: the recording files in the order the recording script ran them (each read-back follows its writes)
ORDER = ("core_cohort_create_cohorts", "core_cohort_get_cohorts", "core_cohort_search_cohorts",
         "core_cohort_update_cohorts", "core_cohort_add_cohort_members", "core_cohort_delete_cohort_members",
         "core_cohort_delete_cohorts")
ZOE, FRANCOIS, ANAIS, LEA, NOE = 16487, 16488, 16489, 16492, 16493
FAC_ST_CONTEXT = 16725






def seeded() -> Site:
    """Categories FAC-ST (context 16725) and 77, the recording's users, cohort 1; new cohorts from 41."""
    site = Site(now=1795313994)
    site.add_category("Faculté des sciences", idnumber="FAC-ST", id=76, contextid=FAC_ST_CONTEXT)
    site.add_category("Génie électrique", id=77)
    people = ((ZOE, "zoe.eleonore", "Eleonore"), (FRANCOIS, "francois.nguyen", "Nguyen"),
              (ANAIS, "anais.muller", "Muller"), (LEA, "lea.rousseau", "Rousseau"),
              (NOE, "noe.bernard", "Bernard"))
    for userid, username, lastname in people:
        site.add_user(username, lastname=lastname, id=userid, email=f"{username}@univ-exemple.fr")
    site.add_cohort("Cohort 1795313994", "coh1795313994", id=1)
    site.set_next_id("cohorts", 41)
    return site




def members(cohortid: int, userid: int) -> dict[str, Any]:
    """One add_cohort_members item by ids."""
    return {"cohorttype": {"type": "id", "value": str(cohortid)},
            "usertype": {"type": "id", "value": str(userid)}}


def test_every_recorded_cohort_exchange_replays_with_the_recorded_reply() -> None:
    """Replayed in order, each recorded cohort call gets the recorded reply or error body, ids included."""
    site = seeded()
    replayed = load_files(ORDER)
    assert len(replayed) >= 45
    for ex in replayed:
        assert direct_reply(site, ex["request"]) == ex["response"], ex["title"]


def test_recorded_errors_carry_the_debuginfo_of_the_debug_run() -> None:
    """With debugging on, each recorded error carries the debug run's debuginfo (same file and title)."""
    debug_run = load_files(ORDER, RECORDINGS / "debuginfo")
    debug_bodies = {(ex["file"], ex["title"]): ex["response"] for ex in debug_run}
    site = seeded()
    errors = 0
    for ex in load_files(ORDER):
        body = direct_reply(site, ex["request"], debug=True)
        if isinstance(body, dict) and "exception" in body:
            errors += 1
            assert body == debug_bodies[ex["file"], ex["title"]], ex["title"]
    assert errors >= 15


def test_cohort_recordings_replay_over_http_with_other_ids() -> None:
    """Through the HTTP server, on a site whose ids differ from the recording's, every exchange matches."""
    with FakeMoodle(token="t0k3n") as fake:
        site = fake.site
        # member lists hold ids; warning messages quote ids (digit runs ignored)
        replayer = Replayer(fake, "t0k3n", id_keys=ID_KEYS | {"userids"}, loose_keys=LOOSE_KEYS | {"message"})
        assert site.add_cohort("Cohort 1795313994", "coh1795313994") == 1  # id 1: "1" is also a flag value
        science = site.add_category("Faculté des sciences", idnumber="FAC-ST")
        category = site.category(science)
        assert category is not None
        replayer.alias(FAC_ST_CONTEXT, category.contextid)
        replayer.alias(77, site.add_category("Génie électrique"))
        people = ((ZOE, "zoe.eleonore", "Eleonore"), (FRANCOIS, "francois.nguyen", "Nguyen"),
                  (ANAIS, "anais.muller", "Muller"), (LEA, "lea.rousseau", "Rousseau"),
                  (NOE, "noe.bernard", "Bernard"))
        for recorded, username, lastname in people:
            replayer.alias(recorded, site.add_user(username, lastname=lastname))
        assert replayer.ids[ZOE] != ZOE
        assert [d for name in ORDER for d in replayer.replay(f"{name}.json")] == []
        assert fake.count("core_cohort_add_cohort_members") == 8


def test_create_cohorts_failing_item_rolls_back_the_whole_batch() -> None:
    """A duplicate idnumber in the 2nd item leaves no trace of the 1st (README §4)."""
    site = seeded()
    before = site.snapshot()
    system = {"type": "system", "value": ""}
    batch = {"cohorts": {"0": {"categorytype": system, "name": "P27", "idnumber": "PROMO-2027"},
                         "1": {"categorytype": system, "name": "Dup", "idnumber": "coh1795313994"}}}
    with pytest.raises(WsError) as caught:
        run_function(site, "core_cohort_create_cohorts", batch)
    assert caught.value.debuginfo == "record already exists: idnumber=coh1795313994"
    assert site.snapshot() == before


def test_update_cohorts_keeps_fields_left_out_and_allows_a_duplicate_idnumber() -> None:
    """Update stores a duplicate idnumber (§5.7) and keeps description and visibility when not sent."""
    site = seeded()
    other = site.add_cohort("Other", "OTHER", description="kept", visible=False)
    item = {"id": str(other), "categorytype": {"type": "idnumber", "value": "FAC-ST"}, "name": "Renamed",
            "idnumber": "coh1795313994"}
    assert run_function(site, "core_cohort_update_cohorts", {"cohorts": {"0": item}}) is None
    cohort = site.cohort(other)
    assert cohort is not None
    assert (cohort.name, cohort.idnumber, cohort.description, cohort.visible, cohort.contextid) == (
        "Renamed", "coh1795313994", "kept", False, FAC_ST_CONTEXT)


def test_add_cohort_members_applies_good_items_and_warns_for_the_others() -> None:
    """Per item: unknown user (2), already a member (3), bad user type (1) are warnings; the rest applied."""
    site = seeded()
    site.add_cohort_member(1, ZOE)
    batch = {"members": {"0": members(1, FRANCOIS), "1": members(1, 999999), "2": members(1, ZOE),
                         "3": {"cohorttype": {"type": "idnumber", "value": "coh1795313994"},
                               "usertype": {"type": "email", "value": "anais.muller@univ-exemple.fr"}},
                         "4": {"cohorttype": {"type": "idnumber", "value": "coh1795313994"},
                               "usertype": {"type": "username", "value": "anais.muller"}}}}
    reply = run_function(site, "core_cohort_add_cohort_members", batch)
    assert [w["warningcode"] for w in reply["warnings"]] == ["2", "3", "1"]
    assert site.cohort_members(1) == {ZOE, FRANCOIS, ANAIS}


def test_delete_cohort_members_rolls_back_and_ignores_non_members() -> None:
    """An unknown cohort in the 2nd item keeps the 1st member; removing a non-member is a silent no-op."""
    site = seeded()
    site.add_cohort_member(1, ZOE)
    batch = {"members": {"0": {"cohortid": "1", "userid": str(ZOE)},
                         "1": {"cohortid": "999999", "userid": "1"}}}
    with pytest.raises(WsError):
        run_function(site, "core_cohort_delete_cohort_members", batch)
    assert site.cohort_members(1) == {ZOE}
    assert run_function(site, "core_cohort_delete_cohort_members",
                {"members": {"0": {"cohortid": "1", "userid": str(LEA)}}}) is None
    assert site.cohort_members(1) == {ZOE}


def test_delete_cohorts_takes_members_and_rolls_back_on_unknown_id() -> None:
    """An unknown id fails the whole call; a successful delete removes the memberships too."""
    site = seeded()
    site.add_cohort_member(1, ZOE)
    with pytest.raises(WsError) as caught:
        run_function(site, "core_cohort_delete_cohorts", {"cohortids": {"0": "1", "1": "999998"}})
    assert caught.value.errorcode == "invalidrecord"
    assert site.cohort(1) is not None and site.cohort_members(1) == {ZOE}
    assert run_function(site, "core_cohort_delete_cohorts", {"cohortids": {"0": "1"}}) is None
    assert site.cohort(1) is None and site.cohort_members(1) == set()


def test_get_cohort_members_orders_by_last_name_and_refuses_unknown_cohorts() -> None:
    """Members come by last name (ORDER BY lastname, firstname); an unknown cohort is invalidrecord."""
    site = seeded()
    for userid in (FRANCOIS, ZOE, NOE):
        site.add_cohort_member(1, userid)
    assert run_function(site, "core_cohort_get_cohort_members", {"cohortids": {"0": "1"}}) == [
        {"cohortid": 1, "userids": [NOE, ZOE, FRANCOIS]}]
    with pytest.raises(WsError) as caught:
        run_function(site, "core_cohort_get_cohort_members", {"cohortids": {"0": "1", "1": "999999"}})
    assert caught.value.errorcode == "invalidrecord"


def test_search_cohorts_pages_and_reaches_category_cohorts_from_below() -> None:
    """limitnum pages the sorted result (25 by default, 0 = all); ``parents`` from a category includes it."""
    site = seeded()
    for n in range(30):
        site.add_cohort(f"Group {n:02d}", f"G{n:02d}")
    site.add_cohort("In FAC-ST", "IN-ST", contextid=FAC_ST_CONTEXT)
    system = {"contextlevel": "system", "instanceid": "0"}
    default = run_function(site, "core_cohort_search_cohorts",
                   {"query": "group", "context": system, "includes": "all"})
    everything = run_function(site, "core_cohort_search_cohorts",
                      {"query": "group", "context": system, "includes": "all", "limitnum": "0"})
    assert len(default["cohorts"]) == 25 and len(everything["cohorts"]) == 30
    assert [c["name"] for c in everything["cohorts"]] == [f"Group {n:02d}" for n in range(30)]
    below = run_function(site, "core_cohort_search_cohorts", {
        "query": "IN-ST", "context": {"contextlevel": "coursecat", "instanceid": "76"},
        "includes": "parents"})
    assert [c["idnumber"] for c in below["cohorts"]] == ["IN-ST"]
    from_system = run_function(site, "core_cohort_search_cohorts",
                       {"query": "IN-ST", "context": system, "includes": "parents"})
    assert from_system == {"cohorts": []}


def test_search_cohorts_refuses_a_missing_or_unknown_context() -> None:
    """No context data, an unknown level or a missing instance are invalidparameter (as role functions)."""
    site = seeded()
    reasons = []
    for context in ({}, {"contextlevel": "faculty", "instanceid": "1"}, {"contextlevel": "coursecat",
                                                                          "instanceid": "999999"}):
        with pytest.raises(WsError) as caught:
            run_function(site, "core_cohort_search_cohorts", {"query": "", "context": context})
        reasons.append(caught.value.debuginfo)
    assert reasons == [
        "Missing parameters, please provide either context level with instance id or contextid",
        "Invalid context level = faculty", "Context does not exist"]
