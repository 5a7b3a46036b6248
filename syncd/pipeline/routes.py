"""Which processor a file goes to: configured globs, the default routes, header sniffing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath
from typing import Any

import structlog

from syncd.csvfile import CsvFile, CsvOptions
from syncd.domain import ConfigError, SyncdError
from syncd.processors.base import ProcessorSpec

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Route:
    """A glob on the path relative to sync/ (or on the base name when it has no '/')."""

    glob: str
    processor: str
    options: Mapping[str, Any] = field(default_factory=dict)

    def matches(self, rel: PurePosixPath) -> bool:
        """Case-insensitive match, on the whole relative path when the glob has a '/'."""
        subject = rel.as_posix() if "/" in self.glob else rel.name
        return fnmatchcase(subject.lower(), self.glob.lower())


#: SPEC §3 defaults. Only processors present in the registry are used, so routes for
#: kinds that later issues add simply wait for their module.
DEFAULT_ROUTES: tuple[Route, ...] = tuple(
    Route(glob, processor)
    for processor, globs in (
        ("user_delete", ("userdelete*.csv",)),
        ("users", ("users*.csv", "userimport*.csv")),
        ("course_delete", ("deletecourses*.csv",)),
        ("course_check", ("coursecheck*.csv",)),
        ("course_reset", ("resetcourses*.csv",)),
        ("course_backup", ("coursebackup*.csv",)),
        ("courses", ("courses*.csv", "uploadcourses*.csv")),
        ("enrolments", ("enrol*.csv",)),
        ("group_members", ("groupmembers*.csv",)),
        ("groups", ("groups*.csv",)),
        ("cohort_courses", ("cohortcourses*.csv",)),
        ("cohorts", ("cohorts*.csv",)),
        ("user_pictures", ("userpictures_*.zip",)),
        ("course_import", ("*.mbz", "*.imscc", "*.zip", "*.tar.gz", "*.tgz")),
    )
    for glob in globs
)


@dataclass(frozen=True, slots=True)
class Match:
    """A routing decision."""

    spec: ProcessorSpec
    options: Mapping[str, Any]
    how: str  # "glob" or "sniffed"


class Router:
    """Routes files; configured routes first, then the defaults, then header sniffing."""

    def __init__(
        self,
        routes: Sequence[Route],
        registry: Mapping[str, ProcessorSpec],
        *,
        use_defaults: bool = True,
        csv_options: CsvOptions | None = None,
    ) -> None:
        for route in routes:
            if route.processor not in registry:
                raise ConfigError(
                    f"route '{route.glob}': unknown processor '{route.processor}' "
                    f"(known: {', '.join(sorted(registry))})"
                )
        defaults = [r for r in DEFAULT_ROUTES if r.processor in registry] if use_defaults else []
        self._routes = (*routes, *defaults)
        self._registry = registry
        self._csv_options = csv_options or CsvOptions()

    def route(self, rel: PurePosixPath, path: Path) -> Match | None:
        """The route for sync/<rel> (now at ``path``), or None: the file stays stored."""
        for route in self._routes:
            if route.matches(rel):
                return Match(self._registry[route.processor], route.options, "glob")
        if rel.suffix.lower() == ".csv":
            spec = self.sniff(path)
            if spec is not None:
                log.info("file_sniffed", file=rel.as_posix(), processor=spec.name)
                return Match(spec, {}, "sniffed")
        return None

    def priority_by_name(self, rel: PurePosixPath) -> int | None:
        """The priority of the processor a glob gives ``rel``; None when only sniffing could tell."""
        for route in self._routes:
            if route.matches(rel):
                return self._registry[route.processor].priority
        return None

    def sniff(self, path: Path) -> ProcessorSpec | None:
        """The processor whose sniffing columns the header holds (the most specific wins)."""
        try:
            names = set(CsvFile(path, self._csv_options).header().names)
        except (SyncdError, OSError, UnicodeDecodeError):
            return None
        fits = [s for s in self._registry.values() if s.sniff and s.sniff <= names]
        return max(fits, key=lambda s: len(s.sniff), default=None)
