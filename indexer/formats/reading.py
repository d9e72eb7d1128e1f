"""Reading input files line by line: any packing, bad lines refused one by one."""

from __future__ import annotations

import contextlib
import csv
import gzip
import json
import logging
import os
import zipfile
import zlib
from collections.abc import Callable, Iterator
from typing import BinaryIO

from tqdm import tqdm

from indexer.sources import IngestError, RowProblem

log = logging.getLogger(__name__)

# A field longer than this is refused with its row: no product text needs it,
# and a multi-megabyte cell is a broken export (a missing closing quote).
MAX_FIELD_CHARS = 100_000
DELIMITERS = (",", ";", "\t", "|")
BOM = b"\xef\xbb\xbf"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
PROGRESS_EVERY = 2000


@contextlib.contextmanager
def open_binary(path: str) -> Iterator[tuple[BinaryIO, int, Callable[[], int]]]:
    """``(stream, total bytes, position)`` of ``path``, unpacking .gz and .zip."""
    if path.endswith(".zip"):
        try:
            archive = zipfile.ZipFile(path)
        except zipfile.BadZipFile as exc:
            raise IngestError(
                f"{path}: not a readable zip file ({exc}); fetch it again"
            ) from exc
        with archive:
            members = [i for i in archive.infolist() if not i.is_dir()]
            if len(members) != 1:
                raise IngestError(
                    f"{path}: expected one file in the zip, found "
                    f"{[m.filename for m in members]}; zip each file on its own"
                )
            with archive.open(members[0]) as stream:
                yield stream, members[0].file_size, stream.tell
        return
    with open(path, "rb") as raw:
        total = os.fstat(raw.fileno()).st_size
        if path.endswith(".gz"):
            with gzip.GzipFile(fileobj=raw) as stream:
                yield stream, total, raw.tell
        else:
            yield raw, total, raw.tell


def numbered_lines(
    path: str, problems: list[RowProblem], skip_undecodable: bool = True
) -> Iterator[tuple[int, str | None]]:
    """``(line number, text)`` for each physical line of ``path``.

    A line that is not UTF-8 is reported in ``problems`` and comes out as
    ``None`` (so callers keep counting lines). A byte-order mark is dropped and
    CRLF endings are read like LF.

    Raises
    ------
    IngestError
        When the file is empty, UTF-16, or a compressed file is cut short.
    """
    name = os.path.basename(path)
    number = 0
    with open_binary(path) as (stream, total, position):
        bar = tqdm(total=total, desc=f"reading {name}", unit="B", unit_scale=True)
        done = 0
        try:
            for number, raw in enumerate(stream, 1):
                if number == 1:
                    if raw.startswith(UTF16_BOMS):
                        raise IngestError(
                            f"{path}: UTF-16 text; save it as UTF-8 and load again"
                        )
                    raw = raw.removeprefix(BOM)
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    problems.append(
                        RowProblem(
                            path,
                            number,
                            "",
                            f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at "
                            f"column {exc.start + 1}); line skipped, save the "
                            "file as UTF-8 to keep it",
                        )
                    )
                    text = None
                yield number, text
                if number % PROGRESS_EVERY == 0:
                    now = position()
                    bar.update(now - done)
                    done = now
        except (EOFError, gzip.BadGzipFile, zlib.error, zipfile.BadZipFile) as exc:
            raise IngestError(
                f"{path}: the compressed file is damaged or cut short after "
                f"line {number} ({exc}); nothing was loaded, fetch the file again"
            ) from exc
        finally:
            bar.update(max(total - done, 0))
            bar.close()
    if number == 0:
        raise IngestError(f"{path}: the file is empty")


def sniff_delimiter(header: str) -> str:
    """The delimiter that splits the first line into the most fields."""
    counts = {d: next(csv.reader([header], delimiter=d), []) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: len(counts[d]))
    return best if len(counts[best]) > 1 else ","


def csv_rows(
    path: str, problems: list[RowProblem]
) -> Iterator[tuple[int, list[str], str]]:
    """``(first line, fields, delimiter)`` for each CSV record of ``path``.

    The delimiter is read from the first line. Records that span a line that
    is not UTF-8, or have a field over ``MAX_FIELD_CHARS``, are refused in
    ``problems``; field positions are reported from 1.
    """
    bad_lines: set[int] = set()
    delimiter = ","
    counter = {"line": 0}

    def lines() -> Iterator[str]:
        for number, text in numbered_lines(path, problems):
            counter["line"] = number
            if text is None:
                bad_lines.add(number)
                text = "\n"
            yield text

    source = lines()
    first = next(source, None)
    if first is None or not first.strip():
        raise IngestError(f"{path}: the file is empty or its first line is blank")
    delimiter = sniff_delimiter(first)
    if delimiter != ",":
        log.info("%s: fields are separated by %r", path, delimiter)
    # The limit is process-wide; it is raised so that an over-long field is
    # reported with its column below instead of failing inside the reader.
    csv.field_size_limit(max(csv.field_size_limit(), 64 * 1024 * 1024))
    reader = csv.reader(_chain(first, source), delimiter=delimiter)
    previous = 0
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append(RowProblem(path, reader.line_num, "", str(exc)))
            previous = reader.line_num
            continue
        start, previous = previous + 1, reader.line_num
        if not fields or not any(f.strip() for f in fields):
            continue
        if bad_lines.intersection(range(start, previous + 1)):
            continue  # already reported by numbered_lines
        yield start, fields, delimiter


def _chain(first: str, rest: Iterator[str]) -> Iterator[str]:
    yield first
    yield from rest


def oversized_field(record: dict) -> str | None:
    """The name of the first field longer than ``MAX_FIELD_CHARS``, if any."""
    for key, value in record.items():
        if isinstance(value, str) and len(value) > MAX_FIELD_CHARS:
            return str(key)
        if isinstance(value, list) and sum(len(str(v)) for v in value) > (
            MAX_FIELD_CHARS
        ):
            return str(key)
    return None


def _field_too_long(path: str, line: int, field: str, record: dict) -> RowProblem:
    """The problem reported for a record with an over-long ``field``."""
    size = len(str(record[field]))
    return RowProblem(
        path,
        line,
        field,
        f"field of {size:,} characters, over the {MAX_FIELD_CHARS:,} limit; "
        "the row is skipped (is a closing quote missing?)",
    )


def csv_records(
    path: str, problems: list[RowProblem], required: tuple[str, ...] = ()
) -> Iterator[tuple[int, dict[str, str]]]:
    """``(line, record)`` for each data row of a CSV with a header line.

    Raises
    ------
    IngestError
        When a column in ``required`` is missing from the header.
    """
    rows = csv_rows(path, problems)
    first = next(rows, None)
    if first is None:
        raise IngestError(f"{path}: the file is empty")
    _, header, delimiter = first
    header = [name.strip() for name in header]
    missing = [name for name in required if name not in header]
    if missing:
        raise IngestError(
            f"{path}: missing required column(s) {', '.join(missing)}; the header "
            f"has {header} (fields separated by {delimiter!r})"
        )
    for line, fields, _ in rows:
        if len(fields) != len(header):
            problems.append(
                RowProblem(
                    path,
                    line,
                    "",
                    f"{len(fields)} fields where the header has {len(header)}; "
                    "is a field quoted wrongly?",
                )
            )
            continue
        record = dict(zip(header, fields, strict=True))
        longest = max(map(len, fields), default=0)
        field = oversized_field(record) if longest > MAX_FIELD_CHARS else None
        if field is not None:
            problems.append(_field_too_long(path, line, field, record))
            continue
        yield line, record


def json_records(path: str, problems: list[RowProblem]) -> Iterator[tuple[int, dict]]:
    """``(line, object)`` for each record of a JSON-lines file or a JSON array.

    A JSON-lines line that is not a JSON object is refused in ``problems``; an
    array must parse as a whole.
    """
    lines = numbered_lines(path, problems)
    for number, text in lines:
        if text is None or not text.strip():
            continue
        if text.lstrip().startswith("["):
            rest = "".join(t or "" for _, t in lines)
            yield from _array_records(path, number, text + rest, problems)
            return
        yield from _json_line(path, number, text, problems)
        break
    for number, text in lines:
        if text is not None and text.strip():
            yield from _json_line(path, number, text, problems)


def _json_line(
    path: str, number: int, text: str, problems: list[RowProblem]
) -> Iterator[tuple[int, dict]]:
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        problems.append(
            RowProblem(path, number, "", f"not JSON ({exc.msg} at column {exc.colno})")
        )
        return
    if not isinstance(record, dict):
        problems.append(
            RowProblem(
                path, number, "", f"expected a JSON object, got {type(record).__name__}"
            )
        )
        return
    field = oversized_field(record)
    if field is not None:
        problems.append(_field_too_long(path, number, field, record))
        return
    yield number, record


def _array_records(
    path: str, first_line: int, text: str, problems: list[RowProblem]
) -> Iterator[tuple[int, dict]]:
    """The objects of one JSON array, each with the line it starts on."""
    decoder = json.JSONDecoder()
    index = text.index("[") + 1
    line = first_line
    counted = 0

    def skip_space(at: int) -> int:
        while at < len(text) and text[at] in " \t\r\n":
            at += 1
        return at

    while True:
        index = skip_space(index)
        if index < len(text) and text[index] == "]":
            return
        line += text.count("\n", counted, index)
        counted = index
        try:
            record, index = decoder.raw_decode(text, index)
        except json.JSONDecodeError as exc:
            raise IngestError(
                f"{path}:{first_line + text.count(chr(10), 0, exc.pos)}: the JSON "
                f"array is broken ({exc.msg}); nothing was loaded from it"
            ) from exc
        field = oversized_field(record) if isinstance(record, dict) else None
        if not isinstance(record, dict):
            problems.append(RowProblem(path, line, "", "expected a JSON object"))
        elif field is not None:
            problems.append(_field_too_long(path, line, field, record))
        else:
            yield line, record
        index = skip_space(index)
        if index < len(text) and text[index] == ",":
            index += 1
        elif index >= len(text) or text[index] != "]":
            raise IngestError(
                f"{path}:{first_line + text.count(chr(10), 0, index)}: the JSON "
                "array is cut short or broken; nothing was loaded from it"
            )
