"""Routing: configured globs first, then SPEC §3 defaults, then header sniffing."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest

from syncd.domain import ConfigError
from syncd.pipeline.routes import DEFAULT_ROUTES, Route, Router
from syncd.processors.base import ProcessorSpec
from syncd.processors.registry import REGISTRY


def spec(name: str, priority: int, sniff: set[str]) -> ProcessorSpec:
    factory = REGISTRY["users"].factory
    return ProcessorSpec(name=name, priority=priority, factory=factory, sniff=frozenset(sniff))


FAKE_REGISTRY = {
    "users": spec("users", 10, {"username", "firstname", "lastname"}),
    "user_delete": spec("user_delete", 90, set()),
    "enrolments": spec("enrolments", 50, {"rolename", "cid", "uid"}),
}


def route(router: Router, rel: str, tmp_path: Path, content: bytes = b"") -> str | None:
    path = tmp_path / "f"
    path.write_bytes(content)
    match = router.route(PurePosixPath(rel), path)
    return None if match is None else f"{match.spec.name}/{match.how}"


@pytest.mark.parametrize(
    ("rel", "expected"),
    [
        ("users.csv", "users/glob"),
        ("USERS_2026.CSV", "users/glob"),
        ("hr/userimport-a.csv", "users/glob"),
        ("userdelete.csv", "user_delete/glob"),
        ("enrol_term1.csv", "enrolments/glob"),
        ("notes.txt", None),
    ],
)
def test_default_routes(tmp_path: Path, rel: str, expected: str | None) -> None:
    """The SPEC §3 default globs match case-insensitively on the base name, in any sub-folder."""
    router = Router([], FAKE_REGISTRY)
    assert route(router, rel, tmp_path) == expected


def test_configured_route_wins_and_keeps_options(tmp_path: Path) -> None:
    """A configured glob is tried before the defaults; a glob with '/' matches the whole path."""
    router = Router([Route("hr/*.csv", "user_delete", {"identity": "username"})], FAKE_REGISTRY)
    path = tmp_path / "f"
    path.write_bytes(b"")
    match = router.route(PurePosixPath("hr/users.csv"), path)
    assert match is not None and match.spec.name == "user_delete"
    assert match.options == {"identity": "username"}
    assert route(router, "other/users.csv", tmp_path) == "users/glob"


def test_defaults_can_be_switched_off(tmp_path: Path) -> None:
    """default_routes = false leaves only the configured routes (and sniffing)."""
    router = Router([], FAKE_REGISTRY, use_defaults=False)
    assert route(router, "users.csv", tmp_path) is None


def test_sniffing_by_header(tmp_path: Path) -> None:
    """An unmatched .csv is routed by its header; the processor with most sniff columns wins."""
    router = Router([], FAKE_REGISTRY)
    header = b"# export\nUserName;FirstName;LastName;email\n"
    assert route(router, "staff.csv", tmp_path, header) == "users/sniffed"
    assert route(router, "x.csv", tmp_path, b"rolename,cid,uid\n") == "enrolments/sniffed"
    assert route(router, "x.csv", tmp_path, b"a,b\n") is None
    assert route(router, "x.csv", tmp_path, b"\x00\x01binary") is None


def test_unknown_processor_in_route_is_refused() -> None:
    """A route naming a processor that does not exist is a config error naming it."""
    with pytest.raises(ConfigError, match="unknown processor 'nope'"):
        Router([Route("*.csv", "nope")], FAKE_REGISTRY)


def test_default_routes_cover_spec_kinds() -> None:
    """Every kind SPEC §3 names has a default glob (those not built yet wait for their module)."""
    kinds = {r.processor for r in DEFAULT_ROUTES}
    assert {"users", "user_delete", "courses", "course_delete", "course_check", "course_reset",
            "enrolments", "groups", "group_members", "cohorts", "cohort_courses",
            "user_pictures", "course_import", "course_backup"} <= kinds


def test_priority_by_name_uses_globs_only(tmp_path: Path) -> None:
    """The worker's gather rule asks the priority a pending upload's name gives; unknown = None."""
    router = Router([], FAKE_REGISTRY)
    assert router.priority_by_name(PurePosixPath("hr/users_1.csv")) == 10
    assert router.priority_by_name(PurePosixPath("enrol.csv")) == 50
    assert router.priority_by_name(PurePosixPath("staff.csv")) is None
