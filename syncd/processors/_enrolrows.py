"""Rows of an enrolments file → validated :class:`EnrolRow` (no platform access).

Two forms are read. With a header: ``rolename``, ``cid``, ``uid`` and the optional
columns of SPEC §4. Without one (Moodle's flat file, ``add,student,<user>,<course>[,start,end]``)
the reader names the fields ``op, rolename, uid, cid, starttime, endtime``: ``op`` is
not an accepted header column, so its presence tells the two forms apart. Moodle's flat
file enrols through its own ``flatfile`` method; syncd enrols such rows through ``manual``
(the method every course has or gets on demand), so that a later ``del`` line, a users
file or an admin sees one ordinary enrolment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from functools import lru_cache

from syncd.csvfile import parse_datetime
from syncd.domain import RowError
from syncd.processors._enrol import KEEP, MANUAL, DateArg, Dates
from syncd.processors.base import Row

CMDS = ("add", "del", "shift", "disable", "enable")
GCMDS = ("gadd", "gaddcreate", "greplace", "greplacecreate", "gdel")
GROUP_COLUMNS = tuple(f"g{n}" for n in range(1, 10))
_GROUP_SET = frozenset(GROUP_COLUMNS)
#: the operation field of the header-less (flat file) form, and what it may say
FLAT_OP = "op"
FLAT_OPS = ("add", "del")
HEADERLESS = (FLAT_OP, "rolename", "uid", "cid", "starttime", "endtime")
OPTIONAL = frozenset({"starttime", "endtime", "cmd", "enrol", "gcmd", *GROUP_COLUMNS})
#: commands that use the role of the row (disable/enable ignore it)
ROLE_CMDS = frozenset({"add", "del", "shift"})


@dataclass(slots=True)
class EnrolRow:
    """One valid enrolments row.

    ``method`` is None when the row has no ``enrol`` column (the role alone is given or
    taken); ``groups`` holds (column, group name) for g1…g9 in column order.
    """

    line: int
    cmd: str
    rolename: str
    uid: str
    cid: str
    method: str | None
    dates: Dates = field(default_factory=Dates)
    gcmd: str | None = None
    groups: list[tuple[str, str]] = field(default_factory=list)


def _choice(values: Mapping[str, str], column: str, allowed: tuple[str, ...]) -> str | None:
    """The lowercased value of ``column`` if one of ``allowed``; None when absent or empty."""
    raw = values.get(column, "")
    value = raw.strip().lower()
    if not value:
        return None
    if value not in allowed:
        raise RowError(f"{column}: unknown command {raw!r} (expected {' | '.join(allowed)})")
    return value


def parse_date(values: Mapping[str, str], column: str, tz: tzinfo) -> DateArg:
    """A date column: KEEP when absent; None when empty or 0 (Moodle's "no limit"); else the date."""
    if column not in values:
        return KEEP
    value = values[column].strip()
    if value in ("", "0"):
        return None
    return _datetime(value, column, tz)


#: files repeat the same few dates: parse each once (errors are raised, never cached)
_datetime = lru_cache(maxsize=1024)(parse_datetime)


def _required(values: Mapping[str, str], column: str) -> str:
    value = values.get(column, "").strip()
    if not value:
        raise RowError(f"{column}: empty value; required")
    return value


def parse_row(row: Row, tz: tzinfo) -> EnrolRow:
    """Validate ``row`` into an :class:`EnrolRow`; raise RowError on the first bad value."""
    values = row.values
    if FLAT_OP in values:
        cmd = _choice(values, FLAT_OP, FLAT_OPS)
        if cmd is None:
            raise RowError(f"{FLAT_OP}: empty value; required (add | del)")
        method: str | None = MANUAL
    else:
        cmd = _choice(values, "cmd", CMDS) or "add"
        method = (values["enrol"].strip().lower() or MANUAL) if "enrol" in values else None
    rolename = values.get("rolename", "").strip()
    if cmd in ROLE_CMDS and not rolename:
        raise RowError(f"rolename: empty value; required for cmd {cmd}")
    dates = Dates(parse_date(values, "starttime", tz), parse_date(values, "endtime", tz))
    if isinstance(dates.start, datetime) and isinstance(dates.end, datetime) and dates.end < dates.start:
        raise RowError(
            f"endtime: {values['endtime'].strip()!r} is before starttime {values['starttime'].strip()!r}"
        )
    parsed = EnrolRow(
        line=row.line,
        cmd=cmd,
        rolename=rolename,
        uid=_required(values, "uid"),
        cid=_required(values, "cid"),
        method=method,
        dates=dates,
        gcmd=_choice(values, "gcmd", GCMDS),
    )
    _groups(values, parsed)
    return parsed


def _groups(values: Mapping[str, str], parsed: EnrolRow) -> None:
    if parsed.gcmd is None and _GROUP_SET.isdisjoint(values):
        return
    for column in GROUP_COLUMNS:
        name = values.get(column, "").strip()
        if name:
            parsed.groups.append((column, name))
    if parsed.gcmd is None and parsed.groups:
        column, name = parsed.groups[0]
        raise RowError(f"{column}: group {name!r} given but gcmd is empty")
    if parsed.gcmd is not None and not parsed.groups:
        raise RowError(f"gcmd: {parsed.gcmd} names no group (g1…g9 are empty)")
