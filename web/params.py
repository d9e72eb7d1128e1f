"""Reading and bounding query parameters, shared by pages and the API."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

from indexer.search.base import (
    MAX_RESULT_WINDOW,
    SEARCH_MODES,
    SORTS,
    Filters,
    SearchRequest,
)

log = logging.getLogger(__name__)

MAX_PER_PAGE = 100
MAX_TOP_K = 100
MAX_QUERY_LENGTH = 500
MAX_SUGGEST = 20
MAX_SUGGEST_LENGTH = 100
MAX_ITEM_ID_LENGTH = 100
FEEDBACK_FIELDS = ("item_id", "kind", "stars")
FEEDBACK_KINDS = ("like", "unlike", "rating")
SEARCH_PARAMS = (
    "q",
    "mode",
    "page",
    "per_page",
    "sort",
    "price_min",
    "price_max",
    "category",
    "brand",
    "rating_min",
)

ASCII_INTEGER = re.compile(r"[+-]?[0-9]+")
ASCII_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
# Control characters mean nothing in a query and must not reach a page.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


class BadParameter(ValueError):
    """A request parameter is missing, malformed or out of bounds."""

    def __init__(self, name: str, message: str):
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message


def integer(args: Mapping, name: str, default: int, low: int, high: int) -> int:
    """A whole number between ``low`` and ``high``; ``default`` when absent."""
    raw = args.get(name)
    if raw in (None, ""):
        return default
    # int() would also take "1_0" and non-ASCII digits; a URL parameter is
    # plain ASCII.
    if not isinstance(raw, int) and not ASCII_INTEGER.fullmatch(str(raw)):
        raise BadParameter(name, f"expected a whole number, got {raw!r}")
    value = int(raw)
    if not low <= value <= high:
        raise BadParameter(name, f"must be between {low} and {high}, got {value}")
    return value


def number(args: Mapping, name: str, low: float, high: float) -> float | None:
    """A finite number between ``low`` and ``high``; None when absent."""
    raw = args.get(name)
    if raw in (None, ""):
        return None
    if not ASCII_NUMBER.fullmatch(str(raw)):
        raise BadParameter(name, f"expected a number, got {raw!r}")
    value = float(raw)
    if not low <= value <= high:
        raise BadParameter(name, f"must be between {low:g} and {high:g}, got {value:g}")
    return value


def choice(args: Mapping, name: str, choices: tuple[str, ...], default: str) -> str:
    """One of ``choices``; ``default`` when absent."""
    value = args.get(name) or default
    if value not in choices:
        raise BadParameter(name, f"must be one of {', '.join(choices)}, got {value!r}")
    return value


def reject_unknown(args: Mapping, known: tuple[str, ...]) -> None:
    """Refuse a parameter (or JSON field) not in ``known``, naming it."""
    unknown = sorted(set(args) - set(known))
    if unknown:
        raise BadParameter(
            unknown[0],
            f"unknown parameter(s) {', '.join(unknown)}; "
            f"known: {', '.join(known) or 'none'}",
        )


def search_request(args: Mapping, default_per_page: int = 20) -> SearchRequest:
    """A ``SearchRequest`` from request arguments, every value bounded."""
    query = CONTROL_CHARACTERS.sub(" ", args.get("q") or "").strip()
    if len(query) > MAX_QUERY_LENGTH:
        raise BadParameter("q", f"at most {MAX_QUERY_LENGTH} characters")
    per_page = integer(args, "per_page", default_per_page, 1, MAX_PER_PAGE)
    page = integer(args, "page", 1, 1, MAX_RESULT_WINDOW // per_page)
    price_min = number(args, "price_min", 0, 1e9)
    price_max = number(args, "price_max", 0, 1e9)
    if price_min is not None and price_max is not None and price_min > price_max:
        raise BadParameter("price_min", "must not exceed price_max")
    getlist = getattr(args, "getlist", None)
    categories = tuple(getlist("category")) if getlist else ()
    brands = tuple(getlist("brand")) if getlist else ()
    filters = Filters(
        price_min=price_min,
        price_max=price_max,
        categories=tuple(c for c in categories if c),
        brands=tuple(b for b in brands if b),
        rating_min=number(args, "rating_min", 0, 5),
    )
    return SearchRequest(
        query=query,
        mode=choice(args, "mode", SEARCH_MODES, "hybrid"),
        filters=filters,
        sort=choice(args, "sort", SORTS, "relevance"),
        page=page,
        per_page=per_page,
    )
