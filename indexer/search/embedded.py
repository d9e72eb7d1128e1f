"""The embedded search backend: tantivy for BM25, numpy for kNN, no server.

Each build writes a complete version directory (tantivy index, vectors,
products) beside the serving one, then swaps the ``current`` symlink with one
atomic rename. Readers notice the new target on their next query and switch;
a build that fails leaves ``current`` where it was, and one killed half way
leaves a directory that the next build removes first.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import tantivy
from tqdm import tqdm

from indexer.catalog import Product, category_ancestors
from indexer.search.analysis import (
    fuzzy_distance,
    normalize,
    plan_query,
)
from indexer.search.base import (
    ALL_WORDS_BOOST,
    KEYWORD_CANDIDATES,
    KNN_CANDIDATES,
    KNN_MIN_SIMILARITY,
    MAX_RESULT_WINDOW,
    NO_FILTERS,
    PHRASE_BOOST,
    PHRASE_SLOP,
    PRICE_BUCKETS,
    RATING_BUCKETS,
    TITLE_BOOST,
    FacetBucket,
    Filters,
    Hit,
    HybridParams,
    IndexBuildError,
    IndexInfo,
    SearchBackend,
    SearchError,
    SearchRequest,
    SearchResponse,
    check_vectors,
    empty_facets,
    page_slice,
)
from indexer.search.rerank import Candidate
from indexer.versions import current_version, make_current, new_version_name, prune

log = logging.getLogger(__name__)

FACET_SIZE = 20
# The score of a fuzzy match of an unknown word: tantivy scores it as a
# constant 1 times this, where a title's exact word scores 2 to 10 by BM25.
# Chosen on the tuning half of the Home Depot judgments (1, 3, 8, 15, 30 tried).
EMBEDDED_TYPO_BOOST = 8.0
KEEP_VERSIONS = 2  # the serving version and the one before it
WRITER_HEAP = 64 * 1024 * 1024
BUILD_LOCK = ".build.lock"


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("item_id", stored=True, tokenizer_name="raw", fast=True)
    builder.add_text_field("title", tokenizer_name="en_stem")
    builder.add_text_field("text", tokenizer_name="en_stem")
    # Unstemmed copies for typo tolerance: stems would put a typo further
    # from its word ("christmass" stems to "christmass", "christmas" to
    # "christma").
    builder.add_text_field("title_plain", tokenizer_name="default")
    builder.add_text_field("text_plain", tokenizer_name="default")
    builder.add_text_field("category", tokenizer_name="raw", fast=True)
    builder.add_text_field("category_path", tokenizer_name="raw", fast=True)
    builder.add_text_field("brand", tokenizer_name="raw", fast=True)
    builder.add_float_field("price", indexed=True, fast=True)
    builder.add_float_field("rating", indexed=True, fast=True)
    builder.add_boolean_field("available", indexed=True, fast=True)
    return builder.build()


def _tantivy_doc(product: Product) -> tantivy.Document:
    doc = tantivy.Document()
    doc.add_text("item_id", product.item_id)
    title, text = normalize(product.title), normalize(product.search_text())
    doc.add_text("title", title)
    doc.add_text("text", text)
    doc.add_text("title_plain", title)
    doc.add_text("text_plain", text)
    if product.category:
        doc.add_text("category", product.category)
        for path in category_ancestors(product.category):
            doc.add_text("category_path", path)
    if product.brand:
        doc.add_text("brand", product.brand)
    if product.price is not None:
        doc.add_float("price", float(product.price))
    if product.rating_avg is not None:
        doc.add_float("rating", float(product.rating_avg))
    doc.add_boolean("available", bool(product.available))
    return doc


@dataclass
class _Version:
    """One complete, immutable index version, open for reading."""

    name: str
    index: tantivy.Index
    schema: tantivy.Schema
    ids: list[str]
    positions: dict[str, int]
    vectors: np.ndarray
    products: list[Product]
    price: np.ndarray
    rating: np.ndarray
    available: np.ndarray

    @classmethod
    def open(cls, path: str) -> _Version:
        schema = _schema()
        try:
            index = tantivy.Index(
                schema, path=os.path.join(path, "tantivy"), reuse=True
            )
        except ValueError as exc:
            # An index written by an older version of this program.
            raise SearchError(
                f"the index {path} has another layout than this version "
                f"expects ({exc}); rebuild it with: python -m indexer reindex"
            ) from exc
        with open(os.path.join(path, "products.jsonl"), encoding="utf-8") as handle:
            products = [Product.from_doc(json.loads(line)) for line in handle]
        vectors = np.load(os.path.join(path, "vectors.npy"))
        ids = [p.item_id for p in products]
        nan = float("nan")
        return cls(
            name=os.path.basename(path),
            index=index,
            schema=schema,
            ids=ids,
            positions={item_id: i for i, item_id in enumerate(ids)},
            vectors=vectors,
            products=products,
            price=np.array([nan if p.price is None else p.price for p in products]),
            rating=np.array(
                [nan if p.rating_avg is None else p.rating_avg for p in products]
            ),
            available=np.array([p.available for p in products], dtype=bool),
        )


class EmbeddedBackend(SearchBackend):
    """Search over a directory of index versions, in this process.

    Parameters
    ----------
    root : str
        Directory holding the versions and the ``current`` symlink.
    hybrid : HybridParams, optional
        How hybrid search fuses its two rankings.
    """

    name = "embedded"
    alias = "current"

    def __init__(self, root: str, hybrid: HybridParams | None = None):
        self.root = root
        self.hybrid = hybrid or HybridParams()
        os.makedirs(root, exist_ok=True)
        self._lock = threading.Lock()
        self._version: _Version | None = None
        self._target: str | None = None

    # Building

    def build(
        self,
        products: Iterable[Product],
        vectors: np.ndarray,
        *,
        expected: int | None = None,
    ) -> IndexInfo:
        products = list(products)
        check_vectors(products, vectors)
        with open(os.path.join(self.root, BUILD_LOCK), "a") as lock:
            # One build at a time; the lock dies with a killed process.
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._drop_unfinished()
            return self._build_locked(products, vectors, expected)

    def _drop_unfinished(self) -> None:
        """Remove version directories newer than the serving one: builds
        killed half way, which never became current."""
        serving = self._current_target() or ""
        for entry in sorted(os.listdir(self.root)):
            if entry.startswith("products-") and entry > serving:
                shutil.rmtree(os.path.join(self.root, entry), ignore_errors=True)
                log.warning("removed %s, left unfinished by an earlier build", entry)

    def _build_locked(
        self, products: list[Product], vectors: np.ndarray, expected: int | None
    ) -> IndexInfo:
        name = new_version_name("products")
        path = os.path.join(self.root, name)
        started = time.perf_counter()
        try:
            self._write_version(path, products, vectors)
            written = _Version.open(path)
            want = len(products) if expected is None else expected
            if len(written.ids) != want or written.index.searcher().num_docs != want:
                raise IndexBuildError(
                    f"new index {name} holds {written.index.searcher().num_docs} "
                    f"documents, expected {want}; the serving index is unchanged"
                )
        except Exception as exc:
            shutil.rmtree(path, ignore_errors=True)
            if isinstance(exc, IndexBuildError):
                raise
            raise IndexBuildError(
                f"building {name} failed ({exc}); the serving index is unchanged"
            ) from exc

        make_current(self.root, name)
        # Keep the version before this one so a reader mid-swap can finish.
        prune(self.root, "products", KEEP_VERSIONS)
        log.info(
            "indexed %d products into %s in %.1fs",
            len(products),
            name,
            time.perf_counter() - started,
        )
        return self.status()

    def _write_version(
        self, path: str, products: Sequence[Product], vectors: np.ndarray
    ) -> None:
        os.makedirs(os.path.join(path, "tantivy"))
        seen: set[str] = set()
        for product in products:
            if product.item_id in seen:
                raise IndexBuildError(
                    f"product id {product.item_id!r} appears twice",
                    [(product.item_id, "duplicate id")],
                )
            seen.add(product.item_id)
        index = tantivy.Index(_schema(), path=os.path.join(path, "tantivy"))
        writer = index.writer(WRITER_HEAP, 1)
        for product in tqdm(products, desc="indexing", unit="product"):
            writer.add_document(_tantivy_doc(product))
        writer.commit()
        writer.wait_merging_threads()
        np.save(os.path.join(path, "vectors.npy"), vectors.astype(np.float32))
        with open(os.path.join(path, "products.jsonl"), "w", encoding="utf-8") as out:
            for product in products:
                out.write(json.dumps(product.to_doc()) + "\n")

    # Reading

    def _current_target(self) -> str | None:
        return current_version(self.root)

    def _current(self) -> _Version:
        target = self._current_target()
        if target is None:
            raise SearchError(
                f"no index under {self.root}; load a catalog first "
                "(python -m indexer load FILE)"
            )
        version = self._version
        if version is None or target != self._target:
            with self._lock:
                if self._version is None or target != self._target:
                    self._version = _Version.open(os.path.join(self.root, target))
                    self._target = target
                    self._filter_mask.cache_clear()
                version = self._version
        return version

    def fetch(self, item_ids: Sequence[str]) -> dict[str, Product]:
        version = self._current()
        found = {}
        for item_id in item_ids:
            position = version.positions.get(item_id)
            if position is not None:
                found[item_id] = version.products[position]
        return found

    def all_ids(self, limit: int) -> list[str]:
        return self._current().ids[:limit]

    def vector(self, item_id: str) -> np.ndarray | None:
        version = self._current()
        position = version.positions.get(item_id)
        return None if position is None else version.vectors[position]

    def status(self) -> IndexInfo:
        target = self._current_target()
        if target is None:
            return IndexInfo(self.name, self.alias, None, 0, "missing")
        version = self._current()
        return IndexInfo(
            self.name,
            self.alias,
            target,
            version.index.searcher().num_docs,
            "green",
            {"root": self.root, "dimensions": int(version.vectors.shape[1])},
        )

    # Queries

    @lru_cache(maxsize=64)  # noqa: B019 - cleared when the version changes
    def _filter_mask(self, filters: Filters) -> np.ndarray:
        version = self._version
        mask = np.ones(len(version.ids), dtype=bool)
        if filters.available_only:
            mask &= version.available
        if filters.price_min is not None:
            mask &= version.price >= filters.price_min
        if filters.price_max is not None:
            mask &= version.price <= filters.price_max
        if filters.rating_min is not None:
            mask &= version.rating >= filters.rating_min
        if filters.categories or filters.brands or filters.exclude_ids:
            for i, product in enumerate(version.products):
                if mask[i] and not filters.accepts(product):
                    mask[i] = False
        return mask

    def _filter_query(self, version: _Version, filters: Filters) -> list:
        schema, clauses = version.schema, []
        float_type = tantivy.FieldType.Float
        if filters.available_only:
            clauses.append(
                (
                    tantivy.Occur.Must,
                    tantivy.Query.term_query(schema, "available", True),
                )
            )
        if filters.price_min is not None or filters.price_max is not None:
            clauses.append(
                (
                    tantivy.Occur.Must,
                    tantivy.Query.range_query(
                        schema,
                        "price",
                        float_type,
                        filters.price_min,
                        filters.price_max,
                    ),
                )
            )
        if filters.rating_min is not None:
            clauses.append(
                (
                    tantivy.Occur.Must,
                    tantivy.Query.range_query(
                        schema, "rating", float_type, filters.rating_min, None
                    ),
                )
            )
        for field, values in (
            ("category_path", filters.categories),
            ("brand", filters.brands),
        ):
            if values:
                clauses.append(
                    (
                        tantivy.Occur.Must,
                        tantivy.Query.term_set_query(schema, field, list(values)),
                    )
                )
        if filters.exclude_ids:
            clauses.append(
                (
                    tantivy.Occur.MustNot,
                    tantivy.Query.term_set_query(
                        schema, "item_id", list(filters.exclude_ids)
                    ),
                )
            )
        return clauses

    def _known(self, version: _Version, words) -> set[str]:
        """The words some product's title or text holds, stemmed as indexed."""
        searcher = version.index.searcher()
        found = set()
        for word in words:
            query = version.index.parse_query(word, ["title", "text"])
            if searcher.search(query, 1, count=True).count:
                found.add(word)
        return found

    def _keyword_query(self, version: _Version, text: str):
        plan = plan_query(text, lambda words: self._known(version, words))
        if not plan.words:
            return None
        index, boosts = version.index, {"title": TITLE_BOOST}
        fields = ["title", "text"]
        cleaned = " ".join(plan.words)
        should = [index.parse_query(cleaned, fields, field_boosts=boosts)]
        if len(plan.words) > 1:
            # Titles holding the query's words close together and in order
            # rank above those that merely contain them.
            phrase = index.parse_query(f'"{cleaned}"~{PHRASE_SLOP}', ["title"])
            should.append(tantivy.Query.boost_query(phrase, PHRASE_BOOST))
            # Products holding every word, in any order, above those that
            # hold only some.
            every = " ".join(f"+{word}" for word in plan.words)
            should.append(
                tantivy.Query.boost_query(
                    index.parse_query(every, fields, field_boosts=boosts),
                    ALL_WORDS_BOOST,
                )
            )
        # Words the catalog writes together or apart.
        for joined in plan.joined:
            should.append(index.parse_query(joined, fields, field_boosts=boosts))
        for first, second in plan.split:
            should.append(
                index.parse_query(f"+{first} +{second}", fields, field_boosts=boosts)
            )
        # Typo tolerance for words the catalog does not hold. A fuzzy match
        # scores a constant here, not BM25 as in Elasticsearch: hence its
        # own boost.
        fuzzy = [
            (
                tantivy.Occur.Should,
                tantivy.Query.fuzzy_term_query(
                    version.schema, field, word, fuzzy_distance(word), True
                ),
            )
            for word in plan.typos
            if fuzzy_distance(word)
            for field in ("title_plain", "text_plain")
        ]
        if fuzzy:
            should.append(
                tantivy.Query.boost_query(
                    tantivy.Query.boolean_query(fuzzy), EMBEDDED_TYPO_BOOST
                )
            )
        if len(should) == 1:
            return should[0]
        return tantivy.Query.boolean_query(
            [(tantivy.Occur.Should, query) for query in should]
        )

    def _restricted(self, version: _Version, query, filters: Filters):
        clauses = self._filter_query(version, filters)
        if not clauses:
            return query
        return tantivy.Query.boolean_query([(tantivy.Occur.Must, query), *clauses])

    def _ids(self, searcher, hits) -> list[str]:
        return [searcher.doc(address)["item_id"][0] for _score, address in hits]

    def _candidates(
        self,
        version: _Version,
        query_vector: np.ndarray,
        keyword_ids: list[str],
        keyword_hits: list,
        knn_hits: list[Hit],
    ) -> list[Candidate]:
        """The hybrid ranker's candidates: the best keyword matches, then the
        neighbours not among them."""
        if self.hybrid.method != "ranker":
            return []
        top = keyword_ids[:KEYWORD_CANDIDATES]
        positions = [version.positions[item_id] for item_id in top]
        cosines = version.vectors[positions] @ np.asarray(
            query_vector, dtype=np.float32
        )
        candidates = [
            Candidate(item_id, version.products[p].title, float(c), float(score))
            for item_id, p, c, (score, _address) in zip(
                top, positions, cosines, keyword_hits, strict=False
            )
        ]
        chosen = set(top)
        candidates.extend(
            Candidate(hit.item_id, hit.product.title, hit.score)
            for hit in knn_hits
            if hit.item_id not in chosen
        )
        return candidates

    def knn(
        self, vector: np.ndarray, top_k: int, filters: Filters = NO_FILTERS
    ) -> list[Hit]:
        version = self._current()
        # Exact search: one matrix-vector product. An ANN index would take
        # over here for catalogs in the millions.
        scores = version.vectors @ np.asarray(vector, dtype=np.float32)
        mask = self._filter_mask(filters)
        scores = np.where(mask, scores, -np.inf)
        top_k = min(top_k, int(mask.sum()))
        if top_k <= 0:
            return []
        best = np.argpartition(-scores, top_k - 1)[:top_k]
        best = best[np.argsort(-scores[best], kind="stable")]
        return [
            Hit(version.ids[i], float(scores[i]), version.products[i]) for i in best
        ]

    def search(
        self, request: SearchRequest, query_vector: np.ndarray | None = None
    ) -> SearchResponse:
        version = self._current()
        searcher = version.index.searcher()
        if request.mode != "keyword" and query_vector is None:
            raise SearchError(f"{request.mode} search needs a query vector")

        keyword = (
            self._keyword_query(version, request.query)
            if request.mode != "semantic"
            else None
        )
        knn_hits = (
            self.knn(query_vector, KNN_CANDIDATES, request.filters)
            if request.mode != "keyword"
            else []
        )
        knn_hits = [hit for hit in knn_hits if hit.score >= KNN_MIN_SIMILARITY]
        knn_ids = [hit.item_id for hit in knn_hits]
        id_query = tantivy.Query.term_set_query(version.schema, "item_id", knn_ids)

        # The result set: keyword matches, nearest neighbours, or both.
        if request.mode == "keyword":
            if keyword is None:
                return SearchResponse(0, [], empty_facets(), request.mode)
            matches = keyword
        elif request.mode == "semantic" or keyword is None:
            matches = id_query
        else:
            matches = tantivy.Query.boolean_query(
                [(tantivy.Occur.Should, keyword), (tantivy.Occur.Should, id_query)]
            )
        result_set = self._restricted(version, matches, request.filters)

        window = page_slice(request)
        if request.sort != "relevance":
            ordered = self._sorted_ids(searcher, result_set, request.sort, window.stop)
        elif request.mode == "semantic" or keyword is None:
            ordered = knn_ids
        else:
            keyword_hits = searcher.search(
                self._restricted(version, keyword, request.filters),
                MAX_RESULT_WINDOW,
            ).hits
            keyword_ids = self._ids(searcher, keyword_hits)
            if request.mode == "keyword":
                ordered = keyword_ids
            else:
                fused = self._hybrid_order(
                    request.query,
                    keyword_ids,
                    knn_ids,
                    self._candidates(
                        version, query_vector, keyword_ids, keyword_hits, knn_hits
                    ),
                )
                ordered = [item_id for item_id, _ in fused]
        scores = {item_id: 1.0 / (rank + 1) for rank, item_id in enumerate(ordered)}
        page = [
            Hit(item_id, scores[item_id], version.products[version.positions[item_id]])
            for item_id in ordered[window]
        ]

        total = searcher.search(result_set, 1, count=True).count
        facets = self._facets(searcher, result_set)
        return SearchResponse(total, page, facets, request.mode)

    def _sorted_ids(self, searcher, query, sort: str, limit: int) -> list[str]:
        field, order = {
            "price_asc": ("price", tantivy.Order.Asc),
            "price_desc": ("price", tantivy.Order.Desc),
            "rating": ("rating", tantivy.Order.Desc),
        }[sort]
        hits = searcher.search(query, limit, order_by_field=field, order=order).hits
        # Products without the sort value go last, whatever the direction.
        with_value = [(key, address) for key, address in hits if key is not None]
        without = [(key, address) for key, address in hits if key is None]
        return self._ids(searcher, with_value + without)

    def _facets(self, searcher, query) -> dict[str, list[FacetBucket]]:
        ranges = [
            {
                "key": key,
                **({"from": low} if low is not None else {}),
                **({"to": high} if high is not None else {}),
            }
            for key, low, high in PRICE_BUCKETS
        ]
        aggregations = {
            "category": {"terms": {"field": "category", "size": FACET_SIZE}},
            "brand": {"terms": {"field": "brand", "size": FACET_SIZE}},
            "price": {"range": {"field": "price", "ranges": ranges}},
        }
        for key, low in RATING_BUCKETS:
            aggregations[f"rating:{key}"] = {
                "range": {"field": "rating", "ranges": [{"from": low}]}
            }
        result = searcher.aggregate(query, aggregations)

        def terms(name: str) -> list[FacetBucket]:
            buckets = result.get(name, {}).get("buckets", [])
            return [FacetBucket(b["key"], b["doc_count"]) for b in buckets]

        price_counts = {b["key"]: b["doc_count"] for b in result["price"]["buckets"]}
        return {
            "category": terms("category"),
            "brand": terms("brand"),
            "price": [
                FacetBucket(key, price_counts.get(key, 0)) for key, *_ in PRICE_BUCKETS
            ],
            "rating": [
                FacetBucket(key, result[f"rating:{key}"]["buckets"][0]["doc_count"])
                for key, _low in RATING_BUCKETS
            ],
        }
