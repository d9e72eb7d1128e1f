"""What every format reader returns, and the rules shared by all of them."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field, fields

from indexer.catalog import Interaction, Product
from indexer.formats.text import clean_text, is_residue, recase
from indexer.sources import RowProblem

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

    ``counts`` holds ``skipped`` (rows left out on purpose: duplicates,
    cancellations, charges), ``repaired`` (products whose title or text had to
    be rebuilt) and reader-specific tallies.
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


# The proper name a description opens with, as in "Allure is the beauty
# expert", "Founded in 1872, Popular Science is" or "The Model 3 camera
# gives": capitalised words, joined by a few small words, then at most one
# lower-case noun and a verb.
NAME_WORD = r"[A-Z0-9][\w'’.!+-]*"
JOINERS = r"&|and|of|for|the|de|in|on"
VERBS = (
    r"is|are|was|gives|provides|offers|brings|covers|features|delivers|helps|"
    r"presents|includes|has|uses|combines|contains|keeps|lets|makes"
)
SUBJECT = re.compile(
    rf"(?:^|,\s+)({NAME_WORD}(?:\s+(?:(?:{JOINERS})\s+)?{NAME_WORD}){{0,6}})"
    rf"(?:\s+[a-z]+)?\s+(?:{VERBS})\b"
)
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
SHORT_TITLE = 80


def repair_title(
    description: str, brand: str = "", alternatives: tuple[str, ...] = ()
) -> str | None:
    """A title from the best other field, for a product whose title is unusable.

    Tried in order: ``alternatives`` (other name fields of the record), the
    proper name the description opens with, the description's first sentence
    when short, the brand when it is not a company name, and the first
    sentence clipped. ``None`` when none of them gives a title.
    """
    for text in alternatives:
        title = usable_title(text)
        if title:
            return title
    first = SENTENCE_END.split(description, maxsplit=1)[0] if description else ""
    match = SUBJECT.search(first)
    if match and len(match.group(1)) >= 3:
        return recase(match.group(1))
    if 3 <= len(first) <= SHORT_TITLE:
        return recase(first.rstrip("."))
    if brand and not is_company(brand) and not is_residue(brand):
        return brand
    if first:
        return clipped(recase(first), SHORT_TITLE)
    return None
