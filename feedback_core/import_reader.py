"""Reading an import file: CSV with a header row or JSON lines, plain or gzip-compressed, row
by row with line numbers, and the checks and conversions of its fields.

``RecordReader`` streams ``(line, record, error)``; the field helpers turn a record's cells
into values or raise ``_Reject`` with the message a person reads. ``importing`` writes them.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import json
import zlib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from feedback_core.db import to_naive_utc
from feedback_core.errors import ValidationError
from feedback_core.validation import EARLIEST, LEEWAY, check_id, check_score

# Columns of each kind: (required, optional).
COLUMNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "movies": (("movie_id", "title"), ("genres", "cast", "franchise", "year")),
    "ratings": (("user_id", "movie_id", "rating"), ("rated_at",)),
    "impressions": (
        ("recommendation_set_id", "user_id", "movie_id", "rank"),
        ("predicted_score", "model_version", "shown_at"),  # no score: shown without one
    ),
    "dislikes": (
        ("user_id", "movie_id"),
        ("recommendation_set_id", "predicted_score", "reason", "feedback_text", "created_at"),
    ),
}
KINDS = tuple(COLUMNS)

CR_ALONE = "lines must end in LF or CRLF; a CR alone ends no line (save the file with LF or CRLF)"


class _Reject(Exception):
    """A row is bad: raised while building a batch, turned into a RowError."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message, self.field = message, field


# ---------------------------------------------------------------- reading


GZIP_MAGIC = b"\x1f\x8b"
STREAM_ADVICE = "save the stream to a file and import that (gzip-compressed files are read as they are)"


def check_import_path(path: str | Path) -> Path:
    """Return ``path`` as a Path if an import can read it; raise ValidationError saying why not.

    An import reads its file twice (a look at its start, then the rows) and reports progress
    by its size: a regular file, plain or gzip-compressed, not a pipe or standard input.
    """
    if str(path) == "-":
        raise ValidationError(f"reading standard input is not supported: {STREAM_ADVICE}", "path")
    path = Path(path)
    if not path.exists():
        raise ValidationError(f"{path} does not exist", "path")
    if path.is_dir():
        raise ValidationError(f"{path} is a directory: name one file", "path")
    if not path.is_file():
        raise ValidationError(f"{path} is not a regular file (a pipe or a device): {STREAM_ADVICE}", "path")
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc.strerror or exc}", "path") from None
    return path


class RecordReader:
    """Stream ``(line, record, error)`` from a CSV file with a header row or a JSON-lines file,
    either of them plain or gzip-compressed.

    ``bytes_read`` follows the stream (for progress; of a compressed file, its compressed
    bytes). A line that is not UTF-8 is reported, never guessed at. ``file_problem`` is set
    when the file cannot be read on (a header row naming the wrong columns, a damaged
    compressed file): no row follows it.
    """

    def __init__(self, path: str | Path, kind: str) -> None:
        self.path = Path(path)
        self.kind = kind
        self.bytes_read = 0
        self.size = self.path.stat().st_size
        self.file_problem: str | None = None
        self.lines_seen = 0
        with self.path.open("rb") as handle:
            self.compressed = handle.read(2) == GZIP_MAGIC
        self._bad_lines: dict[int, str] = {}

    def _open(self):
        """The file's bytes, decompressed if need be, and a function telling how far it is read."""
        raw = self.path.open("rb")
        if not self.compressed:
            return raw, raw.tell
        return gzip.GzipFile(fileobj=raw, mode="rb"), raw.tell

    def _lines(self, handle, position) -> Iterator[str]:
        for number, raw in enumerate(handle, start=1):
            self.bytes_read, self.lines_seen = position(), number
            if number == 1:
                raw = raw.removeprefix(codecs.BOM_UTF8)
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                self._bad_lines[number] = f"the line is not valid UTF-8 (byte {exc.start + 1})"
                yield raw.decode("utf-8", "replace")

    def _is_json_lines(self) -> bool:
        suffixes = [s.lower() for s in self.path.suffixes]
        if self.compressed and suffixes[-1:] == [".gz"]:
            suffixes = suffixes[:-1]  # films.csv.gz: a CSV file
        suffix = suffixes[-1] if suffixes else ""
        if suffix in (".jsonl", ".ndjson", ".json"):
            return True
        if suffix == ".csv":
            return False  # (a .txt file, or one without a suffix, is known by its content)
        handle, _ = self._open()
        try:
            start = handle.read(4096)
        except (OSError, EOFError, zlib.error):  # a damaged compressed file: the rows will say so
            start = b""
        finally:
            handle.close()
        return start.lstrip(codecs.BOM_UTF8 + b" \t\r\n").startswith((b"{", b"["))  # JSON: lines or an array

    def _damage(self) -> str | None:
        """Why the compressed file cannot be read to its end, or None.

        gzip checks its data only at the end of the stream: read on, a damaged file would
        first hand out rows of garbage, and some of them could pass as good rows.
        """
        handle, _ = self._open()
        try:
            with handle:
                while handle.read(1 << 20):
                    pass
        except (OSError, EOFError, zlib.error) as exc:
            return f"the compressed file is damaged: {exc}"
        return None

    def __iter__(self) -> Iterator[tuple[int, dict | None, str | None]]:
        if self.compressed:
            damage = self._damage()
            if damage is not None:
                yield self._give_up(1, damage)
                return
        json_lines = self._is_json_lines()
        handle, position = self._open()
        with handle:
            lines = self._lines(handle, position)
            try:
                yield from self._json_lines(lines) if json_lines else self._csv(lines)
            except (OSError, EOFError, zlib.error) as exc:  # damaged since it was checked
                yield self._give_up(
                    self.lines_seen + 1, f"the compressed file is damaged from here on: {exc}"
                )
        self.bytes_read = self.size

    def _json_lines(self, lines: Iterator[str]):
        first = True
        for number, line in enumerate(lines, start=1):
            if number in self._bad_lines:
                yield number, None, self._bad_lines.pop(number)
                continue
            if not line.strip():
                continue
            if first and line.lstrip().startswith("["):
                # One JSON array: some of its lines might parse alone and pass as rows.
                yield self._give_up(
                    number,
                    "the file is a JSON array; import reads JSON lines, one object per line "
                    "(convert it with: jq -c '.[]' FILE > FILE.jsonl)",
                )
                return
            first = False
            try:
                record = json.loads(line, object_pairs_hook=_object_once)
            except json.JSONDecodeError as exc:
                # A CR alone ends no line here: such a file reads as one line of many objects.
                cr_alone = "\r" in line.rstrip("\r\n")
                yield number, None, CR_ALONE if cr_alone else f"invalid JSON: {exc.msg} (column {exc.colno})"
                continue
            except _Reject as exc:
                yield number, None, exc.message
                continue
            except ValueError as exc:  # a number of more than 4,300 digits, say
                yield number, None, f"invalid JSON: {exc}"
                continue
            if not isinstance(record, dict):
                yield number, None, "each line must be a JSON object"
                continue
            unknown = sorted(set(record) - set(COLUMNS[self.kind][0] + COLUMNS[self.kind][1]))
            if unknown:
                yield number, None, self._unknown_message(unknown, "field")
                continue
            yield number, record, None

    def _no_header(self) -> str:
        """Why a CSV file without a line of text cannot be imported. (A JSON-lines file without
        one is a file of no records: an export of a day without dislikes, say.)"""
        required, optional = COLUMNS[self.kind]
        what = "the file is empty" if self.lines_seen == 0 else "the file holds only blank lines"
        return (
            f"{what}, without the header row a {self.kind} CSV file starts with ({', '.join(required)}, "
            f"and optionally {', '.join(optional)})"
        )

    def _csv(self, lines: Iterator[str]):
        reader = csv.reader(lines, strict=True)
        header: list[str] = []
        while not any(name.strip() for name in header):  # blank lines before the header row
            try:
                header = next(reader)
            except StopIteration:
                yield self._give_up(max(self.lines_seen, 1), self._no_header())
                return
            except csv.Error as exc:
                yield self._give_up(reader.line_num, f"the header row is not valid CSV: {_csv_problem(exc)}")
                return
        end = reader.line_num
        bad = self._bad_line(1, end)
        if bad is not None:
            yield self._give_up(*bad)
            return
        header = [name.strip() for name in header]
        required, optional = COLUMNS[self.kind]
        missing = [c for c in required if c not in header]
        unknown = sorted(set(header) - set(required + optional))
        twice = sorted({c for c in header if header.count(c) > 1})
        if missing or unknown or twice:
            problems = []
            if missing:
                problems.append(f"missing column(s) {', '.join(missing)}")
            if unknown:
                problems.append(self._unknown_message(unknown))
            problems += [f"column {c} appears twice in the header row" for c in twice]
            yield self._give_up(end, "; ".join(problems))
            return
        while True:
            start = end + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                end = reader.line_num
                if "field limit" in str(exc) and end == start:
                    yield (
                        start,
                        None,
                        f"a field is longer than the {csv.field_size_limit():,} characters a CSV field may have",
                    )
                    continue
                if end > start or "field limit" in str(exc) or "unexpected end of data" in str(exc):
                    # A quote never closed: the reader took the lines after it as one field,
                    # and none of them can be told apart as rows again (skipped, they were lost
                    # without a word).
                    yield self._give_up(
                        start,
                        f"not valid CSV: {_csv_problem(exc)}: a quote opened on line {start} seems never "
                        + (
                            f"to be closed, so lines {start} to {end} read as one field"
                            if end > start
                            else "to be closed"
                        )
                        + '; close it (a quote inside a field is written twice: "")',
                    )
                    return
                yield start, None, f"not valid CSV: {_csv_problem(exc)}"
                continue
            end = reader.line_num
            if self._bad_lines:
                bad = self._bad_line(start, end)
                if bad is not None:  # named by its own line, which may be inside a quoted field
                    yield bad[0], None, bad[1]
                    continue
            if not any(row) or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) != len(header):
                yield start, None, f"expected {len(header)} columns ({', '.join(header)}), got {len(row)}"
                continue
            yield start, dict(zip(header, row)), None

    def _give_up(self, line: int, message: str) -> tuple[int, None, str]:
        """The error that ends the file's rows (see ``file_problem``)."""
        self.file_problem = message
        return line, None, message

    def _bad_line(self, first: int, last: int) -> tuple[int, str] | None:
        """The first line from ``first`` to ``last`` that is not UTF-8 and its message (all
        of them forgotten)."""
        bad = [(n, self._bad_lines.pop(n)) for n in range(first, last + 1) if n in self._bad_lines]
        return bad[0] if bad else None

    def _unknown_message(self, unknown: list[str], what: str = "column") -> str:
        required, optional = COLUMNS[self.kind]
        return (
            f"unknown {what}(s) {', '.join(unknown)}; a {self.kind} file has "
            f"{', '.join(required)} and optionally {', '.join(optional)}"
        )


def _object_once(pairs: list[tuple[str, Any]]) -> dict:
    """A JSON object whose names are each given once (else which value is meant?)."""
    record = dict(pairs)
    if len(record) != len(pairs):
        twice = sorted({name for name, _ in pairs if [n for n, _ in pairs].count(name) > 1})
        raise _Reject(f"field(s) {', '.join(twice)} given twice in one object")
    return record


def _csv_problem(exc: csv.Error) -> str:
    # Python's words for a CR alone speak of its own "universal-newline mode".
    if "new-line character seen in unquoted field" in str(exc):
        return CR_ALONE
    return str(exc)


# ---------------------------------------------------------------- field conversion


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _id(record: dict, name: str, optional: bool = False) -> int | None:
    value = record.get(name)
    if _blank(value):
        if optional:
            return None
        raise _Reject(f"{name} is required (a positive integer)", name)
    try:
        return check_id(value, name)
    except ValidationError as exc:
        raise _Reject(exc.message, name) from None
    except ValueError:  # digits int() cannot read ("²" passes str.isdigit), or thousands of them
        raise _Reject(f"{name} must be a positive integer, got {_shown(value)}", name) from None


def _whole(value: Any) -> int:
    """Return an int (not a bool) as it is and a string of digits as its int; else raise ValueError.

    The fast paths' conversion: ``int()`` alone also takes "1_2", " +7", 9.7 and true, which the
    field checks refuse.
    """
    if value.__class__ is int:
        return value
    if value.__class__ is str and value.isdigit():
        return int(value)
    raise ValueError(value)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _score(record: dict, name: str, optional: bool = False) -> float | None:
    value = record.get(name)
    if _blank(value):
        if not optional:
            raise _Reject(f"{name} is required (a number between 0 and 1)", name)
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise _Reject(f"{name} must be a number between 0 and 1, got {value!r}", name) from None
    try:
        return check_score(value, name)
    except ValidationError as exc:
        raise _Reject(exc.message, name) from None


def _int_in(record: dict, name: str, low: int, high: int) -> int:
    value = record.get(name)
    if _blank(value):
        raise _Reject(f"{name} is required (an integer between {low} and {high})", name)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        try:
            value = int(value)
        except ValueError:  # digits int() cannot read: refused below as they are
            pass
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _Reject(f"{name} must be an integer between {low} and {high}, got {_shown(value)}", name)
    return value


def _moment(record: dict, name: str, default: datetime) -> tuple[datetime, str]:
    """Return the timestamp (naive UTC) and its canonical text ("" when the cell is empty:
    ``default``, the import's moment).

    A time before 1970 or after tomorrow is refused: exports write placeholders such as
    0001-01-01 or 9999-12-31 for "no date", and one of them would stretch the dashboard's
    dates over millennia.
    """
    value = record.get(name)
    if _blank(value):
        return default, ""
    if not isinstance(value, str):
        raise _Reject(
            f"{name} must be an ISO 8601 timestamp such as 2026-01-31T18:30:00Z (text), got {_shown(value)}",
            name,
        )
    try:
        moment = to_naive_utc(datetime.fromisoformat(value.strip()))
    except (ValueError, OverflowError):  # Overflow: an offset carrying it past year 1 or 9999
        raise _Reject(
            f"{name} must be an ISO 8601 timestamp such as 2026-01-31T18:30:00Z, got {value.strip()!r}",
            name,
        ) from None
    if not EARLIEST <= moment <= default + LEEWAY:
        raise _Reject(
            f"{name} must be a time from 1970 to the present (UTC, up to a day ahead), got "
            f"{value.strip()!r}; leave it empty for the time of the import",
            name,
        )
    return moment, moment.isoformat(sep=" ")
