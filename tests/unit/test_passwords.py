"""Salted scrypt password hashes."""

from __future__ import annotations

import pytest

from syncd.passwords import NOPASS, check_cost, hash_password, verify_password


def test_hash_has_the_documented_format() -> None:
    """A hash reads scrypt$<cost>$8$1$<salt>$<hash> and never contains the password."""
    encoded = hash_password("s3cret-pw", 10)
    scheme, cost, r, p, salt, digest = encoded.split("$")
    assert (scheme, cost, r, p) == ("scrypt", "10", "8", "1")
    assert salt and digest
    assert "s3cret-pw" not in encoded


def test_verify_accepts_the_password_and_refuses_others() -> None:
    """verify_password is True for the hashed password only."""
    encoded = hash_password("correct horse", 10)
    assert verify_password("correct horse", encoded)
    assert not verify_password("correct horsE", encoded)
    assert not verify_password("", encoded)


def test_salts_differ_for_the_same_password() -> None:
    """Two hashes of one password differ (random salt) and both verify."""
    first, second = hash_password("same", 10), hash_password("same", 10)
    assert first != second
    assert verify_password("same", first) and verify_password("same", second)


def test_hash_made_at_another_cost_still_verifies() -> None:
    """The cost is read from the hash, so changing the setting keeps old hashes valid."""
    encoded = hash_password("pw", 11)
    assert encoded.startswith("scrypt$11$")
    assert verify_password("pw", encoded)


def test_non_ascii_passwords_round_trip() -> None:
    """Passwords are hashed as UTF-8."""
    encoded = hash_password("pässwörd✓", 10)
    assert verify_password("pässwörd✓", encoded)
    assert not verify_password("passwörd✓", encoded)


@pytest.mark.parametrize(
    "encoded",
    [
        "",
        NOPASS,
        "md5$abc",
        "scrypt$10$8$1$!!notb64!!$AAAA",
        "scrypt$x$8$1$AAAA$AAAA",
        "scrypt$40$8$1$AAAA$AAAA",
        "scrypt$10$8$1$AAAA$",
    ],
)
def test_malformed_hashes_never_verify(encoded: str) -> None:
    """A malformed or out-of-range hash is a mismatch, not an exception."""
    assert verify_password("anything", encoded) is False


@pytest.mark.parametrize("cost", [9, 21, True, "14"])
def test_cost_outside_the_range_is_refused(cost: object) -> None:
    """Costs outside 10..20 (or not integers) raise ValueError naming the value."""
    with pytest.raises(ValueError, match=r"10\.\.20"):
        check_cost(cost)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        hash_password("pw", cost)  # type: ignore[arg-type]


def test_cost_bounds_are_allowed() -> None:
    """10 and 20 are valid costs."""
    assert check_cost(10) == 10
    assert check_cost(20) == 20
