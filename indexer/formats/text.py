"""Cleaning of shop text: markup out, numbers, prices and times parsed strictly."""

from __future__ import annotations

import functools
import html
import logging
import math
import re
from datetime import UTC, datetime

log = logging.getLogger(__name__)

# Markup: whole script and style blocks, then any tag, including one cut off
# at the end of the text by a scraper ("<span class=...").
SCRIPT_BLOCK = re.compile(
    r"<(script|style)\b.*?(</\1\s*>|$)", re.IGNORECASE | re.DOTALL
)
TAG = re.compile(r"<[a-zA-Z/!?][^>]*(>|$)")
# What page-scraping leaves where a value should be: attribute fragments, the
# end of a tag, style sheets and scripts.
# Markup, style and script left in a field. Script is told by a function with
# its body ("function (a) {"): "Dual Function (CAFCI and GFCI)" is a title.
RESIDUE = re.compile(
    r'/>|[a-z-]+="|\{[^}]*:|function\s*\w*\s*\([^)]*\)\s*\{|\bvar\s+\w+\s*=|^\W*$',
    re.IGNORECASE,
)
CURRENCY = "$£€¥₹"
NUMBER = re.compile(r"^[+-]?(\d[\d,. '\u00a0\u202f]*)$")
PLAIN_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
TIME_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d",
    "%m/%d/%Y %H:%M",
    "%d/%m/%Y %H:%M",
    "%m/%d/%Y",
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y",
    "%m %d, %Y",
    "%B %d, %Y",
    "%b %d, %Y",
    "%d %B %Y",
    "%d %b %Y",
)
# Epoch values above this are milliseconds (it is the year 5138 in seconds).
MILLISECONDS_FROM = 1e11


def clean_text(value: object) -> str:
    """Plain text from a scraped value: markup and entities out, spaces normalised.

    A list (as in Amazon's ``description``) becomes its non-empty parts joined,
    each part once.
    """
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        parts: list[str] = []
        for item in value:
            text = clean_text(item)
            if text and text not in parts:
                parts.append(text)
        return " ".join(parts)
    text = str(value)
    # Entities are unescaped twice: scraped text is often escaped twice.
    text = html.unescape(html.unescape(text))
    text = SCRIPT_BLOCK.sub(" ", text)
    text = TAG.sub(" ", text)
    return " ".join(text.split())


def is_residue(text: str) -> bool:
    """Whether cleaned ``text`` is scraping residue rather than a value."""
    return not text or bool(RESIDUE.search(text))


def parse_number(value: object) -> float:
    """A number from a shop export: ``1,234.50``, ``1.234,50``, ``£3.39``, ``12 €``.

    Raises
    ------
    ValueError
        When ``value`` is not one number, repeating the value.
    """
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError(f"not a finite number: {value!r}")
        return float(value)
    text = str(value).strip()
    if PLAIN_NUMBER.fullmatch(text):
        return float(text)  # the common case, a hundred times cheaper
    for code in ("GBP", "USD", "EUR"):
        text = text.removeprefix(code).removesuffix(code).strip()
    text = text.strip(CURRENCY).strip()
    match = NUMBER.match(text)
    if not match:
        raise ValueError(f"not a number: {value!r}")
    sign = -1.0 if text.startswith("-") else 1.0
    digits = re.sub(r"[ '\u00a0\u202f]", "", match.group(1))
    if "," in digits and "." in digits:
        # Whichever comes last separates the decimals.
        thousands = "," if digits.rfind(",") < digits.rfind(".") else "."
        digits = digits.replace(thousands, "").replace(",", ".")
    elif "," in digits:
        grouped = re.fullmatch(r"\d{1,3}(,\d{3})+", digits)
        digits = digits.replace(",", "") if grouped else digits.replace(",", ".")
    elif re.fullmatch(r"\d{1,3}(\.\d{3}){2,}", digits):
        digits = digits.replace(".", "")
    try:
        return sign * float(digits)
    except ValueError:
        raise ValueError(f"not a number: {value!r}") from None


def parse_price(value: object, scale: float = 1.0) -> float | None:
    """A price, or ``None`` when ``value`` holds no single price.

    Ranges, residue and negative amounts give ``None``: a price is never
    guessed. ``scale`` converts units, e.g. ``0.01`` for integer cents.
    """
    if value is None or value == "":
        return None
    try:
        number = parse_number(value)
    except ValueError:
        return None
    if number < 0:
        return None
    return round(number * scale, 2)


def parse_time(value: object) -> float:
    """Seconds since the epoch, UTC, from an epoch number or a dated text.

    Accepts epoch seconds or milliseconds, ISO 8601 with or without a zone,
    and the day-first and month-first forms in ``TIME_FORMATS``; a time
    without a zone is read as UTC.

    Raises
    ------
    ValueError
        Repeating the value when it is in none of these forms.
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        text = " ".join(str(value).split())
        try:
            seconds = float(text)
        except ValueError:
            return _parse_dated(text)
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"not a time: {value!r}")
    return seconds / 1000 if seconds > MILLISECONDS_FROM else seconds


@functools.lru_cache(maxsize=65536)
def _parse_dated(text: str) -> float:
    # Exports repeat each time on every line of an order: parse each once.
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    for fmt in TIME_FORMATS if moment is None else ():
        try:
            moment = datetime.strptime(text, fmt)
            break
        except ValueError:
            continue
    if moment is None:
        raise ValueError(
            f"not a time in a known form (epoch seconds, ISO 8601, "
            f"{', '.join(TIME_FORMATS)}): {text!r}"
        )
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def recase(text: str) -> str:
    """Text written all in capitals, re-cased word by word; other text as is."""
    if not any(ch.islower() for ch in text) and sum(ch.isalpha() for ch in text) > 3:
        return " ".join(word.capitalize() for word in text.split())
    return text
