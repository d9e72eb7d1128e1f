"""What every format reader returns, and the rules shared by all of them."""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass, field, fields

from indexer.catalog import Interaction, Product
from indexer.formats.text import clean_text, is_residue, recase
from indexer.sources import RowProblem

log = logging.getLogger(__name__)

# Fields compared when one product id turns up twice.
MERGED_FIELDS = tuple(
    f.name for f in fields(Product) if f.name not in ("item_id", "popularity")
)
LONGEST_TITLE = 200
# Words that make a brand a company rather than the name of a product.
COMPANY_WORDS = frozenset(
    "inc inc. corp corp. corporation co co. company ltd ltd. llc gmbh publishing "
    "publications publishers press media group network associates editors "
    "magazines enterprises holdings".split()
)


@dataclass
class ReadResult:
    """Products and interactions read from one file, and what was refused.

    ``rows_read`` counts the records that could be parsed; lines refused
    before that (not UTF-8, not JSON, a field too long) are only in
    ``problems``. ``counts`` holds ``skipped`` (rows left out on purpose:
    duplicates, cancellations, charges), ``repaired`` (products whose title
    had to be rebuilt) and reader-specific tallies.
    """

    products: list[Product]
    interactions: list[Interaction]
    rows_read: int = 0
    problems: list[RowProblem] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    path: str = ""
    format: str = ""

    def summary(self) -> str:
        c = self.counts
        return (
            f"read {self.rows_read} rows as {self.format}: "
            f"{len(self.products)} products, {len(self.interactions)} "
            f"interactions; repaired {c['repaired']}, skipped {c['skipped']}, "
            f"refused {len(self.problems)}"
        )


def merge_product(kept: Product, other: Product) -> list[str]:
    """Fill the empty fields of ``kept`` from ``other``, a repeat of one id.

    Returns the fields where both hold different values; ``kept`` wins those.
    """
    conflicts = []
    for name in MERGED_FIELDS:
        mine, theirs = getattr(kept, name), getattr(other, name)
        if theirs in (None, "", {}, 0) or mine == theirs:
            continue
        if mine in (None, "", {}):
            setattr(kept, name, theirs)
        else:
            conflicts.append(name)
    return conflicts


def add_product(
    by_id: dict[str, tuple[int, Product]],
    line: int,
    product: Product,
    result: ReadResult,
) -> None:
    """Keep ``product`` under its id, merging a repeat into the first record.

    A repeat is counted as skipped; one whose data differs is reported as a
    problem naming the fields that differ.
    """
    if product.item_id not in by_id:
        by_id[product.item_id] = (line, product)
        return
    first_line, kept = by_id[product.item_id]
    result.counts["skipped"] += 1
    conflicts = merge_product(kept, product)
    if conflicts:
        result.problems.append(
            RowProblem(
                result.path,
                line,
                ", ".join(conflicts),
                f"product {product.item_id} repeats line {first_line} with "
                "different data; the first is kept",
            )
        )


def clipped(text: str, limit: int) -> str:
    """``text`` cut at a word boundary to at most ``limit`` characters."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:-– ")
    return cut + "…"


def is_company(brand: str) -> bool:
    """Whether ``brand`` names a company (publisher, maker) not a product line."""
    return any(word.lower() in COMPANY_WORDS for word in brand.split())


def usable_title(raw: object) -> str | None:
    """The cleaned title, or ``None`` when it is missing or scraping residue."""
    text = clean_text(raw)
    if is_residue(text) or not any(ch.isalpha() for ch in text):
        return None
    return clipped(recase(text), LONGEST_TITLE)


# The proper name a description is about, as in "Allure is the beauty
# expert", "Founded in 1872, Popular Science is", "Each issue of Field &
# Stream has", "The Model 3 camera gives" or "Skynews, the Canadian
# magazine": capitalised words joined by a few small words, then at most one
# lower-case noun or adverb and a verb, or an apposition.
NAME_WORD = r"[A-Z0-9][\w'’.!+-]*"
JOINERS = r"&|and|of|for|the|de|in|on"
VERBS = (
    r"is|are|was|gives|provides|offers|brings|covers|features|delivers|helps|"
    r"presents|includes|has|uses|combines|contains|keeps|lets|makes|"
    r"celebrates|examines|explores|focuses|informs|inspires|publishes|reports|"
    r"serves|showcases|sets|aligns|remains|takes|shows|puts|tells"
)
NAME = rf"{NAME_WORD}(?:\s+(?:(?:{JOINERS})\s+)?{NAME_WORD}){{0,6}}"
SUBJECT = re.compile(
    rf"(?:^|,\s+|\bof\s+)(?P<name>{NAME})(?:\s+(?P<noun>[a-z]+))?"
    rf"\s+(?:{VERBS})\b(?P<rest>.{{0,4}})"
    rf"|^(?P<apposed>{NAME}),\s+(?:the|a|an)\s"
)
# Sentence openers that look like a name but only point at one.
NOT_A_NAME = frozenset(
    "this these that those each every it its our your their his her one the a an "
    "all some most many".split()
)
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
SHORT_TITLE = 80


def repair_title(
    description: str, brand: str = "", alternatives: tuple[str, ...] = ()
) -> tuple[str, str] | None:
    """A title from the best other field, for a product whose title is unusable.

    Tried in order: ``alternatives`` (other name fields of the record), the
    proper name the description is about, the description's first sentence
    when short, the brand when it is not a company name, and the first
    sentence clipped.

    Returns
    -------
    (title, source) or None
        ``source`` is ``alternative``, ``name``, ``sentence``, ``brand`` or
        ``clipped``; ``None`` when no field gives a title.
    """
    for text in alternatives:
        title = usable_title(text)
        if title:
            return title, "alternative"
    first = SENTENCE_END.split(description, maxsplit=1)[0] if description else ""
    name = _subject(first, description, brand)
    if name:
        return recase(name), "name"
    if 3 <= len(first) <= SHORT_TITLE:
        return recase(first.rstrip(".")), "sentence"
    if brand and not is_company(brand) and not is_residue(brand):
        return brand, "brand"
    if first:
        return clipped(recase(first), SHORT_TITLE), "clipped"
    return None


def _subject(first: str, description: str, brand: str) -> str | None:
    """The proper name ``first`` (a sentence of ``description``) is about."""
    match = SUBJECT.search(first)
    if match is None:
        return None
    name = match.group("name") or match.group("apposed")
    if name.lower() in NOT_A_NAME or (len(name) < 3 and not name.isupper()):
        return None
    # One capitalised word opening the text may be any word ("Objective is
    # to...", "Publication of ... covers"): it is taken for a name when the
    # text repeats it, or when the verb follows it directly and not "to".
    if " " not in name and first.startswith(name) and not match.group("apposed"):
        repeated = description.count(name) > 1 or name in brand
        direct = not match.group("noun") and not match.group("rest").startswith(" to ")
        if not (repeated or direct):
            return None
    return name
