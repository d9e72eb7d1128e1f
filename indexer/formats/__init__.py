"""Format readers for shop exports, and reading several files into one catalog.

Formats are told apart by file name and content: the retail export by its
header, Amazon Review Data files by name and fields, anything else through a
mapping file (see :mod:`indexer.formats.generic`).
"""

from __future__ import annotations

import json
import logging
import os
import re
import zlib
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from indexer.catalog import Interaction, Product
from indexer.formats import amazon, generic, retail
from indexer.formats.base import ReadResult, merge_product
from indexer.formats.reading import open_binary, sniff_delimiter
from indexer.formats.text import parse_number
from indexer.sources import IngestError, RowProblem, require_file

log = logging.getLogger(__name__)

FORMATS = (
    "retail",
    "amazon-meta",
    "amazon-reviews",
    "amazon-ratings",
    "generic",
)
AMAZON_META_NAME = re.compile(r"^meta_.+\.json$")
RATINGS_NAME = re.compile(r"(^ratings_.+|.+\.ratings)\.csv$")
LOGGED_PROBLEMS = 20
PEEK_BYTES = 1 << 16


@dataclass
class CatalogRead:
    """Everything read from the files of one load, merged."""

    products: list[Product]
    interactions: list[Interaction]
    results: list[ReadResult]
    problems: list[RowProblem] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)

    @property
    def rows_read(self) -> int:
        return sum(result.rows_read for result in self.results)


def _first_line(path: str) -> str:
    with open_binary(path) as (stream, _, _):
        try:
            head = stream.readline(PEEK_BYTES)
            while head and not head.strip():
                head = stream.readline(PEEK_BYTES)
        except (EOFError, OSError, zlib.error) as exc:
            raise IngestError(
                f"{path}: the compressed file is damaged or cut short ({exc}); "
                "fetch the file again"
            ) from exc
    if not head.strip():
        raise IngestError(f"{path}: the file is empty")
    return head.removeprefix(b"\xef\xbb\xbf").decode("utf-8", "replace").strip()


def detect_format(path: str, mapping: dict | None = None) -> str:
    """Which reader ``path`` needs: one of ``FORMATS``.

    Raises
    ------
    IngestError
        When neither the name nor the content tells, saying how to name it.
    """
    name = os.path.basename(path).lower().removesuffix(".gz").removesuffix(".zip")
    first = _first_line(path)
    if first.startswith("{"):
        try:
            keys = set(json.loads(first))
        except json.JSONDecodeError:
            keys = set(re.findall(r'"(\w+)"\s*:', first))
        if "asin" in keys and "reviewerID" in keys:
            return "amazon-reviews"
        if "asin" in keys or AMAZON_META_NAME.match(name):
            return "amazon-meta"
    elif not first.startswith("["):
        header = next(iter(_csv_split(first)), [])
        if {"InvoiceNo", "StockCode"} <= {h.strip() for h in header}:
            return "retail"
        if RATINGS_NAME.match(name) or _looks_like_ratings(header):
            return "amazon-ratings"
    if mapping is not None:
        return "generic"
    raise IngestError(
        f"{path}: cannot tell the format from the name or the first line "
        f"({first[:80]!r}); for a generic catalog or interactions file give "
        "--mapping FILE (see data/mappings/icecat.json)"
    )


def _csv_split(line: str) -> list[list[str]]:
    import csv

    return list(csv.reader([line], delimiter=sniff_delimiter(line)))


def _looks_like_ratings(fields: list[str]) -> bool:
    if len(fields) != len(amazon.RATING_COLUMNS):
        return False
    try:
        stars, when = parse_number(fields[2]), parse_number(fields[3])
    except ValueError:
        return False
    return 1 <= stars <= 5 and when > 1e8


def read_file(path: str, mapping: dict | None = None) -> ReadResult:
    """Read one file with the reader its format needs."""
    require_file(path)
    kind = detect_format(path, mapping)
    log.debug("%s: read as %s", path, kind)
    if kind == "retail":
        return retail.load_online_retail(path)
    if kind == "amazon-meta":
        return amazon.read_meta(path)
    if kind == "amazon-reviews":
        return amazon.read_reviews(path)
    if kind == "amazon-ratings":
        return amazon.read_ratings(path)
    return generic.read_generic(path, mapping or {})


def read_sources(paths: Sequence[str], mapping_path: str | None = None) -> CatalogRead:
    """Read every file of one load and merge them into one catalog.

    Products repeated across files are merged (the first file wins a
    conflict, reported as a problem); interactions with products not in the
    catalog are skipped; a shopper's ratings of one product count once, the
    latest; rating averages and counts come from the ratings when the catalog
    has none.

    Parameters
    ----------
    paths : sequence of str
        The files; products may come from one and interactions from another.
    mapping_path : str, optional
        A JSON mapping for generic files.

    Returns
    -------
    CatalogRead
        Merged products and interactions, every file's result and problems.

    Raises
    ------
    IngestError
        When a file is unusable, or no products could be read at all: a load
        that raises changes nothing already served.
    """
    mapping = generic.load_mapping(mapping_path) if mapping_path else None
    results = []
    for path in paths:
        result = read_file(path, mapping)
        if not result.products and not result.interactions:
            first = f"; first problem: {result.problems[0]}" if result.problems else ""
            raise IngestError(
                f"{path}: nothing usable in {result.rows_read} rows{first}",
                path=path,
                problems=result.problems,
            )
        results.append(result)
        log.info("%s: %s", path, result.summary())

    merged = CatalogRead([], [], results)
    by_id: dict[str, Product] = {}
    for result in results:
        merged.problems.extend(result.problems)
        merged.counts.update(result.counts)
        for product in result.products:
            kept = by_id.setdefault(product.item_id, product)
            if kept is product:
                continue
            conflicts = merge_product(kept, product)
            if conflicts:
                merged.problems.append(
                    RowProblem(
                        result.path,
                        0,
                        ", ".join(conflicts),
                        f"product {product.item_id} differs from an earlier "
                        "file; the earlier file is kept",
                    )
                )
    if not by_id:
        raise IngestError(
            f"no products in {', '.join(paths)}: ratings and reviews need the "
            "catalog (e.g. the meta_ file) loaded with them"
        )
    merged.products = list(by_id.values())
    merged.interactions = _known_interactions(results, by_id, merged.counts)
    _rate_products(merged.products, merged.interactions)

    for problem in merged.problems[:LOGGED_PROBLEMS]:
        log.warning("%s", problem)
    if len(merged.problems) > LOGGED_PROBLEMS:
        log.warning("... and %d more problems", len(merged.problems) - LOGGED_PROBLEMS)
    return merged


def _known_interactions(
    results: list[ReadResult], products: dict[str, Product], counts: Counter
) -> list[Interaction]:
    """Interactions with catalog products; one rating per shopper and product."""
    kept: list[Interaction] = []
    latest_rating: dict[tuple[str, str], Interaction] = {}
    for result in results:
        for event in result.interactions:
            if event.item_id not in products:
                counts["unknown_item"] += 1
                counts["skipped"] += 1
                continue
            if event.kind != "rating":
                kept.append(event)
                continue
            key = (event.user_id, event.item_id)
            earlier = latest_rating.get(key)
            if earlier is not None:
                counts["repeated_rating"] += 1
                if earlier.timestamp > event.timestamp:
                    continue
            latest_rating[key] = event
    kept.extend(latest_rating.values())
    kept.sort(key=lambda event: event.timestamp)
    return kept


def _rate_products(products: list[Product], interactions: list[Interaction]) -> None:
    """Rating average and count from the ratings, where the catalog has none."""
    stars: dict[str, list[float]] = defaultdict(list)
    for event in interactions:
        if event.kind == "rating":
            stars[event.item_id].append(event.weight)
    for product in products:
        given = stars.get(product.item_id)
        if product.rating_avg is None and given:
            product.rating_avg = round(sum(given) / len(given), 2)
            product.rating_count = len(given)


__all__ = [
    "FORMATS",
    "CatalogRead",
    "ReadResult",
    "detect_format",
    "read_file",
    "read_sources",
]
