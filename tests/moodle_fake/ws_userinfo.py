"""Replies that describe users and the site: ``user_get_user_details`` and the site info.

Shapes from ``core_user_get_users_by_field.json`` and ``_site.json``: a user's optional keys
(``idnumber``, ``institution``, ``city``, ``country``, ``address``, phones, ``description``,
``customfields``) only appear when not empty; ``department`` always does. The site info is the
recorded reply with this site's name, URL, admin and the service's functions.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tests.moodle_fake.records import User
from tests.moodle_fake.render import XML_NULL
from tests.moodle_fake.site import THEMEREV, Site

VERSION = "2024100700.09"
RELEASE = "4.5+ (Build: 20241205)"
#: the recorded service's functions, in the order get_site_info lists them (``_site.json``)
SERVICE_ORDER: tuple[str, ...] = (
    "core_cohort_add_cohort_members", "core_cohort_create_cohorts", "core_cohort_delete_cohort_members",
    "core_cohort_delete_cohorts", "core_cohort_get_cohort_members", "core_cohort_search_cohorts",
    "core_cohort_get_cohorts", "core_cohort_update_cohorts", "core_course_create_categories",
    "core_course_create_courses", "core_course_delete_courses", "core_course_duplicate_course",
    "core_course_get_categories", "core_course_get_contents", "core_course_get_courses",
    "core_course_import_course", "core_course_update_courses", "core_course_get_courses_by_field",
    "core_enrol_get_course_enrolment_methods", "core_enrol_get_enrolled_users",
    "core_enrol_get_users_courses",
    "core_group_add_group_members", "core_group_assign_grouping", "core_group_create_groupings",
    "core_group_create_groups", "core_group_delete_group_members", "core_group_delete_groups",
    "core_group_get_course_groupings", "core_group_get_course_groups", "core_group_get_group_members",
    "core_group_get_groupings", "core_group_get_groups", "core_role_assign_roles", "core_role_unassign_roles",
    "core_user_create_users", "core_user_delete_users", "core_user_get_users", "core_user_get_users_by_field",
    "core_user_update_users", "core_user_update_picture", "core_webservice_get_site_info",
    "enrol_manual_enrol_users", "enrol_manual_unenrol_users",
)
_FEATURES = (("usecomments", 1), ("usetags", 1), ("enablenotes", 1), ("messaging", 1), ("enableblogs", 1),
             ("enablecompletion", 1), ("enablebadges", 1), ("messagingallusers", 0),
             ("enablecustomreports", 1),
             ("enableglobalsearch", 0), ("mnet_dispatcher_mode", 0), ("enablecompetencies", 1))


def picture_urls(site: Site, user: User) -> tuple[str, str]:
    """``profileimageurlsmall`` and ``profileimageurl``: the theme's default, or the user's icon."""
    if user.picture:
        base = f"{site.wwwroot}/pluginfile.php/{user.contextid}/user/icon/boost"
        return f"{base}/f2?rev={user.picture}", f"{base}/f1?rev={user.picture}"
    base = f"{site.wwwroot}/theme/image.php/boost/core/{THEMEREV}/u"
    return f"{base}/f2", f"{base}/f1"


def user_details(site: Site, user: User) -> dict[str, Any]:
    """``user_get_user_details`` as an admin sees another user, keys in the reply's order."""
    out: dict[str, Any] = {"id": user.id, "username": user.username, "firstname": user.firstname,
                           "lastname": user.lastname, "fullname": user.fullname, "email": user.email}
    for key in ("address", "phone1", "phone2"):
        if getattr(user, key):
            out[key] = getattr(user, key)
    out["department"] = user.department
    for key in ("institution", "idnumber"):
        if getattr(user, key):
            out[key] = getattr(user, key)
    interests = dict(user.extra).get("interests")
    if interests:
        out["interests"] = interests
    out.update({"firstaccess": 0, "lastaccess": 0, "auth": user.auth, "suspended": bool(user.suspended),
                "confirmed": bool(user.confirmed), "lang": user.lang, "theme": user.theme,
                "timezone": user.timezone, "mailformat": user.mailformat, "trackforums": 0})
    if user.description:
        out["description"] = user.description
        out["descriptionformat"] = 1
    for key in ("city", "country"):
        if getattr(user, key):
            out[key] = getattr(user, key)
    out["profileimageurlsmall"], out["profileimageurl"] = picture_urls(site, user)
    fields = [(name, value) for name, value in user.customfields if value != ""]
    if fields:
        out["customfields"] = [{"type": "text", "value": value, "displayvalue": value,
                                "name": site.profile_fields.get(name, name), "shortname": name}
                               for name, value in fields]
    return out


def _ordered(names: Iterable[str]) -> list[str]:
    rank = {name: n for n, name in enumerate(SERVICE_ORDER)}
    return sorted(names, key=lambda name: (rank.get(name, len(rank)), name))


def site_info_reply(site: Site) -> dict[str, Any]:
    """``core_webservice_get_site_info`` for the token's owner (the admin)."""
    admin = site.user(site.admin_id)
    assert admin is not None
    offered = getattr(site, "service_functions", SERVICE_ORDER)
    functions = [{"name": name, "version": VERSION if name.startswith("core_") else VERSION.split(".")[0]}
                 for name in _ordered(offered)]
    return {
        "sitename": site.sitename, "username": admin.username, "firstname": admin.firstname,
        "lastname": admin.lastname, "fullname": admin.fullname, "lang": admin.lang, "userid": admin.id,
        "siteurl": site.wwwroot, "userpictureurl": picture_urls(site, admin)[1], "functions": functions,
        "downloadfiles": 1, "uploadfiles": 1, "release": RELEASE, "version": VERSION, "mobilecssurl": "",
        "advancedfeatures": [{"name": name, "value": value} for name, value in _FEATURES],
        "usercanmanageownfiles": True, "userquota": 0, "usermaxuploadfilesize": -1, "userhomepage": 1,
        "userhomepageurl": XML_NULL, "userprivateaccesskey": "0e2f45d4cf0891c481f81d1f16e06304", "siteid": 1,
        "sitecalendartype": "gregorian", "usercalendartype": "gregorian", "userissiteadmin": True,
        "theme": "boost", "limitconcurrentlogins": 0, "usersessionscount": XML_NULL, "policyagreed": 0,
    }
