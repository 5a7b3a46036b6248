"""user_pictures on the in-memory platform: one report line per zip entry (SPEC §4)."""

from __future__ import annotations

import hashlib
import unicodedata
from pathlib import Path

import pytest

from syncd.domain import ConfigError, RejectFile
from syncd.platform.base import UserRecord
from syncd.processors.user_pictures import SPEC, build
from tests.archive_builders import write_tar, write_zip
from tests.fakes import FakePlatform
from tests.pictures import CTX, apply_items, gif, jpeg, png, reasons


@pytest.fixture
def fake() -> FakePlatform:
    platform = FakePlatform()
    platform.seed(
        UserRecord("alice", idnumber="S-001", email="Alice@Example.org"),
        UserRecord("bob", idnumber="S-002"),
        UserRecord("dave", deleted=True),
        UserRecord("élodie", idnumber="学生-007"),
    )
    return platform


def user_id(fake: FakePlatform, username: str) -> int:
    user = fake.user(username)
    assert user is not None and user.id is not None
    return user.id


def test_a_first_picture_is_created_with_its_format_and_size(fake: FakePlatform, tmp_path: Path) -> None:
    """A user's first picture is created: blob stored, record with the MIME type and pixel size."""
    data = jpeg(64, 48)
    results = apply_items(fake, SPEC, write_zip(tmp_path / "userpictures_1.zip", {"alice.jpg": data}))
    assert reasons(results) == [("created", "alice.jpg: picture of user 'alice' (jpeg 64x48, "
                                            f"{len(data)} bytes)")]
    picture = fake.pictures()[user_id(fake, "alice")]
    assert (picture.mimetype, picture.width, picture.height) == ("image/jpeg", 64, 48)
    assert fake.blobs()[picture.sha256] == data


def test_a_new_picture_updates_and_the_same_one_is_unchanged(fake: FakePlatform, tmp_path: Path) -> None:
    """A different picture replaces the old one (updated); the same bytes again are unchanged."""
    fake.seed_picture(user_id(fake, "alice"), png(10, 10, b"old"))
    path = write_zip(tmp_path / "userpictures_2.zip", {"alice.png": png(20, 30, b"new")})
    assert [r.outcome.value for r in apply_items(fake, SPEC, path)] == ["updated"]
    assert fake.pictures()[user_id(fake, "alice")].sha256 == hashlib.sha256(png(20, 30, b"new")).hexdigest()
    again = reasons(apply_items(fake, SPEC, path))
    assert again == [("unchanged", "alice.png: picture of user 'alice' unchanged")]


def test_overwrite_off_keeps_existing_pictures(fake: FakePlatform, tmp_path: Path) -> None:
    """With overwrite off, a user with another picture is skipped; users without one get theirs."""
    old = fake.seed_picture(user_id(fake, "alice"), png(10, 10, b"old"))
    members = {"alice.png": png(20, 20, b"new"), "bob.gif": gif(8, 8)}
    path = write_zip(tmp_path / "userpictures_3.zip", members)
    results = apply_items(fake, SPEC, path, overwrite=False)
    assert reasons(results)[0] == ("skipped", "alice.png: user 'alice' has a picture, overwrite off")
    assert results[1].outcome.value == "created"
    assert fake.pictures()[user_id(fake, "alice")].sha256 == old.sha256


def test_unknown_and_deleted_users_are_errors(fake: FakePlatform, tmp_path: Path) -> None:
    """An entry for no user, or for a deleted one, is an error naming the entry; nothing stored."""
    path = write_zip(tmp_path / "userpictures_4.zip", {"carol.png": png(5, 5), "dave.png": png(5, 5)})
    assert reasons(apply_items(fake, SPEC, path)) == [
        ("error", "carol.png: unknown user 'carol' (username)"),
        ("error", "dave.png: unknown user 'dave' (username)"),
    ]
    assert fake.pictures() == {} and fake.blobs() == {}


def test_the_content_decides_not_the_extension(fake: FakePlatform, tmp_path: Path) -> None:
    """A .png holding a JPEG is taken as a JPEG; a .jpg holding a PDF is not an image."""
    path = write_zip(tmp_path / "userpictures_5.zip", {"alice.png": jpeg(30, 40), "bob.jpg": b"%PDF-1.4"})
    results = apply_items(fake, SPEC, path)
    assert results[0].outcome.value == "created" and "(jpeg 30x40" in results[0].reason
    assert fake.pictures()[user_id(fake, "alice")].mimetype == "image/jpeg"
    assert results[1].outcome.value == "error"
    assert results[1].reason.startswith("bob.jpg: not an image: not a PNG, JPEG or GIF")


def test_limits_on_bytes_and_pixels(fake: FakePlatform, tmp_path: Path) -> None:
    """Pictures over max_bytes or max_width x max_height are errors; those within are stored."""
    big = png(10, 10, b"x" * 2000)
    path = write_zip(tmp_path / "userpictures_6.zip", {
        "alice.png": big, "bob.gif": gif(300, 50), "élodie.gif": gif(200, 200)})
    results = apply_items(fake, SPEC, path, max_bytes=1000, max_width=200, max_height=200)
    assert reasons(results)[:2] == [
        ("error", f"alice.png: too large: {len(big)} bytes, over the limit of 1000"),
        ("error", "bob.gif: too large: 300x50 pixels, over the limit of 200x200"),
    ]
    assert results[2].outcome.value == "created"
    assert set(fake.pictures()) == {user_id(fake, "élodie")}


def test_a_second_entry_for_the_same_user_is_a_duplicate_key(fake: FakePlatform, tmp_path: Path) -> None:
    """Two entries for one user (usernames compare lowercased): the second is an error, in any batch."""
    path = write_zip(tmp_path / "userpictures_7.zip", {
        "alice.jpg": jpeg(10, 10), "bob.png": png(1, 1), "ALICE.png": png(2, 2)})
    results = apply_items(fake, SPEC, path, batch=1)
    assert [r.outcome.value for r in results] == ["created", "created", "error"]
    assert results[2].reason == "ALICE.png: duplicate key 'ALICE': 'alice.jpg' is for the same user"
    assert fake.pictures()[user_id(fake, "alice")].mimetype == "image/jpeg"


def test_folders_bad_names_and_litter(fake: FakePlatform, tmp_path: Path) -> None:
    """Entries in folders and names that are not <key>.<ext> are errors; OS litter is skipped."""
    path = write_zip(tmp_path / "userpictures_8.zip", {
        "photos/alice.jpg": jpeg(5, 5), "bob.bmp": png(5, 5), " .jpg": png(5, 5), "readme": b"hi",
        "__MACOSX/._alice.jpg": b"\x00\x05", ".DS_Store": b"\x00", "Thumbs.db": b"\x00",
    })
    assert reasons(apply_items(fake, SPEC, path)) == [
        ("error", "photos/alice.jpg: not in the zip's top level (pictures may not be in folders)"),
        ("error", "bob.bmp: name is not <key>.jpg, .jpeg, .png or .gif"),
        ("error", " .jpg: name is not <key>.jpg, .jpeg, .png or .gif"),
        ("error", "readme: name is not <key>.jpg, .jpeg, .png or .gif"),
        ("skipped", "__MACOSX/._alice.jpg: not a picture: system metadata file"),
        ("skipped", ".DS_Store: not a picture: system metadata file"),
        ("skipped", "Thumbs.db: not a picture: system metadata file"),
    ]
    assert fake.pictures() == {}


def test_non_ascii_keys_match_their_users(fake: FakePlatform, tmp_path: Path) -> None:
    """Non-ASCII keys match, whatever Unicode form the zip uses (names are read as NFC)."""
    decomposed = unicodedata.normalize("NFD", "élodie") + ".gif"
    assert apply_items(fake, SPEC, write_zip(tmp_path / "u1.zip", {decomposed: gif(3, 3)}))[0].outcome.value \
        == "created"
    by_idnumber = apply_items(fake, SPEC, write_zip(tmp_path / "u2.zip", {"学生-007.png": png(4, 4)}),
                              identity="idnumber")
    assert reasons(by_idnumber) == [("updated", "学生-007.png: picture of user 'élodie' (png 4x4, "
                                                f"{len(png(4, 4))} bytes)")]


def test_email_identity_is_case_insensitive(fake: FakePlatform, tmp_path: Path) -> None:
    """With identity email, the key (dots and all) matches the user's email in any case."""
    path = write_zip(tmp_path / "userpictures_9.zip", {"alice@example.ORG.jpeg": jpeg(9, 9)})
    assert apply_items(fake, SPEC, path, identity="email")[0].outcome.value == "created"
    assert user_id(fake, "alice") in fake.pictures()


def test_a_tar_is_refused(fake: FakePlatform, tmp_path: Path) -> None:
    """user_pictures takes a zip: a tar.gz of pictures fails the file, nothing stored."""
    path = write_tar(tmp_path / "userpictures_x.zip", {"alice.jpg": jpeg(5, 5)})
    with pytest.raises(RejectFile, match="not a zip archive"):
        apply_items(fake, SPEC, path)
    assert fake.pictures() == {}


@pytest.mark.parametrize(("options", "message"), [
    ({"identity": "id"}, "option identity must be one of username, idnumber, email"),
    ({"overwrite": "no"}, "option overwrite must be true or false"),
    ({"max_bytes": 0}, "option max_bytes must be a positive whole number"),
    ({"max_width": True}, "option max_width must be a positive whole number"),
])
def test_bad_options_are_config_errors(options: dict[str, object], message: str) -> None:
    """Each bad option is a ConfigError naming it."""
    with pytest.raises(ConfigError, match=message):
        build(options, CTX)


def test_describe_shows_the_options() -> None:
    """The report's options line shows identity, overwrite and the limits."""
    assert build({"identity": "idnumber", "overwrite": False}, CTX).describe() == (
        "identity=idnumber overwrite=false max_bytes=5242880 max_size=4096x4096")
