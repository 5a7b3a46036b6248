"""The content rules of the platform model (check_*) and the fake platform's content helpers
(the repositories' contract is pinned, against the SQL store's, in
tests/integration/test_sqlstore_content.py)."""

from __future__ import annotations

import hashlib

import pytest

from syncd.platform.base import UserRecord
from syncd.platform.model import (
    MAX_PATH_BYTES,
    PathItemRecord,
    check_document_path,
    check_path,
    check_sha256,
)
from tests.fakes import FakePlatform


def item(key: str, parent: str | None = None, kind: str = "folder") -> PathItemRecord:
    """A path item of course 1."""
    return PathItemRecord(1, key, key.upper(), parent, kind, None, 0, None)


@pytest.mark.parametrize("path", ["a.txt", "dir/sub/ﬁle – été.pdf", "..a/b..", ".hidden/x", "a b/c"])
def test_document_paths_that_are_accepted(path: str) -> None:
    """Relative POSIX paths whose parts are real names (dots inside names too) pass unchanged."""
    assert check_document_path(path) == path


#: unsafe or unusable document paths
REFUSED = ["", "/abs", "a/", "a//b", "./a", "a/./b", "..", "a/../b", "a\\b", "a\0b", "x" * 1025]


@pytest.mark.parametrize("path", REFUSED)
def test_document_paths_that_are_refused(path: str) -> None:
    """Empty, absolute, '.'/'..' or empty parts, backslashes, NUL and over-long paths are a ValueError."""
    with pytest.raises(ValueError):
        check_document_path(path)


def test_path_length_counts_utf8_bytes() -> None:
    """The path limit is in UTF-8 bytes, so that a non-ASCII path fits the column on every database."""
    check_document_path("é" * (MAX_PATH_BYTES // 2))
    with pytest.raises(ValueError, match="bytes"):
        check_document_path("é" * (MAX_PATH_BYTES // 2 + 1))


def test_sha256_must_be_lowercase_hex() -> None:
    """Only 64 lowercase hex digits pass check_sha256."""
    digest = hashlib.sha256(b"x").hexdigest()
    assert check_sha256(digest) == digest
    for bad in (digest.upper(), digest[:-1], digest + "0", "g" * 64):
        with pytest.raises(ValueError):
            check_sha256(bad)


def test_deep_trees_pass_and_long_cycles_are_found() -> None:
    """A 5,000-level chain is a tree; closing it into a ring is a cycle, named in the error."""
    chain = [item("k0")] + [item(f"k{i}", f"k{i - 1}") for i in range(1, 5000)]
    check_path(1, chain)
    ring = [item("k0", "k4999"), *chain[1:]]
    with pytest.raises(ValueError, match="cycle"):
        check_path(1, ring)


def test_fake_seeds_documents_and_pictures_with_their_blobs() -> None:
    """seed_document and seed_picture store the blob and the row; the reads return them."""
    platform = FakePlatform()
    course = platform.seed_course("C1")
    [user] = platform.seed(UserRecord(username="ann"))
    document = platform.seed_document(course.id or 0, "a/b.txt", b"hello", title="B")
    picture = platform.seed_picture(user.id or 0, b"\x89PNG!")
    assert platform.documents() == [document] and document.size == 5
    assert platform.pictures() == {user.id: picture}
    assert platform.blobs() == {document.sha256: b"hello", picture.sha256: b"\x89PNG!"}
    assert platform.transactions == 0


def test_fake_rollback_keeps_blobs_like_the_real_store() -> None:
    """A rolled-back fake transaction undoes content rows but not the blobs it put."""
    platform = FakePlatform()
    course = platform.seed_course("C1")
    with platform.transaction(rollback=True) as tx:
        digest, _ = tx.files.put([b"draft"])
        tx.content.replace_path(course.id or 0, [PathItemRecord(course.id or 0, "k", "K", None, "link",
                                                                "https://example.org", 0, None)])
    assert platform.path_items() == [] and platform.blobs() == {digest: b"draft"}
    assert platform.rollbacks == 1
