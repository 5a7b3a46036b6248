"""Unit tests for syncd.csvfile: the one CSV reader and its typed value parsers."""

from __future__ import annotations

import hashlib
import tracemalloc
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from syncd import csvfile
from syncd.csvfile import (
    CsvFile,
    CsvOptions,
    Header,
    Record,
    Schema,
    parse_bool,
    parse_datetime,
    parse_int,
    row_values,
    validate_header,
)
from syncd.domain import ConfigError, RejectFile, RowError

PARIS_SUMMER = timezone(timedelta(hours=2), "CEST")
USERS = Schema(
    required=frozenset({"username", "firstname", "lastname"}),
    optional=frozenset({"email", "idnumber"}),
    patterns=(r"profile_field_[a-z0-9_]+",),
)


def write(tmp_path: Path, data: bytes, name: str = "users.csv") -> Path:
    """Write ``data`` as a file in ``tmp_path`` and return its path."""
    path = tmp_path / name
    path.write_bytes(data)
    return path


def read(path: Path, **options: object) -> tuple[Header, list[Record]]:
    """Return the header and every record of ``path`` read with ``options``."""
    csv_file = CsvFile(path, CsvOptions(**options))  # type: ignore[arg-type]
    return csv_file.header(), list(csv_file.records())


def header_of(*names: str, line: int = 1) -> Header:
    """Build a Header with ``names`` for validate_header/row_values tests."""
    return Header(names, line, b"", ",")


# --- parsing -----------------------------------------------------------------------------


def test_quoted_fields_keep_embedded_separators_quotes_and_newlines(tmp_path: Path) -> None:
    """Quoted fields may hold the separator, other separators, "" escapes and newlines."""
    data = b'a,b,c\n"x,y","p;q|r","say ""hi""\nsecond line\r\nthird"\n'
    _, records = read(write(tmp_path, data))
    assert [r.fields for r in records] == [["x,y", "p;q|r", 'say "hi"\nsecond line\r\nthird']]
    assert records[0].line == 2


@pytest.mark.parametrize(
    "data",
    [
        b"a,b\r\n1,2\r\n3,4\r\n",
        b"a,b\n1,2\n3,4\n",
        b"a,b\r\n1,2\n3,4\r\n",
        b'a,b\n1,"two\r\nlines"\n3,4\n',
        b"\xef\xbb\xbfa,b\r\n1,2\r\n3,4",
        b"a,b\n1,2\n3,4",
    ],
    ids=["crlf", "lf", "mixed", "quoted-newline", "bom-no-final-eol", "no-final-eol"],
)
def test_raw_bytes_rebuild_the_file_exactly(tmp_path: Path, data: bytes) -> None:
    """Header raw plus every record's raw are the file's bytes, terminators and BOM included."""
    header, records = read(write(tmp_path, data))
    assert header.names == ("a", "b")
    assert header.raw + b"".join(r.raw for r in records) == data
    assert [r.fields[0] for r in records] == ["1", "3"]


def test_bom_is_stripped_from_header_text_but_kept_in_raw(tmp_path: Path) -> None:
    """A UTF-8 BOM does not leak into the first column name."""
    header, _ = read(write(tmp_path, b"\xef\xbb\xbfUsername,Email\n"))
    assert header.names == ("username", "email")
    assert header.raw == b"\xef\xbb\xbfUsername,Email\n"


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_delimiter_is_detected_from_the_header(tmp_path: Path, delimiter: str) -> None:
    """Each supported separator is detected from the header and used for the data."""
    data = delimiter.join(["a", "b", "c"]) + "\n" + delimiter.join(["1", "x,y", "3"]) + "\n"
    if delimiter == ",":
        data = 'a,b,c\n1,"x,y",3\n'
    header, records = read(write(tmp_path, data.encode()))
    assert header.delimiter == delimiter
    assert records[0].fields == ["1", "x,y", "3"]


@pytest.mark.parametrize(
    ("first_line", "expected"),
    [
        (b'"a;b;c;d",e,f\n', ","),  # separators inside quotes do not count
        (b'"x|y";b;c|d\n', ";"),
        (b"a;b|c\n", ","),  # tie
        (b"shortname\n", ","),  # single column
    ],
)
def test_delimiter_detection_ignores_quotes_and_falls_back_to_comma(
    tmp_path: Path, first_line: bytes, expected: str
) -> None:
    """Detection counts outside quotes only and picks ',' on a tie or when none is found."""
    assert CsvFile(write(tmp_path, first_line + b"x\n")).header().delimiter == expected


def test_configured_delimiter_overrides_detection(tmp_path: Path) -> None:
    """A configured separator is used even when another one is more frequent in the header."""
    header, records = read(write(tmp_path, b"a;b;c|d\n1;2;3|4\n"), delimiter="|")
    assert header.delimiter == "|"
    assert header.names == ("a;b;c", "d")
    assert records[0].fields == ["1;2;3", "4"]


@pytest.mark.parametrize(
    "options",
    [
        {"delimiter": ":"},
        {"encoding": "utf-16"},
        {"encoding": "utf-32-le"},
        {"encoding": "utf-7"},
        {"encoding": "no-such-codec"},
        {"encoding": "rot13"},
        {"max_record_bytes": 0},
    ],
)
def test_bad_options_raise_config_error(options: dict[str, object]) -> None:
    """Unknown or non-ASCII-compatible encodings, odd separators and a zero cap are refused."""
    with pytest.raises(ConfigError):
        CsvOptions(**options)  # type: ignore[arg-type]


def test_comments_and_blank_lines_are_skipped_between_records(tmp_path: Path) -> None:
    """Blank, whitespace-only and '#' lines are not records and do not bump the index."""
    data = b"# export of 2026-09-01\n\na,b\n  # indented comment\n1,2\n \t\r\n\r\n#x,y\n3,4\n"
    header, records = read(write(tmp_path, data))
    assert (header.names, header.line) == (("a", "b"), 3)
    assert [(r.index, r.line, r.fields) for r in records] == [
        (0, 5, ["1", "2"]),
        (1, 9, ["3", "4"]),
    ]


def test_hash_line_inside_a_quoted_field_is_data(tmp_path: Path) -> None:
    """A '#' or blank line inside a quoted multi-line field belongs to the field."""
    data = b'a,b\n1,"first\n# not a comment\n\nlast"\n2,x\n'
    _, records = read(write(tmp_path, data))
    assert records[0].fields == ["1", "first\n# not a comment\n\nlast"]
    assert records[0].raw == b'1,"first\n# not a comment\n\nlast"\n'
    assert (records[1].line, records[1].fields) == (6, ["2", "x"])


def test_line_numbers_follow_physical_lines(tmp_path: Path) -> None:
    """Record.line is the first physical line of the record, counting comments and spans."""
    data = b'#c\na,b\n1,"x\ny"\n#c\n2,"p\n\nq"\n3,z\n'
    _, records = read(write(tmp_path, data))
    assert [(r.index, r.line) for r in records] == [(0, 3), (1, 6), (2, 9)]


def test_header_names_are_trimmed_and_lowercased(tmp_path: Path) -> None:
    """Header names are case-insensitive and trimmed; data values are left as parsed."""
    header, records = read(write(tmp_path, b" UserName ,EMAIL\t\n Bob ,b@x\n"))
    assert header.names == ("username", "email")
    assert records[0].fields == [" Bob ", "b@x"]


def test_records_can_be_read_again(tmp_path: Path) -> None:
    """records() re-reads the file from the start on each call."""
    csv_file = CsvFile(write(tmp_path, b"a\n1\n2\n"))
    assert [r.fields for r in csv_file.records()] == [r.fields for r in csv_file.records()]
    assert len(list(csv_file.records())) == 2


@pytest.mark.parametrize(
    "data", [b"", b"\xef\xbb\xbf", b"# only a comment\n\n   \n"], ids=["empty", "bom", "comments"]
)
def test_file_without_header_is_rejected(tmp_path: Path, data: bytes) -> None:
    """A file with no non-comment line is rejected as empty."""
    with pytest.raises(RejectFile, match="empty file: no header line"):
        CsvFile(write(tmp_path, data)).header()


def test_header_only_file_has_no_records(tmp_path: Path) -> None:
    """A file with a header and no data is valid and yields no record."""
    header, records = read(write(tmp_path, b"username,firstname\n# nothing today\n"))
    assert header.names == ("username", "firstname")
    assert records == []


# --- malformed input ----------------------------------------------------------------------


def test_malformed_quoting_is_an_error_record_and_parsing_goes_on(tmp_path: Path) -> None:
    """Text after a closing quote makes one error record; the next records still parse."""
    data = b'a,b\n1,"b"c\n2,ok\n3,"multi\nline"x\n4,fine\n'
    _, records = read(write(tmp_path, data))
    assert [(r.index, r.line, r.error is None) for r in records] == [
        (0, 2, False),
        (1, 3, True),
        (2, 4, False),
        (3, 6, True),
    ]
    assert records[0].raw == b'1,"b"c\n'
    assert records[0].error is not None and records[0].error.startswith("malformed CSV")
    assert records[2].raw == b'3,"multi\nline"x\n'
    assert [records[1].fields, records[3].fields] == [["2", "ok"], ["4", "fine"]]


def test_unterminated_quote_at_eof_is_one_error_record(tmp_path: Path) -> None:
    """A quote left open swallows the rest of the file into one error record with its bytes."""
    data = b'a,b\n1,2\n3,"open\n4,5\n6,7\n'
    _, records = read(write(tmp_path, data))
    assert len(records) == 2
    assert records[1].error == "malformed CSV: unterminated quoted field"
    assert (records[1].line, records[1].raw) == (3, b'3,"open\n4,5\n6,7\n')


def test_runaway_quote_past_max_record_bytes_resynchronises(tmp_path: Path) -> None:
    """A record over max_record_bytes is an error record and reading resumes at the next line."""
    data = b'a,b\n1,"open\nxx\nyy\nzz\n2,3\n'
    _, records = read(write(tmp_path, data), max_record_bytes=12)
    assert records[0].error == "malformed CSV: record longer than 12 bytes"
    assert (records[0].line, records[0].raw) == (2, b'1,"open\nxx\nyy\n')
    assert [(r.line, r.fields) for r in records[1:]] == [(5, ["zz"]), (6, ["2", "3"])]


def test_single_oversized_line_is_cut_and_skipped(tmp_path: Path) -> None:
    """A physical line longer than max_record_bytes is not read whole; the next line parses."""
    data = b"a,b\n1," + b"x" * 1000 + b"\n2,3\n"
    _, records = read(write(tmp_path, data), max_record_bytes=64)
    assert records[0].error is not None and len(records[0].raw) <= 65
    assert (records[1].index, records[1].line, records[1].fields) == (1, 3, ["2", "3"])


def test_oversized_header_rejects_the_file(tmp_path: Path) -> None:
    """A header over max_record_bytes rejects the file, naming the line."""
    with pytest.raises(RejectFile, match="line 1: bad header: malformed CSV: record longer"):
        CsvFile(write(tmp_path, b"a" * 100 + b"\n"), CsvOptions(max_record_bytes=10)).header()


def test_bare_carriage_return_in_unquoted_field_is_an_error_record(tmp_path: Path) -> None:
    """A lone CR inside an unquoted field is malformed; the following record still parses."""
    _, records = read(write(tmp_path, b"a,b\n1,x\ry\n2,z\n"))
    assert records[0].error is not None and "carriage return" in records[0].error
    assert records[1].fields == ["2", "z"]


# --- check(): integrity pre-pass ------------------------------------------------------


def test_check_returns_sha256_of_the_file(tmp_path: Path) -> None:
    """check() returns the hex sha256 of the exact file bytes."""
    data = b"\xef\xbb\xbfa,b\r\n" + "é,€\n".encode() * 1000
    assert CsvFile(write(tmp_path, data)).check() == hashlib.sha256(data).hexdigest()


def test_check_rejects_a_nul_byte_with_its_offset(tmp_path: Path) -> None:
    """A NUL byte marks a binary file; the message gives its offset."""
    path = write(tmp_path, b"a,b\n1,2\n3\x004\n")
    with pytest.raises(RejectFile, match=r"^binary file: NUL byte at offset 9$"):
        CsvFile(path).check()


def test_check_rejects_undecodable_utf8_with_offset_and_line(tmp_path: Path) -> None:
    """An invalid UTF-8 byte rejects the file naming byte, offset, line and encoding."""
    path = write(tmp_path, b"a,b\n1,2\nJos\xe9,3\n")
    expected = r"^undecodable byte 0xe9 at offset 11 \(line 3\) for encoding utf-8$"
    with pytest.raises(RejectFile, match=expected):
        CsvFile(path).check()


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 4, 5, 7])
def test_check_handles_chunk_boundaries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk_size: int
) -> None:
    """Multi-byte characters split across chunks decode; a bad byte keeps its true offset."""
    monkeypatch.setattr(csvfile, "_CHUNK_SIZE", chunk_size)
    good = "a,b\n€,😀\né,x\n".encode()
    assert CsvFile(write(tmp_path, good)).check() == hashlib.sha256(good).hexdigest()
    bad = "a\n€€\n".encode() + b"\xe2\x82x\n"  # truncated euro sign at offset 9, line 3
    with pytest.raises(RejectFile, match=r"0xe2 at offset 9 \(line 3\)"):
        CsvFile(write(tmp_path, bad, "bad.csv")).check()


def test_check_rejects_a_truncated_character_at_eof(tmp_path: Path) -> None:
    """A multi-byte sequence cut by the end of the file is undecodable."""
    with pytest.raises(RejectFile, match=r"0xe2 at offset 4 \(line 2\)"):
        CsvFile(write(tmp_path, b"a,b\n\xe2\x82")).check()


def test_records_reject_undecodable_bytes_too(tmp_path: Path) -> None:
    """Reading records without check() still rejects an undecodable line with its offset."""
    with pytest.raises(RejectFile, match=r"0xff at offset 8 \(line 2\) for encoding utf-8"):
        read(write(tmp_path, b"a,b\n1,2,\xff\n"))


def test_cp1252_decodes_the_euro_sign(tmp_path: Path) -> None:
    """In cp1252, 0x80 is the euro sign; undefined bytes are still rejected."""
    path = write(tmp_path, b"a,b\n\x80,Jos\xe9\n")
    csv_file = CsvFile(path, CsvOptions(encoding="cp1252"))
    csv_file.check()
    assert next(csv_file.records()).fields == ["€", "José"]
    with pytest.raises(RejectFile, match=r"0x81 at offset 4 .*cp1252"):
        CsvFile(write(tmp_path, b"a,b\n\x81\n", "x.csv"), CsvOptions(encoding="cp1252")).check()


def test_latin1_decodes_every_byte_and_keeps_a_bom_lookalike(tmp_path: Path) -> None:
    """latin-1 never fails, and UTF-8 BOM bytes are not special in it."""
    path = write(tmp_path, b"\xef\xbb\xbfa,b\n\x80,\xe9\n")
    csv_file = CsvFile(path, CsvOptions(encoding="latin-1"))
    csv_file.check()
    assert csv_file.header().names == ("ï»¿a", "b")
    assert next(csv_file.records()).fields == ["\x80", "é"]


# --- header validation and row values -------------------------------------------------


def test_validate_header_accepts_known_optional_and_pattern_columns() -> None:
    """A header with required, optional and pattern-matched columns passes."""
    header = header_of("username", "firstname", "lastname", "email", "profile_field_team")
    validate_header(header, USERS, "users.csv")


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (("username", "firstname", "lastname", "emial"), "unknown column 'emial'"),
        (("username", "firstname", "lastname", "email", "email"), "duplicate column 'email'"),
        (("username", "firstname"), "missing required column 'lastname'"),
        (("username", "firstname", "", "lastname"), "empty column name (column 3)"),
    ],
)
def test_validate_header_names_the_bad_column(names: tuple[str, ...], message: str) -> None:
    """Unknown, duplicate, missing and empty columns reject the file naming file, line, column."""
    with pytest.raises(RejectFile) as info:
        validate_header(header_of(*names, line=4), USERS, "users.csv")
    assert str(info.value) == f"users.csv: line 4: {message}"


def test_validate_header_reports_every_problem_at_once() -> None:
    """Several header problems come in one message joined by '; '."""
    with pytest.raises(RejectFile) as info:
        validate_header(header_of("username", "x", "username"), USERS, "u.csv")
    assert str(info.value) == (
        "u.csv: line 1: unknown column 'x'; duplicate column 'username'; "
        "missing required column 'firstname'; missing required column 'lastname'"
    )


def test_duplicate_after_normalisation_is_detected(tmp_path: Path) -> None:
    """'Email' and 'email ' are the same column once normalised."""
    header = CsvFile(write(tmp_path, b"username,firstname,lastname,Email,email \n")).header()
    with pytest.raises(RejectFile, match="line 1: duplicate column 'email'"):
        validate_header(header, USERS, "users.csv")


def test_schema_rejects_an_invalid_pattern() -> None:
    """A schema pattern that is not a regex is a configuration error."""
    with pytest.raises(ConfigError, match="profile_"):
        Schema(required=frozenset(), patterns=("profile_(",))


def test_row_values_maps_names_to_stripped_values() -> None:
    """row_values pairs header names with the record's values, trimmed."""
    record = Record(0, 2, [" bob ", "\tBob", "x "], b"")
    assert row_values(header_of("username", "firstname", "lastname"), record) == {
        "username": "bob",
        "firstname": "Bob",
        "lastname": "x",
    }


@pytest.mark.parametrize(
    ("fields", "message"), [(["1", "2", "3"], "3 fields, header has 2"), (["1"], "1 fields")]
)
def test_row_values_rejects_ragged_rows(fields: list[str], message: str) -> None:
    """A row with more or fewer fields than the header is a row error."""
    with pytest.raises(RowError, match=message):
        row_values(header_of("a", "b"), Record(0, 2, fields, b""))


def test_row_values_reports_a_malformed_record() -> None:
    """A malformed record becomes a row error carrying its message."""
    record = Record(0, 2, [], b'1,"x"y\n', "malformed CSV: bad quote")
    with pytest.raises(RowError, match=r"^malformed CSV: bad quote$"):
        row_values(header_of("a", "b"), record)


# --- typed values -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        *[(text, True) for text in ("1", "YES", "true", "y", " On ")],
        *[(text, False) for text in ("0", "no", "False", "N", "off")],
    ],
)
def test_parse_bool_accepts_the_usual_spellings(text: str, expected: bool) -> None:
    """1/0, yes/no, true/false, y/n, on/off are booleans in any case."""
    assert parse_bool(text, "suspended") is expected


def test_parse_bool_rejects_other_values() -> None:
    """Any other value is a row error naming the column and the value."""
    expected = r"^suspended: invalid boolean 'maybe' \(expected 1/0, yes/no, true/false\)$"
    with pytest.raises(RowError, match=expected):
        parse_bool("maybe", "suspended")


@pytest.mark.parametrize(("text", "expected"), [("42", 42), ("-7", -7), (" +3 ", 3)])
def test_parse_int_reads_decimal_integers(text: str, expected: int) -> None:
    """Signed decimal integers are read, surrounding blanks ignored."""
    assert parse_int(text, "maxbytes") == expected


@pytest.mark.parametrize("text", ["x1", "1.5", "1_000", "", "١٢"])
def test_parse_int_rejects_non_integers(text: str) -> None:
    """Anything but ASCII digits with an optional sign is a row error naming column and value."""
    with pytest.raises(RowError, match=f"^maxbytes: invalid integer '{text}'$"):
        parse_int(text, "maxbytes")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-09-01", datetime(2026, 9, 1, tzinfo=PARIS_SUMMER)),
        ("2026-09-01 08:00:00", datetime(2026, 9, 1, 8, tzinfo=PARIS_SUMMER)),
        ("2026-09-01T08:00", datetime(2026, 9, 1, 8, tzinfo=PARIS_SUMMER)),
        ("2026-09-01T08:00:00Z", datetime(2026, 9, 1, 8, tzinfo=UTC)),
        ("2026-09-01 08:00:00+05:30", datetime(2026, 9, 1, 2, 30, tzinfo=UTC)),
        ("1788220800", datetime(2026, 9, 1, tzinfo=UTC)),
        ("-86400", datetime(1969, 12, 31, tzinfo=UTC)),
    ],
)
def test_parse_datetime_reads_iso_and_epoch(text: str, expected: datetime) -> None:
    """ISO dates and datetimes (naive = configured zone) and epoch seconds (UTC) are read."""
    parsed = parse_datetime(text, "startdate", PARIS_SUMMER)
    assert parsed.tzinfo is not None
    assert parsed == expected


def test_parse_datetime_keeps_naive_values_in_the_configured_zone() -> None:
    """A naive value gets the configured zone, not UTC."""
    parsed = parse_datetime("2026-09-01 08:00", "startdate", PARIS_SUMMER)
    assert parsed.utcoffset() == timedelta(hours=2)
    assert parsed.astimezone(UTC).hour == 6


@pytest.mark.parametrize("text", ["31/12/2026", "2026-13-01", "2026-09-01x08:00", "", "soon"])
def test_parse_datetime_rejects_other_formats(text: str) -> None:
    """Anything else is a row error naming the column, the value and the expected formats."""
    expected = f"^startdate: invalid date '{text}' \\(expected ISO 8601 or Unix epoch seconds\\)$"
    with pytest.raises(RowError, match=expected):
        parse_datetime(text, "startdate", UTC)


# --- volume -------------------------------------------------------------------------------

ROWS = 200_000


def write_big(tmp_path: Path) -> Path:
    """Write a header, a comment and ROWS short data rows."""
    path = tmp_path / "big.csv"
    with path.open("wb") as f:
        f.write(b"username,firstname,lastname,email\n# generated\n")
        f.writelines(b"u%d,First,Last,u%d@example.org\n" % (i, i) for i in range(ROWS))
    return path


def test_streams_a_large_file(tmp_path: Path) -> None:
    """A 200k-row file yields every record with the right index and last line number."""
    count, last = 0, None
    for record in CsvFile(write_big(tmp_path)).records():
        count, last = count + 1, record
    assert count == ROWS
    assert last is not None and (last.index, last.line) == (ROWS - 1, ROWS + 2)
    assert last.fields[0] == f"u{ROWS - 1}"


def test_reading_records_keeps_memory_flat(tmp_path: Path) -> None:
    """Iterating 200k records without keeping them allocates far less than the file size."""
    path = write_big(tmp_path)
    csv_file = CsvFile(path)
    tracemalloc.start()
    try:
        count = sum(1 for _ in csv_file.records())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == ROWS
    assert peak < 2 * 1024 * 1024 < path.stat().st_size


def test_headerless_form_reads_the_first_record_as_data(tmp_path: Path) -> None:
    """A schema with a header-less form reads a file whose first record is no header as data."""
    path = tmp_path / "flat.csv"
    path.write_bytes(b"add,student,E1,C1\n# comment\ndel,teacher,E2,C2,2026-09-01\n")
    schema = Schema(required=frozenset({"cmd"}), optional=frozenset({"role"}),
                    headerless=("cmd", "role", "user", "course", "start", "end"))
    csv = CsvFile(path)
    header = csv.resolve_header(schema)
    assert header.synthetic and header.raw == b"" and header.names[0] == "cmd"
    validate_header(header, schema, "flat.csv")  # nothing to check
    records = list(csv.records())
    assert [r.index for r in records] == [0, 1] and [r.line for r in records] == [1, 3]
    assert row_values(header, records[0]) == {"cmd": "add", "role": "student", "user": "E1", "course": "C1"}
    assert row_values(header, records[1])["start"] == "2026-09-01"
    too_long = Record(2, 4, ["a"] * 7, b"")
    with pytest.raises(RowError, match="7 fields, at most 6 expected"):
        row_values(header, too_long)


def test_a_real_header_is_kept_when_a_headerless_form_exists(tmp_path: Path) -> None:
    """A first record naming known columns stays the header."""
    path = tmp_path / "h.csv"
    path.write_bytes(b"cmd,role\nadd,student\n")
    schema = Schema(required=frozenset({"cmd"}), optional=frozenset({"role"}), headerless=("cmd", "role"))
    header = CsvFile(path).resolve_header(schema)
    assert not header.synthetic and header.names == ("cmd", "role")
