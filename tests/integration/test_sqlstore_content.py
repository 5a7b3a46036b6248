"""Course content, user pictures and blobs of the SQL store, on real SQLite and PostgreSQL.

The same contract runs against ``tests.fakes.FakePlatform`` too, so that the fake the
processor unit tests use keeps the store's semantics (FakeIntegrityError where the
database raises IntegrityError; the same ValueError from the model's ``check_*`` rules).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect
from sqlalchemy.exc import IntegrityError

from syncd.platform.base import Platform, PlatformTx, UserRecord
from syncd.platform.model import (
    ActivityRecord,
    CategoryRecord,
    CourseRecord,
    DocumentRecord,
    PathItemRecord,
    PictureRecord,
)
from syncd.platform.sqlstore import SqlPlatform, create_schema
from syncd.platform.sqlstore.schema import metadata
from syncd.sqlutil import make_engine
from tests.fakes import FakeIntegrityError, FakePlatform

BROKEN = (IntegrityError, FakeIntegrityError)
NEW_TABLES = {"course_documents", "course_path_items", "course_activities", "user_pictures"}


def sha(data: bytes) -> str:
    """The sha256 of ``data`` in hex."""
    return hashlib.sha256(data).hexdigest()


@dataclass
class Store:
    """A platform under test and where its blobs are (None for the fake)."""

    platform: Platform
    root: Path | None

    def blob_files(self) -> list[Path]:
        """Every file under the blob root (the fake has none: its blobs stand in)."""
        if self.root is None:
            assert isinstance(self.platform, FakePlatform)
            return [Path(k) for k in self.platform.blobs()]
        return sorted(p for p in self.root.rglob("*") if p.is_file())


@pytest.fixture(params=["sqlite", "postgresql", "fake"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """An empty platform with a blob root: the SQL store on SQLite and PostgreSQL, and the fake."""
    if request.param == "fake":
        yield Store(FakePlatform(), None)
        return
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'syncd.db'}")
    else:
        engine = request.getfixturevalue("pg_engine")
    create_schema(engine)
    yield Store(SqlPlatform(engine, tmp_path / "files"), tmp_path / "files")
    engine.dispose()


@dataclass
class World:
    """Ids of what :func:`world` seeded: users u0 and u1, courses A and B."""

    users: list[int]
    a: int
    b: int


@pytest.fixture
def world(store: Store) -> World:
    """Two users and two courses."""
    with store.platform.transaction() as tx:
        users = [UserRecord(username="u0"), UserRecord(username="u1")]
        tx.users.add(users)
        category = CategoryRecord("Sciences")
        tx.categories.add([category])
        a, b = CourseRecord("A", "A", category.id or 0), CourseRecord("B", "B", category.id or 0)
        tx.courses.add([a, b])
    return World([u.id or 0 for u in users], a.id or 0, b.id or 0)


def _doc(tx: PlatformTx, course_id: int, path: str, data: bytes, title: str = "") -> DocumentRecord:
    """Put ``data`` as a blob and a document of the course; return the document."""
    digest, size = tx.files.put([data])
    document = DocumentRecord(course_id, path, digest, size, title, "text/plain")
    tx.content.put_documents([document])
    return document


def test_create_schema_adds_the_content_tables_to_an_existing_database(db_engine: Engine) -> None:
    """create_schema on a database made before the content tables adds them, with their keys."""
    metadata.create_all(db_engine, tables=[t for t in metadata.sorted_tables if t.name not in NEW_TABLES])
    assert not NEW_TABLES & set(inspect(db_engine).get_table_names())
    create_schema(db_engine)
    create_schema(db_engine)
    found = inspect(db_engine)
    assert set(found.get_table_names()) >= NEW_TABLES
    uniques = {tuple(u["column_names"]) for u in found.get_unique_constraints("course_documents")}
    assert ("course_id", "path") in uniques
    assert "ix_course_documents_sha256" in {i["name"] for i in found.get_indexes("course_documents")}
    assert {fk["referred_table"] for fk in found.get_foreign_keys("user_pictures")} == {"users"}


def test_blobs_round_trip_and_same_content_is_one_blob(store: Store) -> None:
    """put returns (sha256, size) of the streamed content; the same content again is the same blob."""
    with store.platform.transaction() as tx:
        first = tx.files.put([b"hello ", b"world"])
        again = tx.files.put(iter([b"hello", b" ", b"world"]))
        empty = tx.files.put([])
        assert tx.files.exists(first[0]) and not tx.files.exists(sha(b"nothing"))
        with tx.files.open(first[0]) as blob:
            assert blob.read() == b"hello world"
    assert first == again == (sha(b"hello world"), 11) and empty == (sha(b""), 0)
    assert len(store.blob_files()) == 2


def test_blob_lookups_refuse_malformed_hashes_and_report_missing_ones(store: Store) -> None:
    """A hash that is not lowercase hex sha256 is a ValueError; an absent blob is FileNotFoundError."""
    with store.platform.transaction() as tx:
        for bad in ("../../etc/passwd", sha(b"x").upper(), "ab"):
            with pytest.raises(ValueError, match="sha256"):
                tx.files.exists(bad)
        with pytest.raises(FileNotFoundError):
            tx.files.open(sha(b"absent"))


def test_documents_insert_or_update_by_course_and_path(store: Store, world: World) -> None:
    """put_documents upserts by (course_id, path): ids kept on update, last one of a key wins."""
    with store.platform.transaction() as tx:
        one = _doc(tx, world.a, "b/one.txt", b"1", "One")
        two = _doc(tx, world.a, "a.txt", b"2")
        other = _doc(tx, world.b, "a.txt", b"2")
        digest, size = tx.files.put([b"one, again"])
        changed = DocumentRecord(world.a, "b/one.txt", digest, size, "Uno", "text/x")
        first, last = DocumentRecord(world.a, "c.txt", digest, 1), DocumentRecord(world.a, "c.txt", digest, 2)
        tx.content.put_documents([changed, first, last])
    with store.platform.transaction() as tx:
        found = tx.content.documents([world.a, world.b])
    assert changed.id == one.id and first.id == last.id and len({one.id, two.id, other.id, last.id}) == 4
    assert found == [two, changed, DocumentRecord(world.a, "c.txt", digest, 2, id=last.id), other]


def test_delete_documents_keeps_other_rows_and_the_blobs(store: Store, world: World) -> None:
    """delete_documents removes those rows (absent ids ignored); blobs stay for a sweep."""
    with store.platform.transaction() as tx:
        gone, kept = _doc(tx, world.a, "x.txt", b"x"), _doc(tx, world.a, "y.txt", b"y")
        tx.content.delete_documents([gone.id or 0, 987654])
    with store.platform.transaction() as tx:
        assert tx.content.documents([world.a]) == [kept]
        assert tx.files.exists(gone.sha256)


def test_non_ascii_paths_and_titles_round_trip(store: Store, world: World) -> None:
    """Paths, titles, keys and kinds with accents, CJK and emoji come back as written and sort by path."""
    with store.platform.transaction() as tx:
        names = ["Élèves/Résumé – été.pdf", "数学/第一课.html", "Zoo 🦓.txt", "école.txt"]
        documents = [_doc(tx, world.a, name, name.encode(), f"Titre « {name} »") for name in names]
        item = PathItemRecord(world.a, "clé-1", "Leçon № 1 — 数学", None, "document", names[1], 0, None)
        tx.content.replace_path(world.a, [item])
        activity = ActivityRecord(world.a, "act-ü", 0, "résumé", "Café ☕", 0)
        tx.content.replace_activities(world.a, [activity])
    with store.platform.transaction() as tx:
        assert tx.content.documents([world.a]) == sorted(documents, key=lambda d: d.path)
        assert tx.content.path([world.a]) == [item] and tx.content.activities([world.a]) == [activity]
        with tx.files.open(documents[1].sha256) as blob:
            assert blob.read().decode() == names[1]


def _tree(course_id: int) -> list[PathItemRecord]:
    """A small learning path, listed out of order: two folders, a document, an sco, a link."""
    return [
        PathItemRecord(course_id, "doc", "Notes", "ch1", "document", "notes.pdf", 2, 1),
        PathItemRecord(course_id, "ch2", "Chapter 2", None, "folder", None, 3, 2),
        PathItemRecord(course_id, "ch1", "Chapter 1", None, "folder", None, 0, 1),
        PathItemRecord(course_id, "sco", "Lesson", "ch1", "sco", "sco/index.html", 1, None),
        PathItemRecord(course_id, "web", "Read more", "ch2", "link", "https://example.org/é", 4, 2),
    ]


def test_replace_path_replaces_the_whole_tree_of_one_course(store: Store, world: World) -> None:
    """replace_path writes the whole tree (read back by position), replaces it whole, leaves others."""
    with store.platform.transaction() as tx:
        tree, other = _tree(world.a), _tree(world.b)
        tx.content.replace_path(world.a, tree)
        tx.content.replace_path(world.b, other)
        assert [i.key for i in tx.content.path([world.a])] == ["ch1", "sco", "doc", "ch2", "web"]
        assert tx.content.path([world.a, world.b]) == sorted(tree, key=lambda i: i.position) + sorted(
            other, key=lambda i: i.position
        )
        smaller = [PathItemRecord(world.a, "only", "Only", None, "activity", "act-1", 0, 0)]
        tx.content.replace_path(world.a, smaller)
    with store.platform.transaction() as tx:
        assert tx.content.path([world.a]) == smaller and smaller[0].id is not None
        assert len(tx.content.path([world.b])) == 5
        tx.content.replace_path(world.a, [])
        assert tx.content.path([world.a]) == []


BAD_TREES: dict[str, Callable[[int], list[PathItemRecord]]] = {
    "unknown-parent": lambda c: [PathItemRecord(c, "x", "X", "nowhere", "folder", None, 0, None)],
    "cycle": lambda c: [
        PathItemRecord(c, "x", "X", "y", "folder", None, 0, None),
        PathItemRecord(c, "y", "Y", "x", "folder", None, 1, None),
    ],
    "self-parent": lambda c: [PathItemRecord(c, "x", "X", "x", "folder", None, 0, None)],
    "duplicate-key": lambda c: [PathItemRecord(c, "x", "X", None, "folder", None, i, None) for i in range(2)],
    "unknown-kind": lambda c: [PathItemRecord(c, "x", "X", None, "quiz", None, 0, None)],
    "other-course": lambda c: [PathItemRecord(c + 1, "x", "X", None, "folder", None, 0, None)],
    "empty-key": lambda c: [PathItemRecord(c, "", "X", None, "folder", None, 0, None)],
    "long-key": lambda c: [PathItemRecord(c, "k" * 256, "X", None, "folder", None, 0, None)],
}


@pytest.mark.parametrize("case", list(BAD_TREES))
def test_replace_path_refuses_what_is_not_a_tree(store: Store, world: World, case: str) -> None:
    """A learning path that is not one tree of this course is a ValueError; the old path stays."""
    with store.platform.transaction() as tx:
        tx.content.replace_path(world.a, _tree(world.a))
    with pytest.raises(ValueError), store.platform.transaction() as tx:
        tx.content.replace_path(world.a, BAD_TREES[case](world.a))
    with store.platform.transaction() as tx:
        assert len(tx.content.path([world.a])) == 5


def test_replace_activities_orders_by_section_and_position(store: Store, world: World) -> None:
    """replace_activities writes the whole list, read by section then position; a replace drops the rest."""
    with store.platform.transaction() as tx:
        items = [
            ActivityRecord(world.a, "p2", 1, "page", "Page", 1),
            ActivityRecord(world.a, "r1", 1, "resource", "File", 0),
            ActivityRecord(world.a, "l0", 0, "label", "Welcome", 5),
            ActivityRecord(world.a, "u9", 9, "url", "Link", 0),  # a section nobody described
        ]
        tx.content.replace_activities(world.a, items)
        tx.content.replace_activities(world.b, [ActivityRecord(world.b, "p2", 0, "page", "Other", 0)])
    with store.platform.transaction() as tx:
        assert [a.key for a in tx.content.activities([world.a])] == ["l0", "r1", "p2", "u9"]
        tx.content.replace_activities(world.a, items[:1])
    with store.platform.transaction() as tx:
        assert tx.content.activities([world.a, world.b])[0] == items[0]
        assert [a.title for a in tx.content.activities([world.a, world.b])] == ["Page", "Other"]
    with pytest.raises(ValueError, match="twice"), store.platform.transaction() as tx:
        tx.content.replace_activities(world.a, [items[0], items[0]])


def test_pictures_put_replace_and_delete(store: Store, world: World) -> None:
    """One picture per user: put inserts or replaces it (same id), find maps users, delete removes it."""
    u0, u1 = world.users
    with store.platform.transaction() as tx:
        png, _ = tx.files.put([b"\x89PNG..."])
        jpg, _ = tx.files.put([b"\xff\xd8\xff..."])
        first = PictureRecord(u0, png, "image/png", 100, 80)
        second = PictureRecord(u1, png, "image/png", 1, 1)
        tx.pictures.put([first, second])
        replaced = PictureRecord(u0, jpg, "image/jpeg", 640, 480)
        tx.pictures.put([replaced])
    with store.platform.transaction() as tx:
        assert replaced.id == first.id and second.id not in (None, first.id)
        assert tx.pictures.find([u0, u1, 424242]) == {u0: replaced, u1: second}
        assert tx.pictures.hashes() == {png, jpg}
        tx.pictures.delete([u1, 424242])
    with store.platform.transaction() as tx:
        assert tx.pictures.find([u0, u1]) == {u0: replaced} and tx.pictures.hashes() == {jpg}
        assert tx.files.exists(png)


def test_course_delete_removes_its_content_only(store: Store, world: World) -> None:
    """Deleting a course removes its documents, path and activities; other courses and blobs stay."""
    with store.platform.transaction() as tx:
        for course_id in (world.a, world.b):
            kept = _doc(tx, course_id, "shared.txt", b"same bytes")
            tx.content.replace_path(course_id, _tree(course_id))
            tx.content.replace_activities(course_id, [ActivityRecord(course_id, "p", 0, "page", "P", 0)])
    with store.platform.transaction() as tx:
        tx.courses.delete([world.a])
    with store.platform.transaction() as tx:
        assert tx.content.documents([world.a]) == [] and tx.content.path([world.a]) == []
        assert tx.content.activities([world.a]) == []
        assert tx.content.documents([world.b]) == [kept] and len(tx.content.path([world.b])) == 5
        assert len(tx.content.activities([world.b])) == 1
        assert tx.files.exists(kept.sha256) and tx.content.hashes() == {kept.sha256}


#: Writes that refer to a course or a user that does not exist.
MISSING: dict[str, Callable[[PlatformTx, World], None]] = {
    "document-course": lambda tx, w: tx.content.put_documents([DocumentRecord(9999, "a.txt", sha(b""), 0)]),
    "path-course": lambda tx, w: tx.content.replace_path(9999, _tree(9999)),
    "activity-course": lambda tx, w: tx.content.replace_activities(
        9999, [ActivityRecord(9999, "p", 0, "page", "P", 0)]
    ),
    "picture-user": lambda tx, w: tx.pictures.put([PictureRecord(99999, sha(b""), "image/png", 1, 1)]),
}


@pytest.mark.parametrize("case", list(MISSING))
def test_content_of_a_missing_course_or_user_breaks_a_foreign_key(
    store: Store, world: World, case: str
) -> None:
    """Documents, paths and activities need their course, pictures their user (IntegrityError)."""
    with pytest.raises(BROKEN), store.platform.transaction() as tx:
        MISSING[case](tx, world)


BAD_RECORDS: dict[str, Callable[[PlatformTx, World], None]] = {
    "absolute-path": lambda tx, w: tx.content.put_documents([DocumentRecord(w.a, "/etc/x", sha(b""), 0)]),
    "dotdot-path": lambda tx, w: tx.content.put_documents([DocumentRecord(w.a, "a/../../x", sha(b""), 0)]),
    "empty-part": lambda tx, w: tx.content.put_documents([DocumentRecord(w.a, "a//x", sha(b""), 0)]),
    "backslash": lambda tx, w: tx.content.put_documents([DocumentRecord(w.a, "a\\x", sha(b""), 0)]),
    "long-path": lambda tx, w: tx.content.put_documents([DocumentRecord(w.a, "é" * 513, sha(b""), 0)]),
    "bad-hash": lambda tx, w: tx.content.put_documents([DocumentRecord(w.a, "x", "0" * 63, 0)]),
    "negative-size": lambda tx, w: tx.content.put_documents([DocumentRecord(w.a, "x", sha(b""), -1)]),
    "picture-hash": lambda tx, w: tx.pictures.put([PictureRecord(w.users[0], "nope", "image/png", 1, 1)]),
    "picture-size": lambda tx, w: tx.pictures.put([PictureRecord(w.users[0], sha(b""), "image/png", -1, 1)]),
}


@pytest.mark.parametrize("case", list(BAD_RECORDS))
def test_malformed_records_are_refused_before_writing(store: Store, world: World, case: str) -> None:
    """Unsafe document paths, malformed hashes and negative sizes are a ValueError; nothing is written."""
    with store.platform.transaction() as tx:
        good = _doc(tx, world.a, "good.txt", b"good")
    with pytest.raises(ValueError), store.platform.transaction() as tx:
        BAD_RECORDS[case](tx, world)
    with store.platform.transaction() as tx:
        assert tx.content.documents([world.a]) == [good] and tx.pictures.find(world.users) == {}


def test_rollback_drops_rows_but_keeps_blobs(store: Store, world: World) -> None:
    """Rows written in a rolled-back transaction are gone; the blob it put stays (a harmless orphan)."""
    with store.platform.transaction(rollback=True) as tx:
        document = _doc(tx, world.a, "draft.txt", b"draft")
        tx.content.replace_path(world.a, _tree(world.a))
        tx.pictures.put([PictureRecord(world.users[0], document.sha256, "image/png", 1, 1)])
    with store.platform.transaction() as tx:
        assert tx.content.documents([world.a]) == [] and tx.content.path([world.a]) == []
        assert tx.pictures.find(world.users) == {} and tx.content.hashes() == set()
        assert tx.files.exists(document.sha256)


def test_large_document_batches_round_trip(store: Store, world: World) -> None:
    """More documents than a chunk get the right ids on insert and on update, and are read back whole."""
    digest = sha(b"")
    with store.platform.transaction() as tx:
        documents = [DocumentRecord(world.a, f"d/{i:05}.txt", digest, 0, f"T{i}") for i in range(1234)]
        tx.content.put_documents(documents)
        for document in documents:
            document.title = document.title.lower()
        ids = [d.id for d in documents]
        tx.content.put_documents(list(reversed(documents)))
    with store.platform.transaction() as tx:
        assert tx.content.documents([world.a]) == documents and [d.id for d in documents] == ids
    assert len(set(ids)) == 1234
