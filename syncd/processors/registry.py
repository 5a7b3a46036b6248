"""The registry: every file kind syncd knows. Adding a kind = a module + one line here."""

from __future__ import annotations

from collections.abc import Mapping

from syncd.processors import (
    cohort_courses,
    cohorts,
    course_backup,
    course_check,
    course_delete,
    course_import,
    course_reset,
    courses,
    enrolments,
    group_members,
    groups,
    user_pictures,
    users,
)
from syncd.processors.base import ProcessorSpec

REGISTRY: Mapping[str, ProcessorSpec] = {
    spec.name: spec
    for spec in (
        users.SPEC,
        course_import.SPEC,
        courses.SPEC,
        cohorts.SPEC,
        groups.SPEC,
        enrolments.SPEC,
        group_members.SPEC,
        cohort_courses.SPEC,
        user_pictures.SPEC,
        course_backup.SPEC,
        course_check.SPEC,
        course_reset.SPEC,
        course_delete.SPEC,
    )
}
