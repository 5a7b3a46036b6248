"""The cohorts processor: create and update cohorts, add and remove their members (SPEC §4).

Columns: the cohort's key column, chosen by the ``cohort_key`` option — ``cidnumber``
(default), ``cname`` or ``cid`` — and optionally ``cmd``, ``cname``, ``cidnumber``,
``cdescription``, ``ccategory`` (a category id or ``A/B/C`` path that must exist; empty =
system context) and ``userid`` (a user by the ``user_key`` option). Commands:

- ``add`` (default): create the cohort when missing (option ``autocreate``, on by default,
  as in Moodle's tool_sync: named by ``cname``, else by the key) or update its name,
  idnumber, description and category from the columns present (an empty ``cdescription``
  clears it, an empty ``ccategory`` moves it to the system context, an empty ``cname``
  keeps the name); then, when ``userid`` is given, make the user a member;
- ``del``: take ``userid`` out of the cohort (not a member: skipped);
- ``free``: take every member out; the cohort stays;
- ``delete``: delete the cohort itself, with its members and its cohort-sync enrolment
  methods (no such cohort: skipped).

Membership changes reach the courses the cohort is bound to at once, as Moodle's cohort
sync does: a new member is enrolled through each enabled cohort-sync method of the cohort
(with its role and group); a member taken out (``del``, ``free``, ``delete``) is
unenrolled from them, losing roles and groups in a course where no enrolment is left
(see :func:`~syncd.processors._cohortsync.sync_cohort_changes`).

Batch: one cohort find for every key and idnumber of the batch, one read of their
members, of the users and (when a row names one) of the categories; rows applied in
order; then, when the batch changed the members of stored cohorts, one read of their
cohort-sync methods (and, when there are any, one read per kind of the bound courses);
then one write per kind.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from syncd.csvfile import Schema
from syncd.domain import Outcome, RowError, RowResult
from syncd.platform.base import PlatformTx, UserRecord
from syncd.platform.model import CategoryRecord, CohortRecord
from syncd.processors._cohortsync import sync_cohort_changes
from syncd.processors._groupcommon import Cohort, CohortSet, command, text
from syncd.processors._lookup import USER_KEYS, flag, option, unknown, user_key, users_by
from syncd.processors.base import ProcessorSpec, Row, RunContext

COMMANDS = ("add", "del", "free", "delete")
KEYS = ("cidnumber", "cname", "cid")
_ALIASES = {"idnumber": "cidnumber", "name": "cname", "id": "cid"}
_COLUMNS = frozenset({"cmd", "cname", "cidnumber", "cid", "cdescription", "ccategory", "userid"})


@dataclass(frozen=True, slots=True)
class CohortRow:
    """One valid row. ``None``: the column is absent; ``""``: present and empty."""

    cmd: str
    key: str
    name: str | None
    idnumber: str | None
    description: str | None
    category: str | None
    user: str


def parse_row(row: Row, key: str) -> CohortRow:
    """Validate one row (no platform access); raise RowError naming the column."""
    values = row.values
    cmd = command(values, COMMANDS)
    value = text(values, key, required=True) or ""
    if key == "cid" and not value.isdigit():
        raise RowError(f"cid: invalid cohort id {value!r}")
    user = text(values, "userid") or ""
    if cmd == "del" and not user:
        raise RowError("userid: empty value; cmd del takes a user out of the cohort")
    raw_description = values.get("cdescription")
    return CohortRow(
        cmd=cmd,
        key=value,
        name=value if key == "cname" else text(values, "cname"),
        idnumber=value if key == "cidnumber" else text(values, "cidnumber"),
        description=None if raw_description is None else raw_description.strip(),
        category=text(values, "ccategory"),
        user=user,
    )


class Categories:
    """Category look-up by id or by ``A/B/C`` path of names (existing categories only).

    An all-digit value is an id when such a category exists, else a one-level path.
    """

    def __init__(self, records: Sequence[CategoryRecord]) -> None:
        by_id = {c.id: c for c in records if c.id is not None}
        self._ids = set(by_id)
        self._paths: dict[str, int] = {}
        for category_id, category in sorted(by_id.items()):
            names: list[str] = []
            node: CategoryRecord | None = category
            while node is not None and len(names) <= len(by_id):  # a cycle would be a store bug
                names.append(node.name.strip())
                node = by_id.get(node.parent_id) if node.parent_id is not None else None
            self._paths.setdefault("/".join(reversed(names)), category_id)

    def resolve(self, value: str, column: str) -> int:
        """The id of the category ``value`` names, or the row error."""
        if value.isdigit() and int(value) in self._ids:
            return int(value)
        found = self._paths.get("/".join(part.strip() for part in value.strip("/").split("/")))
        if found is None:
            raise unknown("category", value, column)
        return found


class CohortsProcessor:
    """Applies cohorts rows (implements Processor)."""

    def __init__(self, *, cohort_key: str, user_key: str, autocreate: bool) -> None:
        self.cohort_key = cohort_key
        self.user_key = user_key
        self.autocreate = autocreate

    @property
    def schema(self) -> Schema:
        """The key column; the other cohort columns, cmd and userid optional."""
        return Schema(frozenset({self.cohort_key}), _COLUMNS - {self.cohort_key})

    def describe(self) -> str:
        """The effective options, for the report."""
        auto = "yes" if self.autocreate else "no"
        return f"cohort_key={self.cohort_key} user_key={self.user_key} autocreate={auto}"

    def apply(self, rows: Sequence[Row], tx: PlatformTx) -> list[RowResult]:
        """Apply ``rows`` in order: one read per kind before, one write per kind after."""
        parsed: list[CohortRow | RowError] = []
        for row in rows:
            try:
                parsed.append(parse_row(row, self.cohort_key))
            except RowError as exc:
                parsed.append(exc)
        valid = [p for p in parsed if isinstance(p, CohortRow)]
        cohorts = CohortSet.load(
            tx.cohorts, self.cohort_key, {p.key for p in valid}, {p.idnumber for p in valid if p.idnumber}
        )
        users = users_by(tx, self.user_key, {p.user for p in valid})
        categories = Categories(tx.categories.all() if any(p.category for p in valid) else [])
        results = [
            self._apply_one(p, cohorts, users, categories)
            if isinstance(p, CohortRow)
            else RowResult(Outcome.ERROR, str(p))
            for p in parsed
        ]
        # before the cohort writes: deleting a cohort deletes its bindings with it
        sync_cohort_changes(tx, *cohorts.member_changes())
        cohorts.flush(tx.cohorts)
        return results

    def _apply_one(
        self, row: CohortRow, cohorts: CohortSet, users: Mapping[str, UserRecord], categories: Categories
    ) -> RowResult:
        try:
            cohort = cohorts.find(row.key)
            if row.cmd == "delete":
                return _delete(row, cohort, cohorts)
            if cohort is None and (row.cmd != "add" or not self.autocreate):
                raise unknown("cohort", row.key, self.cohort_key)
            user = self._user(row, users)
            if row.cmd == "del":
                assert cohort is not None and user is not None
                return _remove(cohort, user)
            if row.cmd == "free":
                assert cohort is not None
                return _free(cohort)
            return self._add(row, cohort, user, cohorts, categories)
        except RowError as exc:
            return RowResult(Outcome.ERROR, str(exc))

    def _user(self, row: CohortRow, users: Mapping[str, UserRecord]) -> UserRecord | None:
        if not row.user or row.cmd == "free":
            return None
        user = users.get(user_key(self.user_key, row.user))
        if user is None:
            raise unknown("user", row.user, "userid")
        return user

    def _add(
        self,
        row: CohortRow,
        cohort: Cohort | None,
        user: UserRecord | None,
        cohorts: CohortSet,
        categories: Categories,
    ) -> RowResult:
        category = categories.resolve(row.category, "ccategory") if row.category else None
        if row.idnumber:
            cohorts.check_idnumber(row.idnumber, cohort)
        if cohort is None:
            if self.cohort_key == "cid":
                raise RowError(f"unknown cohort {row.key!r} (cid): a new cohort cannot be given an id")
            record = CohortRecord(name=row.name or row.key, idnumber=row.idnumber or None,
                                  description=row.description or "", category_id=category)
            cohort = cohorts.add(record)
            joined = _join(cohort, user)
            return RowResult(Outcome.CREATED, f"cohort {record.name!r}" + (f", {joined}" if joined else ""))
        changes = cohorts.update(cohort, _wanted(row, category))
        joined = _join(cohort, user)
        what = f"cohort {cohort.record.name!r}"
        if joined:
            extra = f" (cohort updated: {', '.join(changes)})" if changes else ""
            return RowResult(Outcome.CREATED, f"{joined} in {what}{extra}")
        if changes:
            return RowResult(Outcome.UPDATED, f"{what}: {', '.join(changes)}")
        who = f"user {user.username!r} in " if user is not None else ""
        return RowResult(Outcome.UNCHANGED, who + what)


def _wanted(row: CohortRow, category: int | None) -> dict[str, Any]:
    """The cohort's attributes as the row's present columns want them, by column name."""
    wanted: dict[str, Any] = {}
    if row.name:  # an empty cname keeps the name: a cohort must have one
        wanted["cname"] = row.name
    if row.idnumber is not None:
        wanted["cidnumber"] = row.idnumber or None
    if row.description is not None:
        wanted["cdescription"] = row.description
    if row.category is not None:
        wanted["ccategory"] = category
    return wanted


def _join(cohort: Cohort, user: UserRecord | None) -> str:
    """Make ``user`` a member; say so when that changed anything."""
    if user is None or user.id in cohort.members:
        return ""
    assert user.id is not None
    cohort.members.add(user.id)
    return f"user {user.username!r}"


def _remove(cohort: Cohort, user: UserRecord) -> RowResult:
    what = f"user {user.username!r} in cohort {cohort.record.name!r}"
    if user.id not in cohort.members:
        return RowResult(Outcome.SKIPPED, f"{what}: not a member")
    assert user.id is not None
    cohort.members.discard(user.id)
    return RowResult(Outcome.DELETED, what)


def _free(cohort: Cohort) -> RowResult:
    count = len(cohort.members)
    what = f"cohort {cohort.record.name!r}"
    if not count:
        return RowResult(Outcome.UNCHANGED, f"{what}: no members")
    cohort.members.clear()
    return RowResult(Outcome.DELETED, f"{what}: {count} member{'s' if count > 1 else ''} taken out")


def _delete(row: CohortRow, cohort: Cohort | None, cohorts: CohortSet) -> RowResult:
    if cohort is None:
        return RowResult(Outcome.SKIPPED, f"no cohort {row.key!r} to delete")
    cohorts.delete(cohort)
    return RowResult(Outcome.DELETED, f"cohort {cohort.record.name!r}")


def build(options: Mapping[str, Any], ctx: RunContext) -> CohortsProcessor:
    """Build the processor from route options; raise ConfigError naming a bad one."""
    key = options.get("cohort_key", KEYS[0])
    if isinstance(key, str):
        key = _ALIASES.get(key, key)
    return CohortsProcessor(
        cohort_key=option({"cohort_key": key}, "cohort_key", KEYS, "cohorts"),
        user_key=option(options, "user_key", USER_KEYS[:3], "cohorts"),
        autocreate=flag(options, "autocreate", True, "cohorts"),
    )


SPEC = ProcessorSpec(
    name="cohorts",
    priority=30,
    factory=build,
    sniff=frozenset({"cidnumber", "cname"}),
    options=frozenset({"cohort_key", "user_key", "autocreate"}),
)
