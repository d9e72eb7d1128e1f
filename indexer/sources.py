"""Opening input files of any packing, and the errors ingest reports."""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TextIO


@dataclass(frozen=True)
class RowProblem:
    """One input row refused, and why; ``line`` 0 means the file as a whole."""

    path: str
    line: int
    column: str
    reason: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        if self.column:
            where += f" ({self.column})"
        return f"{where}: {self.reason}"


class IngestError(Exception):
    """A file could not be used at all; nothing already served was changed.

    ``path`` names the file when one is at fault and ``problems`` holds the
    rows refused before it was given up.
    """

    def __init__(
        self, message: str, path: str = "", problems: Sequence[RowProblem] = ()
    ):
        super().__init__(message)
        self.path = path
        self.problems = list(problems)


def require_file(path: str) -> None:
    """Raise ``IngestError`` unless ``path`` is a readable file."""
    if os.path.isdir(path):
        raise IngestError(f"{path}: is a folder; name the files in it to load")
    if not os.path.isfile(path):
        raise IngestError(f"{path}: no such file")


@contextlib.contextmanager
def open_text(path: str) -> Iterator[TextIO]:
    """Open ``path`` as UTF-8 text, reading ``.gz`` and ``.zip`` directly.

    A byte-order mark is dropped; a ``.zip`` must hold exactly one file.
    """
    if path.endswith(".gz"):
        raw = gzip.open(path, "rb")
    elif path.endswith(".zip"):
        archive = zipfile.ZipFile(path)
        names = [n for n in archive.namelist() if not n.endswith("/")]
        if len(names) != 1:
            raise IngestError(f"{path}: expected one file in the zip, found {names}")
        raw = archive.open(names[0])
    else:
        raw = open(path, "rb")  # noqa: SIM115 - closed below
    try:
        with io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as text:
            yield text
    except (EOFError, gzip.BadGzipFile) as exc:
        raise IngestError(f"{path}: the compressed file is damaged ({exc})") from exc
    except UnicodeDecodeError as exc:
        raise IngestError(
            f"{path}: not UTF-8 text near byte {exc.start} ({exc.reason})"
        ) from exc
