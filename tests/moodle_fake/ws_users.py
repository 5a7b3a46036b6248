"""Users and the site: core_user_* functions, core_webservice_get_site_info and upload.php's draft files.

Behaviour from ``core_user_*.json``, ``core_webservice_get_site_info.json`` and README §4, §5.6, §5.8,
§5.15: create_users is one transaction for the whole batch; update_users gives each item its own
transaction and turns failures into warnings (a password-policy failure puts HTML into ``warningcode``,
so the whole reply becomes ``invalidresponse`` with every item still applied); get_users_by_field
compares exactly (email is case-sensitive), returns deleted users by id (scrambled), and leaves out
empty optional keys. User names come back raw: no user recording shows HTML escaping.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from typing import Any

from tests.moodle_fake.errors import (
    MISSING_RECORD,
    MOODLE_EXCEPTION,
    WsError,
    coding_error,
    invalid_parameter,
    invalid_response,
    moodle_error,
)
from tests.moodle_fake.records import User
from tests.moodle_fake.schema import DEFAULT, OPTIONAL, Single, dflt, many, opt, req, struct
from tests.moodle_fake.site import Site
from tests.moodle_fake.ws_files import set_picture, update_picture
from tests.moodle_fake.ws_userinfo import SERVICE_ORDER, site_info_reply, user_details
from tests.moodle_fake.wsbase import WsFunction

__all__ = ["FUNCTIONS", "SERVICE_ORDER", "password_matches"]

INTERNAL_AUTHS = frozenset({"manual", "email", "webservice"})
THEMES = frozenset({"boost", "classic"})  # the themes of a stock Moodle 4.5
# validate_email() of Moodle's moodlelib.php
_ATOM = r"[-!#$%&'*+\\/0-9=?A-Z^_`a-z{|}~]"
_EMAIL = re.compile(rf"{_ATOM}+(\.{_ATOM}+)*@{_ATOM}+\.[-!#$%&'*+\\/0-9=?A-Z^_`a-z{{|}}~.]+\Z")
# the password policy of a stock site with passwordpolicy=1 (check_password_policy, in its order)
_POLICY = (
    (lambda p: len(p) >= 8, "Passwords must be at least 8 characters long."),
    (lambda p: len(re.findall(r"[0-9]", p)) >= 1, "Passwords must have at least 1 digit(s)."),
    (lambda p: len(re.findall(r"[a-z]", p)) >= 1, "Passwords must have at least 1 lower case letter(s)."),
    (lambda p: len(re.findall(r"[A-Z]", p)) >= 1, "Passwords must have at least 1 upper case letter(s)."),
    (lambda p: len(re.findall(r"[^a-zA-Z0-9]", p)) >= 1,
     "The password must have at least 1 special character(s) such as *, -, or #."),
)

# -- helpers --------------------------------------------------------------------------------


def validate_email(address: str) -> bool:
    """Moodle's ``validate_email``."""
    return bool(_EMAIL.match(address))


def password_errors(site: Site, password: str) -> str:
    """``check_password_policy``: the ``<div>`` messages, or "" when the password passes."""
    if not site.passwordpolicy:
        return ""
    return "".join(f"<div>{text}</div>" for test, text in _POLICY if not test(password))


def hash_password(password: str) -> str:
    """What the fake stores instead of a password (tests compare with :func:`password_matches`)."""
    return "sha256:" + hashlib.sha256(password.encode()).hexdigest()


def password_matches(user: User, password: str) -> bool:
    """Whether ``password`` is the user's password."""
    return user.password == hash_password(password)


def _email_taken(site: Site, email: str, but: int = 0) -> bool:
    """Case-insensitive, like Moodle's duplicate-email check (allowaccountssameemail=0)."""
    wanted = email.lower()
    return any(site.get("users", key).id != but for key in site.keys_by("users", "email_lower", wanted))


def _policy_error(html: str) -> WsError:
    return moodle_error(html)


_USER_FIELDS = {"auth", "idnumber", "suspended", "city", "country", "lang", "timezone", "theme",
                "calendartype", "institution", "department", "description", "phone1", "phone2", "address",
                "mailformat", "maildisplay", "email", "firstname", "lastname", "username"}


def _split_fields(item: dict[str, Any]) -> tuple[dict[str, Any], tuple[tuple[str, Any], ...]]:
    """The User columns of a web-service item, and the other accepted fields (``extra``)."""
    columns = {k: (int(v) if isinstance(v, bool) else v) for k, v in item.items() if k in _USER_FIELDS}
    if "country" in columns and not re.fullmatch(r"[A-Z]{2}", columns["country"]):
        # core_user::clean_data() empties a country outside the ISO list ("France" is stored as "")
        columns["country"] = ""
    extra = tuple((k, v) for k, v in item.items() if k in _EXTRA_NAMES)
    return columns, extra


def _custom(site: Site, items: list[dict[str, str]] | None, old: tuple[tuple[str, str], ...] = ()
            ) -> tuple[tuple[str, str], ...]:
    """Profile fields: values of known shortnames replace the old ones; unknown ones are ignored."""
    values = dict(old)
    for entry in items or []:
        if entry["type"] in site.profile_fields:
            values[entry["type"]] = entry["value"]
    return tuple(values.items())


def _prefs(items: list[dict[str, str]] | None,
           old: tuple[tuple[str, str], ...] = ()) -> tuple[tuple[str, str], ...]:
    values = dict(old)
    for entry in items or []:
        values[entry["type"]] = entry["value"]
    return tuple(values.items())


# -- parameter descriptions --------------------------------------------------------------------

_EXTRA_NAMES = ("firstnamephonetic", "lastnamephonetic", "middlename", "alternatename", "interests")
_PAIRS = many(struct(type=req("alphanumext"), value=req("raw")), OPTIONAL)
_PREFS = many(struct(type=req("raw"), value=req("raw")), OPTIONAL)
_COMMON = {
    "maildisplay": opt("int"), "city": opt("notags"), "country": opt("alpha"), "timezone": opt("timezone"),
    "description": opt("raw"), "firstnamephonetic": opt("notags"), "lastnamephonetic": opt("notags"),
    "middlename": opt("notags"), "alternatename": opt("notags"), "interests": opt("text"),
}
_CREATE = Single({"users": many(Single({
    "createpassword": opt("bool"), "username": req("username"), "auth": dflt("auth", "manual"),
    "password": opt("raw"), "firstname": req("notags"), "lastname": req("notags"),
    "email": req("raw_trimmed"),
    **_COMMON, "idnumber": dflt("raw", ""), "institution": opt("text"), "department": opt("text"),
    "phone1": opt("notags"), "phone2": opt("notags"), "address": opt("text"), "lang": dflt("lang", "en"),
    "calendartype": dflt("plugin", "gregorian"), "theme": opt("plugin"), "mailformat": opt("int"),
    "customfields": _PAIRS, "preferences": _PREFS,
}))})
_UPDATE = Single({"users": many(Single({
    "id": req("int"), "username": opt("username"), "auth": opt("auth"), "suspended": opt("bool"),
    "password": opt("raw"), "firstname": opt("notags"), "lastname": opt("notags"),
    "email": opt("raw_trimmed"),
    **_COMMON, "userpicture": opt("int"), "idnumber": opt("raw"), "institution": opt("text"),
    "department": opt("text"), "phone1": opt("notags"), "phone2": opt("notags"), "address": opt("text"),
    "lang": opt("lang"), "calendartype": opt("plugin"), "theme": opt("plugin"), "mailformat": opt("int"),
    "customfields": _PAIRS, "preferences": _PREFS,
}))})

# -- core_user_create_users --------------------------------------------------------------------


def create_users(site: Site, cleaned: dict[str, Any]) -> list[dict[str, Any]]:
    """Every user or none: the first bad item raises and the whole batch is rolled back."""
    created = []
    for item in cleaned["users"]:
        for name in ("username", "firstname", "lastname"):
            if item[name].strip() == "":
                raise invalid_parameter(f"The field {name} cannot be blank")
        if site.keys_by("users", "username", item["username"]):  # deleted users too
            raise invalid_parameter(f"Username already exists: {item['username']}")
        if item["lang"] not in site.langs:
            raise invalid_parameter(f"Invalid language code: {item['lang']}")
        if item.get("theme") and item["theme"] not in THEMES:
            raise invalid_parameter(f"Invalid theme: {item['theme']}")
        internal = item["auth"] in INTERNAL_AUTHS
        if internal and not item.get("password") and not item.get("createpassword"):
            raise invalid_parameter("Invalid password: you must provide a password, or set createpassword.")
        if not validate_email(item["email"]):
            raise invalid_parameter(f"Email address is invalid: {item['email']}")
        if not site.allowaccountssameemail and _email_taken(site, item["email"]):
            raise invalid_parameter(f"Email address already exists: {item['email']}")
        create = bool(item.get("createpassword"))
        password = ""
        if internal and not create:
            errors = password_errors(site, item.get("password", ""))
            if errors:
                raise _policy_error(errors)
            password = hash_password(item.get("password", ""))
        columns, extra = _split_fields(item)
        prefs = _prefs(item.get("preferences"))
        if create:
            prefs = _prefs([{"type": "auth_forcepasswordchange", "value": "1"}], prefs)
        userid = site.add_user(columns.pop("username"), firstname=columns.pop("firstname"),
                               lastname=columns.pop("lastname"), email=columns.pop("email"),
                               password=password, extra=extra, preferences=prefs, **columns)
        site.put("users", userid, replace(site.get("users", userid),
                                          customfields=_custom(site, item.get("customfields"))))
        created.append({"id": userid, "username": item["username"]})
    return created


# -- core_user_update_users --------------------------------------------------------------------

_WARNING_CODE = re.compile(r"[A-Za-z0-9]*\Z")  # external_warnings: warningcode is PARAM_ALPHANUM


def _update_one(site: Site, item: dict[str, Any]) -> None:
    user: User | None = site.get("users", item["id"])
    if user is None:
        raise moodle_error("invaliduserid")
    if user.deleted:
        raise moodle_error("usernotexists")
    if user.id == 1:
        raise WsError(MOODLE_EXCEPTION, "guestnoeditprofileother",
                      "The guest user profile cannot be edited.")
    email = item.get("email")
    if email is not None and email != user.email:
        if not validate_email(email):
            raise moodle_error("useremailinvalid")
        if not site.allowaccountssameemail and _email_taken(site, email, but=user.id):
            raise moodle_error("useremailduplicate")
    changes, extra = _split_fields(item)
    if "password" in item:
        errors = password_errors(site, item["password"])
        if errors:
            raise _policy_error(errors)
        changes["password"] = hash_password(item["password"])
    username = item.get("username")
    if username is not None and username != user.username and site.user_by_username(username) is not None:
        raise WsError("dml_write_exception", "dmlwriteexception", "Error writing to database",
                      'ERROR: duplicate key value violates unique constraint "mdl_user_mneuse_uix"')
    if "userpicture" in item:  # 0 deletes the picture, else a draft item id holding the new one
        set_picture(site, user.id, item["userpicture"])
        user = site.get("users", user.id)
    updated = replace(user, **changes, extra=tuple({**dict(user.extra), **dict(extra)}.items()),
                      customfields=_custom(site, item.get("customfields"), user.customfields),
                      preferences=_prefs(item.get("preferences"), user.preferences), timemodified=site.now())
    site.put("users", user.id, updated)


def update_users(site: Site, cleaned: dict[str, Any]) -> dict[str, Any]:
    """Each item in its own transaction; a failed item becomes a warning (README §4, §5.6)."""
    warnings = []
    for item in cleaned["users"]:
        mark = site.savepoint()
        try:
            _update_one(site, item)
        except WsError as err:
            site.rollback_to(mark)
            warnings.append({"item": "user", "itemid": item["id"], "warningcode": err.errorcode or "",
                             "message": err.message})
    for warning in warnings:
        if not _WARNING_CODE.match(warning["warningcode"]):
            site.end()  # the items are committed; only the reply fails its validation
            raise invalid_response(
                "warnings => Invalid response value detected: "
                "warningcode => Invalid response value detected: "
                f'Invalid external api response: the value is "{warning["warningcode"]}" of PHP type '
                '"string", the server was expecting "alphanum" type')
    return {"warnings": warnings}


# -- core_user_delete_users ----------------------------------------------------------------------


def delete_users(site: Site, cleaned: dict[str, Any]) -> None:
    """All or nothing; unknown or already deleted users give ``invaliduser``, admins ``useradminodelete``."""
    for userid in cleaned["userids"]:
        user: User | None = site.get("users", userid)
        if user is None or user.deleted:
            raise WsError(MISSING_RECORD, "invaliduser", "Invalid user",
                          f"SELECT * FROM {{user}} WHERE id = ? AND deleted = ?\n[array (\n  0 => {userid},\n"
                          "  1 => 0,\n)]")
        if userid == site.admin_id:
            raise moodle_error("useradminodelete")
        if userid == 1:
            continue  # delete_user() refuses the guest with a debugging message only
        site.delete_user(userid)


# -- core_user_get_users_by_field ------------------------------------------------------------------


def _cleaned_value(field: str, value: str) -> tuple[Any, bool]:
    """clean_param() of the field's type, and whether PHP's loose ``$value != $cleaned`` holds."""
    if field == "id":
        number = re.fullmatch(r"\s*([+-]?[0-9]+)\s*", value)
        return (int(number.group(1)), True) if number else (0, False)
    clean = value
    if field == "username":
        clean = re.sub(r"[^-.@_a-z0-9]", "", value.strip().lower())
    elif field == "email":
        clean = value.strip()
    return clean, clean == value


def get_users_by_field(site: Site, cleaned: dict[str, Any]) -> list[dict[str, Any]]:
    """Exact matches (``email`` too: case-sensitive), by id, deleted users included."""
    field = cleaned["field"]
    if field not in ("id", "idnumber", "username", "email"):
        raise coding_error("invalid field parameter",
                           f"The search field '{field}' is not supported, "
                           "look at the web service documentation")
    wanted = []
    for value in cleaned["values"]:
        clean, same = _cleaned_value(field, value)
        if not same:
            raise invalid_parameter(f"The field '{field}' value is invalid: {value}(cleaned value: {clean})")
        wanted.append(clean)
    return [user_details(site, user) for user in site.users_where(field, wanted)]


# -- core_webservice_get_site_info -----------------------------------------------------------------


def get_site_info(site: Site, cleaned: dict[str, Any]) -> dict[str, Any]:
    """The recorded reply with this site's name, URL, admin and the service's functions."""
    return site_info_reply(site)


FUNCTIONS: list[WsFunction] = [
    WsFunction("core_webservice_get_site_info",
               Single({"serviceshortnames": many(req("alphanumext"), DEFAULT, [])}), get_site_info),
    WsFunction("core_user_create_users", _CREATE, create_users),
    WsFunction("core_user_update_users", _UPDATE, update_users),
    WsFunction("core_user_delete_users", Single({"userids": many(req("int"))}), delete_users),
    WsFunction("core_user_get_users_by_field",
               Single({"field": req("alpha"), "values": many(req("raw"))}), get_users_by_field),
    WsFunction("core_user_update_picture",
               Single({"draftitemid": req("int"), "delete": dflt("bool", False), "userid": dflt("int", 0)}),
               update_picture),
]
