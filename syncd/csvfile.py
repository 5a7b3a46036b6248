"""The one CSV reader: encoding, dialect, header, records with their raw bytes, typed values.

A command file is read in binary and split into physical lines on ``b"\\n"``; each line is
decoded and fed to Python's C :func:`csv.reader`, while its exact bytes are kept so that a
:class:`Record` carries the original bytes of every physical line it spans (the tryback file
is written from them). Blank lines and ``#`` lines at the start of a record are comments.
Memory stays flat: only the current record is held, and a record is capped at
:attr:`CsvOptions.max_record_bytes`.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import re
from collections.abc import Generator, Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from functools import partial
from pathlib import Path
from typing import BinaryIO

from syncd.domain import ConfigError, RejectFile, RowError

#: the separators a command file may use (configured or detected from the header)
DELIMITERS = (",", ";", "\t", "|")

_CHUNK_SIZE = 1 << 20  # bytes read at a time by check() and when skipping an oversized line
_BOM = codecs.BOM_UTF8
_ASCII_PROBE = "\t\n\r" + "".join(chr(c) for c in range(32, 127))
_MAYBE_COMMENT = frozenset(b" \t\r\n\x0b\x0c#")  # first bytes that need a closer look
_HASH = ord("#")
_QUOTED = re.compile(r'"[^"]*(?:"|$)')
_INTEGER = re.compile(r"[+-]?[0-9]+")
_EPOCH = re.compile(r"-?[0-9]+")
_ISO = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"(?:[Tt ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?(?:[Zz]|[+-][0-9]{2}:?[0-9]{2})?)?"
)
_BOOLEANS = {
    **dict.fromkeys(("1", "yes", "y", "true", "on"), True),
    **dict.fromkeys(("0", "no", "n", "false", "off"), False),
}


@dataclass(frozen=True, slots=True)
class CsvOptions:
    """How to read a command file: encoding, separator (None = detect) and record size cap."""

    encoding: str = "utf-8"
    delimiter: str | None = None
    max_record_bytes: int = 16 * 1024 * 1024

    def __post_init__(self) -> None:
        """Reject encodings that are unknown or not ASCII-compatible, and odd separators."""
        _codec_of(self.encoding)
        if self.delimiter is not None and self.delimiter not in DELIMITERS:
            raise ConfigError(f"csv delimiter: {self.delimiter!r} is not one of ',', ';', tab, '|'")
        if self.max_record_bytes < 1:
            raise ConfigError(f"csv max_record_bytes: {self.max_record_bytes} is not positive")


@dataclass(frozen=True, slots=True)
class Schema:
    """The columns a processor accepts: required names, optional names, name patterns."""

    required: frozenset[str]
    optional: frozenset[str] = frozenset()
    patterns: tuple[str, ...] = ()
    #: column names of the header-less form (course_delete, Moodle's flat-file
    #: enrolments): a first record none of whose fields is a known column is data, read
    #: with these names; trailing fields may be missing
    headerless: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        """Check that every pattern is a valid regular expression."""
        for pattern in self.patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ConfigError(f"schema pattern {pattern!r}: {exc}") from None

    def allows(self, name: str) -> bool:
        """Tell whether the (normalised) column ``name`` is accepted."""
        if name in self.required or name in self.optional:
            return True
        return any(re.fullmatch(pattern, name) for pattern in self.patterns)


@dataclass(frozen=True, slots=True)
class Header:
    """The header record: normalised names, where it is, its exact bytes, the separator."""

    names: tuple[str, ...]
    line: int
    raw: bytes
    delimiter: str
    #: no header in the file: ``names`` come from the schema, ``raw`` is empty
    synthetic: bool = False


@dataclass(frozen=True, slots=True)
class Record:
    """One data record, its first physical line and exact raw bytes; ``error`` if malformed.

    ``raw`` holds every physical line of the record, terminators included. For a record
    over ``max_record_bytes`` it holds the lines read before giving up, the last one cut
    when that single line alone was over the limit.
    """

    index: int
    line: int
    fields: list[str]
    raw: bytes
    error: str | None = None


class _Oversize(Exception):
    """Raised by the line feeder when the current record passes max_record_bytes."""

    def __init__(self, lineno: int) -> None:
        super().__init__(lineno)
        self.lineno = lineno


def _codec_of(encoding: str) -> tuple[str, bool]:
    """Return (codec for decoding, strip a leading UTF-8 BOM) or raise ConfigError."""
    try:
        name = codecs.lookup(encoding).name
        if name in ("utf-8", "utf-8-sig"):
            return "utf-8", True
        compatible = _ASCII_PROBE.encode(name) == _ASCII_PROBE.encode("ascii")
    except (LookupError, UnicodeError):
        raise ConfigError(f"csv encoding: unknown text encoding {encoding!r}") from None
    if not compatible:
        raise ConfigError(
            f"csv encoding: {encoding!r} is not ASCII-compatible (utf-16/utf-32 are not supported)"
        )
    return name, False


def _undecodable(exc: UnicodeDecodeError, offset: int, line: int, encoding: str) -> RejectFile:
    """Build the RejectFile for an undecodable byte at absolute ``offset``."""
    byte = exc.object[exc.start] if exc.start < len(exc.object) else 0
    return RejectFile(
        f"undecodable byte 0x{byte:02x} at offset {offset} (line {line}) for encoding {encoding}"
    )


def _is_comment(body: bytes) -> bool:
    """Tell whether a line (BOM already removed) is blank or starts with '#'."""
    stripped = body.lstrip()
    return not stripped or stripped[0] == _HASH


def _feed(
    f: BinaryIO, parser: _Parser, lineno: int, buf: list[bytes], start: list[int]
) -> Iterator[str]:
    """Yield decoded physical lines to csv.reader, keeping their raw bytes in ``buf``.

    An empty ``buf`` means csv.reader wants the first line of a new record: comments are
    skipped there and ``start[0]`` gets the record's line number.
    """
    limit, codec, bom = parser.limit, parser.codec, parser.bom
    maybe_comment = _MAYBE_COMMENT
    size = 0
    for line in iter(partial(f.readline, limit + 1), b""):
        lineno += 1
        body = line
        if buf:
            size += len(line)
        else:
            if lineno == 1 and bom and line.startswith(_BOM):
                body = line[3:]
            if (not body or body[0] in maybe_comment) and _is_comment(body):
                continue
            size = len(line)
            start[0] = lineno
        buf.append(line)
        if size > limit:
            raise _Oversize(lineno)
        try:
            text = body.decode(codec)
        except UnicodeDecodeError as exc:
            offset = f.tell() - len(body) + exc.start
            raise _undecodable(exc, offset, lineno, parser.encoding) from None
        yield text


def _csv_message(exc: csv.Error) -> str:
    """Turn a csv module error into a message for an admin."""
    text = str(exc)
    if text.startswith("unexpected end of data"):
        return "malformed CSV: unterminated quoted field"
    if text.startswith("new-line character seen in unquoted field"):
        return "malformed CSV: carriage return inside an unquoted field (quote the field)"
    if "expected after" in text:
        return f"malformed CSV: text after a closing quote ({text})"
    return f"malformed CSV: {text}"


class _Parser:
    """Splits one open file into records (the header included, first)."""

    def __init__(self, options: CsvOptions, delimiter: str) -> None:
        self.encoding = options.encoding
        self.codec, self.bom = _codec_of(options.encoding)
        self.limit = options.max_record_bytes
        self.delimiter = delimiter

    def records(self, f: BinaryIO, index: int) -> Generator[Record, None, None]:
        """Yield every record of ``f`` (the header first), numbered from ``index``."""
        if csv.field_size_limit() <= self.limit:
            csv.field_size_limit(self.limit + 1)
        buf: list[bytes] = []
        start = [0]
        lineno = 0
        while lineno >= 0:  # a new csv.reader only after an oversized record
            reader = csv.reader(
                _feed(f, self, lineno, buf, start), delimiter=self.delimiter, strict=True
            )
            index, lineno = yield from self._drain(f, reader, buf, start, index)

    def _drain(
        self,
        f: BinaryIO,
        reader: Iterator[list[str]],
        buf: list[bytes],
        start: list[int],
        index: int,
    ) -> Generator[Record, None, tuple[int, int]]:
        """Yield the records of one reader; return (next index, line to resume at or -1).

        csv.reader survives a csv.Error (it restarts at the next line), so a malformed
        record only costs an error Record. An oversized record kills the feeder: the caller
        resumes with a new reader at the next physical line.
        """
        join = b"".join
        while True:
            resume = -1
            try:
                for fields in reader:
                    raw = join(buf)
                    buf.clear()
                    yield Record(index, start[0], fields, raw)
                    index += 1
                return index, -1
            except csv.Error as exc:
                error = _csv_message(exc)
            except _Oversize as exc:
                resume = exc.lineno
                error = f"malformed CSV: record longer than {self.limit} bytes"
                if not buf[-1].endswith(b"\n"):
                    _skip_line(f)
            raw = join(buf)
            buf.clear()
            yield Record(index, start[0], [], raw, error)
            index += 1
            if resume >= 0:
                return index, resume


def _skip_line(f: BinaryIO) -> None:
    """Discard the rest of the current physical line without holding it in memory."""
    while chunk := f.readline(_CHUNK_SIZE):
        if chunk.endswith(b"\n"):
            return


def _detect_delimiter(text: str) -> str:
    """The separator most frequent outside quotes in ``text``; ',' on a tie or none."""
    unquoted = _QUOTED.sub("", text)
    counts = {d: n for d in DELIMITERS if (n := unquoted.count(d))}
    if not counts:
        return ","
    best = max(counts.values())
    winners = [d for d, n in counts.items() if n == best]
    return winners[0] if len(winners) == 1 else ","


class CsvFile:
    """A command file on disk: integrity pre-pass, header and streamed records."""

    def __init__(self, path: Path, options: CsvOptions = CsvOptions()) -> None:
        """Remember ``path`` and ``options``; nothing is read yet."""
        self.path = path
        self.options = options
        self._header: Header | None = None

    def check(self) -> str:
        """Stream the whole file once and return its sha256 hex digest.

        Raises RejectFile for a binary file (a NUL byte) or a byte that does not decode in
        the configured encoding, naming the offset (and line).
        """
        codec, _ = _codec_of(self.options.encoding)
        digest = hashlib.sha256()
        decoder = codecs.getincrementaldecoder(codec)("strict")
        offset = newlines = 0
        with self.path.open("rb") as f:
            while chunk := f.read(_CHUNK_SIZE):
                digest.update(chunk)
                nul = chunk.find(b"\0")
                pending = len(decoder.getstate()[0])
                try:
                    decoder.decode(chunk if nul < 0 else chunk[:nul])
                except UnicodeDecodeError as exc:
                    at = offset - pending + exc.start
                    line = newlines + chunk.count(b"\n", 0, max(at - offset, 0)) + 1
                    raise _undecodable(exc, at, line, self.options.encoding) from None
                if nul >= 0:
                    raise RejectFile(f"binary file: NUL byte at offset {offset + nul}")
                offset += len(chunk)
                newlines += chunk.count(b"\n")
            pending = len(decoder.getstate()[0])
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError as exc:
                at = offset - pending + exc.start
                raise _undecodable(exc, at, newlines + 1, self.options.encoding) from None
        return digest.hexdigest()

    def header(self) -> Header:
        """The first record that is not a comment, with the separator configured or detected.

        Raises RejectFile when there is none or when it is malformed.
        """
        if self._header is None:
            delimiter = self.options.delimiter or self._detect()
            with (
                self.path.open("rb") as f,
                closing(_Parser(self.options, delimiter).records(f, -1)) as it,
            ):
                first = next(it, None)
            if first is None:
                raise RejectFile("empty file: no header line")
            if first.error is not None:
                raise RejectFile(f"line {first.line}: bad header: {first.error}")
            names = tuple(name.strip().lower() for name in first.fields)
            self._header = Header(names, first.line, first.raw, delimiter)
        return self._header

    def records(self) -> Iterator[Record]:
        """Stream the data records after the header; each call re-reads from the start.

        Comments are skipped; a malformed or oversized record comes with ``error`` set and
        reading goes on. An undecodable line raises RejectFile (run :meth:`check` first).
        """
        header = self.header()
        with self.path.open("rb") as f:
            if header.synthetic:
                yield from _Parser(self.options, header.delimiter).records(f, 0)
                return
            it = _Parser(self.options, header.delimiter).records(f, -1)
            next(it, None)  # the header
            yield from it

    def resolve_header(self, schema: Schema) -> Header:
        """The header, or the schema's header-less names when the first record is data."""
        header = self.header()
        if schema.headerless and not header.synthetic and not any(map(schema.allows, header.names)):
            self._header = Header(schema.headerless, 0, b"", header.delimiter, synthetic=True)
        return self.header()

    def _detect(self) -> str:
        """Detect the separator from the first non-comment line (',' if the file has none)."""
        codec, bom = _codec_of(self.options.encoding)
        limit = self.options.max_record_bytes
        with self.path.open("rb") as f:
            for lineno, line in enumerate(iter(partial(f.readline, limit + 1), b""), 1):
                body = line[3:] if lineno == 1 and bom and line.startswith(_BOM) else line
                if not _is_comment(body):
                    return _detect_delimiter(body.decode(codec, errors="replace"))
        return ","


def validate_header(header: Header, schema: Schema, filename: str) -> None:
    """Raise RejectFile naming every empty, duplicate, unknown or missing column at once.

    A synthetic header (header-less form) has nothing to check.
    """
    if header.synthetic:
        return
    problems: list[str] = []
    seen: set[str] = set()
    for column, name in enumerate(header.names, 1):
        if not name:
            problems.append(f"empty column name (column {column})")
        elif name in seen:
            problems.append(f"duplicate column '{name}'")
        elif not schema.allows(name):
            problems.append(f"unknown column '{name}'")
        seen.add(name)
    problems += [f"missing required column '{name}'" for name in sorted(schema.required - seen)]
    if problems:
        raise RejectFile(f"{filename}: line {header.line}: " + "; ".join(dict.fromkeys(problems)))


def row_values(header: Header, record: Record) -> dict[str, str]:
    """Map the header names to the record's values, stripped; RowError if ragged or malformed."""
    if record.error is not None:
        raise RowError(record.error)
    fields = record.fields
    if header.synthetic:
        if len(fields) > len(header.names):
            raise RowError(f"{len(fields)} fields, at most {len(header.names)} expected")
        return dict(zip(header.names, map(str.strip, fields), strict=False))
    if len(fields) != len(header.names):
        raise RowError(f"{len(fields)} fields, header has {len(header.names)}")
    return dict(zip(header.names, map(str.strip, fields), strict=True))


def parse_bool(value: str, column: str) -> bool:
    """Read 1/0, yes/no, true/false, y/n, on/off (any case) or raise RowError."""
    try:
        return _BOOLEANS[value.strip().lower()]
    except KeyError:
        raise RowError(
            f"{column}: invalid boolean '{value}' (expected 1/0, yes/no, true/false)"
        ) from None


def parse_int(value: str, column: str) -> int:
    """Read a decimal integer (ASCII digits, optional sign) or raise RowError."""
    text = value.strip()
    if not _INTEGER.fullmatch(text):
        raise RowError(f"{column}: invalid integer '{value}'")
    return int(text)


def parse_datetime(value: str, column: str, tz: tzinfo) -> datetime:
    """Read an ISO 8601 date/datetime (naive = ``tz``) or Unix epoch seconds (UTC).

    An all-digit value is epoch seconds. The result is always timezone-aware.
    """
    text = value.strip()
    try:
        if _EPOCH.fullmatch(text):
            return datetime.fromtimestamp(int(text), tz=UTC)
        if _ISO.fullmatch(text):
            parsed = datetime.fromisoformat(text.upper())
            return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=tz)
    except (ValueError, OverflowError, OSError):
        pass
    raise RowError(f"{column}: invalid date '{value}' (expected ISO 8601 or Unix epoch seconds)")
