"""Readers for the Amazon Review Data (2018) files of any category.

- ``meta_<Category>.json[.gz]``: one product per line (``asin``, ``title``,
  ``brand``, ``description`` and ``feature`` lists, ``category`` list,
  ``price`` text, ``imageURLHighRes``, ``details``), as scraped;
- ``<Category>_5.json[.gz]`` or the full reviews file: one review per line
  (``reviewerID``, ``asin``, ``overall`` stars, ``unixReviewTime``);
- ``<Category>.ratings.csv``: no header, ``item,user,rating,unix_time``.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict

from indexer.catalog import Interaction, Product
from indexer.formats.base import (
    ReadResult,
    add_product,
    repair_title,
    usable_title,
)
from indexer.formats.reading import csv_rows, json_records
from indexer.formats.text import clean_text, is_residue, parse_price, parse_time
from indexer.sources import RowProblem

log = logging.getLogger(__name__)

# ``details`` entries that are bookkeeping, not something a shopper filters on.
DETAIL_NOISE = frozenset(
    {
        "asin",
        "isbn-10",
        "isbn-13",
        "upc",
        "shipping",
        "domestic shipping",
        "international shipping",
        "shipping weight",
        "item model number",
        "date first available",
        "best sellers rank",
        "customer reviews",
        "discontinued by manufacturer",
    }
)
BRAND_DETAILS = ("brand", "manufacturer", "publisher")
MAX_ATTRIBUTES = 8
MAX_ATTRIBUTE_CHARS = 60
STARS = (1.0, 5.0)


def _details(record: dict) -> dict[str, str]:
    """The ``details`` entries with clean names ("Publisher:" -> "Publisher")."""
    details = record.get("details")
    if not isinstance(details, dict):
        return {}
    cleaned = {}
    for key, value in details.items():
        name = clean_text(key).rstrip(":").strip()
        if isinstance(value, str) and name:
            cleaned[name] = clean_text(value)
    return cleaned


def category_path(record: dict) -> str:
    """The category list as a path; the root goes when it is only ``main_cat``.

    Every product of a category file starts with the same root (the store
    department, repeated as ``main_cat``), so it says nothing in a facet.
    """
    levels = [clean_text(level) for level in record.get("category") or []]
    levels = [level for level in levels if level and not is_residue(level)]
    main = clean_text(record.get("main_cat"))
    if len(levels) > 1 and levels[0] == main:
        levels = levels[1:]
    return " > ".join(levels)


def _first_url(*candidates: object) -> str:
    """The first web address among ``candidates`` (strings or lists of them)."""
    for value in candidates:
        urls = value if isinstance(value, list) else [value]
        for url in urls:
            if isinstance(url, str) and url.startswith(("http://", "https://")):
                return url.strip()
    return ""


def meta_product(
    path: str, line: int, record: dict, counts: Counter
) -> tuple[Product | RowProblem, str]:
    """One product from a metadata record, or the reason it is refused; and
    where its title came from when it had to be rebuilt (else "")."""
    asin = str(record.get("asin") or "").strip()
    if not asin:
        return RowProblem(path, line, "asin", "no product id"), ""
    details = _details(record)

    description = clean_text(
        [clean_text(record.get("description")), clean_text(record.get("feature"))]
    )
    brand = clean_text(record.get("brand"))
    if is_residue(brand):
        brand = ""
    for key in BRAND_DETAILS:
        if not brand and details.get(key.capitalize()):
            brand = details[key.capitalize()]

    title = usable_title(record.get("title"))
    repaired = ""
    if title is None:
        title, repaired = repair_title(description, brand) or (None, "")
        if title is None:
            refused = RowProblem(
                path,
                line,
                "title",
                f"product {asin} refused: the title is missing or scraping "
                "residue and neither the description nor the brand names it",
            )
            return refused, ""

    raw_price = record.get("price")
    price = parse_price(raw_price)
    if price is None and raw_price:
        counts["price_unreadable"] += 1

    attributes = {}
    for key, value in details.items():
        if key.lower() in DETAIL_NOISE or key.lower() in BRAND_DETAILS:
            continue
        if value and len(value) <= MAX_ATTRIBUTE_CHARS and not is_residue(value):
            attributes[key] = value
        if len(attributes) == MAX_ATTRIBUTES:
            break

    product = Product(
        item_id=asin,
        title=title,
        description=description,
        price=price,
        category=category_path(record),
        brand=brand,
        image_url=_first_url(record.get("imageURLHighRes"), record.get("imageURL")),
        attributes=attributes,
    )
    return product, repaired


def read_meta(path: str) -> ReadResult:
    """Read an Amazon metadata file into cleaned products.

    Parameters
    ----------
    path : str
        ``meta_<Category>.json``, plain, ``.gz`` or ``.zip``.

    Returns
    -------
    ReadResult
        Products (repeated lines merged), refused lines with reasons, and
        counts of ``repaired`` titles and ``skipped`` repeats.
    """
    result = ReadResult([], [], path=path, format="amazon metadata")
    by_id: dict[str, tuple[int, Product]] = {}
    refused: set[str] = set()
    named_by_brand: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for line, record in json_records(path, result.problems):
        result.rows_read += 1
        made, repaired = meta_product(path, line, record, result.counts)
        if isinstance(made, RowProblem):
            asin = str(record.get("asin") or "")
            if asin and asin in refused:
                result.counts["skipped"] += 1  # a repeat of a refused line
            else:
                refused.add(asin)
                result.problems.append(made)
            continue
        if repaired and made.item_id not in by_id:
            result.counts["repaired"] += 1
            if repaired == "brand":
                named_by_brand[made.brand].append((line, made.item_id))
        add_product(by_id, line, made, result)
    _unname_shared_brands(result, by_id, named_by_brand)
    result.products = [product for _, product in by_id.values()]
    return result


def _unname_shared_brands(
    result: ReadResult,
    by_id: dict[str, tuple[int, Product]],
    named_by_brand: dict[str, list[tuple[int, str]]],
) -> None:
    """Refuse titles taken from a brand that names several products.

    A brand shared by several products (a publisher, a maker) names none of
    them; such a product keeps a title only if its description gives one.
    """
    for brand, named in named_by_brand.items():
        if len(named) < 2:
            continue
        for line, item_id in named:
            product = by_id[item_id][1]
            repaired = repair_title(product.description)
            if repaired is not None:
                product.title = repaired[0]
                continue
            del by_id[item_id]
            result.counts["repaired"] -= 1
            result.problems.append(
                RowProblem(
                    result.path,
                    line,
                    "title",
                    f"product {item_id} refused: the title is missing or scraping "
                    f"residue and its brand {brand!r} names {len(named)} products",
                )
            )


def _stars(value: object) -> float:
    """Stars from 1 to 5, or ``ValueError`` repeating the value."""
    stars = float(value)  # type: ignore[arg-type]
    if not STARS[0] <= stars <= STARS[1]:
        raise ValueError(f"stars must be from 1 to 5, got {value!r}")
    return stars


def read_reviews(path: str) -> ReadResult:
    """Read an Amazon reviews file into ``review`` and ``rating`` interactions.

    Each review gives a ``review`` event (weight 1) and, with its stars, a
    ``rating`` event (weight = stars), both at the review's time.

    Parameters
    ----------
    path : str
        ``<Category>_5.json`` or ``<Category>.json``, plain, ``.gz`` or ``.zip``.

    Returns
    -------
    ReadResult
        Interactions only; refused lines name the field at fault.
    """
    result = ReadResult([], [], path=path, format="amazon reviews")
    seen: set[tuple[str, str, float]] = set()
    for line, record in json_records(path, result.problems):
        result.rows_read += 1
        user_id = str(record.get("reviewerID") or "").strip()
        item_id = str(record.get("asin") or "").strip()
        if not user_id or not item_id:
            field = "reviewerID" if not user_id else "asin"
            result.problems.append(RowProblem(path, line, field, "missing"))
            continue
        try:
            field = "unixReviewTime"
            when = record.get(field)
            if when in (None, ""):
                field = "reviewTime"
                when = record.get(field)
            if when in (None, ""):
                raise ValueError("no time")
            timestamp = parse_time(when)
            field = "overall"
            stars = _stars(record["overall"]) if "overall" in record else None
        except (TypeError, ValueError) as exc:
            result.problems.append(RowProblem(path, line, field, str(exc)))
            continue
        if (user_id, item_id, timestamp) in seen:
            result.counts["skipped"] += 1
            continue
        seen.add((user_id, item_id, timestamp))
        result.interactions.append(
            Interaction(user_id, item_id, "review", 1.0, timestamp)
        )
        if stars is not None:
            result.interactions.append(
                Interaction(user_id, item_id, "rating", stars, timestamp)
            )
    return result


RATING_COLUMNS = ("item", "user", "rating", "unix_time")


def read_ratings(path: str) -> ReadResult:
    """Read an Amazon ratings CSV (``item,user,rating,unix_time``, no header).

    Parameters
    ----------
    path : str
        ``<Category>.ratings.csv`` or ``ratings_<Category>.csv``, any packing.

    Returns
    -------
    ReadResult
        ``rating`` interactions with the stars as weight.
    """
    result = ReadResult([], [], path=path, format="amazon ratings")
    for line, fields, _ in csv_rows(path, result.problems):
        if len(fields) != len(RATING_COLUMNS):
            result.rows_read += 1
            result.problems.append(
                RowProblem(
                    path,
                    line,
                    "",
                    f"{len(fields)} fields; expected {','.join(RATING_COLUMNS)}",
                )
            )
            continue
        item_id, user_id, stars_text, time_text = (f.strip() for f in fields)
        if line == 1 and stars_text.lower() in ("rating", "stars", "overall"):
            continue  # a header line someone added
        result.rows_read += 1
        try:
            field = "rating"
            stars = _stars(stars_text)
            field = "unix_time"
            timestamp = parse_time(time_text)
        except ValueError as exc:
            result.problems.append(RowProblem(path, line, field, str(exc)))
            continue
        if not item_id or not user_id:
            result.problems.append(
                RowProblem(path, line, "item" if not item_id else "user", "missing")
            )
            continue
        result.interactions.append(
            Interaction(user_id, item_id, "rating", stars, timestamp)
        )
    return result
