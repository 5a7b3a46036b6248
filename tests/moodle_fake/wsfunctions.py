"""The fake Moodle's web-service functions by name, and the functions the recorded service offers.

:data:`SERVICE_FUNCTIONS` is the ``functions`` list of the recorded ``core_webservice_get_site_info``
(``_site.json``: the ``python_client`` service, 43 functions) plus ``core_cohort_get_cohort_members``
when absent. :data:`MOODLE_FUNCTIONS` are names Moodle knows: a name outside it gives
``invalidrecord`` ("Can't find data record in database table external_functions."), a known name
outside the token's service gives ``accessexception`` (``_errors.json``).
"""

from __future__ import annotations

from tests.moodle_fake import ws_cohorts, ws_courses, ws_enrol, ws_groups, ws_users
from tests.moodle_fake.ws_userinfo import SERVICE_ORDER
from tests.moodle_fake.wsbase import WsFunction

SERVICE_FUNCTIONS: frozenset[str] = frozenset(SERVICE_ORDER) | {"core_cohort_get_cohort_members"}

#: a few real Moodle 4.5 functions outside the recorded service (accessexception, not invalidrecord)
OTHER_MOODLE_FUNCTIONS = frozenset({
    "core_course_search_courses", "core_course_get_course_module", "core_course_edit_section",
    "core_user_get_course_user_profiles", "core_user_search_identity", "core_cohort_get_cohort_members",
    "core_enrol_search_users", "core_group_update_groups", "core_group_update_groupings",
    "core_group_delete_groupings", "core_group_unassign_grouping", "core_role_get_roles",
    "core_files_upload", "core_files_get_files", "core_user_add_user_device", "core_course_view_course",
    "enrol_self_enrol_user", "enrol_guest_get_instance_info", "enrol_cohort_get_cohorts",
    "core_webservice_get_site_info", "tool_mobile_get_config", "core_backup_get_async_backup_progress",
})


def _gather() -> dict[str, WsFunction]:
    found: dict[str, WsFunction] = {}
    for module in (ws_users, ws_courses, ws_enrol, ws_groups, ws_cohorts):
        for function in module.FUNCTIONS:
            if function.name in found:
                raise RuntimeError(f"{function.name} is defined twice (in {module.__name__})")
            found[function.name] = function
    return found


FUNCTIONS: dict[str, WsFunction] = _gather()
MOODLE_FUNCTIONS: frozenset[str] = SERVICE_FUNCTIONS | OTHER_MOODLE_FUNCTIONS | frozenset(FUNCTIONS)
