"""Replay the recorded exchanges of ``../shared/moodle-ws`` against a FakeMoodle and compare the replies.

A recording file is a script: later exchanges name ids that earlier ones created (users made by
``core_user_create_users.json`` are updated by ``core_user_update_users.json``). A :class:`Replayer`
keeps one id map for all the files it replays on one fake: every reply compared learns
"recorded id → fake id" from its id keys, and every later request has its recorded ids replaced.
Seed what a file needs with the site's ``add_*`` helpers and :meth:`Replayer.alias`, or replay the
files that created it first::

    with FakeMoodle(token=TOKEN) as fake:
        replayer = Replayer(fake, TOKEN)
        assert replayer.replay("core_user_create_users.json") == []
        assert replayer.replay("core_user_update_users.json") == []

Ids are mapped by kind (:data:`KEY_KINDS`, and :data:`FUNCTION_KINDS` for a bare ``id``), so a
user 66 and a course 66 of the recording do not collide (``Replayer.kinds["user"]`` is the user map);
:attr:`Replayer.ids` holds every pair (aliases, then the first pair learned) and is the fallback.

Comparison (:meth:`Replayer.compare`): same JSON shape, same keys in the same order, errors with
the same exception, errorcode and message. Values equal, except ints under :attr:`id_keys` (any
value; the pair is learned) and strings under :attr:`loose_keys` (digit runs ignored: timestamps,
revisions, context ids). Pass wider ``id_keys``/``loose_keys`` for replies holding times or sort
orders. The recorded site URL is read as the fake's URL. Uploads
(``/webservice/upload.php``, ``"file_1": "<N bytes image/png>"``) are sent with a PNG of N bytes.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from tests.moodle_fake.errors import WsError
from tests.moodle_fake.phpform import decode_form
from tests.moodle_fake.site import Site
from tests.moodle_fake.wsfunctions import FUNCTIONS

#: the recorded exchanges: ``../shared/moodle-ws`` beside the repository
RECORDINGS = Path(__file__).resolve().parents[3] / "shared" / "moodle-ws"
RECORDED_URL = "http://127.0.0.1:8081"
ID_KEYS = frozenset({"id", "userid", "itemid", "contextid", "courseid", "categoryid", "groupid", "groupingid",
                     "cohortid", "instanceid", "parent", "category", "sectionid", "instance"})
#: the table an id under this key belongs to (ids of different tables are mapped apart)
KEY_KINDS = {"userid": "user", "userids": "user", "courseid": "course", "categoryid": "category",
             "category": "category", "parent": "category", "groupid": "group", "groupids": "group",
             "groupingid": "grouping", "cohortid": "cohort", "cohortids": "cohort", "contextid": "context",
             "itemid": "draft", "draftitemid": "draft"}
#: the table of an ``id`` in a function's reply or items, by a part of the function's name (first match)
FUNCTION_KINDS = (("contents", "section"), ("categor", "category"), ("grouping", "grouping"),
                  ("group", "group"), ("cohort", "cohort"), ("user", "user"), ("course", "course"))
LOOSE_KEYS = frozenset({"username", "profileimageurl", "profileimageurlsmall", "userpictureurl",
                        "courseimage", "debuginfo"})
_FILE = re.compile(r"<(\d+) bytes ([^>]+)>\Z")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def load(name: str | Path) -> list[dict[str, Any]]:
    """The exchanges of a recording file (a name in :data:`RECORDINGS`, or a path)."""
    path = Path(name) if Path(name).is_absolute() else RECORDINGS / name
    exchanges: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    return exchanges


def without_token(exchange: dict[str, Any]) -> bool:
    """The exchanges recorded with no token at all (every other request had the token removed)."""
    return "no wstoken" in exchange["title"]


class Replayer:
    """Replays recordings on one fake, keeping the recorded → fake id map between files."""

    def __init__(self, fake: Any, token: str, *, id_keys: frozenset[str] = ID_KEYS,
                 loose_keys: frozenset[str] = LOOSE_KEYS,
                 skip_token: Callable[[dict[str, Any]], bool] = without_token) -> None:
        self.fake = fake
        self.token = token
        self.id_keys = id_keys
        self.loose_keys = loose_keys
        self.skip_token = skip_token
        #: recorded id → fake id, whatever its table (aliases, then the first pair learned)
        self.ids: dict[int, int] = {}
        #: recorded id → fake id by kind ("user", "course"...), looked up before :attr:`ids`
        self.kinds: dict[str, dict[int, int]] = {}
        self._function = ""

    def alias(self, recorded: int, fake_id: int, kind: str | None = None) -> None:
        """Say that the recording's id ``recorded`` (of ``kind``, if told) is ``fake_id`` here."""
        if kind is not None:
            self.kinds.setdefault(kind, {})[recorded] = fake_id
        self.ids[recorded] = fake_id

    def _learn(self, kind: str, recorded: int, got: int) -> None:
        self.kinds.setdefault(kind, {}).setdefault(recorded, got)
        self.ids.setdefault(recorded, got)

    @staticmethod
    def function_kind(function: str) -> str:
        """The table of the ``id`` of a function's items ("any" when unknown)."""
        return next((kind for part, kind in FUNCTION_KINDS if part in function), "any")

    # -- sending -----------------------------------------------------------------------------

    def _request_kind(self, key: str, request: dict[str, str]) -> str:
        names = [part for part in re.findall(r"[^\[\]]+", key) if not part.isdigit()]
        last = names[-1] if names else key
        if last in KEY_KINDS:
            return KEY_KINDS[last]
        if last == "id" or (last in ("value", "values") and request.get("field") in ("id", "ids")):
            return self.function_kind(request.get("wsfunction", ""))
        return "any"

    def _mapped(self, key: str, value: str, request: dict[str, str]) -> str:
        if not re.fullmatch(r"[0-9]+(,[0-9]+)*", value):
            return value
        kind = self.kinds.get(self._request_kind(key, request), {})
        return ",".join(str(kind.get(int(part), self.ids.get(int(part), part))) for part in value.split(","))

    def send(self, exchange: dict[str, Any]) -> Any:
        """Send one recorded request (ids mapped, token added); the decoded reply (XML as text)."""
        recorded = exchange["request"]
        request = {key: self._mapped(key, value, recorded) for key, value in recorded.items()}
        if "wsfunction" not in request and "filearea" in request:
            return self._upload(request, exchange)
        if "wstoken" not in request and not self.skip_token(exchange):
            request = {"wstoken": self.token, **request}
        body = urlencode(list(request.items())).encode()
        with urllib.request.urlopen(f"{self.fake.url}/webservice/rest/server.php", body, timeout=30) as reply:
            text = reply.read().decode()
        return json.loads(text) if request.get("moodlewsrestformat") == "json" else text

    def _upload(self, request: dict[str, str], exchange: dict[str, Any]) -> Any:
        boundary = "replayboundary"

        def field(name: str, value: str) -> bytes:
            head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
            return f"{head}{value}\r\n".encode()

        parts = [field("token", self.token)]
        names = iter(item.get("filename", "file.png") for item in exchange["response"] or [])
        for key, value in request.items():
            found = _FILE.match(value)
            if found is None:
                parts.append(field(key, value))
                continue
            size, mimetype = int(found.group(1)), found.group(2)
            data = (PNG_MAGIC + bytes(size))[:size]
            head = (f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"; '
                    f'filename="{next(names)}"\r\nContent-Type: {mimetype}\r\n\r\n')
            parts.append(head.encode() + data + b"\r\n")
        parts.append(f"--{boundary}--\r\n".encode())
        http = urllib.request.Request(f"{self.fake.url}/webservice/upload.php", b"".join(parts),
                                      {"Content-Type": f"multipart/form-data; boundary={boundary}"})
        with urllib.request.urlopen(http, timeout=30) as reply:
            return json.loads(reply.read())

    # -- comparing ----------------------------------------------------------------------------

    def compare(self, recorded: Any, got: Any, where: str = "$", key: str = "") -> list[str]:
        """The differences between a recorded reply and the fake's (learning ids on the way)."""
        if isinstance(recorded, str) and isinstance(got, str):
            recorded = recorded.replace(RECORDED_URL, self.fake.url)
            if recorded == got or (key in self.loose_keys and _digitless(recorded) == _digitless(got)):
                return []
            if key in self.id_keys and recorded.isdigit() and got.isdigit():
                self._learn(self._reply_kind(key, where), int(recorded), int(got))
                return []
            return [f"{where}: recorded {recorded!r}, got {got!r}"]
        if isinstance(recorded, dict) and isinstance(got, dict):
            if list(recorded) != list(got):
                return [f"{where}: keys {list(recorded)} recorded, got {list(got)}"]
            return [d for k in recorded for d in self.compare(recorded[k], got[k], f"{where}.{k}", k)]
        if isinstance(recorded, list) and isinstance(got, list):
            if len(recorded) != len(got):
                return [f"{where}: {len(recorded)} items recorded, got {len(got)}: {got!r}"[:600]]
            return [d for n, (r, g) in enumerate(zip(recorded, got, strict=True))
                    for d in self.compare(r, g, f"{where}[{n}]", key)]
        if type(recorded) is int and type(got) is int and key in self.id_keys:
            self._learn(self._reply_kind(key, where), recorded, got)
            return []
        if type(recorded) is not type(got) or recorded != got:
            return [f"{where}: recorded {recorded!r}, got {got!r}"]
        return []

    def _reply_kind(self, key: str, where: str) -> str:
        if key in KEY_KINDS:
            return KEY_KINDS[key]
        depth = where.count(".") + where.count("[")
        return self.function_kind(self._function) if key == "id" and depth <= 3 else f"{key}@{where}"

    def replay(self, name: str | Path, *, only: Callable[[dict[str, Any]], bool] | None = None) -> list[str]:
        """Replay every exchange of a recording file (or those ``only`` keeps); the differences."""
        problems = []
        for exchange in load(name):
            if only is not None and not only(exchange):
                continue
            got = self.send(exchange)
            self._function = exchange["request"].get("wsfunction", "")
            problems += [f"{exchange['title']}: {d}" for d in self.compare(exchange["response"], got)]
        return problems


def _digitless(text: str) -> str:
    return re.sub(r"[0-9]+", "#", text)


def load_files(names: Sequence[str], folder: Path = RECORDINGS) -> list[dict[str, Any]]:
    """The exchanges of the files ``<folder>/<name>.json``, in ``names`` order, each with its
    file's name as ``file``."""
    return [{**ex, "file": name} for name in names for ex in load(folder / f"{name}.json")]


def run_function(site: Site, function: str, params: dict[str, Any]) -> Any:
    """Call one function of the fake directly, without HTTP (a WsError raises)."""
    return FUNCTIONS[function].call(site, params)


def direct_reply(site: Site, request: Mapping[str, str], *, debug: bool = False) -> Any:
    """The reply body of a recorded flat request run directly on ``site`` (the error body for a
    WsError, with ``debuginfo`` when ``debug``)."""
    form = decode_form((k, v) for k, v in request.items() if k not in ("wsfunction", "moodlewsrestformat"))
    try:
        return run_function(site, request["wsfunction"], form)
    except WsError as err:
        return err.body(debug)
