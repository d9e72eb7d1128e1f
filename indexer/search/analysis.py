"""Product-title text normalised the same way for every search backend.

Titles and queries write sizes, units and model numbers in many ways: ``1-gal.``
and ``1 gallon``, ``3/4 in.`` and ``3/4"``, ``2x4`` and ``2 x 4``, ``18v`` and
``18-Volt``. Both backends index the normalised text and search with the
normalised query, so these meet, and they meet the same way in both engines.

This runs in Python at index and query time rather than as engine analysis
chains: the embedded engine has no pattern or synonym filters, and the
minimal Elasticsearch distribution has no analysis-common module (no
``word_delimiter``, no ``synonym``). One implementation keeps the two engines
in step; the engines then only tokenize, fold, lowercase and stem.

What comes out:

- letters and digits glued together are split: ``2x4`` -> ``2 x 4``,
  ``rb4404`` -> ``rb 4404``;
- a fraction is one token: ``3/4`` -> ``3f4``, ``1-1/2`` -> ``1 1f2`` (a
  letter joins the parts: every engine's tokenizer keeps letters and digits
  together, while each splits on its own set of punctuation);
- a decimal is one token: ``7.2`` -> ``7p2``;
- a unit after a number has one spelling: ``in.``, ``inch``, ``"`` -> ``inch``;
  ``ft.``, ``feet``, ``'`` -> ``ft``; ``gal.``, ``gallon`` -> ``gal``;
  ``v``, ``volt`` -> ``volt`` and so on (``UNITS``);
- apostrophes inside words go: ``men's`` -> ``mens``;
- accents are folded and everything is lower case.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

# Typo tolerance: a query word the catalog does not hold, of 4 to 7 letters,
# also matches words one edit away, of 8 or more two edits away
# (Elasticsearch's fuzziness AUTO:4,8), compared without stemming. Words the
# catalog holds are not fuzzed, so short ones do not pull in their neighbours.
FUZZY_ONE_EDIT = 4
FUZZY_TWO_EDITS = 8

# Canonical unit -> the spellings that follow a number in titles and queries.
UNITS: dict[str, tuple[str, ...]] = {
    "inch": ("in", "inch", "inches", "inchs", '"', "''"),
    "ft": ("ft", "feet", "foot", "'"),
    "gal": ("gal", "gals", "gallon", "gallons"),
    "lb": ("lb", "lbs", "pound", "pounds"),
    "oz": ("oz", "ounce", "ounces"),
    "qt": ("qt", "quart", "quarts"),
    "volt": ("v", "volt", "volts", "vlt"),
    "watt": ("w", "watt", "watts"),
    # Not a bare "a": "2 a day" is more likely than "15 a" for amperes.
    "amp": ("amp", "amps", "ampere", "amperes"),
    "hp": ("hp", "horsepower"),
    "gauge": ("ga", "gauge", "guage"),
    "yd": ("yd", "yds", "yard", "yards"),
    "mm": ("mm", "millimeter", "millimeters"),
    "cu": ("cu", "cubic"),
    "sq": ("sq", "square"),
    "pack": ("pk", "pack"),
    "piece": ("pc", "pcs", "piece", "pieces"),
}
_SPELLINGS = {
    spelling: unit for unit, spellings in UNITS.items() for spelling in spellings
}
_QUOTES = str.maketrans(
    {"\u2033": '"', "\u201c": '"', "\u201d": '"', "\u2032": "'", "\u2019": "'"}
)
# Letter-digit boundaries, except inside the fractions and decimals made
# below ("3f4", "7p2"), so normalising twice changes nothing.
_LETTER_DIGIT = re.compile(r"(?<=[a-z])(?<!\d[fp])(?=\d)|(?<=\d)(?=[a-z])(?![fp]\d)")
_FRACTION = re.compile(r"(?<![\d/])(\d+)\s*/\s*(\d+)(?![\d/])")
_DECIMAL = re.compile(r"(?<=\d)\.(?=\d)")
# Decimals that titles write as fractions: "1.5 in." is "1-1/2 in.".
_DECIMAL_FRACTIONS = {
    "125": "1/8", "25": "1/4", "375": "3/8", "5": "1/2", "625": "5/8",
    "75": "3/4", "875": "7/8",
}  # fmt: skip
_FRACTIONAL_DECIMAL = re.compile(
    r"(?<![\d.])(\d*)\.(" + "|".join(_DECIMAL_FRACTIONS) + r")(?![\d.])"
)
# A number, then a unit: words need a boundary after them, marks do not.
_UNIT_AFTER_NUMBER = re.compile(
    r"(?<=\d)[\s-]*("
    + "|".join(
        re.escape(s) + ("" if not s[0].isalpha() else r"(?![a-z0-9_])")
        for s in sorted(_SPELLINGS, key=len, reverse=True)
    )
    + r")\.?"
)
_INNER_APOSTROPHE = re.compile(r"(?<=[a-z])'(?=[a-z])")
# What is left between these is punctuation every tokenizer drops anyway.
_WORD = re.compile(r"[^\W_]+")


def fold(text: str) -> str:
    """Lower case with accents removed and typographic quotes made plain."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_QUOTES))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def _as_fraction(match: re.Match) -> str:
    whole, fraction = match.group(1), _DECIMAL_FRACTIONS[match.group(2)]
    return f"{whole} {fraction}" if whole and whole != "0" else fraction


def normalize(text: str) -> str:
    """``text`` as the search engines index it and as queries are searched.

    Examples
    --------
    >>> normalize('BEHR 1-gal. #SC-141 Deck 3/4" x 2x4 18V')
    'behr 1 gal sc 141 deck 3f4 inch x 2 x 4 18 volt'
    """
    text = _INNER_APOSTROPHE.sub("", fold(text))
    text = _FRACTIONAL_DECIMAL.sub(_as_fraction, text)
    text = _LETTER_DIGIT.sub(" ", text)
    text = _FRACTION.sub(r"\1f\2", text)
    text = _DECIMAL.sub("p", text)
    text = _UNIT_AFTER_NUMBER.sub(lambda m: " " + _SPELLINGS[m.group(1)] + " ", text)
    return " ".join(_WORD.findall(text))


# Query planning: typos, and words run together or written apart

# Parts of a run-together word are at least this long ("toprail" is
# "top rail"; "bolts" is not "bol ts").
MIN_PART = 3
MIN_SPLIT = 2 * MIN_PART


@dataclass(frozen=True)
class QueryPlan:
    """What a keyword search looks for, beyond the normalised words.

    ``typos`` are words the catalog does not hold, long enough to be matched
    with edits (``fuzzy_distance``); a word the catalog holds is taken as
    meant, as fuzzing it would flood short words with their neighbours.
    ``joined`` are adjacent words that the catalog
    writes as one (``deck over`` -> ``deckover``); ``split`` are unknown words
    that are two catalog words run together (``toprail`` -> ``top rail``).
    """

    words: tuple[str, ...]
    typos: tuple[str, ...] = ()
    joined: tuple[str, ...] = ()
    split: tuple[tuple[str, str], ...] = field(default=())


def plan_query(text: str, known: Callable[[Iterable[str]], set[str]]) -> QueryPlan:
    """Plan the keyword search for ``text``.

    Parameters
    ----------
    text : str
        The shopper's query.
    known : callable
        Given candidate words, returns those the catalog holds (after the
        engine's stemming); each backend asks its own index.

    Returns
    -------
    QueryPlan
        The normalised words, the unknown ones to match with typos, and the
        joins and splits the catalog knows.
    """
    words = tuple(normalize(text).split())
    if not words:
        return QueryPlan(words)
    pairs = [a + b for a, b in zip(words, words[1:], strict=False) if _alpha(a + b)]
    found = known({*words, *pairs})
    unknown = [w for w in words if w not in found and _alpha(w)]
    splits = {
        w: [(w[:i], w[i:]) for i in range(MIN_PART, len(w) - MIN_PART + 1)]
        for w in unknown
        if len(w) >= MIN_SPLIT
    }
    parts = {part for options in splits.values() for pair in options for part in pair}
    found_parts = known(parts) if parts else set()
    split = []
    for options in splits.values():
        whole = [pair for pair in options if set(pair) <= found_parts]
        if whole:
            # The most even cut: "toprail" is "top rail" before "topr ail".
            split.append(min(whole, key=lambda pair: abs(len(pair[0]) - len(pair[1]))))
    return QueryPlan(
        words,
        typos=tuple(w for w in unknown if fuzzy_distance(w)),
        joined=tuple(p for p in pairs if p in found),
        split=tuple(split),
    )


def _alpha(word: str) -> bool:
    return word.isalpha()


def fuzzy_distance(word: str) -> int:
    """Edits a query word may be away from a product word and still match."""
    if len(word) >= FUZZY_TWO_EDITS:
        return 2
    return 1 if len(word) >= FUZZY_ONE_EDIT else 0
