"""The courses processor against the in-memory platform (SPEC §4 courses)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from syncd.domain import ConfigError, Outcome, RowResult
from syncd.platform.base import UserRecord
from syncd.platform.model import CourseRecord, SectionRecord
from syncd.processors.base import Row, RunContext
from syncd.processors.courses import SPEC, build
from tests.fakes import FakePlatform, FakeTx

PARIS = timezone(timedelta(hours=2))
CTX = RunContext(timezone=PARIS, now=lambda: datetime(2026, 1, 1, tzinfo=UTC))


def course(shortname: str, line: int = 2, /, **values: str) -> Row:
    """A courses row with the required columns filled in."""
    return Row(line, {"shortname": shortname, "fullname": f"{shortname} course", **values})


def run(platform: FakePlatform, rows: Sequence[Row], **options: Any) -> list[RowResult]:
    """Apply one batch in one committed transaction."""
    processor = build(options, CTX)
    with platform.transaction() as tx:
        return processor.apply(rows, tx)


def seed_course(platform: FakePlatform, shortname: str, **values: Any) -> CourseRecord:
    """A stored course whose fullname is the one :func:`course` rows give."""
    return platform.seed_course(shortname, fullname=f"{shortname} course", **values)


def outcomes(results: Sequence[RowResult]) -> list[Outcome]:
    return [r.outcome for r in results]


def stored(platform: FakePlatform, shortname: str) -> CourseRecord:
    found = platform.course(shortname)
    assert found is not None, f"no course {shortname!r}"
    return found


def category_path(platform: FakePlatform, category_id: int) -> str:
    by_id = {c.id: c for c in platform.categories()}
    names: list[str] = []
    current: int | None = category_id
    while current is not None:
        names.append(by_id[current].name)
        current = by_id[current].parent_id
    return "/".join(reversed(names))


def sections(platform: FakePlatform, shortname: str) -> dict[int, tuple[str, str]]:
    return {s.number: (s.name, s.summary) for s in platform.sections(shortname)}


def methods(platform: FakePlatform, shortname: str) -> dict[str, bool]:
    course_id = stored(platform, shortname).id
    return {m.method: m.enabled for m in platform.methods() if m.course_id == course_id}


@pytest.fixture
def platform() -> FakePlatform:
    return FakePlatform()


# -- options, schema, registry ----------------------------------------------------------


def test_bad_options_are_config_errors() -> None:
    """identity, update, protect_category and default_category are checked when building."""
    with pytest.raises(ConfigError, match=r"courses: option identity must be one of shortname, idnumber, id"):
        build({"identity": "name"}, CTX)
    with pytest.raises(ConfigError, match="option update must be true or false"):
        build({"update": "sometimes"}, CTX)
    with pytest.raises(ConfigError, match="protect_category"):
        build({"protect_category": 1}, CTX)
    with pytest.raises(ConfigError, match="default_category must be a category path"):
        build({"default_category": "A//B"}, CTX)


def test_spec_registers_the_courses_processor() -> None:
    """The registry entry has the name, priority, sniffing columns and option names."""
    assert (SPEC.name, SPEC.priority) == ("courses", 20)
    assert SPEC.sniff == {"shortname", "fullname"}
    assert SPEC.options == {"identity", "update", "protect_category", "default_category"}


def test_schema_accepts_the_spec_columns_and_requires_the_identity() -> None:
    """topic0..topic52 and teacherN_account/role are accepted; idnumber is required by identity."""
    schema = build({}, CTX).schema
    assert schema.required == {"shortname", "fullname"}
    for name in ("category", "template", "self", "guest", "maxbytes", "topic0", "topic52",
                 "teacher1_account", "teacher12_role"):
        assert schema.allows(name), name
    for name in ("topic53", "teacher0_account", "teacher1_name", "id"):
        assert not schema.allows(name), name
    assert build({"identity": "idnumber"}, CTX).schema.required == {"shortname", "fullname", "idnumber"}
    assert "id" in build({"identity": "id"}, CTX).schema.required


def test_describe_names_the_effective_options() -> None:
    """The report line shows every option, defaults included."""
    assert build({"update": True}, CTX).describe() == (
        "identity=shortname update=yes protect_category=no default_category=Miscellaneous"
    )


# -- create ------------------------------------------------------------------------------


def test_create_stores_every_column(platform: FakePlatform) -> None:
    """A new course takes every given column; naive dates are in the configured time zone."""
    row = course(
        "MATH101", idnumber="M-101", summary="Numbers", format="weeks", visible="no",
        startdate="2026-09-01", enddate="2027-01-31 18:00", lang="fr", groupmode="separate",
        maxbytes="1048576",
    )
    assert run(platform, [row]) == [RowResult(Outcome.CREATED, "course 'MATH101'")]
    got = stored(platform, "MATH101")
    assert (got.fullname, got.idnumber) == ("MATH101 course", "M-101")
    assert (got.summary, got.format) == ("Numbers", "weeks")
    assert (got.visible, got.lang, got.groupmode, got.maxbytes) == (False, "fr", 1, 1048576)
    assert got.startdate == datetime(2026, 9, 1, tzinfo=PARIS)
    assert got.enddate == datetime(2027, 1, 31, 18, 0, tzinfo=PARIS)


def test_new_course_has_a_manual_method_and_a_general_section(platform: FakePlatform) -> None:
    """Every new course gets a manual enrolment method and section 0."""
    run(platform, [course("C1")])
    assert methods(platform, "C1") == {"manual": True}
    assert sections(platform, "C1") == {0: ("", "")}


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("visible", "maybe", "visible: invalid boolean 'maybe'"),
        ("groupmode", "3", "groupmode: invalid value '3' (expected 0/1/2 or none/separate/visible)"),
        ("maxbytes", "-5", "maxbytes: negative value '-5'"),
        ("maxbytes", "lots", "maxbytes: invalid integer 'lots'"),
        ("startdate", "tomorrow", "startdate: invalid date 'tomorrow'"),
        ("category", "A//B", "category: empty level in path 'A//B'"),
        ("format", "Weeks!", "format: invalid course format 'Weeks!'"),
        ("lang", "french", "lang: invalid language code 'french'"),
        ("shortname", "", "shortname: empty value; a course must have a shortname"),
        ("fullname", " ", "fullname: empty value; a course must have a fullname"),
    ],
)
def test_bad_values_are_row_errors_naming_column_and_value(
    platform: FakePlatform, column: str, value: str, message: str
) -> None:
    """A bad value fails its row only, with the column and the value in the reason."""
    results = run(platform, [course("BAD", **{column: value}), course("GOOD", 3)])
    assert outcomes(results) == [Outcome.ERROR, Outcome.CREATED]
    assert results[0].reason.startswith(message)
    assert platform.course("BAD") is None


def test_enddate_before_startdate_is_a_row_error(platform: FakePlatform) -> None:
    """A course cannot end before it starts, in the row or together with the stored dates."""
    results = run(platform, [course("C1", startdate="2026-09-01", enddate="2026-08-01")])
    assert results[0].reason == "enddate: '2026-08-01' is before startdate '2026-09-01'"
    run(platform, [course("C2", startdate="2026-09-01")])
    results = run(platform, [course("C2", enddate="2026-01-01")], update=True)
    assert results[0].outcome is Outcome.ERROR
    assert results[0].reason.startswith("enddate: course 'C2' would end (2026-01-01T00:00:00+02:00) before")


# -- categories --------------------------------------------------------------------------


def test_category_path_creates_missing_levels_once(platform: FakePlatform) -> None:
    """A/B/C creates what is missing, level by level; later rows reuse what earlier ones made."""
    science = platform.seed_category("Science")
    rows = [course("C1", category="Science/Physics/Optics"), course("C2", 3, category="Science / Physics")]
    assert outcomes(run(platform, rows)) == [Outcome.CREATED, Outcome.CREATED]
    assert len(platform.categories()) == 3
    assert category_path(platform, stored(platform, "C1").category_id) == "Science/Physics/Optics"
    physics = stored(platform, "C2").category_id
    assert category_path(platform, physics) == "Science/Physics"
    assert next(c for c in platform.categories() if c.id == physics).parent_id == science.id


def test_category_names_match_under_their_parent_only(platform: FakePlatform) -> None:
    """A same-named category under another parent is not taken for a path level."""
    arts = platform.seed_category("Arts")
    platform.seed_category("2026", parent_id=arts.id)
    run(platform, [course("C1", category="Science/2026")])
    assert category_path(platform, stored(platform, "C1").category_id) == "Science/2026"
    assert len(platform.categories()) == 4


def test_numeric_category_must_exist(platform: FakePlatform) -> None:
    """A number is an existing category id; an unknown one is a row error naming it."""
    misc = platform.seed_category("Misc")
    results = run(platform, [course("C1", category=str(misc.id)), course("C2", 3, category="12")])
    assert results[1] == RowResult(Outcome.ERROR, "unknown category '12' (category)")
    assert stored(platform, "C1").category_id == misc.id
    assert len(platform.categories()) == 1


def test_course_without_category_goes_to_the_default_category(platform: FakePlatform) -> None:
    """No category column: the default_category path, created once, found afterwards."""
    run(platform, [course("C1"), course("C2", 3)])
    run(platform, [course("C3")])
    assert [c.name for c in platform.categories()] == ["Miscellaneous"]
    assert {c.category_id for c in platform.courses()} == {platform.categories()[0].id}
    run(platform, [course("C4")], default_category="Imported/2026")
    assert category_path(platform, stored(platform, "C4").category_id) == "Imported/2026"


# -- existing courses: update policy ------------------------------------------------------


def test_existing_course_is_skipped_when_update_is_off(platform: FakePlatform) -> None:
    """Without update an existing course is left as it is."""
    platform.seed_course("C1", fullname="Old")
    results = run(platform, [course("C1", summary="new")])
    assert results == [RowResult(Outcome.SKIPPED, "course 'C1' exists; update is off")]
    assert (stored(platform, "C1").fullname, stored(platform, "C1").summary) == ("Old", "")


def test_update_changes_only_given_columns_and_names_them(platform: FakePlatform) -> None:
    """Update writes the columns present and non-empty; the reason lists what changed."""
    run(platform, [course("C1", summary="keep me", lang="en", startdate="2026-09-01")])
    rows = [course("C1", visible="0", lang="", summary="keep me", maxbytes="100", startdate="2026-09-01")]
    assert run(platform, rows, update=True) == [RowResult(Outcome.UPDATED, "course 'C1': visible, maxbytes")]
    got = stored(platform, "C1")
    assert (got.visible, got.lang, got.summary, got.maxbytes) == (False, "en", "keep me", 100)
    assert run(platform, rows, update=True) == [RowResult(Outcome.UNCHANGED, "course 'C1'")]


def test_update_moves_the_category_unless_protected(platform: FakePlatform) -> None:
    """protect_category keeps a course's category on update; otherwise the row's applies."""
    run(platform, [course("C1", category="Old")])
    old = stored(platform, "C1").category_id
    results = run(platform, [course("C1", category="New")], update=True, protect_category=True)
    assert results == [RowResult(Outcome.UNCHANGED, "course 'C1'")]
    assert stored(platform, "C1").category_id == old
    results = run(platform, [course("C1", category="New")], update=True)
    assert results == [RowResult(Outcome.UPDATED, "course 'C1': category")]
    assert category_path(platform, stored(platform, "C1").category_id) == "New"


def test_rows_see_what_earlier_rows_of_the_batch_did(platform: FakePlatform) -> None:
    """A later row finds the course an earlier row created, in the same batch."""
    rows = [course("C1"), course("C1", 3, summary="second")]
    assert outcomes(run(platform, rows)) == [Outcome.CREATED, Outcome.SKIPPED]
    rows = [course("C2"), course("C2", 3, summary="second")]
    assert run(platform, rows, update=True)[1] == RowResult(Outcome.UPDATED, "course 'C2': summary")
    assert stored(platform, "C2").summary == "second"


# -- identity and collisions --------------------------------------------------------------


def test_identity_idnumber_finds_and_renames(platform: FakePlatform) -> None:
    """With identity idnumber a row may rename a course's shortname."""
    seed_course(platform, "OLD", idnumber="X1")
    results = run(platform, [course("NEW", idnumber="X1")], identity="idnumber", update=True)
    assert results == [RowResult(Outcome.UPDATED, "course 'NEW' (was 'OLD'): shortname, fullname")]
    assert platform.course("OLD") is None and stored(platform, "NEW").idnumber == "X1"


def test_identity_idnumber_adopts_a_course_without_idnumber(platform: FakePlatform) -> None:
    """A course known by shortname alone takes on the row's idnumber."""
    seed_course(platform, "C1")
    results = run(platform, [course("C1", idnumber="X9")], identity="idnumber", update=True)
    assert results == [RowResult(Outcome.UPDATED, "course 'C1': idnumber")]


def test_identity_idnumber_falls_back_to_shortname_when_empty(platform: FakePlatform) -> None:
    """An empty idnumber finds the course by shortname and leaves its idnumber alone."""
    seed_course(platform, "C1", idnumber="X1")
    results = run(platform, [course("C1", idnumber="", summary="s")], identity="idnumber", update=True)
    assert results == [RowResult(Outcome.UPDATED, "course 'C1': summary")]
    assert stored(platform, "C1").idnumber == "X1"


def test_identity_id_updates_by_id_and_creates_on_empty_id(platform: FakePlatform) -> None:
    """identity id: an existing id is updated (renamed), an empty one creates, an unknown one fails."""
    seeded = platform.seed_course("C1")
    rows = [course("C1-NEW", id=str(seeded.id)), course("C2", 3, id=""), course("C3", 4, id="999"),
            course("C4", 5, id="x")]
    results = run(platform, rows, identity="id", update=True)
    assert outcomes(results) == [Outcome.UPDATED, Outcome.CREATED, Outcome.ERROR, Outcome.ERROR]
    assert results[2].reason == "unknown course '999' (id)"
    assert results[3].reason == "id: invalid course id 'x'"
    assert stored(platform, "C1-NEW").id == seeded.id


def test_shortname_and_idnumber_of_another_course_are_row_errors(platform: FakePlatform) -> None:
    """Creating or renaming to another course's shortname or idnumber fails the row."""
    platform.seed_course("A", idnumber="IA")
    platform.seed_course("B", idnumber="IB")
    results = run(platform, [course("C", idnumber="IA")])
    assert results[0].reason == "idnumber: 'IA' already belongs to another course (shortname 'A')"
    results = run(platform, [course("B", idnumber="IA")], identity="idnumber", update=True)
    assert results[0].reason == "shortname: 'B' already belongs to another course (idnumber 'IB')"
    results = run(platform, [course("A", idnumber="IB")], update=True)
    assert results[0].reason == "idnumber: 'IB' already belongs to another course (shortname 'B')"
    results = run(platform, [course("B", idnumber="NEW")], identity="idnumber")
    assert results[0].reason == "shortname: 'B' already belongs to another course (idnumber 'IB')"
    assert [(c.shortname, c.idnumber) for c in platform.courses()] == [("A", "IA"), ("B", "IB")]


def test_renames_across_rows_pass_the_unique_constraints(platform: FakePlatform) -> None:
    """A shortname freed by one row and taken by a course changed earlier is written in a safe order."""
    platform.seed_course("A", idnumber="1")
    platform.seed_course("B", idnumber="2")
    rows = [
        course("A", idnumber="1", summary="first touched"),
        course("C", 3, idnumber="2"),
        course("B", 4, idnumber="1"),
    ]
    assert outcomes(run(platform, rows, identity="idnumber", update=True)) == [Outcome.UPDATED] * 3
    assert [(c.shortname, c.idnumber, c.summary) for c in platform.courses()] == [
        ("B", "1", "first touched"),
        ("C", "2", ""),
    ]


# -- enrolment methods and teachers --------------------------------------------------------


def test_self_and_guest_switch_methods_on_and_off(platform: FakePlatform) -> None:
    """yes enables (creating when missing), no disables; a new course never gets a disabled one."""
    run(platform, [course("C1", self="1", guest="0")])
    assert methods(platform, "C1") == {"manual": True, "self": True}
    results = run(platform, [course("C1", self="no", guest="yes")], update=True)
    assert results == [RowResult(Outcome.UPDATED, "course 'C1': self, guest")]
    assert methods(platform, "C1") == {"manual": True, "self": False, "guest": True}
    assert outcomes(run(platform, [course("C1", self="no")], update=True)) == [Outcome.UNCHANGED]


def test_teachers_are_enrolled_with_their_role(platform: FakePlatform) -> None:
    """teacherN_account enrols manually; teacherN_role defaults to editingteacher."""
    platform.seed(UserRecord("ann"), UserRecord("bob"))
    row = course("C1", teacher1_account="Ann", teacher2_account="bob", teacher2_role="teacher")
    assert outcomes(run(platform, [row])) == [Outcome.CREATED]
    assert platform.enrolled("C1") == {"ann": True, "bob": True}
    assert platform.course_roles("C1") == {("ann", "editingteacher"), ("bob", "teacher")}
    manual = next(m for m in platform.methods() if m.method == "manual")
    assert {e.method_id for e in platform.enrolments()} == {manual.id}


def test_teacher_on_update_is_added_once(platform: FakePlatform) -> None:
    """On update a new teacher is a changed field; an enrolled one with the role is no change."""
    platform.seed(UserRecord("ann"))
    seed_course(platform, "C1")
    results = run(platform, [course("C1", teacher1_account="ann")], update=True)
    assert results == [RowResult(Outcome.UPDATED, "course 'C1': teacher1")]
    assert outcomes(run(platform, [course("C1", teacher1_account="ann")], update=True)) == [Outcome.UNCHANGED]
    results = run(platform, [course("C1", teacher3_account="ann", teacher3_role="manager")], update=True)
    assert results == [RowResult(Outcome.UPDATED, "course 'C1': teacher3")]
    assert len(platform.enrolments()) == 1
    assert platform.course_roles("C1") == {("ann", "editingteacher"), ("ann", "manager")}


def test_same_teacher_twice_is_enrolled_once_with_both_roles(platform: FakePlatform) -> None:
    """Two teacher columns naming one user give one enrolment and two roles."""
    platform.seed(UserRecord("ann"))
    run(platform, [course("C1", teacher1_account="ann", teacher2_account="ann", teacher2_role="manager")])
    assert len(platform.enrolments()) == 1
    assert platform.course_roles("C1") == {("ann", "editingteacher"), ("ann", "manager")}


def test_teacher_of_a_course_renamed_earlier_in_the_batch_is_not_enrolled_twice(
    platform: FakePlatform,
) -> None:
    """A row reaching a course by a key an earlier row gave it still sees the course's enrolments."""
    platform.seed(UserRecord("ann"))
    seed_course(platform, "A", idnumber="1")
    run(platform, [course("A", teacher1_account="ann")], update=True)
    rows = [course("Z", idnumber="1"), course("Z", 3, teacher1_account="ann", teacher1_role="manager")]
    results = run(platform, rows, identity="idnumber", update=True)
    assert [r.reason for r in results] == [
        "course 'Z' (was 'A'): shortname, fullname",
        "course 'Z': teacher1",
    ]
    assert len(platform.enrolments()) == 1
    assert platform.course_roles("Z") == {("ann", "editingteacher"), ("ann", "manager")}


def test_unknown_teacher_or_role_is_a_row_error(platform: FakePlatform) -> None:
    """An unknown account or role names the column and the value; nothing is created."""
    platform.seed(UserRecord("ann"))
    results = run(platform, [
        course("C1", teacher1_account="nobody"),
        course("C2", 3, teacher2_account="ann", teacher2_role="boss"),
    ])
    assert [r.reason for r in results] == [
        "unknown user 'nobody' (teacher1_account)",
        "unknown role 'boss' (teacher2_role)",
    ]
    assert platform.courses() == []


def test_deleted_user_cannot_be_a_teacher(platform: FakePlatform) -> None:
    """A soft-deleted account is unknown to teacherN_account."""
    platform.seed(UserRecord("gone", deleted=True))
    assert run(platform, [course("C1", teacher1_account="gone")])[0].reason == (
        "unknown user 'gone' (teacher1_account)"
    )


# -- topics and templates -------------------------------------------------------------------


def test_topics_set_sections_and_fill_gaps(platform: FakePlatform) -> None:
    """topicN = name|summary sets section N; sections below it are created empty."""
    run(platform, [course("C1", topic0="General|Welcome", topic3="Week 3|Optics")])
    assert sections(platform, "C1") == {
        0: ("General", "Welcome"), 1: ("", ""), 2: ("", ""), 3: ("Week 3", "Optics")
    }


def test_topic_update_without_summary_keeps_it(platform: FakePlatform) -> None:
    """A topic without '|' renames the section and keeps its summary; the same value is no change."""
    run(platform, [course("C1", topic1="Intro|Read this")])
    results = run(platform, [course("C1", topic1="Start")], update=True)
    assert results == [RowResult(Outcome.UPDATED, "course 'C1': topic1")]
    assert sections(platform, "C1")[1] == ("Start", "Read this")
    same = run(platform, [course("C1", topic1="Start|Read this")], update=True)
    assert outcomes(same) == [Outcome.UNCHANGED]


def test_template_sections_are_copied_into_a_new_course(platform: FakePlatform) -> None:
    """A new course copies its template's sections, then applies its own topics."""
    template = platform.seed_course("TPL")
    assert template.id is not None
    platform.direct.courses.put_sections([
        SectionRecord(template.id, 0, "General", "Hello"),
        SectionRecord(template.id, 1, "Unit 1", "Basics"),
        SectionRecord(template.id, 2, "Unit 2", "More"),
    ])
    results = run(platform, [course("C1", template="TPL", topic2="Own")])
    assert results == [RowResult(Outcome.CREATED, "course 'C1' from template 'TPL'")]
    assert sections(platform, "C1") == {0: ("General", "Hello"), 1: ("Unit 1", "Basics"), 2: ("Own", "More")}
    assert sections(platform, "TPL")[2] == ("Unit 2", "More")


def test_template_made_earlier_in_the_batch_is_usable(platform: FakePlatform) -> None:
    """A template created by an earlier row of the same batch passes on its sections."""
    rows = [course("TPL", topic1="Unit|Text"), course("C1", 3, template="TPL")]
    assert outcomes(run(platform, rows)) == [Outcome.CREATED, Outcome.CREATED]
    assert sections(platform, "C1") == {0: ("", ""), 1: ("Unit", "Text")}


def test_unknown_template_or_archive_without_a_store_is_a_row_error(platform: FakePlatform) -> None:
    """An unknown shortname fails; an archive path needs the run's store/ (tests/integration covers it)."""
    results = run(platform, [
        course("C1", template="NOPE"),
        course("C2", 3, template="backups/math.mbz"),
        course("C3", 4, template="math.MBZ"),
    ])
    assert results[0].reason == "unknown course 'NOPE' (template)"
    assert results[1].reason == "template: archives are looked up in store/, which this run does not know"
    assert results[2].outcome is Outcome.ERROR
    assert platform.courses() == []


def test_template_is_ignored_on_update(platform: FakePlatform) -> None:
    """template only applies to a new course; an existing one keeps its sections."""
    run(platform, [course("TPL", topic1="T|t"), course("C1", 3)])
    assert outcomes(run(platform, [course("C1", template="TPL")], update=True)) == [Outcome.UNCHANGED]
    assert sections(platform, "C1") == {0: ("", "")}


# -- batching -----------------------------------------------------------------------------


class CountingTx:
    """A FakeTx wrapper that counts repository calls by 'repo.method'."""

    def __init__(self, tx: FakeTx) -> None:
        self._tx = tx
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        repo = getattr(self._tx, name)
        calls = self.calls

        class Proxy:
            def __getattr__(self, method: str) -> Any:
                target = getattr(repo, method)

                def call(*args: Any, **kwargs: Any) -> Any:
                    calls[f"{name}.{method}"] += 1
                    return target(*args, **kwargs)

                return call

        return Proxy()


def test_a_batch_reads_and_writes_each_kind_once(platform: FakePlatform) -> None:
    """Fifty rows with teachers, topics and new categories: one call per look-up and per write kind."""
    platform.seed(*(UserRecord(f"t{i}") for i in range(5)))
    for i in range(10):
        platform.seed_course(f"OLD{i}")
    rows = [
        course(f"C{i}", i + 2, category=f"Dept{i % 3}/Year", topic1="One|1", self="1",
               teacher1_account=f"t{i % 5}")
        for i in range(40)
    ] + [course(f"OLD{i}", 50 + i, topic2="Two", teacher1_account="t0") for i in range(10)]
    processor = build({"update": True}, CTX)
    with platform.transaction() as tx:
        counting = CountingTx(tx)
        results = processor.apply(rows, counting)
    assert set(outcomes(results)) == {Outcome.CREATED, Outcome.UPDATED}
    calls = counting.calls
    for single in ("courses.find", "categories.all", "users.find", "roles.all", "courses.add",
                   "courses.sections", "courses.put_sections", "enrolments.methods", "enrolments.add_methods",
                   "enrolments.find", "enrolments.roles", "enrolments.add", "enrolments.assign"):
        assert calls[single] == 1, (single, calls)
    assert calls["categories.add"] == 2  # one per tree level: parents, then children
    assert len(platform.courses()) == 50 and len(platform.enrolments()) == 50


def test_dry_run_leaves_the_platform_unchanged(platform: FakePlatform) -> None:
    """Applied in a rolled-back transaction, a batch reports results and stores nothing."""
    processor = build({}, CTX)
    with platform.transaction(rollback=True) as tx:
        results = processor.apply([course("C1", category="A/B")], tx)
    assert outcomes(results) == [Outcome.CREATED]
    assert platform.courses() == [] and platform.categories() == []
