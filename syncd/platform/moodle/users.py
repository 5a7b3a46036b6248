"""Users on Moodle (implements UserRepository).

What the web services offer (recordings README §3-§5) and the decisions taken:

- **Find** with ``core_user_get_users_by_field`` (``field`` + ``values[]``, ``lookup_size``
  values a call, chunks in parallel): usernames first, then, in one parallel round, the
  idnumbers and emails that the users already found do not carry (so a batch of known
  users costs one look-up per ``lookup_size`` rows). Usernames and idnumbers are kept when
  they match *exactly* (a MySQL site compares case-insensitively).
- **Emails**: the port matches them case-insensitively, Moodle's look-up is case-sensitive
  (§5.8). Each email is looked up as given and lower-cased (one value more only when they
  differ) and the replies are compared case-insensitively. A user stored with another
  mix of cases (``Zoe@Univ.fr`` looked up as ``zoe@univ.FR``) is not found: Moodle offers
  no case-insensitive look-up. Creating that user again is then refused by Moodle (its
  duplicate check *is* case-insensitive): the row fails, no duplicate is made.
- **Read back**: ``timezone`` ``"99"`` (the site's) is ``""``; a field Moodle leaves out
  (phone, address, description when empty) is ``""``; custom profile fields are
  ``profile`` by shortname. Moodle never shows a password: ``password_hash`` is what *this
  process* last set for the user (``SiteCache.kept``), else None (the users processor then
  sends the row's password again, reported as a change once per process; a password
  changed in Moodle's UI after syncd set it is not seen).
- **Deleted users**: Moodle keeps the row with a scrambled username (``<email>.<time>``)
  and email (an md5 hex), so a deleted user is never found by its old keys: a ``deleted=1``
  row for a user already deleted is "no such user", and a row for the old username creates
  a new account. A user whose email is that md5 (no ``@``) is reported ``deleted``;
  :meth:`MoodleUsers.deleted` also counts an id Moodle does not know at all (nothing can
  be enrolled for it). Reviving a deleted user is not possible (``not supported``).
- **Add**: ``core_user_create_users`` (whole-batch transaction, §4), ``batch_size`` users a
  call. Password: ``UserRecord.password`` (the row's plain text, never logged: the client
  masks it in error texts) or ``createpassword=1`` when ``password_to_generate`` (Moodle
  generates and mails it); a user with neither (``*NOPASS*``) gets a random password
  nobody knows, which is what "no password" means on Moodle (log-in only through its
  ``auth`` plugin). ``must_change_password`` with a given password sends the
  ``auth_forcepasswordchange`` preference. A suspended new user takes one
  ``core_user_update_users`` more (create does not take ``suspended``). Custom profile
  fields go as ``customfields[i][type]`` (shortname) / ``[value]``; Moodle silently ignores
  a shortname it does not have (§5.8), and no service function lists the fields. So users
  written with a non-empty profile value are read back (one look-up per ``lookup_size``
  users): a field absent from the reply is remembered as unknown to the site
  (``SiteCache.kept``) and the write refused, naming it; later rows with that field are
  refused before anything is sent (the created users of the refused batch are deleted
  again by the transaction's undo).
- **Refusals**: Moodle checks usernames (``[a-z0-9_.@-]``, lower case), emails, langs,
  auth plugins, the password policy and uniqueness, and answers most of them with a bare
  "Invalid parameter value detected" (§2). That message is the row's reason, with the
  user named and Moodle's ``debuginfo`` when the site's debugging is on. Refused here
  before sending, with a clearer reason: a user without email (Moodle requires one) and
  HTML tags in a text field (Moodle's parameter check rejects them).
- **Update**: ``core_user_update_users``, every field (the port writes whole records),
  chunks of ``batch_size``. Each item is its own transaction in Moodle: per-item warnings
  (``useremailduplicate``, ``dmlwriteexception`` for a username taken, ``invaliduserid``)
  become one refusal naming the users (the others were applied). A password the site's
  policy refuses makes the whole reply ``invalidresponse`` (§5.6) although the other items
  were applied and the refused user is left unchanged: the refusal says so. The
  placeholder usernames the users processor uses to swap keys (``#<id>#``) are not valid
  on Moodle: they are sent as ``syncd.vacating.<id>`` (overwritten in the same flush).
- **Delete**: the users processor deletes by an update with ``deleted=True``; that is sent
  as ``core_user_delete_users`` (whole batch; the admin or an unknown id refuse it).
  Moodle unenrols the user everywhere: the cached course rosters are dropped.
- **Suspend**: the ``suspended`` field of every update.
- **Dry run**: reads only; new users get negative ids; nothing is remembered.
"""

from __future__ import annotations

import dataclasses
import html
import re
import secrets
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

from syncd.domain import PlatformRefused
from syncd.platform.base import UserRecord
from syncd.platform.moodle._roster import ROSTERS
from syncd.platform.moodle._ws import PLATFORM, Ws, chunked, not_supported, refused
from syncd.platform.moodle.errors import MoodleWarning, MoodleWsError, warnings_of

GET = "core_user_get_users_by_field"
CREATE = "core_user_create_users"
UPDATE = "core_user_update_users"
DELETE = "core_user_delete_users"
#: kept site-cache entry: user id -> the password hash syncd last set for the user
PASSWORDS = "moodle.user.passwords"
#: kept site-cache entry: profile field shortnames this site turned out not to have
UNKNOWN_FIELDS = "moodle.user.unknown_profile_fields"
SITE_TIMEZONE = "99"
#: text fields Moodle checks as PARAM_NOTAGS / PARAM_TEXT (tags make the call fail)
TEXT_FIELDS = ("firstname", "lastname", "institution", "department", "city", "phone1", "phone2", "address",
               "description")
PLAIN_FIELDS = ("institution", "department", "city", "country", "phone1", "phone2", "address")
_SCRAMBLED = re.compile(r"[0-9a-f]{32}")  # delete_user() sets email = md5(username)
_PLACEHOLDER = re.compile(r"#(\d+)#")
_TAG = re.compile(r"<[A-Za-z/!?]")
#: hints for update_users warning codes (Moodle's own messages are terse)
_HINTS = {
    "useremailduplicate": "the email address is already used by another user (Moodle compares emails "
                          "case-insensitively)",
    "dmlwriteexception": "probably the username is already taken by another user",
}

Item = dict[str, Any]


def is_deleted(item: Mapping[str, Any]) -> bool:
    """Whether a user reply is a deleted user (scrambled email: an md5 hex, no ``@``)."""
    email = str(item.get("email") or "")
    return "@" not in email and bool(_SCRAMBLED.fullmatch(email))


def _text(value: Any) -> str:
    text = "" if value is None else str(value)
    return text if "<" in text else html.unescape(text)


def record_of(item: Mapping[str, Any], password_hash: str | None = None) -> UserRecord:
    """A user reply as the port's record (see the module docstring)."""
    profile = {str(f["shortname"]): "" if f.get("value") is None else str(f["value"])
               for f in item.get("customfields") or () if isinstance(f, dict) and f.get("shortname")}
    timezone = str(item.get("timezone") or "")
    user = UserRecord(
        username=str(item.get("username") or ""),
        firstname=str(item.get("firstname") or ""),
        lastname=str(item.get("lastname") or ""),
        idnumber=str(item.get("idnumber") or "") or None,
        email=str(item.get("email") or "") or None,
        auth=str(item.get("auth") or "manual"),
        lang=str(item.get("lang") or ""),
        timezone="" if timezone == SITE_TIMEZONE else timezone,
        description=_text(item.get("description")),
        suspended=bool(item.get("suspended")),
        deleted=is_deleted(item),
        profile=profile,
        password_hash=password_hash,
        id=int(item["id"]),
    )
    for name in PLAIN_FIELDS:
        setattr(user, name, str(item.get(name) or ""))
    return user


def random_password() -> str:
    """A password nobody knows that passes any sensible password policy."""
    return f"{secrets.token_urlsafe(24)}-Aa1#"


def describe(user: UserRecord) -> str:
    """How a refusal names a user."""
    return f"user {user.username!r}" + (f" (id {user.id})" if user.id is not None and user.id > 0 else "")


def _one_refused(exc: PlatformRefused, users: Sequence[UserRecord]) -> PlatformRefused:
    """A refusal of a whole call, with the user named when it was the only one (and the
    reason Moodle's debugging gives, if on)."""
    if len(users) != 1:
        return exc
    cause = exc.__cause__
    debug = cause.debuginfo if isinstance(cause, MoodleWsError) and cause.debuginfo else ""
    return PlatformRefused(f"{exc}: {describe(users[0])}" + (f": {debug}" if debug else ""))


class MoodleUsers:
    """Users of a Moodle site (see the module docstring)."""

    def __init__(self, ws: Ws) -> None:
        self._ws = ws
        self._deleted: set[int] = set()  # deleted users this transaction has read
        self._profiles: dict[int, dict[str, str]] = {}  # profile as read, to clear removed fields
        self._before: dict[int, UserRecord] = {}  # as first read in this transaction (for the undo)

    # -- reads ------------------------------------------------------------------------

    def find(self, *, usernames: Collection[str] = (), idnumbers: Collection[str] = (),
             emails: Collection[str] = ()) -> list[UserRecord]:
        """Every user matching a key (emails case-insensitively): two rounds of look-ups at most."""
        names = {u for u in usernames if u}
        numbers = {i for i in idnumbers if i}
        wanted_emails = {e.lower() for e in emails if e}
        found: dict[int, Item] = {}
        self._take(found, self._lookup("username", sorted(names)))
        have_numbers = {str(i.get("idnumber") or "") for i in found.values()}
        have_emails = {str(i.get("email") or "").lower() for i in found.values()}
        forms = {form for e in emails if e and e.lower() not in have_emails for form in (e, e.lower())}
        size = self._ws.lookup_size
        params = [self._params("idnumber", c) for c in chunked(sorted(numbers - have_numbers), size)]
        params += [self._params("email", c) for c in chunked(sorted(forms), size)]
        for reply in self._ws.read_all(GET, params) if params else []:
            self._take(found, reply if isinstance(reply, list) else [])
        kept = self._passwords()
        users = []
        for user_id, item in sorted(found.items()):
            user = record_of(item, kept.get(user_id))
            if (user.username in names or (user.idnumber or "") in numbers
                    or (user.email or "").lower() in wanted_emails):
                users.append(user)
                self._remember(user)
                if user.id is not None:  # a copy: the processor changes the records it gets
                    self._before.setdefault(user.id, dataclasses.replace(user, profile=dict(user.profile)))
        return users

    def deleted(self, user_ids: Collection[int]) -> set[int]:
        """Those of these ids whose user is deleted in Moodle, or unknown to it."""
        ids = sorted({i for i in user_ids if i > 0})
        live = {int(i["id"]) for i in self._lookup("id", ids) if not is_deleted(i)}
        return {i for i in ids if i not in live}

    # -- writes -----------------------------------------------------------------------

    def add(self, users: Sequence[UserRecord]) -> None:
        """Create users (chunks of batch_size, whole-batch calls) and set their ids."""
        if not users:
            return
        for user in users:
            self._check(user)
        for chunk in chunked(users, self._ws.batch_size):
            try:
                ids = self._ws.create(CREATE, "users", [self._create_item(u) for u in chunk], self._existing)
            except PlatformRefused as exc:
                raise _one_refused(exc, chunk) from exc.__cause__
            for user, user_id in zip(chunk, ids, strict=True):
                user.id = user_id
                self._remember(user)
            suspended = [u for u in chunk if u.suspended]
            if suspended and not self._ws.dry_run:
                self._update_chunks(suspended, lambda u: {"id": u.id, "suspended": 1}, passwords=False)
            if not self._ws.dry_run:
                self._kept_passwords(chunk)
                self._verify_profiles(chunk)

    def update(self, users: Sequence[UserRecord]) -> None:
        """Write these users by id: deletions as core_user_delete_users, the rest as updates."""
        real = [u for u in users if u.id is None or u.id > 0]  # dry run: negative = pretended
        if any(u.id is None for u in real):
            raise PlatformRefused(f"{PLATFORM}: a user to update has no id")
        revived = [u for u in real if not u.deleted and u.id in self._deleted]
        if revived:
            raise not_supported(f"reviving a deleted user ({describe(revived[0])}): Moodle keeps no way back "
                                "from a deletion; create a new account instead")
        gone = [u for u in real if u.deleted and u.id not in self._deleted]
        changed = [u for u in real if not u.deleted]
        for user in changed:
            self._check(user)
        if changed:
            self._undo_later(changed)
            self._update_chunks(changed, self._update_item, passwords=True)
            if not self._ws.dry_run:
                self._verify_profiles(changed)
        if gone:
            self._delete(gone)

    # -- payloads ---------------------------------------------------------------------

    def _fields(self, user: UserRecord) -> Item:
        username = user.username
        if match := _PLACEHOLDER.fullmatch(username):
            username = f"syncd.vacating.{match.group(1)}"
        item: Item = {"username": username, "auth": user.auth or "manual", "firstname": user.firstname,
                      "lastname": user.lastname, "email": user.email or "", "idnumber": user.idnumber or "",
                      **{name: getattr(user, name) for name in PLAIN_FIELDS},
                      "timezone": user.timezone or SITE_TIMEZONE, "description": user.description}
        if user.lang:
            item["lang"] = user.lang
        return item

    def _custom(self, user: UserRecord) -> list[Item]:
        loaded = self._profiles.get(user.id, {}) if user.id is not None else {}
        values = {name: "" for name in loaded if name not in user.profile} | dict(user.profile)
        return [{"type": name, "value": value} for name, value in sorted(values.items())]

    def _create_item(self, user: UserRecord) -> Item:
        item = self._fields(user)
        if user.password:
            item["password"] = user.password
        elif user.password_to_generate:
            item["createpassword"] = 1
        else:
            item["password"] = random_password()
        item["customfields"] = self._custom(user)
        if user.must_change_password and not user.password_to_generate:
            item["preferences"] = [{"type": "auth_forcepasswordchange", "value": "1"}]
        return item

    def _update_item(self, user: UserRecord) -> Item:
        item: Item = {"id": user.id, **self._fields(user), "suspended": int(user.suspended)}
        if user.password:
            item["password"] = user.password
        elif user.password_hash is None and user.id in self._passwords():
            item["password"] = random_password()  # *NOPASS* on a user syncd gave a password
        item["customfields"] = self._custom(user)
        return item

    def _undo_later(self, users: Sequence[UserRecord]) -> None:
        """If the transaction fails, these users get the fields they were read with again
        (not a password: Moodle shows none; registered before sending: a restore of a user
        the update did not reach changes nothing)."""
        restore = []
        for user in users:
            before = self._before.get(user.id) if user.id is not None else None
            if before is None:
                continue
            names = sorted(set(before.profile) | set(user.profile))
            restore.append({"id": before.id, **self._fields(before), "suspended": int(before.suspended),
                            "customfields": [{"type": n, "value": before.profile.get(n, "")} for n in names]})
        if restore:
            self._ws.undo_later(UPDATE, {"users": restore})

    def _check(self, user: UserRecord) -> None:
        """Refuse, before sending, what Moodle would refuse with no useful reason (or ignore)."""
        if not user.email:
            raise PlatformRefused(f"{PLATFORM}: {describe(user)} has no email address; Moodle requires one")
        unknown = sorted(n for n, v in user.profile.items() if v and n in self._unknown_fields())
        if unknown:
            raise _no_such_fields(user, unknown)
        for name in TEXT_FIELDS:
            if _TAG.search(getattr(user, name)):
                raise PlatformRefused(f"{PLATFORM}: {describe(user)}: {name} holds HTML tags, which Moodle's "
                                      "web services refuse")

    # -- calls ------------------------------------------------------------------------

    def _update_chunks(self, users: Sequence[UserRecord], payload: Callable[[UserRecord], Item], *,
                       passwords: bool) -> None:
        """core_user_update_users chunk by chunk; per-item warnings -> one refusal."""
        if self._ws.dry_run:
            return
        for chunk in chunked(users, self._ws.batch_size):
            try:
                reply = self._ws.client.call(UPDATE, {"users": [payload(u) for u in chunk]})
            except MoodleWsError as exc:
                raise self._update_refused(exc, chunk) from exc
            warnings = warnings_of(reply)
            failed = {w.itemid for w in warnings}
            if passwords:
                self._kept_passwords([u for u in chunk if u.id not in failed])
            if warnings:
                raise self._warned(warnings, chunk)

    def _update_refused(self, exc: MoodleWsError, chunk: Sequence[UserRecord]) -> PlatformRefused:
        if exc.errorcode != "invalidresponse":
            return _one_refused(refused(exc), chunk)
        with_password = [u for u in chunk if u.password]
        if not with_password:
            return PlatformRefused(f"{refused(exc)}: Moodle applied some of these users and could not say "
                                   f"which ({', '.join(describe(u) for u in chunk[:5])})")
        who = " or ".join(describe(u) for u in with_password[:5])
        return PlatformRefused(f"{refused(exc)}: the site's password policy refused the password of {who}; "
                               "that user was left unchanged (Moodle applied the other users of the call)")

    def _warned(self, warnings: Sequence[MoodleWarning], chunk: Sequence[UserRecord]) -> PlatformRefused:
        by_id = {u.id: u for u in chunk}
        texts = []
        for warning in warnings[:5]:
            user = by_id.get(warning.itemid)
            who = describe(user) if user is not None else f"user id {warning.itemid}"
            hint = _HINTS.get(warning.warningcode or "")
            texts.append(f"{who}: {warning.message or warning.warningcode}" + (f" ({hint})" if hint else ""))
        return PlatformRefused(f"{PLATFORM}: {'; '.join(texts)} ({UPDATE})")

    def _delete(self, users: Sequence[UserRecord]) -> None:
        if self._ws.dry_run:
            return
        try:
            for chunk in chunked(users, self._ws.batch_size):
                try:
                    self._ws.write(DELETE, {"userids": [u.id for u in chunk]})
                except PlatformRefused as exc:
                    raise _one_refused(exc, chunk) from exc.__cause__
                kept = self._passwords()
                for user in chunk:
                    assert user.id is not None
                    kept.pop(user.id, None)
                    self._deleted.add(user.id)
        finally:
            self._ws.cache.forget(ROSTERS)  # Moodle unenrolled them everywhere

    # -- helpers ----------------------------------------------------------------------

    @staticmethod
    def _params(field: str, values: Iterable[Any]) -> Item:
        return {"field": field, "values": list(values)}

    def _lookup(self, field: str, values: Sequence[Any]) -> list[Any]:
        return self._ws.lookup(GET, values, lambda chunk: self._params(field, chunk))

    @staticmethod
    def _take(found: dict[int, Item], items: Iterable[Any]) -> None:
        for item in items:
            if isinstance(item, dict) and isinstance(item.get("id"), int):
                found[item["id"]] = item

    def _remember(self, user: UserRecord) -> None:
        if user.id is None or user.id <= 0:
            return
        self._profiles[user.id] = dict(user.profile)
        if user.deleted:
            self._deleted.add(user.id)

    def _unknown_fields(self) -> set[str]:
        empty: set[str] = set()
        return self._ws.cache.kept(UNKNOWN_FIELDS, lambda: empty)

    def _verify_profiles(self, users: Sequence[UserRecord]) -> None:
        """Read back the users given profile values; refuse (and remember) fields Moodle ignored."""
        sent = {u.id: u for u in users if u.id is not None and any(u.profile.values())}
        if not sent:
            return
        stored = {int(i["id"]): record_of(i).profile for i in self._lookup("id", sorted(sent))
                  if isinstance(i, Mapping) and isinstance(i.get("id"), int)}
        for user_id, user in sorted(sent.items()):
            missing = sorted(n for n, v in user.profile.items() if v and n not in stored.get(user_id, {}))
            if missing:
                self._unknown_fields().update(missing)
                raise _no_such_fields(user, missing)

    def _passwords(self) -> dict[int, str]:
        empty: dict[int, str] = {}
        return self._ws.cache.kept(PASSWORDS, lambda: empty)

    def _kept_passwords(self, users: Iterable[UserRecord]) -> None:
        """Remember the hashes of the passwords just set (or forget them)."""
        kept = self._passwords()
        for user in users:
            if user.id is None or user.id <= 0:
                continue
            if user.password and user.password_hash:
                kept[user.id] = user.password_hash
            elif user.password_hash is None:
                kept.pop(user.id, None)

    def _existing(self, chunk: Sequence[Mapping[str, Any]]) -> list[int | None]:
        """After a lost create reply: the id of each item Moodle has, by username."""
        found = {str(i.get("username")): int(i["id"])
                 for i in self._lookup("username", [str(c["username"]) for c in chunk])
                 if isinstance(i, dict) and isinstance(i.get("id"), int)}
        return [found.get(str(c["username"])) for c in chunk]


def _no_such_fields(user: UserRecord, names: Sequence[str]) -> PlatformRefused:
    fields = ", ".join(f"profile_field_{n}" for n in names)
    return PlatformRefused(f"{PLATFORM}: {describe(user)}: {fields}: no such user profile field on this "
                           "Moodle site (Moodle ignores it without a word); add it in Site administration > "
                           "Users > User profile fields, or drop the column")
