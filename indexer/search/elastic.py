"""The Elasticsearch backend: BM25 and kNN in one engine that scales out.

Products live in versioned indices (``<alias>-<version>``) behind an alias.
A build bulk-loads a new version, checks its document count, then moves the
alias in one atomic ``update_aliases`` call; only then are versions older than
the previous one deleted. A failed build deletes its own half-built index
and leaves the alias where it was; one killed half way leaves its index
behind, and the next build deletes it first.

Hybrid ranking uses this project's reciprocal rank fusion over a BM25 and a
kNN request sent together with ``msearch``: Elasticsearch's own RRF retriever
needs a paid licence.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import time
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
from elasticsearch import ApiError, Elasticsearch, TransportError
from elasticsearch.helpers import streaming_bulk
from tqdm import tqdm

from indexer.catalog import Product, category_ancestors
from indexer.search.analysis import (
    FUZZY_ONE_EDIT,
    FUZZY_TWO_EDITS,
    fuzzy_distance,
    normalize,
    plan_query,
)
from indexer.search.base import (
    ALL_WORDS_BOOST,
    FUZZY_BOOST,
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
from indexer.versions import new_version_name

log = logging.getLogger(__name__)

MAPPINGS_PATH = os.path.join(
    os.path.dirname(__file__), os.pardir, os.pardir, "es_mappings", "products.json"
)
FACET_SIZE = 20
BULK_CHUNK = 500
KNN_NUM_CANDIDATES = 200
# A health check must answer while the node hangs: one try, a short wait.
HEALTH_TIMEOUT_S = 2.0
# Shoppers' reads wait at most this long and are not retried after a
# timeout, so a hung node costs a page seconds, not minutes, and cannot hold
# every worker thread; bulk loads keep the long timeout and the retries.
READ_TIMEOUT_S = 5.0
SOURCE_EXCLUDES = ["embedding", "category_path", "text", "search_title"]
SORT_FIELDS = {
    "price_asc": ("price", "asc"),
    "price_desc": ("price", "desc"),
    "rating": ("rating_avg", "desc"),
}


def load_mappings(shards: int | None = None, replicas: int | None = None) -> dict:
    """The index body from ``es_mappings/products.json``, with shard counts
    from the arguments or ``ES_SHARDS`` / ``ES_REPLICAS``."""
    with open(MAPPINGS_PATH, encoding="utf-8") as handle:
        body = json.load(handle)
    settings = body["settings"]
    settings["number_of_shards"] = int(
        shards
        if shards is not None
        else os.environ.get("ES_SHARDS", settings["number_of_shards"])
    )
    settings["number_of_replicas"] = int(
        replicas
        if replicas is not None
        else os.environ.get("ES_REPLICAS", settings["number_of_replicas"])
    )
    return body


def to_es_doc(product: Product, vector: np.ndarray) -> dict:
    doc = product.to_doc()
    # What keyword search matches: the title and the other text normalised
    # as every backend normalises them; the title as given is for display.
    doc["search_title"] = normalize(product.title)
    doc["text"] = normalize(product.search_text())
    doc["category_path"] = category_ancestors(product.category)
    # An empty keyword would show up as a facet value of its own.
    for field in ("category", "brand", "image_url"):
        doc[field] = doc[field] or None
    doc["embedding"] = np.asarray(vector, dtype=np.float32).tolist()
    return doc


def from_es_source(source: dict) -> Product:
    cleaned = {
        k: ("" if v is None and k in ("category", "brand", "image_url") else v)
        for k, v in source.items()
    }
    return Product.from_doc(cleaned)


class ElasticsearchBackend(SearchBackend):
    """Search against an Elasticsearch cluster through an alias.

    Parameters
    ----------
    url : str
        The cluster, e.g. ``http://127.0.0.1:9200``.
    alias : str
        The name readers use; versions are ``<alias>-<timestamp>``.
    hybrid : HybridParams, optional
        How hybrid search fuses its two rankings.
    """

    name = "elasticsearch"

    def __init__(
        self,
        url: str,
        alias: str = "products",
        client: Elasticsearch | None = None,
        request_timeout: float = 30.0,
        hybrid: HybridParams | None = None,
        read_timeout: float = READ_TIMEOUT_S,
    ):
        self.url = url
        self.alias = alias
        self.hybrid = hybrid or HybridParams()
        self.client = client or Elasticsearch(
            url,
            request_timeout=request_timeout,
            retry_on_timeout=True,
            max_retries=3,
        )
        self.reads = self.client.options(
            request_timeout=min(read_timeout, request_timeout),
            max_retries=1,
            retry_on_timeout=False,
        )

    def close(self) -> None:
        self.client.close()

    def _call(self, what: str, function, *args, **kwargs):
        try:
            return function(*args, **kwargs)
        except (ApiError, TransportError) as exc:
            raise SearchError(
                f"Elasticsearch at {self.url} failed to {what}: {exc}"
            ) from exc

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
        want = len(products) if expected is None else expected
        index = new_version_name(self.alias)
        body = load_mappings()
        serving_settings = copy.deepcopy(body["settings"])
        # Load fast: no refreshes and no replicas until the data is in.
        body["settings"]["refresh_interval"] = "-1"
        body["settings"]["number_of_replicas"] = 0
        started = time.perf_counter()
        self._drop_unfinished()
        self._call("create an index", self.client.indices.create, index=index, **body)
        try:
            rejected = self._bulk_load(index, products, vectors)
            if rejected:
                raise IndexBuildError(
                    f"{len(rejected)} documents were rejected, first: "
                    f"{rejected[0][0]}: {rejected[0][1]}; "
                    "the serving index is unchanged",
                    rejected,
                )
            self._call(
                "restore index settings",
                self.client.indices.put_settings,
                index=index,
                settings={
                    "refresh_interval": serving_settings.get("refresh_interval", "1s"),
                    "number_of_replicas": serving_settings["number_of_replicas"],
                },
            )
            self._call("refresh", self.client.indices.refresh, index=index)
            count = self._call("count", self.client.count, index=index)["count"]
            if count != want:
                raise IndexBuildError(
                    f"new index {index} holds {count} documents, expected {want}; "
                    "the serving index is unchanged"
                )
            self._call(
                "wait for the new index",
                self.client.cluster.health,
                index=index,
                wait_for_status="yellow",
                timeout="60s",
            )
            self._swap_alias(index)
        except Exception as exc:
            try:
                self.client.options(ignore_status=404).indices.delete(index=index)
            except (ApiError, TransportError) as cleanup:
                log.warning(
                    "could not delete the unfinished %s (%s); the next build will",
                    index,
                    cleanup,
                )
            if isinstance(exc, IndexBuildError):
                raise
            raise IndexBuildError(
                f"building {index} failed ({exc}); the serving index is unchanged"
            ) from exc
        self._prune(keep=index)
        log.info(
            "indexed %d products into %s in %.1fs",
            len(products),
            index,
            time.perf_counter() - started,
        )
        return self.status()

    def _actions(
        self, index: str, products: Sequence[Product], vectors: np.ndarray
    ) -> Iterator[dict]:
        for product, vector in zip(products, vectors, strict=True):
            yield {
                "_op_type": "create",
                "_index": index,
                "_id": product.item_id,
                "_source": to_es_doc(product, vector),
            }

    def _bulk_load(
        self, index: str, products: Sequence[Product], vectors: np.ndarray
    ) -> list[tuple[str, str]]:
        """Stream every product into ``index``; returns (id, reason) of rejects."""
        rejected: list[tuple[str, str]] = []
        results = streaming_bulk(
            self.client,
            self._actions(index, products, vectors),
            chunk_size=BULK_CHUNK,
            max_retries=5,
            initial_backoff=1,
            max_backoff=30,
            raise_on_error=False,
            raise_on_exception=True,
        )
        with tqdm(total=len(products), desc="bulk indexing", unit="doc") as bar:
            for ok, item in results:
                if not ok:
                    detail = item.get("create", item)
                    error = detail.get("error", detail)
                    reason = (
                        error.get("reason", str(error))
                        if isinstance(error, dict)
                        else str(error)
                    )
                    rejected.append((str(detail.get("_id")), reason))
                bar.update(1)
        for item_id, reason in rejected[:20]:
            log.warning("rejected document %s: %s", item_id, reason)
        return rejected

    def _serving_indices(self, client: Elasticsearch | None = None) -> list[str]:
        client = client or self.client
        response = self._call(
            "read the alias",
            client.options(ignore_status=404).indices.get_alias,
            name=self.alias,
        )
        if response.meta.status == 404:
            return []
        return sorted(response.body)

    def _swap_alias(self, index: str) -> None:
        actions = [
            {"remove": {"index": old, "alias": self.alias}}
            for old in self._serving_indices()
        ]
        actions.append({"add": {"index": index, "alias": self.alias}})
        self._call(
            "move the alias", self.client.indices.update_aliases, actions=actions
        )

    def _versions(self) -> list[str]:
        response = self._call(
            "list index versions",
            self.client.options(ignore_status=404).indices.get,
            index=f"{self.alias}-*",
            expand_wildcards="open",
        )
        return sorted(response.body) if response.meta.status != 404 else []

    def _drop_unfinished(self) -> None:
        """Delete the versions newer than the serving one: builds that never
        got the alias, because their process was killed or their node
        stopped half way.

        Two builds of one alias at once are not supported: the second
        would delete the first's index as unfinished. A lock held in the
        cluster would lift that.
        """
        serving = self._serving_indices()
        newest_served = max(serving) if serving else ""
        for stale in self._versions():
            if stale > newest_served and stale not in serving:
                self.client.options(ignore_status=404).indices.delete(index=stale)
                log.warning("deleted %s, left unfinished by an earlier build", stale)

    def _prune(self, keep: str) -> None:
        """Delete versions older than the one before ``keep``."""
        versions = [v for v in self._versions() if v != keep]
        for stale in versions[:-1]:
            self.client.options(ignore_status=404).indices.delete(index=stale)
            log.info("deleted old index %s", stale)

    def drop_all(self) -> None:
        """Delete the alias and every version (tests and teardown)."""
        for index in self._versions():
            self.client.options(ignore_status=404).indices.delete(index=index)

    # Reading

    def status(self) -> IndexInfo:
        return self._status(self.client)

    def health(self) -> IndexInfo:
        return self._status(
            self.client.options(request_timeout=HEALTH_TIMEOUT_S, max_retries=0)
        )

    def _status(self, client: Elasticsearch) -> IndexInfo:
        health = self._call("read cluster health", client.cluster.health)
        serving = self._serving_indices(client)
        if not serving:
            return IndexInfo(self.name, self.alias, None, 0, health["status"])
        count = self._call("count", client.count, index=self.alias)["count"]
        # GET / is absent from the minimal distribution; node info has the version.
        nodes = self._call(
            "read node versions",
            client.nodes.info,
            filter_path="nodes.*.version",
        )
        versions = sorted({node["version"] for node in nodes["nodes"].values()})
        return IndexInfo(
            self.name,
            self.alias,
            serving[0],
            count,
            health["status"],
            {
                "url": self.url,
                "cluster": health["cluster_name"],
                "nodes": health["number_of_nodes"],
                "version": ", ".join(versions),
            },
        )

    def fetch(self, item_ids: Sequence[str]) -> dict[str, Product]:
        if not item_ids:
            return {}
        response = self._call(
            "fetch products",
            self.reads.mget,
            index=self.alias,
            ids=list(item_ids),
            source_excludes=SOURCE_EXCLUDES,
        )
        return {
            doc["_id"]: from_es_source(doc["_source"])
            for doc in response["docs"]
            if doc.get("found")
        }

    def all_ids(self, limit: int) -> list[str]:
        response = self._call(
            "list products",
            self.reads.search,
            index=self.alias,
            size=min(limit, MAX_RESULT_WINDOW),
            sort=[{"item_id": "asc"}],
            source=False,
        )
        return [hit["_id"] for hit in response["hits"]["hits"]]

    def vector(self, item_id: str) -> np.ndarray | None:
        response = self._call(
            "read a product vector",
            self.reads.options(ignore_status=404).get,
            index=self.alias,
            id=item_id,
            source_includes=["embedding"],
        )
        if response.meta.status == 404 or not response.body.get("found"):
            return None
        return np.asarray(response.body["_source"]["embedding"], dtype=np.float32)

    def vectors(self, item_ids: Sequence[str]) -> dict[str, np.ndarray]:
        if not item_ids:
            return {}
        response = self._call(
            "read product vectors",
            self.reads.mget,
            index=self.alias,
            ids=list(item_ids),
            source_includes=["embedding"],
        )
        return {
            doc["_id"]: np.asarray(doc["_source"]["embedding"], dtype=np.float32)
            for doc in response["docs"]
            if doc.get("found")
        }

    # Queries

    def _filter_clauses(self, filters: Filters) -> tuple[list[dict], list[dict]]:
        must: list[dict] = []
        must_not: list[dict] = []
        if filters.available_only:
            must.append({"term": {"available": True}})
        if filters.price_min is not None or filters.price_max is not None:
            bounds = {}
            if filters.price_min is not None:
                bounds["gte"] = filters.price_min
            if filters.price_max is not None:
                bounds["lte"] = filters.price_max
            must.append({"range": {"price": bounds}})
        if filters.rating_min is not None:
            must.append({"range": {"rating_avg": {"gte": filters.rating_min}}})
        if filters.categories:
            must.append({"terms": {"category_path": list(filters.categories)}})
        if filters.brands:
            must.append({"terms": {"brand": list(filters.brands)}})
        if filters.exclude_ids:
            must_not.append({"ids": {"values": list(filters.exclude_ids)}})
        return must, must_not

    def _filter_query(self, filters: Filters) -> dict:
        must, must_not = self._filter_clauses(filters)
        return {"bool": {"filter": must, "must_not": must_not}}

    def _known(self, words) -> set[str]:
        """The words some product's title or text holds, stemmed as indexed:
        one count per word, in one round trip."""
        words = sorted(words)
        if not words:
            return set()
        body: list[dict] = []
        for word in words:
            body.append({"index": self.alias})
            body.append(
                {
                    "size": 0,
                    "terminate_after": 1,
                    "track_total_hits": True,
                    "query": {
                        "multi_match": {
                            "query": word,
                            "fields": ["search_title", "text"],
                        }
                    },
                }
            )
        response = self._call("look up query words", self.reads.msearch, searches=body)
        return {
            word
            for word, result in zip(words, response["responses"], strict=True)
            if result.get("hits", {}).get("total", {}).get("value", 0)
        }

    def _keyword_query(self, text: str) -> dict | None:
        plan = plan_query(text, self._known)
        if not plan.words:
            return None
        fields = [f"search_title^{TITLE_BOOST}", "text"]
        cleaned = " ".join(plan.words)
        should: list[dict] = [{"multi_match": {"query": cleaned, "fields": fields}}]
        if len(plan.words) > 1:
            # Titles holding the query's words close together and in order.
            should.append(
                {
                    "match_phrase": {
                        "search_title": {
                            "query": cleaned,
                            "slop": PHRASE_SLOP,
                            "boost": PHRASE_BOOST,
                        }
                    }
                }
            )
            # Products holding every word above those that hold only some.
            should.append(
                {
                    "multi_match": {
                        "query": cleaned,
                        "fields": fields,
                        "operator": "and",
                        "boost": ALL_WORDS_BOOST,
                    }
                }
            )
        # Words the catalog writes together or apart.
        for joined in plan.joined:
            should.append({"multi_match": {"query": joined, "fields": fields}})
        for first, second in plan.split:
            should.append(
                {
                    "multi_match": {
                        "query": f"{first} {second}",
                        "fields": fields,
                        "operator": "and",
                    }
                }
            )
        # Typo tolerance for words the catalog does not hold, on the
        # unstemmed fields; AUTO:4,8 is fuzzy_distance's rule.
        for word in plan.typos:
            if fuzzy_distance(word):
                should.append(
                    {
                        "multi_match": {
                            "query": word,
                            "fields": [
                                f"search_title.exact^{TITLE_BOOST}",
                                "text.exact",
                            ],
                            "fuzziness": f"AUTO:{FUZZY_ONE_EDIT},{FUZZY_TWO_EDITS}",
                            "boost": FUZZY_BOOST,
                        }
                    }
                )
        return {"bool": {"should": should, "minimum_should_match": 1}}

    def _knn_clause(self, vector: np.ndarray, top_k: int, filters: Filters) -> dict:
        return {
            "field": "embedding",
            "query_vector": [float(x) for x in vector],
            "k": top_k,
            "num_candidates": max(KNN_NUM_CANDIDATES, top_k),
            "filter": self._filter_query(filters),
        }

    def knn(
        self, vector: np.ndarray, top_k: int, filters: Filters = NO_FILTERS
    ) -> list[Hit]:
        response = self._call(
            "run a kNN search",
            self.reads.search,
            index=self.alias,
            knn=self._knn_clause(vector, top_k, filters),
            size=top_k,
            source_excludes=SOURCE_EXCLUDES,
        )
        # Cosine similarity comes back as (1 + cos) / 2; report the cosine.
        return [
            Hit(h["_id"], 2.0 * h["_score"] - 1.0, from_es_source(h["_source"]))
            for h in response["hits"]["hits"]
        ]

    def _aggregations(self) -> dict:
        ranges = []
        for key, low, high in PRICE_BUCKETS:
            bucket = {"key": key}
            if low is not None:
                bucket["from"] = low
            if high is not None:
                bucket["to"] = high
            ranges.append(bucket)
        aggregations = {
            "category": {"terms": {"field": "category", "size": FACET_SIZE}},
            "brand": {"terms": {"field": "brand", "size": FACET_SIZE}},
            "price": {"range": {"field": "price", "ranges": ranges}},
            "rating": {
                "range": {
                    "field": "rating_avg",
                    "ranges": [
                        {"key": key, "from": low} for key, low in RATING_BUCKETS
                    ],
                }
            },
        }
        return aggregations

    @staticmethod
    def _facets(aggregations: dict) -> dict[str, list[FacetBucket]]:
        def buckets(name: str) -> list[FacetBucket]:
            return [
                FacetBucket(str(b["key"]), b["doc_count"])
                for b in aggregations[name]["buckets"]
            ]

        facets = {name: buckets(name) for name in ("category", "brand", "price")}
        rating = {b["key"]: b["doc_count"] for b in aggregations["rating"]["buckets"]}
        facets["rating"] = [
            FacetBucket(key, rating.get(key, 0)) for key, _ in RATING_BUCKETS
        ]
        return facets

    def search_body(
        self, request: SearchRequest, query_vector: np.ndarray | None = None
    ) -> list[dict] | None:
        """The ``msearch`` body that ``search`` sends, or None when there is
        nothing to search for. Benchmarks send it raw to measure the app's
        overhead."""
        if request.mode != "keyword" and query_vector is None:
            raise SearchError(f"{request.mode} search needs a query vector")
        must, must_not = self._filter_clauses(request.filters)
        keyword = self._keyword_query(request.query)
        knn = (
            {
                **self._knn_clause(query_vector, KNN_CANDIDATES, request.filters),
                "similarity": KNN_MIN_SIMILARITY,
            }
            if request.mode != "keyword"
            else None
        )
        if request.mode == "keyword" and keyword is None:
            return None

        # The result set: keyword matches, nearest neighbours, or both.
        result_set: dict = {"index": self.alias, "track_total_hits": True}
        if request.mode != "semantic" and keyword is not None:
            result_set["query"] = {
                "bool": {"must": [keyword], "filter": must, "must_not": must_not}
            }
        if knn is not None:
            result_set["knn"] = knn
        window = page_slice(request)

        if request.mode != "hybrid" or request.sort != "relevance" or keyword is None:
            # One ranking: the page, its products and the facets in one search.
            page: dict = {
                **result_set,
                "from": window.start,
                "size": request.per_page,
                "aggs": self._aggregations(),
                "_source": {"excludes": SOURCE_EXCLUDES},
            }
            if "query" not in result_set:
                # Only the nearest neighbours exist; no page beyond them.
                page["size"] = min(
                    request.per_page, max(0, KNN_CANDIDATES - window.start)
                )
            if request.sort != "relevance":
                field, order = SORT_FIELDS[request.sort]
                page["sort"] = [
                    {field: {"order": order, "missing": "_last"}},
                    {"item_id": "asc"},
                ]
            searches = [page]
        else:
            # Two rankings combined here: the facets, then the keyword
            # matches (the ranker's candidates with their titles, then the
            # rest), then the nearest neighbours with their titles.
            titles = {"includes": ["title"]}
            # The keyword matches come in two searches: both must read the
            # same shard copies, or with replicas, scores tied at the seam
            # could come back in another order and a match be lost. The same
            # query reads the same copies page after page too.
            copies = (
                "hybrid-"
                + hashlib.sha256(request.query.encode("utf-8")).hexdigest()[:16]
            )
            searches = [
                {**result_set, "size": 0, "aggs": self._aggregations()},
                {
                    "index": self.alias,
                    "preference": copies,
                    "query": result_set["query"],
                    "size": KEYWORD_CANDIDATES,
                    "_source": titles,
                },
                {
                    "index": self.alias,
                    "preference": copies,
                    "query": result_set["query"],
                    "from": KEYWORD_CANDIDATES,
                    "size": MAX_RESULT_WINDOW - KEYWORD_CANDIDATES,
                    "_source": False,
                },
                {
                    "index": self.alias,
                    "knn": knn,
                    "size": KNN_CANDIDATES,
                    "_source": titles,
                },
            ]

        body: list[dict] = []
        for search in searches:
            header = {"index": search.pop("index")}
            if "preference" in search:
                header["preference"] = search.pop("preference")
            body.extend([header, search])
        return body

    def search(
        self, request: SearchRequest, query_vector: np.ndarray | None = None
    ) -> SearchResponse:
        body = self.search_body(request, query_vector)
        if body is None:
            return SearchResponse(0, [], empty_facets(), request.mode)
        window = page_slice(request)
        response = self._call("search", self.reads.msearch, searches=body)
        results = response["responses"]
        for result in results:
            if "error" in result:
                raise self._refused(result["error"])

        summary = results[0]
        total = summary["hits"]["total"]["value"]
        facets = self._facets(summary["aggregations"])
        if len(results) == 1:
            page = [
                Hit(
                    h["_id"],
                    h["_score"]
                    if h.get("_score") is not None
                    else 1.0 / (window.start + n + 1),
                    from_es_source(h["_source"]),
                )
                for n, h in enumerate(summary["hits"]["hits"])
            ]
            return SearchResponse(total, page, facets, request.mode)

        top, rest, neighbours = (result["hits"]["hits"] for result in results[1:])
        keyword_ids = [h["_id"] for h in top + rest]
        neighbour_ids = [h["_id"] for h in neighbours]
        candidates = []
        if self.hybrid.method == "ranker":
            cosines = self._cosines(query_vector, [h["_id"] for h in top])
            lowest = min(cosines.values(), default=0.0)
            candidates = [
                Candidate(
                    h["_id"],
                    h["_source"].get("title", ""),
                    cosines.get(h["_id"], lowest),
                    h["_score"],
                )
                for h in top
            ]
            chosen = {h["_id"] for h in top}
            candidates.extend(
                # Cosine similarity comes back as (1 + cos) / 2.
                Candidate(h["_id"], h["_source"].get("title", ""), 2 * h["_score"] - 1)
                for h in neighbours
                if h["_id"] not in chosen
            )
        fused = self._hybrid_order(
            request.query, keyword_ids, neighbour_ids, candidates
        )
        page = [Hit(item_id, float(score)) for item_id, score in fused[window]]
        return SearchResponse(total, page, facets, request.mode)

    def _refused(self, error: dict) -> SearchError:
        """The error to raise for a search Elasticsearch answered with ``error``."""
        causes = [error, *error.get("root_cause", [])]
        if any(c.get("type") == "index_not_found_exception" for c in causes):
            return SearchError(
                f"no index named {self.alias!r} in Elasticsearch at "
                f"{self.url}; load a catalog first (python -m indexer load FILE)"
            )
        return SearchError(f"Elasticsearch refused the search: {error}")

    @staticmethod
    def cosines_body(vector: np.ndarray, item_ids: list[str]) -> dict:
        """The search that gives the cosine similarity of ``vector`` to each
        of ``item_ids``: a nearest-neighbour search over just those products,
        which Elasticsearch answers exactly when the filter is this small."""
        return {
            "knn": {
                "field": "embedding",
                "query_vector": [float(x) for x in vector],
                "k": len(item_ids),
                "num_candidates": len(item_ids),
                "filter": {"ids": {"values": list(item_ids)}},
            },
            "size": len(item_ids),
            "_source": False,
        }

    def _cosines(self, vector: np.ndarray, item_ids: list[str]) -> dict[str, float]:
        if not item_ids:
            return {}
        response = self._call(
            "score keyword matches by similarity",
            self.reads.search,
            index=self.alias,
            body=self.cosines_body(vector, item_ids),
        )
        # Cosine similarity comes back as (1 + cos) / 2.
        return {h["_id"]: 2 * h["_score"] - 1 for h in response["hits"]["hits"]}
