"""The error replies of Moodle's REST server, as the recordings show them (debug off).

A web-service function raises :class:`WsError`; the server turns it into the JSON body
``{"exception", "errorcode", "message"}`` (no ``errorcode`` for PHP ``Error``/``TypeError``).
``debuginfo`` is what a debug-on site would add: the fake keeps it in its call log (the real
reason behind a generic "Invalid parameter value detected") and only sends it when asked to.
"""

from __future__ import annotations

from typing import Any

INVALID_PARAMETER = "core\\exception\\invalid_parameter_exception"
MOODLE_EXCEPTION = "core\\exception\\moodle_exception"
CODING_EXCEPTION = "core\\exception\\coding_exception"
INVALID_RESPONSE = "core\\exception\\invalid_response_exception"
MISSING_RECORD = "dml_missing_record_exception"

# Lang strings of the error codes the fake raises with moodle_exception (error/webservice/enrol_manual).
_STRINGS = {
    "invalidtoken": "Invalid token - token not found",
    "accessexception": "Access control exception",
    "categoryidnumbertaken": "ID number is already used for another category",
    "unknowcategory": "Category not known!",
    "categorynamerequired": "The category name is required.",
    "shortnametaken": "Short name is already used for another course ({a})",
    "courseidnumbertaken": "ID number is already used for another course ({a})",
    "nostartdatenoenddate": "A course end date can only be set if a start date is also set.",
    "enddatebeforestartdate": "The course end date must be after the start date.",
    "errorinvalidparam": 'The param "{a}" is invalid.',
    "invalidcourseid": "You are trying to use an invalid course ID",
    "invalidextparam": "Invalid external api parameter: {a}",
    "idnumbertaken": "This ID number is already in use",
    "useradminodelete": "Administrator accounts cannot be deleted.",
    "usernotdeletederror": "The user could not be deleted",
    "criteriaerror": "Missing permissions to search on a criterion.",
    "wsusercannotassign": (
        "You don't have the permission to assign this role ({roleid}) to this user ({userid}) "
        "in this course ({courseid})."
    ),
    "wsnoinstance": (
        "Manual enrolment plugin instance doesn't exist or is disabled for the course (id = {courseid})"
    ),
    "errorcatcontextnotvalid": (
        "You cannot execute functions in the category context (category id:{catid}). "
        "The context error message was: {message}"
    ),
    "errorcoursecontextnotvalid": (
        "You cannot execute functions in the course context (course id:{courseid}). "
        "The context error message was: {message}"
    ),
    "invalidcourse": "Invalid course",
    "usernotexists": "User does not exist",
    "useremailinvalid": "Invalid email",
    "invaliduserid": "Invalid user ID",
    "useremailduplicate": "Duplicate address",
}


class WsError(Exception):
    """An exception thrown inside a web-service function (the reply is built from it)."""

    def __init__(self, exception: str, errorcode: str | None, message: str, debuginfo: str = "") -> None:
        super().__init__(message)
        self.exception = exception
        self.errorcode = errorcode
        self.message = message
        self.debuginfo = debuginfo

    def body(self, debug: bool = False) -> dict[str, Any]:
        """The JSON reply, keys in Moodle's order."""
        out: dict[str, Any] = {"exception": self.exception}
        if self.errorcode is not None:
            out["errorcode"] = self.errorcode
        out["message"] = self.message
        if debug and self.debuginfo:
            out["debuginfo"] = self.debuginfo
        return out


def invalid_parameter(debuginfo: str = "") -> WsError:
    """The generic "Invalid parameter value detected" (its reason only in debuginfo)."""
    return WsError(INVALID_PARAMETER, "invalidparameter", "Invalid parameter value detected", debuginfo)


def invalid_response(debuginfo: str = "") -> WsError:
    """The reply did not match the function's return description (the work is done)."""
    return WsError(INVALID_RESPONSE, "invalidresponse", "Invalid response value detected", debuginfo)


def moodle_error(errorcode: str, debuginfo: str = "", **params: Any) -> WsError:
    """``moodle_exception($errorcode)`` with the lang string filled in (no string: ``error/<code>``)."""
    template = _STRINGS.get(errorcode)
    message = template.format(**params) if template is not None else f"error/{errorcode}"
    return WsError(MOODLE_EXCEPTION, errorcode, message, debuginfo)


def coding_error(detail: str, debuginfo: str = "") -> WsError:
    """``coding_exception``: "Coding error detected, it must be fixed by a programmer: <detail>"."""
    message = f"Coding error detected, it must be fixed by a programmer: {detail}"
    return WsError(CODING_EXCEPTION, "codingerror", message, debuginfo)


def missing_record(table: str, record_id: Any = None) -> WsError:
    """``dml_missing_record_exception`` of a MUST_EXIST read (``user`` has its own code)."""
    debuginfo = f"SELECT * FROM {{{table}}} WHERE id = ? [array (\n  0 => {record_id},\n)]"
    if table == "user":
        return WsError(MISSING_RECORD, "invaliduser", "Invalid user", debuginfo)
    message = f"Can't find data record in database table {table}."
    return WsError(MISSING_RECORD, "invalidrecord", message, debuginfo)


def php_error(kind: str, message: str) -> WsError:
    """A PHP ``Error``/``TypeError``: no errorcode at all."""
    return WsError(kind, None, message)
