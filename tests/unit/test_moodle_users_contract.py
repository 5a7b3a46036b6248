"""MoodleUsers against the recordings (a scripted client, no HTTP): requests shaped as the
recorded ones, recorded replies read as the module docstring says (timezone 99, deleted users,
case-sensitive email look-up), recorded errors and warnings turned into refusals naming the user."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import pytest

from syncd.domain import PlatformRefused
from syncd.platform.base import UserRecord
from syncd.platform.moodle._ws import SiteCache
from syncd.platform.moodle.users import CREATE, DELETE, GET, UPDATE, MoodleUsers, random_password
from tests.unit.moodle_scripted import Scripted, form, recorded, recorded_form, ws_over


class Users:
    """Answers get_users_by_field from recorded user replies (exact, case-sensitive matches, as
    PostgreSQL does); writes answer from ``writes`` (a reply, or a function of the params)."""

    def __init__(self, *items: Mapping[str, Any], writes: Mapping[str, Any] | None = None) -> None:
        self.items = [dict(i) for i in items]
        self.writes = dict(writes or {})
        self.client = Scripted(self.answer)

    def answer(self, function: str, params: Mapping[str, Any]) -> Any:
        if function == GET:
            values = {str(v) for v in params["values"]}
            return [i for i in self.items if str(i.get(params["field"], "")) in values]
        reply = self.writes[function]
        return reply(params) if callable(reply) else copy.deepcopy(reply)


def recorded_users(function: str, title: str) -> list[dict[str, Any]]:
    """The user replies of a recorded look-up."""
    return list(recorded(function, title)["response"])


ZOE, FRANCOIS = recorded_users(GET, "by idnumber, 2 values")
CHLOE = recorded_users(GET, "by email (found)")[0]


def repo_of(site: Users, *, batch_size: int = 100, dry_run: bool = False,
            cache: SiteCache | None = None) -> MoodleUsers:
    return MoodleUsers(ws_over(site.client, batch_size=batch_size, dry_run=dry_run, cache=cache))


def new_user(username: str, **fields: Any) -> UserRecord:
    values: dict[str, Any] = {"firstname": "Noé", "lastname": "Test", "email": f"{username}@univ-exemple.fr"}
    return UserRecord(username=username, **(values | fields))


def test_find_sends_the_recorded_lookups_and_reads_the_replies() -> None:
    """Usernames are looked up as recorded; the reply's fields become the record (timezone 99 is
    the site's: ''; absent fields are ''); idnumbers of users already found are not looked up again."""
    site = Users(ZOE, FRANCOIS, CHLOE)
    found = repo_of(site).find(usernames=["zoe.eleonore", "jurgen.weiss"], idnumbers=["ETU-2026-0001"])
    expected = recorded_form(recorded(GET, "by username, 2 values"))
    sent = form(site.client.sent(GET)[0])
    assert sent["field"] == expected["field"] and sorted(sent.values()) == sorted(expected.values())
    assert len(site.client.calls) == 1  # ETU-2026-0001 came with zoe
    (zoe,) = found
    assert (zoe.id, zoe.username, zoe.idnumber, zoe.timezone, zoe.city) == (
        16487, "zoe.eleonore", "ETU-2026-0001", "Europe/Paris", "Besançon")
    assert (zoe.phone1, zoe.address, zoe.description) == ("", "", "")
    assert (zoe.deleted, zoe.suspended) == (False, False)
    assert repo_of(site).find(usernames=["chloe.brule"])[0].timezone == ""


def test_emails_are_looked_up_as_given_and_lower_cased() -> None:
    """Moodle's email look-up is case-sensitive: both forms are asked in one round, the match is
    case-insensitive; a user stored in another mix of cases stays unfound (documented)."""
    site = Users(CHLOE)
    found = repo_of(site).find(emails=["CHLOE.BRULE@univ-exemple.fr"])
    assert [u.id for u in found] == [16491]
    (sent,) = site.client.sent(GET)
    assert sent["field"] == "email"
    assert sorted(sent["values"]) == ["CHLOE.BRULE@univ-exemple.fr", "chloe.brule@univ-exemple.fr"]
    stored_mixed = {**CHLOE, "email": "Chloe.Brule@Univ-Exemple.fr"}
    assert repo_of(Users(stored_mixed)).find(emails=["chloe.brule@univ-exemple.fr"]) == []


def test_matches_are_exact_and_lookups_are_chunked_in_parallel(monkeypatch: pytest.MonkeyPatch) -> None:
    """A site comparing case-insensitively (MySQL) may answer other cases: only exact keys are kept;
    values go lookup_size (here batch_size 2, LOOKUP_VALUES lowered to 1) a call."""
    monkeypatch.setattr("syncd.platform.moodle._ws.LOOKUP_VALUES", 1)
    site = Users(ZOE, FRANCOIS)
    site.answer = lambda function, params: [ZOE, FRANCOIS]  # type: ignore[method-assign]
    site.client.answer = site.answer
    found = repo_of(site, batch_size=2).find(usernames=["zoe.eleonore", "a", "b", "c", "d"])
    assert [u.username for u in found] == ["zoe.eleonore"]
    assert [len(p["values"]) for p in site.client.sent(GET)] == [2, 2, 1]


def test_deleted_users_are_recognised_by_their_scrambled_email() -> None:
    """The recorded read-back after core_user_delete_users: deleted users come back by id with
    username <email>.<time> and an md5 email; deleted() names them, and unknown ids too."""
    after = recorded_users(DELETE, "after delete")
    site = Users(*after)
    assert repo_of(site).deleted([16489, 16490, 16493, 999999]) == {16490, 16493, 999999}
    (jurgen,) = repo_of(site).find(usernames=["jurgen.weiss@univ-exemple.fr.1795315162"])
    assert jurgen.deleted


def test_create_sends_the_recorded_fields_and_sets_ids() -> None:
    """add() sends every field of the recorded create with the same names and values (plus the
    fields syncd always writes) and takes the ids of the reply."""
    exchange = recorded(CREATE, "success: batch of 2 with password")
    site = Users(writes={CREATE: exchange["response"]})
    rec = recorded_form(exchange)
    users = [UserRecord(username=rec[f"users[{i}][username]"], firstname=rec[f"users[{i}][firstname]"],
                        lastname=rec[f"users[{i}][lastname]"], email=rec[f"users[{i}][email]"],
                        idnumber=rec.get(f"users[{i}][idnumber]"), city=rec.get(f"users[{i}][city]", ""),
                        country=rec.get(f"users[{i}][country]", ""),
                        timezone=rec.get(f"users[{i}][timezone]", ""), lang=rec.get(f"users[{i}][lang]", ""),
                        institution=rec.get(f"users[{i}][institution]", ""),
                        department=rec.get(f"users[{i}][department]", ""),
                        password=rec[f"users[{i}][password]"],
                        must_change_password=f"users[{i}][preferences][0][type]" in rec) for i in (0, 1)]
    repo_of(site).add(users)
    sent = form(site.client.sent(CREATE)[0])
    assert {k: v for k, v in sent.items() if k in rec} == rec
    assert sent["users[0][auth]"] == "manual" and sent["users[1][timezone]"] == "99"
    assert [u.id for u in users] == [16487, 16488]


def test_generated_and_missing_passwords() -> None:
    """password_to_generate -> createpassword=1 (as recorded); no password at all (*NOPASS*) -> a
    random one nobody knows; profile fields -> customfields[i][type]/[value] (as recorded), then
    the users given profile values are read back by id to check Moodle kept them."""
    site = Users(writes={CREATE: lambda p: [{"id": 1 + n, "username": u["username"]}
                                           for n, u in enumerate(p["users"])]})
    site.items.append({"id": 2, "username": "ines.aitali",
                       "customfields": [{"shortname": "matricule", "value": "A-12345"}]})
    users = [new_user("anais.muller", password_to_generate=True, must_change_password=True),
             new_user("ines.aitali", profile={"matricule": "A-12345"})]
    repo_of(site).add(users)
    sent = form(site.client.sent(CREATE)[0])
    assert sent["users[0][createpassword]"] == "1" and "users[0][password]" not in sent
    assert len(sent["users[1][password]"]) > 20
    custom = recorded_form(recorded(CREATE, "customfields with a shortname"))
    assert sent["users[1][customfields][0][type]"] == custom["users[0][customfields][0][type]"]
    assert sent["users[1][customfields][0][value]"] == custom["users[0][customfields][0][value]"]
    assert [(p["field"], p["values"]) for p in site.client.sent(GET)] == [("id", [2])]
    assert random_password() != random_password()


def test_create_refusals_name_the_user_with_moodles_message() -> None:
    """The recorded password-policy error and the bare 'Invalid parameter value detected' of a
    duplicate email become the row's reason, with the user named; the password is never shown."""
    policy = recorded(CREATE, "failure: password violating")["response"]
    site = Users(writes={CREATE: policy})
    with pytest.raises(PlatformRefused) as caught:
        repo_of(site).add([new_user("mdp.faible", password="abc")])
    text = str(caught.value)
    assert "Passwords must be at least 8 characters long" in text and "'mdp.faible'" in text
    assert "abc" not in text.replace("abcdef", "")
    duplicate = recorded(CREATE, "failure: duplicate email")["response"]
    site = Users(writes={CREATE: duplicate})
    with pytest.raises(PlatformRefused, match=r"Invalid parameter value detected.*'zoe.eleonore2'"):
        repo_of(site).add([new_user("zoe.eleonore2", email="ZOE.ELEONORE@UNIV-EXEMPLE.FR",
                                    password="Aa-12345678")])


def test_a_user_without_email_or_with_tags_is_refused_before_sending() -> None:
    """Moodle requires an email and rejects tags in text fields with no useful reason: syncd says why."""
    site = Users(writes={})
    with pytest.raises(PlatformRefused, match="no email address; Moodle requires one"):
        repo_of(site).add([new_user("sans.email", email=None)])
    with pytest.raises(PlatformRefused, match="city holds HTML tags"):
        repo_of(site).add([new_user("tags", city="<b>Dijon</b>")])
    assert site.client.calls == []


def test_update_warnings_become_a_refusal_naming_the_users() -> None:
    """The recorded per-item warnings (duplicate email) name the user and explain the code; the
    request has the recorded fields (id, email)."""
    exchange = recorded(UPDATE, "warning: email already used")
    site = Users(writes={UPDATE: exchange["response"]})
    anais = new_user("anais.muller", email="ZOE.ELEONORE@univ-exemple.fr", id=16489)
    named = r"user 'anais.muller' \(id 16489\): Duplicate address \(the email"
    with pytest.raises(PlatformRefused, match=named):
        repo_of(site).update([anais])
    sent = form(site.client.sent(UPDATE)[0])
    assert {k: sent[k] for k in recorded_form(exchange)} == recorded_form(exchange)


def test_weak_password_on_update_is_explained() -> None:
    """§5.6: the whole reply is invalidresponse though the other items were applied: the refusal says
    the policy refused that user's password and the others were applied."""
    bug = recorded(UPDATE, "BUG: batch whose 2nd item has a weak password")["response"]
    site = Users(writes={UPDATE: bug})
    chloe = new_user("chloe.brule", department="Génie Électrique", id=16491)
    anais = new_user("anais.muller", id=16489, password="abc", password_hash="h")
    with pytest.raises(PlatformRefused, match=r"password policy refused the password of user 'anais.muller'"):
        repo_of(site).update([chloe, anais])


def test_deleted_true_is_sent_as_delete_users_and_revival_is_refused() -> None:
    """deleted=True goes to core_user_delete_users (as recorded); Moodle's own refusal (the admin)
    names the user; a deleted user found deleted cannot be revived (not supported)."""
    ok = recorded(DELETE, "success: batch of 2")
    site = Users(writes={DELETE: None, UPDATE: {"warnings": []}})
    repo_of(site).update([new_user("ines", id=16493, deleted=True),
                          new_user("jurgen", id=16490, deleted=True)])
    assert form(site.client.sent(DELETE)[0]) == recorded_form(ok)
    assert site.client.sent(UPDATE) == []
    site = Users(writes={DELETE: recorded(DELETE, "failure: site admin")["response"]})
    with pytest.raises(PlatformRefused, match=r"Administrator accounts cannot be deleted.*'admin'"):
        repo_of(site).update([new_user("admin", id=2, deleted=True)])
    gone = recorded_users(DELETE, "after delete")[1]
    site = Users(gone, writes={})
    repo = repo_of(site)
    (jurgen,) = repo.find(usernames=[gone["username"]])
    jurgen.deleted = False
    with pytest.raises(PlatformRefused, match="not supported on moodle: reviving a deleted user"):
        repo.update([jurgen])


def test_suspended_new_users_take_one_update_and_passwords_are_remembered() -> None:
    """create_users takes no 'suspended': one update_users follows for the suspended ones; the hash
    of a password syncd set is what find() reports afterwards (in this process)."""
    cache = SiteCache()
    site = Users(writes={CREATE: [{"id": 7, "username": "s"}, {"id": 8, "username": "t"}],
                         UPDATE: {"warnings": []}})
    hashed = "scrypt$stand-in"  # what the users processor computed (not checked here)
    users = [new_user("s", suspended=True, password="Secret-2026!", password_hash=hashed), new_user("t")]
    repo_of(site, cache=cache).add(users)
    assert site.client.sent(UPDATE) == [{"users": [{"id": 7, "suspended": 1}]}]
    site.items = [{"id": 7, "username": "s", "email": "s@x.fr", "suspended": True}]
    (found,) = repo_of(site, cache=cache).find(usernames=["s"])
    assert found.password_hash == hashed and found.suspended
    found.password_hash = None  # *NOPASS* on update: a random password replaces the one syncd set
    repo_of(site, cache=cache).update([found])
    assert len(form(site.client.sent(UPDATE)[-1])["users[0][password]"]) > 20


def test_placeholder_usernames_are_made_valid() -> None:
    """The users processor's key-swap placeholder '#<id>#' is not a Moodle username: it is sent as
    syncd.vacating.<id>; an empty idnumber as ''."""
    site = Users(writes={UPDATE: {"warnings": []}})
    repo_of(site).update([new_user("#16487#", id=16487)])
    sent = form(site.client.sent(UPDATE)[0])
    assert sent["users[0][username]"] == "syncd.vacating.16487" and sent["users[0][idnumber]"] == ""


def test_dry_run_sends_no_write() -> None:
    """A dry run reads, gives negative ids and writes nothing."""
    site = Users(ZOE, writes={})
    repo = repo_of(site, dry_run=True)
    users = [new_user("a"), new_user("b")]
    repo.add(users)
    (zoe,) = repo.find(usernames=["zoe.eleonore"])
    zoe.city = "Dijon"
    repo.update([zoe, new_user("c", id=16490, deleted=True)])
    assert [u.id for u in users] == [-1, -2]
    assert {name for name, _ in site.client.calls} == {GET}
