"""The fake Moodle's enrolment and role functions (tests/moodle_fake/ws_enrol.py) replay the recordings
of ../shared/moodle-ws in the order they were made (enrol, read, assign, unassign, unenrol) on a
site seeded with the recorded users and courses: every reply equals the recorded one, including the
"Message was not sent." after the commit, the TypeError without errorcode and the whole-batch rollbacks."""

from __future__ import annotations

import pytest

from tests.moodle_fake.records import SUSPENDED
from tests.moodle_fake.replay import RECORDINGS, direct_reply, load
from tests.moodle_fake.site import Site

NOW = 1795315200  # the recordings' time: the enrolments starting 1788213600 have started
USERS = {  # id: username, firstname, lastname, email, department, institution, idnumber, city, country
    16487: (
        "zoe.eleonore",
        "Zoé-Éléonore",
        "Lefèvre-Dupré",
        "zoe.eleonore@univ-exemple.fr",
        "Économétrie",
        "Université d’Exemple",
        "ETU-2026-0001",
        "Dijon",
        "FR",
    ),
    16488: (
        "francois.nguyen",
        "François",
        "Nguyễn Văn",
        "francois.nguyenvan@univ-exemple.fr",
        "",
        "",
        "ETU-2026-0002",
        "Saint-Étienne",
        "FR",
    ),
    16489: (
        "anais.muller",
        "Anaïs",
        "Müller",
        "anais.muller@univ-exemple.fr",
        "",
        "",
        "ETU-2026-0003",
        "Mulhouse",
        "FR",
    ),
    16490: ("jurgen.schmidt", "Jürgen", "Schmidt", "jurgen@univ-exemple.fr", "", "", "ETU-2026-0004", "", ""),
    16491: (
        "chloe.brule",
        "Chloé",
        "Brûlé",
        "chloe.brule@univ-exemple.fr",
        "Génie Électrique",
        "",
        "ENS-0101",
        "Montréal",
        "CA",
    ),
    16492: (
        "oscar.nunez",
        "Óscar",
        "Núñez",
        "oscar.nunez@univ-exemple.fr",
        "",
        "",
        "ENS-0102",
        "Granada",
        "ES",
    ),
    16493: ("ines.aitali", "Inès", "Aït-Ali", "ines@univ-exemple.fr", "", "", "ETU-2026-0005", "", ""),
}

pytestmark = pytest.mark.skipif(not RECORDINGS.is_dir(), reason="no Moodle recordings")






def replay(site: Site, name: str) -> int:
    """Replay a file in order; every reply must equal the recorded one; how many exchanges."""
    for exchange in load(f"{name}.json"):
        assert direct_reply(site, exchange["request"]) == exchange["response"], exchange["title"]
    return len(load(f"{name}.json"))


def recorded_site() -> Site:
    """The recorded users, category 75, courses 64 and 65 (manual, welcome message on; 65 has the
    recorded context 16734) and 66 without a manual instance; mail broken, as on the recorded site."""
    site = Site(now=NOW, welcome_message_fails=True)
    for userid, (username, first, last, email, dept, inst, idnumber, city, country) in USERS.items():
        site.add_user(
            username,
            firstname=first,
            lastname=last,
            email=email,
            department=dept,
            institution=inst,
            idnumber=idnumber,
            city=city,
            country=country,
            id=userid,
        )
    site.add_category("Faculté des Sciences et Techniques", id=75)
    site.add_course("ECO-L3-S5-101", fullname="Économétrie appliquée — L3 S5 (2026-2027)", category=75, id=64)
    site.add_course("GE-L3-201", fullname="Électronique de puissance", category=75, id=65, contextid=16734)
    site.add_course("LLSH-ATEL-01", category=75, id=66, manual=None)
    return site


def test_the_enrolment_recordings_replay_in_order() -> None:
    """enrol (12), get_enrolled_users (5), assign (10), unassign (6), unenrol (8): every reply as recorded."""
    site = recorded_site()
    assert replay(site, "enrol_manual_enrol_users") == 12
    assert replay(site, "core_enrol_get_enrolled_users") == 5
    assert replay(site, "core_role_assign_roles") == 10
    assert replay(site, "core_role_unassign_roles") == 6
    assert replay(site, "enrol_manual_unenrol_users") == 8
    assert replay(site, "core_enrol_get_course_enrolment_methods") == 2


def test_failed_batches_leave_nothing() -> None:
    """The recorded failing batches change no table: the 2nd enrolment, assignment or unenrolment fails
    and the 1st is rolled back with it."""
    site = recorded_site()
    site.enrol(16489, 64)
    before = site.snapshot()
    for name, title in (
        ("enrol_manual_enrol_users", "failure in a batch"),
        ("core_role_assign_roles", "failure in a batch"),
        ("enrol_manual_unenrol_users", "failure in a batch"),
    ):
        exchange = next(e for e in load(f"{name}.json") if e["title"].startswith(title))
        assert "exception" in direct_reply(site, exchange["request"])
    assert site.snapshot() == before


def test_welcome_message_error_comes_after_the_commit() -> None:
    """With a contact in the course and broken mail, the enrolment is saved and the call still answers
    "Message was not sent."; with working mail, or without a contact, the answer is null."""
    site = recorded_site()
    enrol = {
        "wsfunction": "enrol_manual_enrol_users",
        "enrolments[0][roleid]": "5",
        "enrolments[0][userid]": "16487",
        "enrolments[0][courseid]": "64",
    }
    assert direct_reply(site, enrol) is None  # no contact yet
    site.enrol(16491, 64, 3)
    reply = direct_reply(site, {**enrol, "enrolments[0][userid]": "16488", "enrolments[0][suspend]": "1"})
    assert reply == {
        "exception": "core\\exception\\moodle_exception",
        "errorcode": "Message was not sent.",
        "message": "error/Message was not sent.",
    }
    assert site.enrolments(64)[16488].status == SUSPENDED
    assert site.roles_in_course(64, 16488) == {5}
    site.welcome_message_fails = False
    assert direct_reply(site, {**enrol, "enrolments[0][userid]": "16489"}) is None
    site.welcome_message_fails = True
    site.set_manual_instance(64, True, welcome=False)
    assert direct_reply(site, {**enrol, "enrolments[0][userid]": "16490"}) is None


def test_enrolled_users_show_groups_and_roles_as_the_connector_asks() -> None:
    """userfields=id,roles,groups (what syncd's roster sends): id, fullname, the groups the user is in
    and the roles; onlyactive drops suspended and ended enrolments."""
    site = recorded_site()
    site.enrol(16487, 64)
    site.enrol(16488, 64, status=SUSPENDED)
    site.enrol(16489, 64, timeend=NOW - 1)
    group = site.add_group(64, "TD & co")
    site.add_group_member(group, 16487)
    base = {
        "wsfunction": "core_enrol_get_enrolled_users",
        "courseid": "64",
        "options[0][name]": "userfields",
        "options[0][value]": "id,roles,groups",
    }
    reply = direct_reply(site, base)
    assert [u["id"] for u in reply] == [16487, 16488, 16489]
    assert reply[0] == {
        "id": 16487,
        "fullname": "Zoé-Éléonore Lefèvre-Dupré",
        "groups": [{"id": group, "name": "TD & co", "description": "", "descriptionformat": 1}],
        "roles": [{"roleid": 5, "name": "", "shortname": "student", "sortorder": 0}],
    }
    active = direct_reply(site, {**base, "options[1][name]": "onlyactive", "options[1][value]": "1"})
    assert [u["id"] for u in active] == [16487]


def test_unassign_takes_the_array_named_unassignments() -> None:
    """core_role_unassign_roles refuses 'assignments' and takes a role back given by contextlevel."""
    site = recorded_site()
    site.role_assign(1, 16492, site.context_id(40, 75) or 0)
    wrong = {
        "wsfunction": "core_role_unassign_roles",
        "assignments[0][roleid]": "1",
        "assignments[0][userid]": "16492",
        "assignments[0][contextlevel]": "coursecat",
        "assignments[0][instanceid]": "75",
    }
    assert direct_reply(site, wrong)["errorcode"] == "invalidparameter"
    right = {k.replace("assignments", "unassignments"): v for k, v in wrong.items()}
    assert direct_reply(site, right) is None
    assert site.roles_at(site.context_id(40, 75) or 0, 16492) == set()
