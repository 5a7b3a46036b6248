"""Cohorts and cohort members: the ``core_cohort_*`` functions of the fake Moodle.

Behaviour from the recordings (``core_cohort_*.json`` and their ``debuginfo/`` twins), the rest
from Moodle 4.5's ``cohort/externallib.php`` and ``cohort/lib.php`` (said so where it matters):

- ``idnumber`` is required by create and update; create refuses an idnumber already used (``""``
  counts, so only one cohort can have an empty one), update does not check it (README §5.7);
- create, update, delete and delete_cohort_members are one transaction for the whole batch;
- ``add_cohort_members`` turns each bad item into a warning with a digit code (``"1"`` bad type,
  ``"2"`` no such user or cohort, ``"3"`` already a member) and applies the others; users only by
  ``id`` or ``username``, cohorts by ``id`` or ``idnumber``;
- lists are ordered like Moodle's SQL: by name then idnumber (searches), by id (get_cohorts), members
  by last name then first name.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from tests.moodle_fake.errors import coding_error, invalid_parameter
from tests.moodle_fake.records import CONTEXT_LEVELS, SYSTEM_CONTEXT, Cohort
from tests.moodle_fake.schema import DEFAULT, OPTIONAL, dflt, many, opt, req, struct
from tests.moodle_fake.site import Site
from tests.moodle_fake.ws_groups import missing, must_user, validate_format
from tests.moodle_fake.wsbase import WsFunction

_INT = re.compile(r"\s*-?[0-9]+\s*")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def cohort_reply(cohort: Cohort, *, customfields: bool = True) -> dict[str, Any]:
    """A cohort as get/search return it (create: without ``customfields``; the site has none)."""
    reply: dict[str, Any] = {"id": cohort.id, "name": cohort.name, "idnumber": cohort.idnumber,
                             "description": cohort.description, "descriptionformat": cohort.descriptionformat,
                             "visible": cohort.visible, "theme": cohort.theme}
    if customfields:
        reply["customfields"] = []
    return reply


def must_cohort(site: Site, cohortid: int) -> Cohort:
    """``get_record('cohort', ['id' => $id], '*', MUST_EXIST)``."""
    cohort: Cohort | None = site.get("cohorts", cohortid)
    if cohort is None:
        raise missing("cohort", cohortid)
    return cohort


def _category_id(site: Site, field: str, value: str) -> int | None:
    """``get_field('course_categories', 'id', [$field => $value])``.

    A non-numeric id is a SQL error on PostgreSQL; the fake treats it as "not found" (not recorded)."""
    if field == "id":
        found = site.get("categories", int(value)) if _INT.fullmatch(value) else None
        return None if found is None else int(found.id)
    return next((c.id for c in sorted(site.iter_rows("categories"), key=lambda c: c.id)
                 if c.idnumber == value), None)


def _context_of(site: Site, categorytype: dict[str, str], on_update: bool) -> int:
    """The context id a ``categorytype`` names: system, or a category by id or idnumber."""
    kind, value = categorytype["type"], categorytype["value"]
    if kind not in ("idnumber", "id", "system"):
        raise invalid_parameter(f"category type must be id, idnumber or system:{kind}")
    if kind == "system":
        return SYSTEM_CONTEXT
    catid = _category_id(site, kind, value)
    if catid is None:
        detail = f"category={value}" if on_update else f"category {kind} = {value}"
        raise invalid_parameter(f"category not exists: {detail}")
    contextid: int = site.get("categories", catid).contextid
    return contextid


# -- cohorts -----------------------------------------------------------------------------


def get_cohorts(site: Site, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Cohorts by id (all of them without ids), by id; unknown ids are left out."""
    wanted = set(params["cohortids"])
    rows = sorted(site.iter_rows("cohorts"), key=lambda c: c.id)
    return [cohort_reply(c) for c in rows if not wanted or c.id in wanted]


def create_cohorts(site: Site, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Create cohorts, the whole batch or nothing; the idnumber must be unused (``""`` included)."""
    created = []
    for item in params["cohorts"]:
        contextid = _context_of(site, item["categorytype"], on_update=False)
        if any(c.idnumber == item["idnumber"] for c in site.iter_rows("cohorts")):
            raise invalid_parameter(f"record already exists: idnumber={item['idnumber']}")
        # theme: $CFG->allowcohortthemes is off, so a theme is accepted and stored as sent (4.5 source)
        cohort = Cohort(site.next_id("cohorts"), contextid, item["name"], item["idnumber"],
                        description=item.get("description", ""),
                        descriptionformat=validate_format(item["descriptionformat"]),
                        visible=item.get("visible", True), theme=item.get("theme", ""))
        site.put("cohorts", cohort.id, cohort)
        created.append(cohort_reply(cohort, customfields=False))
    return created


def update_cohorts(site: Site, params: dict[str, Any]) -> None:
    """Update cohorts, the whole batch or nothing; the idnumber is NOT checked (README §5.7).

    Fields left out (description, visible, theme) keep their value (``update_record`` of the sent keys)."""
    for item in params["cohorts"]:
        if not item["name"].strip():
            raise invalid_parameter("Invalid cohort name")  # Moodle 4.5 source, not recorded
        old = must_cohort(site, item["id"])
        contextid = _context_of(site, item["categorytype"], on_update=True)
        changes: dict[str, Any] = {"contextid": contextid, "name": item["name"], "idnumber": item["idnumber"]}
        for key in ("description", "visible", "theme"):
            if key in item:
                changes[key] = item[key]
        if item.get("description"):
            changes["descriptionformat"] = validate_format(item["descriptionformat"])
        site.put("cohorts", old.id, replace(old, **changes))


def delete_cohorts(site: Site, params: dict[str, Any]) -> None:
    """Delete cohorts and their memberships, the whole batch or nothing (an unknown id fails it)."""
    for cohortid in params["cohortids"]:
        cohort = must_cohort(site, cohortid)
        for userid in site.cohort_members(cohort.id):
            site.drop("cohort_members", (cohort.id, userid))
        site.drop("cohorts", cohort.id)


def _search_context(site: Site, context: dict[str, Any]) -> int:
    """``get_context_from_params`` + ``validate_context``: the context id."""
    if context["contextid"]:
        found = site.context(context["contextid"])
        if found is None:
            raise invalid_parameter("Context does not exist")
        contextid: int = context["contextid"]
        return contextid
    if not context["contextlevel"]:
        raise invalid_parameter("Missing parameters, please provide either context level with instance id "
                                "or contextid")
    level = CONTEXT_LEVELS.get(context["contextlevel"])
    if level is None:
        raise invalid_parameter(f"Invalid context level = {context['contextlevel']}")
    found_id = site.context_id(level, context["instanceid"])
    if found_id is None:
        raise invalid_parameter("Context does not exist")
    return found_id


def _matches(cohort: Cohort, query: str) -> bool:
    """``sql_like`` on name, idnumber and description, case-insensitive (ILIKE on a C-collated base)."""
    needle = query.translate(_ASCII_LOWER)
    texts = (cohort.name, cohort.idnumber, cohort.description)
    return any(needle in text.translate(_ASCII_LOWER) for text in texts)


def search_cohorts(site: Site, params: dict[str, Any]) -> dict[str, Any]:
    """Cohorts of a context (``self``), of it and its parents (``parents``) or of the site (``all``).

    Paging follows Moodle 4.5: ``self`` and ``all`` treat ``limitfrom`` as a page number (offset
    limitfrom * limitnum), ``parents`` as an offset; ``limitnum=0`` means no limit (not recorded)."""
    contextid = _search_context(site, params["context"])
    includes = params["includes"]
    if includes == "self":
        contexts: set[int] | None = {contextid}
    elif includes == "parents":
        contexts = set(site.parent_contexts(contextid))  # cohort_get_available_cohorts
    elif includes == "all":
        contexts = None
    else:
        raise coding_error("Invalid parameter value for 'includes'.")
    found = sorted((c for c in site.iter_rows("cohorts")
                    if (contexts is None or c.contextid in contexts) and _matches(c, params["query"])),
                   key=lambda c: (c.name, c.idnumber))
    start, count = params["limitfrom"], params["limitnum"]
    if includes != "parents":
        start *= count
    page = found[start:start + count] if count > 0 else found[start:]
    return {"cohorts": [cohort_reply(c) for c in page]}


# -- members -----------------------------------------------------------------------------


def _warning(code: str, message: str) -> dict[str, str]:
    return {"warningcode": code, "message": message}


def _member_cohort(site: Site, kind: str, value: str) -> Cohort | None:
    """``get_field('cohort', 'id', [$kind => $value])``: the first match (update allows twins)."""
    rows = sorted(site.iter_rows("cohorts"), key=lambda c: c.id)
    if kind == "id":  # a non-numeric id: "not exists" here, a SQL error on PostgreSQL (not recorded)
        return site.get("cohorts", int(value)) if _INT.fullmatch(value) else None
    return next((c for c in rows if c.idnumber == value), None)


def _member_user(site: Site, kind: str, value: str) -> int | None:
    if kind == "id":
        user = site.live_user(int(value)) if _INT.fullmatch(value) else None
        return None if user is None else int(user.id)
    user = site.user_by_username(value)
    return None if user is None else int(user.id)


def add_cohort_members(site: Site, params: dict[str, Any]) -> dict[str, Any]:
    """Add members item by item: a bad item becomes a warning, the others are applied."""
    warnings = []
    for member in params["members"]:
        ctype, utype = member["cohorttype"], member["usertype"]
        if ctype["type"] not in ("id", "idnumber"):
            warnings.append(_warning("1", f"invalid parameter: cohortype={ctype['type']}"))  # sic
            continue
        if utype["type"] not in ("id", "username"):
            warnings.append(_warning("1", f"invalid parameter: usertype={utype['type']}"))
            continue
        cohort = _member_cohort(site, ctype["type"], ctype["value"])
        if cohort is None:
            warnings.append(_warning("2", f"cohort {ctype['type']}={ctype['value']} not exists"))
            continue
        userid = _member_user(site, utype["type"], utype["value"])
        if userid is None:
            warnings.append(_warning("2", f"user {utype['type']}={utype['value']} not exists"))
            continue
        if site.get("cohort_members", (cohort.id, userid)) is not None:
            warnings.append(_warning("3", f"record already exists: cohort({ctype['type']}={ctype['value']} "
                                          f"{utype['type']}={utype['value']})"))
            continue
        site.put("cohort_members", (cohort.id, userid), site.now())
    return {"warnings": warnings}


def delete_cohort_members(site: Site, params: dict[str, Any]) -> None:
    """Remove members, the whole batch or nothing; a non-member is silently ignored."""
    for member in params["members"]:
        cohort = must_cohort(site, member["cohortid"])
        user = must_user(site, member["userid"])
        site.drop("cohort_members", (cohort.id, user.id))


def get_cohort_members(site: Site, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Members of cohorts (an unknown cohort fails the call), by last name then first name."""
    replies = []
    for cohortid in params["cohortids"]:
        cohort = must_cohort(site, cohortid)
        replies.append({"cohortid": cohortid, "userids": site.by_lastname(site.cohort_members(cohort.id))})
    return replies


_CATEGORYTYPE = struct(type=req("text"), value=req("raw"))
_CUSTOMFIELDS = many(struct(shortname=req("alphanumext"), value=req("raw")), mode=OPTIONAL)
_COHORT_FIELDS: dict[str, Any] = {
    "categorytype": _CATEGORYTYPE, "name": req("raw"), "idnumber": req("raw"), "description": opt("raw"),
    "descriptionformat": dflt("int", 1), "visible": opt("bool"), "theme": opt("plugin"),
    "customfields": _CUSTOMFIELDS,
}
_MEMBER_KEY = struct(type=req("alphanumext"), value=req("raw"))

FUNCTIONS: list[WsFunction] = [
    WsFunction("core_cohort_get_cohorts", struct(cohortids=many(req("int"), DEFAULT, [])),
               get_cohorts),
    WsFunction("core_cohort_search_cohorts", struct(
        query=req("raw"), context=struct(contextid=dflt("int", 0), contextlevel=dflt("alpha", ""),
                                         instanceid=dflt("int", 0)),
        includes=dflt("alpha", "parents"), limitfrom=dflt("int", 0), limitnum=dflt("int", 25)),
        search_cohorts),
    WsFunction("core_cohort_create_cohorts", struct(cohorts=many(struct(**_COHORT_FIELDS))), create_cohorts),
    WsFunction("core_cohort_update_cohorts", struct(cohorts=many(struct(id=req("int"), **_COHORT_FIELDS))),
               update_cohorts),
    WsFunction("core_cohort_delete_cohorts", struct(cohortids=many(req("int"))), delete_cohorts),
    WsFunction("core_cohort_add_cohort_members", struct(members=many(struct(
        cohorttype=_MEMBER_KEY, usertype=_MEMBER_KEY))), add_cohort_members),
    WsFunction("core_cohort_delete_cohort_members", struct(members=many(struct(
        cohortid=req("int"), userid=req("int")))), delete_cohort_members),
    WsFunction("core_cohort_get_cohort_members", struct(cohortids=many(req("int"))), get_cohort_members),
]
