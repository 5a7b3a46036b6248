"""Draft files and user pictures: ``/webservice/upload.php`` and ``core_user_update_picture``.

From ``core_user_update_picture.json`` (README §5.15): upload.php takes ``token`` (not ``wstoken``),
``filearea=draft`` and ``itemid=0`` (a new draft area) and answers a list describing each stored file;
its exceptions come the AJAX way (``{"error", "errorcode", ...}``, Moodle 4.5 source). The picture is
taken from the draft area (``delete=1`` removes it); an area with no image gives ``{"success": false}``.
Draft files are rows of the ``drafts`` table keyed ``(filearea, itemid, path)``; a user's picture is
``("icon", userid)``.
"""

from __future__ import annotations

import random
import re
from dataclasses import replace
from typing import Any

from tests.moodle_fake.errors import MISSING_RECORD, MOODLE_EXCEPTION, WsError, coding_error, moodle_error
from tests.moodle_fake.phpform import UploadedFile
from tests.moodle_fake.records import DraftFile, User
from tests.moodle_fake.site import THEMEREV, Site

_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a")


def picture_of(site: Site, userid: int) -> DraftFile | None:
    """The user's current picture file, or None."""
    with site.lock:
        found: DraftFile | None = site.get("drafts", ("icon", userid))
        return found


def set_picture(site: Site, userid: int, draftitemid: int) -> bool:
    """``core_user::update_picture``: 0 deletes the picture, else the first image of the draft area
    becomes it (False when there is none: ``process_new_icon`` fails quietly)."""
    user: User = site.get("users", userid)
    if not draftitemid:
        site.drop("drafts", ("icon", userid))
        site.put("users", userid, replace(user, picture=0))
        return True
    files = sorted((row for key, row in site.items("drafts") if key[:2] == ("draft", draftitemid)),
                   key=lambda f: f.fileid)
    image = next((f for f in files if f.data.startswith(_IMAGE_MAGIC)), None)
    if image is None:
        return False
    rev = site.next_id("files")
    site.put("drafts", ("icon", userid), replace(image, fileid=rev))
    site.put("users", userid, replace(user, picture=rev))
    return True


def update_picture(site: Site, cleaned: dict[str, Any]) -> dict[str, Any]:
    """Set (from a draft area) or delete a user's picture; without userid, the token owner's."""
    userid = cleaned["userid"] or site.admin_id
    user: User | None = site.get("users", userid)
    if user is None:
        raise WsError(MISSING_RECORD, "invaliduser", "Invalid user",
                      f"SELECT * FROM {{user}} WHERE id = ?\n[array (\n  0 => {userid},\n)]")
    if user.deleted:
        raise WsError(MOODLE_EXCEPTION, "userdeleted", "This user account has been deleted")
    if not set_picture(site, userid, 0 if cleaned["delete"] else cleaned["draftitemid"]):
        return {"success": False, "warnings": []}
    rev = site.get("users", userid).picture
    url = (f"{site.wwwroot}/pluginfile.php/{user.contextid}/user/icon/boost/f1?rev={rev}" if rev
           else f"{site.wwwroot}/theme/image.php/boost/core/{THEMEREV}/u/f1")
    return {"success": True, "profileimageurl": url, "warnings": []}


def ajax_error(err: WsError, debug: bool) -> dict[str, Any]:
    """upload.php is an AJAX script: its exceptions come as ``{"error", "errorcode", ...}``."""
    return {"error": err.message, "errorcode": err.errorcode, "stacktrace": None,
            "debuginfo": err.debuginfo if debug and err.debuginfo else None, "reproductionlink": None}


def upload_draft(site: Site, form: dict[str, str], files: list[UploadedFile]) -> Any:
    """``/webservice/upload.php``: store the files in the token owner's draft area (new one for itemid 0)."""
    filearea = form.get("filearea", "draft")
    if filearea not in ("draft", "private"):
        return ajax_error(coding_error(f"File area {filearea} not allowed."), site.debug)
    if not files:
        return ajax_error(moodle_error("nofile"), site.debug)
    owner = site.user(site.admin_id)
    assert owner is not None
    itemid = int(form["itemid"]) if re.fullmatch(r"[0-9]+", form.get("itemid", "")) else 0
    if filearea == "draft" and itemid <= 0:
        used = {key[1] for key, _ in site.items("drafts") if key[0] == "draft"}
        itemid = next(n for n in iter(lambda: random.randint(1, 999_999_999), None) if n not in used)
    filepath = form.get("filepath", "/") or "/"
    replies = []
    for upload in files:
        site.put("drafts", (filearea, itemid, filepath + upload.filename),
                 DraftFile(upload.filename, upload.content_type, upload.data, site.next_id("files")))
        source = f'O:8:"stdClass":1:{{s:6:"source";s:{len(upload.filename.encode())}:"{upload.filename}";}}'
        replies.append({"component": "user", "contextid": owner.contextid, "userid": str(owner.id),
                        "filearea": filearea, "filename": upload.filename, "filepath": filepath,
                        "itemid": itemid, "license": "unknown", "author": owner.fullname, "source": source,
                        "filesize": len(upload.data)})
    return replies
