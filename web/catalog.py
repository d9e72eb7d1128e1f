"""The catalog in memory, for category trees, query-less browsing and suggestions."""

from __future__ import annotations

import bisect
import logging
import re
import time
from collections import Counter
from dataclasses import dataclass

from indexer.catalog import (
    CATEGORY_SEPARATOR,
    Product,
    category_ancestors,
    category_levels,
)
from indexer.search.base import (
    PRICE_BUCKETS,
    RATING_BUCKETS,
    FacetBucket,
    Filters,
    Hit,
    SearchRequest,
    SearchResponse,
    page_slice,
)

log = logging.getLogger(__name__)

FACET_SIZE = 20
WORD = re.compile(r"\w+")


@dataclass
class Suggestion:
    text: str
    kind: str  # "product" or "category"
    item_id: str | None = None


class CatalogView:
    """Every product of the serving catalog, indexed for browsing.

    Built from a product list (the catalog store's); the shop rebuilds it when
    a new catalog is loaded. Browsing filters and sorts in memory, which is
    quick up to a few hundred thousand products; beyond that a match-all
    query in the search backend would take over.
    """

    def __init__(self, products: list[Product]):
        started = time.perf_counter()
        self.products = [p for p in products if p.available]
        self.by_id = {p.item_id: p for p in products}
        counts: Counter[str] = Counter()
        for product in self.products:
            for path in category_ancestors(product.category):
                counts[path] += 1
        self.category_counts = counts
        self.words = sorted(
            {
                (word, product.item_id)
                for product in self.products
                for word in WORD.findall(product.title.lower())
                if len(word) > 1
            }
        )
        self.popular = sorted(
            self.products, key=lambda p: (-p.popularity, p.title.lower())
        )
        log.debug(
            "catalog view of %d products, %d categories in %.2fs",
            len(self.products),
            len(counts),
            time.perf_counter() - started,
        )

    @property
    def has_categories(self) -> bool:
        return bool(self.category_counts)

    def children(self, path: str = "") -> list[FacetBucket]:
        """Sub-categories of ``path`` (top-level ones for ``""``) with counts."""
        depth = len(category_levels(path))
        prefix = path + CATEGORY_SEPARATOR if path else ""
        return sorted(
            (
                FacetBucket(name, count)
                for name, count in self.category_counts.items()
                if name.startswith(prefix) and len(category_levels(name)) == depth + 1
            ),
            key=lambda b: (-b.count, b.key),
        )

    def is_category(self, path: str) -> bool:
        return path in self.category_counts

    def browse(
        self, filters: Filters, sort: str, page: int, per_page: int, parent: str = ""
    ) -> SearchResponse:
        """Products passing ``filters`` with search-style facets and paging.

        ``relevance`` means popularity here, as there is no query to match.
        The category facet counts the children of ``parent``.
        """
        matched = [p for p in self.popular if filters.accepts(p)]
        if sort == "price_asc":
            matched.sort(key=lambda p: (p.price is None, p.price or 0.0))
        elif sort == "price_desc":
            matched.sort(key=lambda p: (p.price is None, -(p.price or 0.0)))
        elif sort == "rating":
            matched.sort(key=lambda p: (p.rating_avg is None, -(p.rating_avg or 0.0)))
        window = page_slice(SearchRequest("", "keyword", filters, sort, page, per_page))
        hits = [Hit(p.item_id, 1.0) for p in matched[window]]
        return SearchResponse(len(matched), hits, self.facets(matched, parent))

    def facets(
        self, products: list[Product], parent: str = ""
    ) -> dict[str, list[FacetBucket]]:
        """Category, brand, price and rating facets, keyed as the backends key
        them."""
        depth = len(category_levels(parent))
        categories: Counter[str] = Counter()
        brands: Counter[str] = Counter()
        prices = [0] * len(PRICE_BUCKETS)
        ratings = [0] * len(RATING_BUCKETS)
        for product in products:
            paths = category_ancestors(product.category)
            if len(paths) > depth:
                categories[paths[depth]] += 1
            if product.brand:
                brands[product.brand] += 1
            if product.price is not None:
                for i, (_key, low, high) in enumerate(PRICE_BUCKETS):
                    if (low is None or product.price >= low) and (
                        high is None or product.price < high
                    ):
                        prices[i] += 1
                        break
            if product.rating_avg is not None:
                for i, (_key, low) in enumerate(RATING_BUCKETS):
                    if product.rating_avg >= low:
                        ratings[i] += 1

        def top(counter: Counter[str]) -> list[FacetBucket]:
            ranked = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
            return [FacetBucket(key, count) for key, count in ranked[:FACET_SIZE]]

        return {
            "category": top(categories),
            "brand": top(brands),
            "price": [
                FacetBucket(key, n)
                for (key, *_), n in zip(PRICE_BUCKETS, prices, strict=True)
            ],
            "rating": [
                FacetBucket(key, n)
                for (key, _), n in zip(RATING_BUCKETS, ratings, strict=True)
            ],
        }

    def suggest(self, prefix: str, limit: int) -> list[Suggestion]:
        """Categories and product titles with a word starting with the last
        word of ``prefix`` and containing the words before it."""
        words = WORD.findall(prefix.lower())
        if not words:
            return []
        *before, last = words
        suggestions: list[Suggestion] = []
        for path in sorted(
            self.category_counts, key=lambda c: -self.category_counts[c]
        ):
            name = path.lower()
            if all(w in name for w in before) and any(
                level.startswith(last) for level in WORD.findall(name)
            ):
                suggestions.append(Suggestion(path, "category"))
                if len(suggestions) >= max(1, limit // 3):
                    break

        start = bisect.bisect_left(self.words, (last, ""))
        candidates: list[Product] = []
        seen: set[str] = set()
        for word, item_id in self.words[start:]:
            if not word.startswith(last):
                break
            product = self.by_id[item_id]
            title = product.title.lower()
            if item_id not in seen and all(w in title for w in before):
                seen.add(item_id)
                candidates.append(product)
        candidates.sort(key=lambda p: (-p.popularity, len(p.title)))
        titles: set[str] = set()
        for product in candidates:
            if len(suggestions) >= limit:
                break
            if product.title.lower() not in titles:
                titles.add(product.title.lower())
                suggestions.append(
                    Suggestion(product.title, "product", product.item_id)
                )
        return suggestions
