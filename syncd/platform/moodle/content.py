"""Course content and user pictures on Moodle (implements ContentRepository and
PictureRepository).

**Course content** (:class:`MoodleContent`): syncd's documents, learning path and
activities have no counterpart the recorded web services can read or write. Moodle keeps
files inside activities (``mod_resource``, ``mod_folder``...) whose content hash it does
not expose, it has no learning path, and no function of the service creates, changes or
deletes an activity. So every read and write is refused as ``not supported on moodle``,
and each row of ``course_import``, ``course_backup`` or a courses ``template`` that needs
them gets that line; nothing is silently skipped. ``hashes()`` is the one exact answer:
no Moodle document refers to a blob of syncd's file store (an empty set).

``template = <course shortname>`` does not come here: the courses processor calls
``PlatformTx.copy_course``, which Moodle does itself with ``core_course_import_course``
(``MoodleCourses.import_content``). A template *archive* still needs these writes and
fails with the "not supported" line.

**Pictures** (:class:`MoodlePictures`): a picture is set with an upload to a draft area
(``/webservice/upload.php``) then ``core_user_update_picture(draftitemid, userid)``, and
removed with ``delete=1`` (README §5.15): two calls per picture, one per removal (the
function takes one user). Moodle cannot say *which* picture a user has: its replies only
show whether there is one (``profileimageurl`` is ``.../user/icon/...?rev=<n>``, not the
theme's default image) and a revision number that changes with every new picture. So:

- this process remembers, per user, the record it last sent and the revision Moodle gave
  it (``SiteCache.kept``, not dropped with the cache; lost at a restart);
- :meth:`MoodlePictures.find` reads the users (``core_user_get_users_by_field``, chunks of
  ``batch_size``): a user whose picture still has the remembered revision gets the
  remembered record; a user with another picture gets a record whose ``sha256`` is
  :data:`UNKNOWN` (``""``, no hash at all: its content is not known), which never equals a
  real hash, so the user_pictures processor sends its picture again (or, with
  ``overwrite`` off, says the user has one); a user without a picture is left out.
- dry run: nothing is uploaded or changed, nothing remembered.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Sequence
from typing import Any

from syncd.domain import PlatformRefused
from syncd.platform.content import FileRepository
from syncd.platform.model import ActivityRecord, DocumentRecord, PathItemRecord, PictureRecord
from syncd.platform.moodle._ws import PLATFORM, Ws, not_supported, refused
from syncd.platform.moodle.errors import MoodleWsError
from syncd.platform.moodle.users import GET as GET_USERS
from syncd.platform.moodle.users import is_deleted

UPDATE_PICTURE = "core_user_update_picture"
#: the kept site-cache entry: user id -> (record syncd last sent, revision Moodle gave it)
PICTURES = "moodle.user.pictures"
#: the sha256 of a picture whose content syncd does not know
UNKNOWN = ""
_REVISION = re.compile(r"/user/icon/[^?]*\?rev=(\d+)")
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif"}
_CONTENT = "course documents, learning paths and activities"


def revision(url: Any) -> int | None:
    """The picture revision in a profile image URL; None for the theme's default image."""
    match = _REVISION.search(str(url or ""))
    return int(match.group(1)) if match else None


class MoodleContent:
    """Course documents, learning paths and activities: not supported (module docstring)."""

    def __init__(self, ws: Ws) -> None:
        self._ws = ws

    def documents(self, course_ids: Collection[int]) -> list[DocumentRecord]:
        """Not supported: Moodle's web services do not give syncd's documents."""
        raise not_supported(f"reading {_CONTENT}")

    def put_documents(self, documents: Sequence[DocumentRecord]) -> None:
        """Not supported: no web service writes course files."""
        raise not_supported(f"writing {_CONTENT}")

    def delete_documents(self, document_ids: Collection[int]) -> None:
        """Not supported."""
        raise not_supported(f"deleting {_CONTENT}")

    def path(self, course_ids: Collection[int]) -> list[PathItemRecord]:
        """Not supported: Moodle has no learning path."""
        raise not_supported(f"reading {_CONTENT}")

    def replace_path(self, course_id: int, items: Sequence[PathItemRecord]) -> None:
        """Not supported."""
        raise not_supported(f"writing {_CONTENT}")

    def activities(self, course_ids: Collection[int]) -> list[ActivityRecord]:
        """Not supported (syncd's activity records cannot be written back either)."""
        raise not_supported(f"reading {_CONTENT}")

    def replace_activities(self, course_id: int, items: Sequence[ActivityRecord]) -> None:
        """Not supported: no web service creates or deletes an activity."""
        raise not_supported(f"writing {_CONTENT}")

    def hashes(self) -> set[str]:
        """No Moodle document refers to a blob of syncd's file store."""
        return set()


class MoodlePictures:
    """User pictures on Moodle (see the module docstring)."""

    def __init__(self, ws: Ws, files: FileRepository) -> None:
        self._ws = ws
        self._files = files

    def find(self, user_ids: Collection[int]) -> dict[int, PictureRecord]:
        """User id -> picture, for the users Moodle shows with a picture."""
        ids = sorted({i for i in user_ids if i > 0})
        items = self._ws.lookup(GET_USERS, ids, lambda chunk: {"field": "id", "values": list(chunk)})
        kept = self._kept()
        found: dict[int, PictureRecord] = {}
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("id"), int) or is_deleted(item):
                continue
            user_id = int(item["id"])
            rev = revision(item.get("profileimageurl"))
            if rev is None:
                continue
            known = kept.get(user_id)
            if known is not None and known[1] == rev:
                found[user_id] = dataclasses.replace(known[0])
            else:
                found[user_id] = PictureRecord(user_id, UNKNOWN, "", 0, 0, id=user_id)
        return found

    def put(self, pictures: Sequence[PictureRecord]) -> None:
        """Upload each user's picture (the last one of a user wins) and set it; ``id`` = user id."""
        last = {p.user_id: p for p in pictures}
        for picture in pictures:
            picture.id = picture.user_id
        for user_id, picture in last.items():
            if user_id <= 0 or self._ws.dry_run:
                continue
            with self._files.open(picture.sha256) as blob:
                data = blob.read()
            filename = f"picture-{user_id}.{_EXTENSIONS.get(picture.mimetype, 'img')}"
            try:
                draft = self._ws.client.upload(filename, data, picture.mimetype or "application/octet-stream")
            except MoodleWsError as exc:
                raise PlatformRefused(f"{refused(exc)}: picture of user id {user_id}") from exc
            reply = self._set(user_id, {"draftitemid": draft, "userid": user_id})
            rev = revision(reply.get("profileimageurl"))
            if rev is not None:
                self._kept()[user_id] = (dataclasses.replace(picture), rev)

    def delete(self, user_ids: Collection[int]) -> None:
        """Remove the pictures of these users (``delete=1``; a user without one is fine)."""
        for user_id in sorted({i for i in user_ids if i > 0}):
            if self._ws.dry_run:
                continue
            self._set(user_id, {"draftitemid": 0, "delete": 1, "userid": user_id})
            self._kept().pop(user_id, None)

    def hashes(self) -> set[str]:
        """The blobs of the pictures this process sent (what it compares new pictures with)."""
        return {record.sha256 for record, _ in self._kept().values()}

    def _set(self, user_id: int, params: dict[str, Any]) -> dict[str, Any]:
        """One core_user_update_picture; ``success: false`` is a refusal too."""
        try:
            reply = self._ws.write(UPDATE_PICTURE, params)
        except PlatformRefused as exc:
            raise PlatformRefused(f"{exc}: picture of user id {user_id}") from exc.__cause__
        if not isinstance(reply, dict) or reply.get("success") is not True:
            raise PlatformRefused(f"{PLATFORM}: Moodle did not take the picture of user id {user_id} "
                                  f"({UPDATE_PICTURE} answered success=false)")
        return reply

    def _kept(self) -> dict[int, tuple[PictureRecord, int]]:
        empty: dict[int, tuple[PictureRecord, int]] = {}
        return self._ws.cache.kept(PICTURES, lambda: empty)
