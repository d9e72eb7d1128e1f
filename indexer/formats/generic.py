"""A generic catalog and interactions file, read through a JSON mapping.

The mapping names the columns (CSV) or keys (JSON lines, JSON array)::

    {
      "catalog": {
        "item_id": "id", "title": "title", "title_fallbacks": ["name"],
        "description": "short_description", "brand": "supplier",
        "category": "category", "price": "price", "price_scale": 0.01,
        "image_url": ["img_high", "img_500x500"],
        "attributes": {"Colour": "attr_t_product_colour"}
      },
      "interactions": {
        "user_id": "customer", "item_id": "sku", "kind": "purchase",
        "kind_column": "event", "weight": "quantity", "timestamp": "time"
      }
    }

A file whose first record holds the interactions' ``user_id`` and ``item_id``
columns is read as interactions, any other as the catalog.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator

from indexer.catalog import Interaction, Product
from indexer.formats.base import ReadResult, add_product, repair_title, usable_title
from indexer.formats.reading import csv_records, json_records
from indexer.formats.text import clean_text, parse_number, parse_price, parse_time
from indexer.sources import IngestError, RowProblem

log = logging.getLogger(__name__)

KINDS = ("purchase", "rating", "like", "view", "review")
CATALOG_KEYS = frozenset(
    {
        "item_id",
        "title",
        "title_fallbacks",
        "description",
        "brand",
        "category",
        "category_separator",
        "price",
        "price_scale",
        "image_url",
        "rating_avg",
        "rating_count",
        "available",
        "attributes",
    }
)
INTERACTION_KEYS = frozenset(
    {"user_id", "item_id", "kind", "kind_column", "weight", "timestamp"}
)
JSON_SUFFIXES = (".json", ".jsonl", ".ndjson")
TRUE_WORDS = frozenset({"1", "true", "yes", "y", "t", "in stock", "available"})


def load_mapping(path: str) -> dict:
    """Read and check a mapping file.

    Raises
    ------
    IngestError
        Naming the mapping file and what in it is wrong.
    """
    try:
        with open(path, encoding="utf-8-sig") as handle:
            mapping = json.load(handle)
    except FileNotFoundError:
        raise IngestError(f"{path}: no such mapping file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise IngestError(f"{path}: the mapping is not JSON ({exc})") from exc
    if not isinstance(mapping, dict) or not (
        "catalog" in mapping or "interactions" in mapping
    ):
        raise IngestError(
            f"{path}: a mapping needs a 'catalog' and/or an 'interactions' object; "
            "see data/mappings/icecat.json"
        )
    for section, known, required in (
        ("catalog", CATALOG_KEYS, ("item_id", "title")),
        ("interactions", INTERACTION_KEYS, ("user_id", "item_id")),
    ):
        part = mapping.get(section)
        if part is None:
            continue
        unknown = sorted(set(part) - known)
        if unknown:
            raise IngestError(
                f"{path}: unknown key(s) {unknown} in '{section}'; "
                f"valid keys are {sorted(known)}"
            )
        missing = [key for key in required if key not in part]
        if missing:
            raise IngestError(f"{path}: '{section}' must name {missing}")
    kind = mapping.get("interactions", {}).get("kind", "purchase")
    if kind not in KINDS:
        raise IngestError(
            f"{path}: interaction kind {kind!r} is not one of {', '.join(KINDS)}"
        )
    return mapping


def records(path: str, problems: list[RowProblem]) -> Iterator[tuple[int, dict]]:
    """Records of a CSV, JSON-lines or JSON-array file, by its name."""
    name = path.lower().removesuffix(".gz").removesuffix(".zip")
    if name.endswith(JSON_SUFFIXES):
        return json_records(path, problems)
    return csv_records(path, problems)


def _value(record: dict, column: str | list | None) -> object:
    """The first non-empty value among the mapped column(s)."""
    columns = column if isinstance(column, list) else [column]
    for name in columns:
        if name is None:
            continue
        value = record.get(name)
        if value not in (None, "", []):
            return value
    return None


def _text(record: dict, column) -> str:
    return clean_text(_value(record, column))


def attribute_text(value: object) -> str:
    """An attribute as a facet shows it, the same from JSON and from CSV."""
    text = clean_text(value)
    if text.lower() in ("true", "false"):
        return "yes" if text.lower() == "true" else "no"
    if re.fullmatch(r"-?\d+\.0+", text):
        return text.split(".")[0]
    return text


def catalog_product(
    path: str, line: int, record: dict, spec: dict, result: ReadResult
) -> Product | RowProblem:
    """One product from a catalog record, or why it is refused."""
    item_id = _text(record, spec["item_id"])
    if not item_id:
        return RowProblem(path, line, str(spec["item_id"]), "no product id")
    description = _text(record, spec.get("description"))
    brand = _text(record, spec.get("brand"))

    title = usable_title(_value(record, spec["title"]))
    if title is None:
        fallbacks = tuple(
            _text(record, column) for column in spec.get("title_fallbacks", [])
        )
        title = (repair_title(description, brand, fallbacks) or (None, ""))[0]
        if title is None:
            return RowProblem(
                path,
                line,
                str(spec["title"]),
                "no usable title and no other field names the product",
            )
        result.counts["repaired"] += 1

    raw_price = _value(record, spec.get("price"))
    price = parse_price(raw_price, float(spec.get("price_scale", 1.0)))
    if price is None and raw_price is not None:
        result.counts["price_unreadable"] += 1

    separator = spec.get("category_separator")
    category = _value(record, spec.get("category"))
    levels = category if isinstance(category, list) else [category]
    if separator:
        levels = [part for level in levels for part in str(level).split(separator)]
    category_text = " > ".join(t for t in map(clean_text, levels) if t)

    attributes = {}
    for label, column in spec.get("attributes", {}).items():
        value = _value(record, column)
        if value is not None:
            attributes[label] = attribute_text(value)

    rating_avg = _value(record, spec.get("rating_avg"))
    rating_count = _value(record, spec.get("rating_count"))
    available = _value(record, spec.get("available"))
    try:
        rating_avg = None if rating_avg is None else parse_number(rating_avg)
        rating_count = 0 if rating_count is None else int(parse_number(rating_count))
    except ValueError as exc:
        return RowProblem(path, line, "rating", str(exc))
    return Product(
        item_id=item_id,
        title=title,
        description=description,
        price=price,
        category=category_text,
        brand=brand,
        image_url=_text(record, spec.get("image_url")),
        rating_avg=rating_avg,
        rating_count=rating_count,
        available=available is None or str(available).strip().lower() in TRUE_WORDS,
        attributes={k: v for k, v in attributes.items() if v},
    )


def interaction(
    path: str, line: int, record: dict, spec: dict
) -> Interaction | RowProblem:
    """One interaction from a record, or why it is refused."""
    user_id = _text(record, spec["user_id"])
    item_id = _text(record, spec["item_id"])
    if not user_id or not item_id:
        column = spec["user_id"] if not user_id else spec["item_id"]
        return RowProblem(path, line, str(column), "missing")
    kind = spec.get("kind", "purchase")
    if spec.get("kind_column"):
        kind = _text(record, spec["kind_column"]).lower() or kind
        if kind not in KINDS:
            return RowProblem(
                path,
                line,
                spec["kind_column"],
                f"kind {kind!r} is not one of {', '.join(KINDS)}",
            )
    column = spec.get("weight")
    try:
        raw_weight = _value(record, column)
        weight = 1.0 if raw_weight is None else parse_number(raw_weight)
        column = spec.get("timestamp")
        raw_time = _value(record, column)
        if raw_time is None:
            raise ValueError("no time")
        timestamp = parse_time(raw_time)
    except ValueError as exc:
        return RowProblem(path, line, str(column), str(exc))
    return Interaction(user_id, item_id, kind, weight, timestamp)


def read_generic(path: str, mapping: dict) -> ReadResult:
    """Read a catalog or interactions file through ``mapping``.

    Parameters
    ----------
    path : str
        CSV, JSON lines or one JSON array; plain, ``.gz`` or ``.zip``.
    mapping : dict
        As returned by :func:`load_mapping`.

    Returns
    -------
    ReadResult
        Products or interactions, with refused rows and their reasons.
    """
    result = ReadResult([], [], path=path, format="generic")
    catalog = mapping.get("catalog")
    events = mapping.get("interactions")
    by_id: dict[str, tuple[int, Product]] = {}
    is_events = None
    for line, record in records(path, result.problems):
        if is_events is None:
            is_events = bool(events) and all(
                _value(record, events[key]) is not None
                for key in ("user_id", "item_id")
            )
            if not is_events and not catalog:
                raise IngestError(
                    f"{path}: the first record has none of the interaction "
                    f"columns {events['user_id']!r}, {events['item_id']!r} "
                    f"(it has {sorted(record)[:12]}); check the mapping"
                )
            result.format = "generic " + ("interactions" if is_events else "catalog")
            log.debug("%s: read as %s", path, result.format)
        result.rows_read += 1
        if is_events:
            made = interaction(path, line, record, events)
            if isinstance(made, RowProblem):
                result.problems.append(made)
            else:
                result.interactions.append(made)
            continue
        made = catalog_product(path, line, record, catalog, result)
        if isinstance(made, RowProblem):
            result.problems.append(made)
            continue
        add_product(by_id, line, made, result)
    result.products = [product for _, product in by_id.values()]
    return result
