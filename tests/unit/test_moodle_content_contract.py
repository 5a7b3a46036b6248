"""MoodleContent and MoodlePictures against the recordings (a scripted client, no HTTP): content is
refused as not supported (hashes() excepted); a picture is an upload then the recorded
core_user_update_picture; find() tells a picture syncd sent from one it does not know."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping
from typing import Any

import pytest

from syncd.domain import PlatformRefused
from syncd.platform.model import ActivityRecord, DocumentRecord, PathItemRecord, PictureRecord
from syncd.platform.moodle._ws import SiteCache
from syncd.platform.moodle.content import UNKNOWN, UPDATE_PICTURE, MoodleContent, MoodlePictures, revision
from syncd.platform.moodle.users import GET
from tests.fakes import FakePlatform
from tests.pictures import png
from tests.unit.moodle_scripted import Scripted, form, recorded, recorded_form, ws_over

SET = recorded(UPDATE_PICTURE, "step 2: success")
DELETE = recorded(UPDATE_PICTURE, "success: delete the picture")
NO_FILE = recorded(UPDATE_PICTURE, "draft item id with no file")
DEFAULT_URL = DELETE["response"]["profileimageurl"]


class Site(Scripted):
    """Users with a profile image URL; uploads give draft ids; update_picture answers as recorded
    (a new revision for each picture, the theme's image after delete=1)."""

    def __init__(self) -> None:
        super().__init__(self.reply)
        self.urls: dict[int, str] = {}
        self.uploads: list[tuple[str, bytes, str]] = []
        self.rev = 300
        self.picture_reply: dict[str, Any] | None = None

    def upload(self, filename: str, data: bytes, mimetype: str = "application/octet-stream") -> int:
        self.uploads.append((filename, data, mimetype))
        return 77625132

    def reply(self, function: str, params: Mapping[str, Any]) -> Any:
        if function == GET:
            return [{"id": i, "username": f"u{i}", "email": f"u{i}@x.fr",
                     "profileimageurl": self.urls.get(i, DEFAULT_URL)}
                    for i in params["values"] if i in self.urls or i < 1000]
        assert function == UPDATE_PICTURE
        if self.picture_reply is not None:
            return copy.deepcopy(self.picture_reply)
        user = params["userid"]
        if params.get("delete"):
            self.urls.pop(user, None)
            return copy.deepcopy(DELETE["response"])
        self.rev += 1
        self.urls[user] = f"http://127.0.0.1:8081/pluginfile.php/16741/user/icon/boost/f1?rev={self.rev}"
        return {"success": True, "profileimageurl": self.urls[user], "warnings": []}


def stored(local: FakePlatform, data: bytes) -> str:
    with local.transaction() as tx:
        sha256, _ = tx.files.put([data])
    return sha256


def pictures_of(site: Site, local: FakePlatform, *, cache: SiteCache | None = None,
                dry_run: bool = False) -> MoodlePictures:
    with local.transaction() as tx:
        files = tx.files
    return MoodlePictures(ws_over(site, cache=cache, dry_run=dry_run), files)


def test_content_is_not_supported_but_hashes_is_empty() -> None:
    """Every content read and write is refused with 'not supported on moodle'; hashes() is {}."""
    content = MoodleContent(ws_over(Scripted(lambda f, p: None)))
    calls = [lambda: content.documents([1]),
             lambda: content.put_documents([DocumentRecord(1, "a", "0" * 64, 1)]),
             lambda: content.delete_documents([1]), lambda: content.path([1]),
             lambda: content.replace_path(1, [PathItemRecord(1, "k", "t", None, "folder", None, 0, None)]),
             lambda: content.activities([1]),
             lambda: content.replace_activities(1, [ActivityRecord(1, "k", 0, "page", "t", 0)])]
    for call in calls:
        with pytest.raises(PlatformRefused, match=r"^not supported on moodle: .*course documents"):
            call()
    assert content.hashes() == set()


def test_put_uploads_then_sets_the_picture_as_recorded() -> None:
    """put() uploads the blob, then sends the recorded update_picture(draftitemid, userid); find()
    then gives back the record syncd sent (same revision)."""
    local, site, cache = FakePlatform(), Site(), SiteCache()
    data = png(40, 30)
    sha = stored(local, data)
    picture = PictureRecord(16487, sha, "image/png", 40, 30)
    pictures_of(site, local, cache=cache).put([picture])
    assert site.uploads == [("picture-16487.png", data, "image/png")]
    assert form(site.sent(UPDATE_PICTURE)[0]) == recorded_form(SET)
    assert picture.id == 16487
    found = pictures_of(site, local, cache=cache).find([16487, 5])
    assert list(found) == [16487]
    assert (found[16487].sha256, found[16487].width) == (sha, 40)
    assert pictures_of(site, local, cache=cache).hashes() == {sha}


def test_a_picture_syncd_did_not_send_has_an_unknown_hash() -> None:
    """A picture set in Moodle (another revision, or before this process started) is reported with
    the UNKNOWN hash, which no real picture has: the processor sends its picture again."""
    local, site, cache = FakePlatform(), Site(), SiteCache()
    sha = stored(local, png(10, 10))
    pictures_of(site, local, cache=cache).put([PictureRecord(7, sha, "image/png", 10, 10)])
    site.urls[7] = "http://127.0.0.1:8081/pluginfile.php/16741/user/icon/boost/f1?rev=999"
    site.urls[8] = "http://127.0.0.1:8081/pluginfile.php/16742/user/icon/boost/f1?rev=5"
    found = pictures_of(site, local, cache=cache).find([7, 8])
    assert [(p.user_id, p.sha256) for p in found.values()] == [(7, UNKNOWN), (8, UNKNOWN)]
    assert hashlib.sha256(b"").hexdigest() != UNKNOWN
    assert revision(DEFAULT_URL) is None and revision(SET["response"]["profileimageurl"]) == 303


def test_delete_and_refusals() -> None:
    """delete() is the recorded delete=1 call; success=false (recorded for an empty draft) and Moodle's
    unknown-user error are refusals naming the user."""
    local, site = FakePlatform(), Site()
    sha = stored(local, png(10, 10))
    repo = pictures_of(site, local)
    repo.put([PictureRecord(16487, sha, "image/png", 10, 10)])
    repo.delete([16487])
    assert form(site.sent(UPDATE_PICTURE)[-1]) == recorded_form(DELETE)
    assert repo.find([16487]) == {}
    site.picture_reply = NO_FILE["response"]
    with pytest.raises(PlatformRefused, match="did not take the picture of user id 16487"):
        repo.put([PictureRecord(16487, sha, "image/png", 10, 10)])
    site.picture_reply = recorded(UPDATE_PICTURE, "failure: unknown user id")["response"]
    with pytest.raises(PlatformRefused, match=r"Invalid user.*user id 999999"):
        repo.put([PictureRecord(999999, sha, "image/png", 10, 10)])


def test_dry_run_uploads_nothing() -> None:
    """A dry run neither uploads nor changes a picture; the last picture of a user in a call wins."""
    local, site = FakePlatform(), Site()
    sha = stored(local, png(10, 10))
    repo = pictures_of(site, local, dry_run=True)
    first, last = PictureRecord(3, sha, "image/png", 10, 10), PictureRecord(3, sha, "image/png", 10, 10)
    repo.put([first, last])
    repo.delete([3])
    assert (site.uploads, site.sent(UPDATE_PICTURE)) == ([], [])
    assert first.id == last.id == 3
