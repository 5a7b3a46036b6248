"""The users processor against the in-memory platform (SPEC §4 users)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from syncd.domain import ConfigError, Outcome, RowResult
from syncd.passwords import NOPASS, hash_password, verify_password
from syncd.platform.base import Checkpoint, SavedResult, UserRecord
from syncd.processors.base import Row, RunContext
from syncd.processors.users import SPEC, UsersProcessor, build
from tests.fakes import FakePlatform, FakeTx

CTX = RunContext(timezone=UTC, now=lambda: datetime(2026, 1, 1, tzinfo=UTC), password_cost=10)


def person(username: str, line: int = 2, **values: str) -> Row:
    """A row with the required columns filled in."""
    return Row(line, {"username": username, "firstname": "Ann", "lastname": "Lee", **values})


def run(platform: FakePlatform, rows: Sequence[Row], **options: Any) -> list[RowResult]:
    """Apply one batch in one committed transaction."""
    processor = build(options, CTX)
    with platform.transaction() as tx:
        return processor.apply(rows, tx)


def outcomes(results: Sequence[RowResult]) -> list[Outcome]:
    return [r.outcome for r in results]


def stored(platform: FakePlatform, username: str) -> UserRecord:
    user = platform.user(username)
    assert user is not None, f"no user {username!r}"
    return user


@pytest.fixture
def platform() -> FakePlatform:
    return FakePlatform()


# -- options, schema ---------------------------------------------------------------


def test_bad_identity_is_a_config_error() -> None:
    """An unknown identity names the option, the choices and the value."""
    with pytest.raises(ConfigError) as err:
        build({"identity": "x"}, CTX)
    assert str(err.value) == "users: option identity must be one of idnumber, username, email (got 'x')"


def test_bad_mode_and_update_password_are_config_errors() -> None:
    """mode and update_password are checked when the processor is built."""
    with pytest.raises(ConfigError, match="option mode must be one of create_or_update"):
        build({"mode": "upsert"}, CTX)
    with pytest.raises(ConfigError, match="update_password"):
        build({"update_password": "maybe"}, CTX)
    with pytest.raises(ConfigError, match="update_password"):
        build({"update_password": 3}, CTX)


def test_bad_password_cost_is_a_config_error() -> None:
    """A KDF cost outside 10..20 is refused when the processor is built."""
    ctx = RunContext(timezone=UTC, now=CTX.now, password_cost=4)
    with pytest.raises(ConfigError, match=r"10\.\.20"):
        build({}, ctx)


def test_spec_registers_the_users_processor() -> None:
    """The registry entry has the name, priority, sniffing columns and option names."""
    assert (SPEC.name, SPEC.priority) == ("users", 10)
    assert SPEC.sniff == {"username", "firstname", "lastname"}
    assert {"identity", "mode", "update_password"} <= SPEC.options
    assert isinstance(SPEC.factory({}, CTX), UsersProcessor)


def test_schema_requires_names_except_in_update_only() -> None:
    """firstname/lastname are required unless mode is update_only; profile fields by pattern."""
    schema = build({}, CTX).schema
    assert schema.required == {"username", "firstname", "lastname"}
    assert {"idnumber", "email", "password", "oldusername", "deleted"} <= schema.optional
    assert schema.patterns == (r"profile_field_[a-z0-9_]+",)
    update_only = build({"mode": "update_only"}, CTX).schema
    assert update_only.required == {"username"}
    assert {"firstname", "lastname"} <= update_only.optional


def test_schema_requires_email_for_identity_email() -> None:
    """identity=email makes the email column required."""
    assert "email" in build({"identity": "email"}, CTX).schema.required


def test_describe_lists_effective_options() -> None:
    """describe() is one line of the effective options, defaults included."""
    assert build({}, CTX).describe() == "identity=idnumber mode=create_or_update update_password=yes"
    text = build({"identity": "email", "mode": "create_only", "update_password": False}, CTX)
    assert text.describe() == "identity=email mode=create_only update_password=no"


# -- create ------------------------------------------------------------------------


def test_create_stores_the_row(platform: FakePlatform) -> None:
    """A new user is created with its fields; username trimmed and lowercased."""
    row = person(" JDoe ", email="J.Doe@Example.org", city="Lyon", idnumber="E1")
    assert run(platform, [row]) == [RowResult(Outcome.CREATED, "user 'jdoe'")]
    user = stored(platform, "jdoe")
    assert (user.firstname, user.lastname, user.city) == ("Ann", "Lee", "Lyon")
    assert (user.idnumber, user.email, user.auth) == ("E1", "J.Doe@Example.org", "manual")


@pytest.mark.parametrize("name", ["J Doe", "", "jdoe!", "jé", "a" * 101])
def test_invalid_username_is_a_row_error(platform: FakePlatform, name: str) -> None:
    """Usernames outside [a-z0-9_.@-] (after lowercasing) are refused, naming the value."""
    [result] = run(platform, [person(name)])
    assert result == RowResult(Outcome.ERROR, f"username: invalid username {name!r}")
    assert platform.users() == []


def test_create_needs_firstname_and_lastname(platform: FakePlatform) -> None:
    """Empty names are row errors naming the column."""
    results = run(platform, [person("a", firstname=""), person("b", lastname=" ")])
    assert results[0].outcome is Outcome.ERROR and results[0].reason.startswith("firstname:")
    assert results[1].outcome is Outcome.ERROR and results[1].reason.startswith("lastname:")
    assert platform.users() == []


def test_empty_password_flags_generation_without_hashing(platform: FakePlatform) -> None:
    """No password on create: to be generated, must change, no hash."""
    run(platform, [person("a", password=""), person("b")])
    for name in ("a", "b"):
        user = stored(platform, name)
        assert user.password_to_generate and user.must_change_password
        assert user.password_hash is None


def test_nopass_creates_a_user_without_password(platform: FakePlatform) -> None:
    """*NOPASS*: no hash, nothing to generate, auth as given."""
    run(platform, [person("a", password=NOPASS, auth="ldap")])
    user = stored(platform, "a")
    assert (user.password_hash, user.password_to_generate, user.auth) == (None, False, "ldap")


def test_password_is_stored_hashed(platform: FakePlatform) -> None:
    """A password is stored as a salted hash at the configured cost that verifies."""
    run(platform, [person("a", password="Secret-1")])
    user = stored(platform, "a")
    assert user.password_hash is not None and user.password_hash.startswith("scrypt$10$")
    assert verify_password("Secret-1", user.password_hash)
    assert not user.password_to_generate and not user.must_change_password


def test_several_passwords_in_a_batch_each_get_their_own_hash(platform: FakePlatform) -> None:
    """Hashes computed on the thread pool land on the right users, with distinct salts."""
    rows = [person(f"u{i}", line=i, password=f"pw{i % 3}") for i in range(8)]
    run(platform, rows)
    hashes = {u.username: u.password_hash for u in platform.users()}
    assert len(set(hashes.values())) == 8
    for i in range(8):
        hashed = hashes[f"u{i}"]
        assert hashed is not None and verify_password(f"pw{i % 3}", hashed)


# -- update ------------------------------------------------------------------------


def test_update_changes_only_present_columns(platform: FakePlatform) -> None:
    """Absent columns keep their value; the reason lists the changed fields."""
    run(platform, [person("a", city="Lyon", department="Math", idnumber="E1")])
    [result] = run(platform, [person("a", city="Nice", idnumber="E1", lastname="Lee")])
    assert result == RowResult(Outcome.UPDATED, "user 'a': city")
    user = stored(platform, "a")
    assert (user.city, user.department) == ("Nice", "Math")


def test_same_values_are_unchanged(platform: FakePlatform) -> None:
    """A row that changes nothing is 'unchanged'."""
    row = person("a", city="Lyon", country="fr", suspended="0", profile_field_team="x")
    run(platform, [row])
    assert outcomes(run(platform, [row])) == [Outcome.UNCHANGED]


def test_empty_value_clears_a_present_column(platform: FakePlatform) -> None:
    """An empty value in a present column clears it (idnumber and email to None)."""
    run(platform, [person("a", city="Lyon", email="a@b.org", idnumber="E1")])
    [result] = run(platform, [person("a", city="", email="", idnumber="")], identity="username")
    assert result == RowResult(Outcome.UPDATED, "user 'a': city, email, idnumber")  # file column order
    user = stored(platform, "a")
    assert (user.city, user.email, user.idnumber) == ("", None, None)


def test_names_cannot_be_emptied(platform: FakePlatform) -> None:
    """firstname/lastname cannot be emptied on update."""
    run(platform, [person("a")])
    [result] = run(platform, [person("a", firstname="")])
    assert result.outcome is Outcome.ERROR and result.reason.startswith("firstname: empty value")
    assert stored(platform, "a").firstname == "Ann"


def test_update_only_may_omit_names(platform: FakePlatform) -> None:
    """In update_only mode a row may carry only username and the fields to change."""
    run(platform, [person("a")])
    [result] = run(platform, [Row(2, {"username": "a", "city": "Oslo"})], mode="update_only")
    assert result == RowResult(Outcome.UPDATED, "user 'a': city")
    assert stored(platform, "a").firstname == "Ann"


def test_empty_password_on_update_keeps_it(platform: FakePlatform) -> None:
    """An empty password on update keeps the current one."""
    run(platform, [person("a", password="old-pw")])
    before = stored(platform, "a").password_hash
    assert outcomes(run(platform, [person("a", password="")])) == [Outcome.UNCHANGED]
    assert stored(platform, "a").password_hash == before


def test_same_password_is_not_rehashed(platform: FakePlatform) -> None:
    """A password equal to the current one changes nothing."""
    run(platform, [person("a", password="pw-1")])
    before = stored(platform, "a").password_hash
    assert outcomes(run(platform, [person("a", password="pw-1")])) == [Outcome.UNCHANGED]
    assert stored(platform, "a").password_hash == before


def test_new_password_is_rehashed_and_never_reported(platform: FakePlatform) -> None:
    """A different password is re-hashed; the reason names the field, not the value."""
    run(platform, [person("a")])
    [result] = run(platform, [person("a", password="n3w-Secret")])
    assert result == RowResult(Outcome.UPDATED, "user 'a': password")
    user = stored(platform, "a")
    assert user.password_hash is not None and verify_password("n3w-Secret", user.password_hash)
    assert not user.password_to_generate and not user.must_change_password


def test_nopass_on_update_removes_the_password(platform: FakePlatform) -> None:
    """*NOPASS* on update drops the hash."""
    run(platform, [person("a", password="pw")])
    assert run(platform, [person("a", password=NOPASS)]) == [RowResult(Outcome.UPDATED, "user 'a': password")]
    assert stored(platform, "a").password_hash is None


def test_update_password_off_ignores_passwords_of_existing_users(platform: FakePlatform) -> None:
    """update_password=false keeps existing users' passwords but hashes new users' ones."""
    run(platform, [person("a", password="pw")])
    results = run(
        platform,
        [person("a", password="other"), person("b", password="pw-b")],
        update_password=False,
    )
    assert outcomes(results) == [Outcome.UNCHANGED, Outcome.CREATED]
    a_hash, b_hash = stored(platform, "a").password_hash, stored(platform, "b").password_hash
    assert a_hash is not None and verify_password("pw", a_hash)
    assert b_hash is not None and verify_password("pw-b", b_hash)


def test_two_passwords_for_one_user_in_a_batch_keep_the_last(platform: FakePlatform) -> None:
    """A later row's password is checked against the hash an earlier row of the batch set."""
    run(platform, [person("a", password="first")])
    results = run(
        platform,
        [
            person("a", password="second"),
            person("a", password="second"),
            person("a", password="third"),
        ],
    )
    assert outcomes(results) == [Outcome.UPDATED, Outcome.UNCHANGED, Outcome.UPDATED]
    final = stored(platform, "a").password_hash
    assert final is not None and verify_password("third", final)


# -- identity ----------------------------------------------------------------------


def test_identity_idnumber_renames_by_idnumber(platform: FakePlatform) -> None:
    """identity=idnumber finds the user by idnumber, so a new username renames it."""
    run(platform, [person("old", idnumber="E1")])
    assert run(platform, [person("new", idnumber="E1")]) == [
        RowResult(Outcome.UPDATED, "user 'new': username")
    ]
    assert platform.user("old") is None
    assert stored(platform, "new").idnumber == "E1"


def test_identity_idnumber_falls_back_to_username(platform: FakePlatform) -> None:
    """An empty idnumber finds the user by username and keeps its idnumber."""
    run(platform, [person("a", idnumber="E1")])
    assert run(platform, [person("a", idnumber="", city="X")]) == [
        RowResult(Outcome.UPDATED, "user 'a': city")
    ]
    assert stored(platform, "a").idnumber == "E1"


def test_user_without_idnumber_takes_its_first_one(platform: FakePlatform) -> None:
    """identity=idnumber: a user known only by username gets the row's idnumber."""
    run(platform, [person("a")])
    assert run(platform, [person("a", idnumber="E9")]) == [RowResult(Outcome.UPDATED, "user 'a': idnumber")]
    assert stored(platform, "a").idnumber == "E9"


def test_username_of_another_idnumber_is_a_collision(platform: FakePlatform) -> None:
    """identity=idnumber: a new idnumber with a username held by another idnumber is an error."""
    run(platform, [person("jdoe", idnumber="E17")])
    [result] = run(platform, [person("jdoe", idnumber="E42")])
    assert result == RowResult(
        Outcome.ERROR, "username: 'jdoe' already belongs to another user (idnumber 'E17')"
    )
    assert stored(platform, "jdoe").idnumber == "E17"


def test_rename_onto_a_taken_username_is_a_collision(platform: FakePlatform) -> None:
    """identity=idnumber: renaming to a username another user has is an error."""
    run(platform, [person("a", idnumber="E1"), person("b", idnumber="E2")])
    [result] = run(platform, [person("b", idnumber="E1")])
    assert result == RowResult(Outcome.ERROR, "username: 'b' already belongs to another user (idnumber 'E2')")


def test_identity_username_refuses_an_idnumber_of_another_user(platform: FakePlatform) -> None:
    """identity=username: setting an idnumber another user holds is an error."""
    run(platform, [person("a", idnumber="E1"), person("b")])
    [result] = run(platform, [person("b", idnumber="E1")], identity="username")
    assert result == RowResult(Outcome.ERROR, "idnumber: 'E1' already belongs to another user (username 'a')")


def test_identity_username_changes_idnumber(platform: FakePlatform) -> None:
    """identity=username: the idnumber is an ordinary field."""
    run(platform, [person("a", idnumber="E1")])
    results = run(platform, [person("a", idnumber="E2")], identity="username")
    assert results == [RowResult(Outcome.UPDATED, "user 'a': idnumber")]


def test_identity_email_matches_case_insensitively(platform: FakePlatform) -> None:
    """identity=email finds the user whatever the email's case, and may rename it."""
    run(platform, [person("a", email="Ann@Example.org")])
    results = run(platform, [person("ann", email="ann@example.ORG")], identity="email")
    assert results == [RowResult(Outcome.UPDATED, "user 'ann': username, email")]
    assert stored(platform, "ann").email == "ann@example.ORG"


def test_identity_email_matching_two_users_is_an_error(platform: FakePlatform) -> None:
    """An email shared by two users cannot identify one."""
    run(platform, [person("a", email="a@b.co"), person("b", email="A@b.co")])
    [result] = run(platform, [person("c", email="a@b.co")], identity="email")
    assert result == RowResult(Outcome.ERROR, "email: 'a@b.co' matches 2 users")


def test_identity_email_needs_an_email(platform: FakePlatform) -> None:
    """identity=email with an empty email is a row error."""
    [result] = run(platform, [person("a", email="")], identity="email")
    assert result.outcome is Outcome.ERROR and result.reason.startswith("email: empty value")


def test_collision_with_a_user_created_earlier_in_the_batch(platform: FakePlatform) -> None:
    """A username taken by a row earlier in the same batch is a collision too."""
    rows = [person("a", email="a@b.co"), person("a", email="other@b.co")]
    results = run(platform, rows, identity="email")
    assert results[1] == RowResult(
        Outcome.ERROR, "username: 'a' already belongs to another user (created by an earlier row)"
    )
    assert [u.email for u in platform.users()] == ["a@b.co"]


def test_identity_email_creates_when_unknown(platform: FakePlatform) -> None:
    """identity=email: an unknown email creates the user."""
    assert outcomes(run(platform, [person("a", email="a@b.co")], identity="email")) == [Outcome.CREATED]


# -- oldusername -------------------------------------------------------------------


def test_oldusername_renames(platform: FakePlatform) -> None:
    """oldusername finds the user to rename to username."""
    run(platform, [person("old", idnumber="E1")])
    results = run(platform, [person("new", oldusername="OLD", idnumber="E1")])
    assert results == [RowResult(Outcome.UPDATED, "user 'new': username")]
    assert stored(platform, "new").idnumber == "E1" and platform.user("old") is None


def test_oldusername_unknown_is_an_error(platform: FakePlatform) -> None:
    """Renaming a user that does not exist is a row error naming oldusername."""
    [result] = run(platform, [person("new", oldusername="ghost")])
    assert result == RowResult(Outcome.ERROR, "oldusername: no such user 'ghost'")
    assert platform.users() == []


def test_oldusername_onto_taken_username_is_an_error(platform: FakePlatform) -> None:
    """Renaming onto another user's username is a row error."""
    run(platform, [person("a"), person("b")])
    [result] = run(platform, [person("b", oldusername="a")])
    assert result.outcome is Outcome.ERROR
    assert result.reason.startswith("username: 'b' already belongs to another user")


def test_invalid_oldusername_is_an_error(platform: FakePlatform) -> None:
    """oldusername follows the username rules."""
    [result] = run(platform, [person("a", oldusername="x y")])
    assert result == RowResult(Outcome.ERROR, "oldusername: invalid username 'x y'")


# -- modes -------------------------------------------------------------------------


def test_create_only_skips_existing(platform: FakePlatform) -> None:
    """create_only: an existing user is skipped, unchanged."""
    run(platform, [person("a", city="Lyon")])
    results = run(platform, [person("a", city="Nice"), person("b")], mode="create_only")
    assert results == [
        RowResult(Outcome.SKIPPED, "exists; mode create_only"),
        RowResult(Outcome.CREATED, "user 'b'"),
    ]
    assert stored(platform, "a").city == "Lyon"


def test_update_only_skips_missing(platform: FakePlatform) -> None:
    """update_only: a missing user is skipped, not created."""
    results = run(platform, [person("a")], mode="update_only")
    assert results == [RowResult(Outcome.SKIPPED, "no such user; mode update_only")]
    assert platform.users() == []


# -- deletion ----------------------------------------------------------------------


def test_deleted_soft_deletes(platform: FakePlatform) -> None:
    """deleted=1 marks the user deleted and keeps the record."""
    run(platform, [person("a", city="Lyon")])
    assert outcomes(run(platform, [person("a", deleted="1")])) == [Outcome.DELETED]
    user = stored(platform, "a")
    assert user.deleted and user.city == "Lyon"


def test_deleting_twice_is_unchanged(platform: FakePlatform) -> None:
    """Deleting a deleted user changes nothing."""
    run(platform, [person("a")])
    run(platform, [person("a", deleted="yes")])
    assert run(platform, [person("a", deleted="1")]) == [
        RowResult(Outcome.UNCHANGED, "user 'a': already deleted")
    ]


def test_deleting_a_missing_user_is_skipped(platform: FakePlatform) -> None:
    """deleted=1 for an unknown user is skipped and creates nothing."""
    assert run(platform, [person("a", deleted="1")]) == [RowResult(Outcome.SKIPPED, "no such user to delete")]
    assert platform.users() == []


def test_deletion_row_needs_no_names(platform: FakePlatform) -> None:
    """A deletion row may leave firstname and lastname empty."""
    run(platform, [person("a")])
    row = Row(3, {"username": "a", "firstname": "", "lastname": "", "deleted": "1"})
    assert outcomes(run(platform, [row])) == [Outcome.DELETED]


def test_later_row_revives_a_deleted_user(platform: FakePlatform) -> None:
    """A row without deleted=1 for a deleted user revives it (a later file)."""
    run(platform, [person("a")])
    run(platform, [person("a", deleted="1")])
    [result] = run(platform, [person("a", city="Rome")])
    assert result == RowResult(Outcome.UPDATED, "user 'a': revived, city")
    assert not stored(platform, "a").deleted


def test_delete_then_revive_in_one_batch(platform: FakePlatform) -> None:
    """In one batch, deleted=1 then deleted=0 leaves the user alive."""
    run(platform, [person("a")])
    results = run(platform, [person("a", deleted="1"), person("a", deleted="0")])
    assert results == [
        RowResult(Outcome.DELETED, "user 'a'"),
        RowResult(Outcome.UPDATED, "user 'a': revived"),
    ]
    assert not stored(platform, "a").deleted


def test_bad_deleted_value_is_an_error(platform: FakePlatform) -> None:
    """deleted must be a boolean."""
    [result] = run(platform, [person("a", deleted="perhaps")])
    assert result.outcome is Outcome.ERROR and "deleted" in result.reason
    assert "perhaps" in result.reason


# -- field values ------------------------------------------------------------------


def test_suspended_is_a_boolean(platform: FakePlatform) -> None:
    """suspended accepts booleans; a bad value names column and value."""
    results = run(platform, [person("a", suspended="yes"), person("b", suspended="x")])
    assert results[0].outcome is Outcome.CREATED and stored(platform, "a").suspended
    assert results[1].outcome is Outcome.ERROR and "suspended" in results[1].reason


@pytest.mark.parametrize("email", ["x@", "@b.co", "a@b", "a b@c.de", "a@@b.co", "a@b@c.de"])
def test_invalid_email_is_an_error(platform: FakePlatform, email: str) -> None:
    """Emails need one '@', a local part and a dotted domain, no spaces."""
    assert run(platform, [person("a", email=email)]) == [
        RowResult(Outcome.ERROR, f"email: invalid email {email!r}")
    ]


def test_country_is_uppercased_and_lang_lowercased(platform: FakePlatform) -> None:
    """country is stored as two uppercase letters, lang in lowercase."""
    run(platform, [person("a", country="fr", lang="FR_ca")])
    user = stored(platform, "a")
    assert (user.country, user.lang) == ("FR", "fr_ca")


def test_invalid_country_is_an_error(platform: FakePlatform) -> None:
    """A country that is not two letters names column and value."""
    [result] = run(platform, [person("a", country="FRA")])
    assert result.outcome is Outcome.ERROR and result.reason.startswith("country: invalid country 'FRA'")


def test_overlong_text_is_an_error(platform: FakePlatform) -> None:
    """Short text columns are limited to 255 characters."""
    [result] = run(platform, [person("a", city="x" * 256)])
    assert result.outcome is Outcome.ERROR and result.reason.startswith("city: value longer than 255")


def test_profile_fields_set_change_and_remove(platform: FakePlatform) -> None:
    """profile_field_<name> sets a profile field; an empty value removes it."""
    run(platform, [person("a", profile_field_team="red", profile_field_level="3")])
    assert stored(platform, "a").profile == {"team": "red", "level": "3"}
    [result] = run(platform, [person("a", profile_field_team="blue", profile_field_level="")])
    assert result == RowResult(Outcome.UPDATED, "user 'a': profile_field_team, profile_field_level")
    assert stored(platform, "a").profile == {"team": "blue"}


def test_empty_profile_field_on_create_is_not_stored(platform: FakePlatform) -> None:
    """An empty profile value on create stores nothing."""
    run(platform, [person("a", profile_field_team="")])
    assert stored(platform, "a").profile == {}


# -- batches -----------------------------------------------------------------------


def test_create_then_update_in_one_batch(platform: FakePlatform) -> None:
    """A later row sees the user an earlier row of the same batch created."""
    results = run(platform, [person("a", city="Lyon"), person("a", city="Nice")])
    assert results == [
        RowResult(Outcome.CREATED, "user 'a'"),
        RowResult(Outcome.UPDATED, "user 'a': city"),
    ]
    assert [u.city for u in platform.users()] == ["Nice"]


def test_rename_chain_in_one_batch(platform: FakePlatform) -> None:
    """Renamed then referenced by the new name, then renamed again, in one batch."""
    run(platform, [person("a")])
    results = run(
        platform,
        [
            person("b", oldusername="a"),
            person("b", city="Rome"),
            person("c", oldusername="b"),
            person("a"),
        ],
    )
    assert outcomes(results) == [Outcome.UPDATED, Outcome.UPDATED, Outcome.UPDATED, Outcome.CREATED]
    assert stored(platform, "c").city == "Rome"
    assert stored(platform, "a").id != stored(platform, "c").id


def test_swapping_usernames_in_one_batch(platform: FakePlatform) -> None:
    """Two users may swap usernames in one batch: no unique key is hit on the way."""
    run(platform, [person("a", idnumber="E1"), person("b", idnumber="E2")])
    results = run(
        platform,
        [person("tmp", idnumber="E1"), person("a", idnumber="E2"), person("b", idnumber="E1")],
    )
    assert outcomes(results) == [Outcome.UPDATED] * 3
    assert (stored(platform, "a").idnumber, stored(platform, "b").idnumber) == ("E2", "E1")
    assert platform.user("tmp") is None


def test_new_user_takes_a_username_renamed_away(platform: FakePlatform) -> None:
    """A username freed by a rename in the batch may be given to a new user."""
    run(platform, [person("a", idnumber="E1")])
    results = run(platform, [person("b", idnumber="E1"), person("a", idnumber="E2")])
    assert outcomes(results) == [Outcome.UPDATED, Outcome.CREATED]
    assert (stored(platform, "a").idnumber, stored(platform, "b").idnumber) == ("E2", "E1")


def test_idnumber_moved_between_users_in_one_batch(platform: FakePlatform) -> None:
    """identity=username: an idnumber released by one row can be taken by a later one."""
    run(platform, [person("a", idnumber="E1"), person("b", idnumber="E2")])
    rows = [person("a", idnumber="E3"), person("b", idnumber="E1")]
    assert outcomes(run(platform, rows, identity="username")) == [Outcome.UPDATED] * 2
    assert (stored(platform, "a").idnumber, stored(platform, "b").idnumber) == ("E3", "E1")


def test_failed_row_leaves_the_batch_state_untouched(platform: FakePlatform) -> None:
    """A row that errors changes nothing, even fields it validated before failing."""
    run(platform, [person("a", idnumber="E1", city="Lyon"), person("b", idnumber="E2")])
    results = run(
        platform,
        [person("b", idnumber="E1", city="Nice"), person("a", idnumber="E1", city="Lyon")],
    )
    assert outcomes(results) == [Outcome.ERROR, Outcome.UNCHANGED]
    assert stored(platform, "a").city == "Lyon"


def test_one_result_per_row_in_order(platform: FakePlatform) -> None:
    """Bad rows are errors in place; the others are applied."""
    rows = [person("a"), person("b c"), person("d", email="bad"), person("e")]
    assert outcomes(run(platform, rows)) == [
        Outcome.CREATED,
        Outcome.ERROR,
        Outcome.ERROR,
        Outcome.CREATED,
    ]
    assert [u.username for u in platform.users()] == ["a", "e"]


def test_rollback_keeps_nothing(platform: FakePlatform) -> None:
    """Rows applied in a rolled-back transaction (dry run) leave no trace."""
    processor = build({}, CTX)
    with platform.transaction(rollback=True) as tx:
        assert outcomes(processor.apply([person("a")], tx)) == [Outcome.CREATED]
    assert platform.users() == []


class CountingTx:
    """A PlatformTx wrapper that counts repository calls."""

    def __init__(self, tx: FakeTx) -> None:
        self._tx = tx
        self.calls: Counter[str] = Counter()

    @property
    def users(self) -> CountingTx:
        return self

    def find(
        self,
        *,
        usernames: Collection[str] = (),
        idnumbers: Collection[str] = (),
        emails: Collection[str] = (),
    ) -> list[UserRecord]:
        self.calls["find"] += 1
        return self._tx.users.find(usernames=usernames, idnumbers=idnumbers, emails=emails)

    def add(self, users: Sequence[UserRecord]) -> None:
        self.calls["add"] += 1
        self._tx.users.add(users)

    def update(self, users: Sequence[UserRecord]) -> None:
        self.calls["update"] += 1
        self._tx.users.update(users)

    def load_checkpoint(self, file_id: int) -> Checkpoint | None:
        return self._tx.load_checkpoint(file_id)

    def save_checkpoint(self, file_id: int, checkpoint: Checkpoint, results: Sequence[SavedResult]) -> None:
        self._tx.save_checkpoint(file_id, checkpoint, results)

    def saved_results(self, file_id: int) -> Iterator[SavedResult]:
        return self._tx.saved_results(file_id)

    def clear_checkpoint(self, file_id: int) -> None:
        self._tx.clear_checkpoint(file_id)


def test_one_find_one_update_one_add_per_batch(platform: FakePlatform) -> None:
    """The repository is called once per batch for reads and once per kind of write."""
    platform.seed(*(UserRecord(username=f"old{i}", firstname="A", lastname="B") for i in range(50)))
    rows = [person(f"old{i}", line=i, city="X") for i in range(50)]
    rows += [person(f"new{i}", line=100 + i) for i in range(50)]
    processor = build({"identity": "username"}, CTX)
    with platform.transaction() as tx:
        counting = CountingTx(tx)
        results = processor.apply(rows, counting)
    assert counting.calls == Counter({"find": 1, "update": 1, "add": 1})
    assert Counter(outcomes(results)) == Counter({Outcome.UPDATED: 50, Outcome.CREATED: 50})


def test_existing_hash_is_checked_on_the_pool(platform: FakePlatform) -> None:
    """Several password updates in a batch: unchanged ones keep their hash, others re-hash."""
    platform.seed(
        *(
            UserRecord(
                username=f"u{i}",
                firstname="Ann",
                lastname="Lee",
                password_hash=hash_password(f"pw{i}", 10),
            )
            for i in range(4)
        )
    )
    before = {u.username: u.password_hash for u in platform.users()}
    rows = [person(f"u{i}", password=f"pw{i}" if i % 2 else "changed") for i in range(4)]
    results = run(platform, rows, identity="username")
    assert [r.reason for r in results] == [
        "user 'u0': password",
        "user 'u1'",
        "user 'u2': password",
        "user 'u3'",
    ]
    for user in platform.users():
        i = int(user.username[1:])
        assert user.password_hash is not None
        assert verify_password(f"pw{i}" if i % 2 else "changed", user.password_hash)
        assert (user.password_hash == before[user.username]) == bool(i % 2)
