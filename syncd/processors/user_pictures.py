"""user_pictures: a zip of ``<key>.<jpg|jpeg|png|gif>`` pictures, one per user (SPEC §4).

The zip is opened through the safe archive layer (syncd/archives/safe): zip-slip and
absolute names, links, encrypted entries, bombs, duplicate names and corrupt archives
refuse the whole file before anything is written. A tar (or anything but a zip) is
refused too. Then every entry is read once, while the file is checked, so a CRC error
also fails the file whole; what each entry holds is decided there, by its name and its
bytes, never by its extension alone:

- the name must be ``<key>.<ext>`` at the top level, ``ext`` one of jpg, jpeg, png, gif
  (any case); ``key`` is the user's ``identity`` field (username, idnumber or email;
  usernames and emails compare case-insensitively). An entry in a folder is an error
  ("not in the zip's top level"); macOS/Windows litter (``__MACOSX/``, dot files,
  ``Thumbs.db``, ``desktop.ini``) is skipped.
- a second entry for the same key is an error ("duplicate key"), whatever it holds;
- the bytes must be a PNG, JPEG or GIF (a ``.png`` holding a JPEG is taken as the JPEG
  it is), of at most ``max_bytes`` bytes and ``max_width`` x ``max_height`` pixels.

Applying, one item (report line) per entry, users looked up once per batch (deleted
users are unknown): ``created`` (first picture), ``updated``, ``unchanged`` (same
sha256), ``skipped`` "has a picture, overwrite off" (option ``overwrite`` false), or
``error`` (unknown user, not an image, too large, duplicate key). The picture's bytes go
to the file store (``tx.files``), its record to ``tx.pictures``. Every reason starts
with the entry's name.

Options: ``identity`` (username | idnumber | email, default username), ``overwrite``
(default true), ``max_bytes`` (default 5 MiB), ``max_width``/``max_height`` (default
4096). The archive may hold up to 100,000 entries and 16 GiB (declared sizes).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from syncd.archives.safe import Archive, Limits, open_archive
from syncd.csvfile import Schema
from syncd.domain import ConfigError, Outcome, RejectFile, RowResult
from syncd.platform.base import PlatformTx, UserRecord
from syncd.platform.model import PictureRecord
from syncd.processors._images import ImageInfo, NotAnImage, image_info
from syncd.processors._items import ITEM_SCHEMA, Item, ItemSource
from syncd.processors._lookup import flag, option, user_key, users_by
from syncd.processors.base import Processor, ProcessorSpec, Row, RunContext

NAME = "user_pictures"
IDENTITIES = ("username", "idnumber", "email")
EXTENSIONS = frozenset({"jpg", "jpeg", "png", "gif"})
LIMITS = Limits(max_entries=100_000, max_total_bytes=16 << 30)
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_LITTER = frozenset({"thumbs.db", "desktop.ini"})


@dataclass(frozen=True, slots=True)
class Entry:
    """What one zip entry was found to be when the file was checked."""

    name: str
    key: str = ""  # the user key as looked up (lowercased for username/email)
    problem: str = ""  # why it cannot be applied (with ``outcome``)
    outcome: Outcome = Outcome.ERROR
    info: ImageInfo | None = None
    sha256: str = ""
    size: int = 0


class UserPicturesProcessor:
    """Applies the entries of one picture zip (implements Processor)."""

    def __init__(self, *, identity: str, overwrite: bool, max_bytes: int, max_width: int,
                 max_height: int) -> None:
        self.identity = identity
        self.overwrite = overwrite
        self.max_bytes = max_bytes
        self.max_width = max_width
        self.max_height = max_height
        self._path: Path | None = None
        self._entries: list[Entry] = []

    @property
    def schema(self) -> Schema:
        """The synthetic item columns."""
        return ITEM_SCHEMA

    def describe(self) -> str:
        """The options in force."""
        return (f"identity={self.identity} overwrite={str(self.overwrite).lower()} "
                f"max_bytes={self.max_bytes} max_size={self.max_width}x{self.max_height}")

    def source(self, path: Path) -> ItemSource:
        """The zip at ``path`` as one item per entry (each entry read and checked when listed)."""
        self._path = path
        return ItemSource(path, self._items)

    def _items(self) -> list[Item]:
        assert self._path is not None
        with self._path.open("rb") as head:
            if head.read(4) not in _ZIP_MAGIC:
                raise RejectFile(f"{self._path.name}: not a zip archive (user_pictures takes a zip "
                                 "of <key>.jpg|jpeg|png|gif pictures)")
        seen: dict[str, str] = {}  # user key -> first entry name
        with open_archive(self._path, LIMITS) as archive:
            self._entries = [self._entry(archive, name, seen) for name in archive.names()]
        return [Item("picture", e.name, f"{e.size} bytes") for e in self._entries]

    def _entry_at(self, row: Row) -> Entry:
        """The entry of item ``row.line`` (record n is item n; its values are trimmed)."""
        index = row.line - 1
        if 0 <= index < len(self._entries) and self._entries[index].name.strip() == row.values["key"]:
            return self._entries[index]
        return Entry(row.values["key"], problem="no such entry in the zip (was the file listed?)")

    def _entry(self, archive: Archive, name: str, seen: dict[str, str]) -> Entry:
        """Check one entry by its name, then by its bytes."""
        folder, _, base = name.rpartition("/")
        if name.startswith("__MACOSX/") or base.startswith(".") or base.lower() in _LITTER:
            return Entry(name, problem="not a picture: system metadata file", outcome=Outcome.SKIPPED)
        if folder:
            return Entry(name, problem="not in the zip's top level (pictures may not be in folders)")
        stem, dot, ext = base.rpartition(".")
        if not dot or not stem.strip() or ext.lower() not in EXTENSIONS:
            return Entry(name, problem="name is not <key>.jpg, .jpeg, .png or .gif")
        key = user_key(self.identity, stem)
        if key in seen:
            return Entry(name, key, f"duplicate key {stem!r}: {seen[key]!r} is for the same user")
        seen[key] = name
        size = archive.size(name)
        if size > self.max_bytes:
            return Entry(name, key, f"too large: {size} bytes, over the limit of {self.max_bytes}", size=size)
        data = archive.read(name, self.max_bytes)
        try:
            info = image_info(data)
        except NotAnImage as exc:
            return Entry(name, key, f"not an image: {exc}", size=size)
        if info.width > self.max_width or info.height > self.max_height:
            return Entry(name, key, f"too large: {info.width}x{info.height} pixels, over the limit of "
                                    f"{self.max_width}x{self.max_height}", size=size)
        return Entry(name, key, info=info, sha256=hashlib.sha256(data).hexdigest(), size=size)

    def apply(self, rows: Sequence[Row], tx: PlatformTx) -> list[RowResult]:
        """Apply the entries in order: one user look-up and one picture look-up per batch."""
        entries = [self._entry_at(row) for row in rows]
        users = users_by(tx, self.identity, [e.key for e in entries if not e.problem])
        pictures = tx.pictures.find([u.id for u in users.values() if u.id is not None])
        archive: Archive | None = None
        results = []
        try:
            for entry in entries:
                user = users.get(entry.key)
                if entry.problem or user is None or user.id is None:
                    results.append(self._refused(entry))
                    continue
                current = pictures.get(user.id)
                if current is None or (current.sha256 != entry.sha256 and self.overwrite):
                    archive = archive or self._open()
                    pictures[user.id] = self._store(tx, archive, entry, user, current)
                    results.append(self._stored(entry, user, current))
                elif current.sha256 == entry.sha256:
                    reason = f"{entry.name}: picture of {_who(user)} unchanged"
                    results.append(RowResult(Outcome.UNCHANGED, reason))
                else:
                    results.append(RowResult(Outcome.SKIPPED,
                                             f"{entry.name}: {_who(user)} has a picture, overwrite off"))
        finally:
            if archive is not None:
                archive.close()
        return results

    def _refused(self, entry: Entry) -> RowResult:
        if entry.problem:
            return RowResult(entry.outcome, f"{entry.name}: {entry.problem}")
        stem = entry.name.rpartition(".")[0]
        return RowResult(Outcome.ERROR, f"{entry.name}: unknown user {stem!r} ({self.identity})")

    def _open(self) -> Archive:
        assert self._path is not None
        return open_archive(self._path, LIMITS)

    def _store(self, tx: PlatformTx, archive: Archive, entry: Entry, user: UserRecord,
               current: PictureRecord | None) -> PictureRecord:
        assert entry.info is not None and user.id is not None
        sha256, _ = tx.files.put([archive.read(entry.name, self.max_bytes)])
        if sha256 != entry.sha256:
            raise RejectFile(f"{entry.name}: its content changed after the file was checked")
        record = PictureRecord(user.id, sha256, entry.info.mimetype, entry.info.width, entry.info.height,
                               current.id if current else None)
        tx.pictures.put([record])
        return record

    def _stored(self, entry: Entry, user: UserRecord, current: PictureRecord | None) -> RowResult:
        assert entry.info is not None
        info = entry.info
        what = f"{info.kind} {info.width}x{info.height}, {entry.size} bytes"
        return RowResult(Outcome.UPDATED if current else Outcome.CREATED,
                         f"{entry.name}: picture of {_who(user)} ({what})")


def _who(user: UserRecord) -> str:
    return f"user {user.username!r}"


def _positive(options: Mapping[str, Any], name: str, default: int) -> int:
    value = options.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{NAME}: option {name} must be a positive whole number (got {value!r})")
    return value


def build(options: Mapping[str, Any], ctx: RunContext) -> UserPicturesProcessor:
    """Build the processor from route options; ConfigError names a bad one."""
    return UserPicturesProcessor(
        identity=option(options, "identity", IDENTITIES, NAME),
        overwrite=flag(options, "overwrite", True, NAME),
        max_bytes=_positive(options, "max_bytes", 5 << 20),
        max_width=_positive(options, "max_width", 4096),
        max_height=_positive(options, "max_height", 4096),
    )


def _source(path: Path, processor: Processor) -> ItemSource:
    assert isinstance(processor, UserPicturesProcessor)
    return processor.source(path)


SPEC = ProcessorSpec(
    name=NAME,
    priority=75,
    factory=build,
    options=frozenset({"identity", "overwrite", "max_bytes", "max_width", "max_height"}),
    source=_source,
)
