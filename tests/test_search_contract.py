"""One contract for every search backend: same data, same assertions."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

from indexer.search.base import Filters, SearchBackend, SearchRequest

BACKENDS = ["embedded", "elasticsearch"]


def _elasticsearch_backend(tmp_path_factory) -> SearchBackend:
    from tests.es_node import elasticsearch_url

    url = elasticsearch_url()
    if url is None:
        if os.environ.get("CI_REQUIRE_ELASTICSEARCH"):
            pytest.fail("CI requires Elasticsearch but no node answered")
        pytest.skip("no Elasticsearch node: set ELASTICSEARCH_URL or run make es-up")
    from indexer.search.elastic import ElasticsearchBackend

    alias = f"contract-{os.getpid()}"
    return ElasticsearchBackend(url, alias)


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request, tmp_path_factory, retail_sample, sample_vectors):
    """A backend holding the shipped sample."""
    if request.param == "embedded":
        from indexer.search.embedded import EmbeddedBackend

        built = EmbeddedBackend(str(tmp_path_factory.mktemp("contract-index")))
    else:
        built = _elasticsearch_backend(tmp_path_factory)
    built.build(retail_sample.products, sample_vectors)
    yield built
    if request.param == "elasticsearch":
        built.drop_all()
    built.close()


@pytest.fixture(scope="module")
def products(retail_sample):
    return {p.item_id: p for p in retail_sample.products}


def keyword(query: str, **kwargs) -> SearchRequest:
    return SearchRequest(query, mode="keyword", **kwargs)


def test_keyword_search_finds_lanterns(backend, products):
    response = backend.search(keyword("lantern", per_page=10))
    assert response.total >= 10
    titles = [products[h.item_id].title.lower() for h in response.hits]
    assert all("lantern" in t for t in titles), titles


def test_plural_and_typo_still_find_lanterns(backend, products):
    for query in ("lanterns", "lantren"):
        response = backend.search(keyword(query, per_page=5))
        titles = [products[h.item_id].title.lower() for h in response.hits]
        assert titles and all("lantern" in t for t in titles), (query, titles)


@pytest.mark.parametrize(
    ("typo", "word"),
    [("hart", "heart"), ("christmass", "christmas"), ("lanturn", "lantern")],
)
def test_typos_find_the_word_meant(backend, products, typo, word):
    response = backend.search(keyword(typo, per_page=5))
    titles = [products[h.item_id].title.lower() for h in response.hits]
    assert titles and sum(word in t for t in titles) >= 3, (typo, titles)


def test_total_counts_every_match(backend, products):
    expected = sum("lantern" in p.title.lower().split() for p in products.values())
    response = backend.search(keyword("lantern"))
    # Exact title matches are a floor: fuzzy matches may add a few.
    assert expected <= response.total <= expected + 15


def test_price_filter_and_facets_agree(backend, products, embedder):
    vector = embedder.encode_query("christmas decoration")
    filters = Filters(price_min=2.0, price_max=5.0)
    request = SearchRequest("christmas decoration", filters=filters, per_page=50)
    response = backend.search(request, vector)
    assert response.hits
    for hit in response.hits:
        assert 2.0 <= products[hit.item_id].price <= 5.0
    price_facet = {b.key: b.count for b in response.facets["price"]}
    assert sum(price_facet.values()) == response.total
    assert price_facet["2 to 5"] == response.total - price_facet.get("5 to 10", 0)


def test_facets_count_the_whole_result_set(backend):
    response = backend.search(keyword("heart"))
    counts = {b.key: b.count for b in response.facets["price"]}
    assert sum(counts.values()) == response.total
    narrowed = backend.search(keyword("heart", filters=Filters(price_max=0.999)))
    assert narrowed.total == counts["under 1"]


def test_pages_do_not_overlap(backend):
    first = backend.search(keyword("christmas", per_page=10, page=1))
    second = backend.search(keyword("christmas", per_page=10, page=2))
    assert first.total == second.total > 20
    first_ids = [h.item_id for h in first.hits]
    second_ids = [h.item_id for h in second.hits]
    assert len(first_ids) == len(second_ids) == 10
    assert not set(first_ids) & set(second_ids)


def test_sort_by_price(backend, products):
    for sort, sign in (("price_asc", 1), ("price_desc", -1)):
        response = backend.search(keyword("bag", sort=sort, per_page=30))
        prices = [products[h.item_id].price for h in response.hits]
        assert prices == sorted(prices, key=lambda p: sign * p), sort


def test_semantic_search_finds_meaning_without_the_word(backend, products, embedder):
    query = "something to light a garden at night"
    vector = embedder.encode_query(query)
    response = backend.search(
        SearchRequest(query, mode="semantic", per_page=10), vector
    )
    titles = " ".join(products[h.item_id].title.lower() for h in response.hits)
    assert any(word in titles for word in ("lantern", "light", "candle"))


def test_hybrid_fuses_keyword_and_semantic(backend, embedder):
    query = "lantern"
    vector = embedder.encode_query(query)
    hybrid = backend.search(SearchRequest(query, per_page=20), vector)
    keyword_only = backend.search(keyword(query, per_page=20))
    semantic = backend.search(
        SearchRequest(query, mode="semantic", per_page=20), vector
    )
    hybrid_ids = {h.item_id for h in hybrid.hits}
    assert hybrid_ids & {h.item_id for h in keyword_only.hits}
    assert hybrid_ids & {h.item_id for h in semantic.hits}
    assert hybrid.total >= keyword_only.total


def test_similar_is_nearest_by_content_and_excludes_itself(backend, products):
    hits = backend.similar("71053", 10)  # White Metal Lantern
    ids = [h.item_id for h in hits]
    assert "71053" not in ids and len(ids) == 10
    assert sum("lantern" in products[i].title.lower() for i in ids) >= 3
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)


def test_similar_of_unknown_product_raises(backend):
    with pytest.raises(KeyError):
        backend.similar("NO-SUCH-ITEM", 5)


def test_knn_respects_filters(backend, products):
    vector = backend.vector("71053")
    hits = backend.knn(vector, 20, Filters(price_min=5.0))
    assert hits and all(products[h.item_id].price >= 5.0 for h in hits)


def test_fetch_returns_stored_products(backend, products):
    found = backend.fetch(["71053", "NO-SUCH-ITEM"])
    assert set(found) == {"71053"}
    assert found["71053"].title == products["71053"].title
    assert np.allclose(np.linalg.norm(backend.vector("71053")), 1.0, atol=1e-3)


def test_reindex_keeps_serving(backend, retail_sample, sample_vectors):
    """Searches running during a rebuild never fail and never come back empty."""
    failures: list[str] = []
    stop = threading.Event()

    def search_constantly():
        while not stop.is_set():
            try:
                response = backend.search(keyword("lantern", per_page=5))
                if not response.hits:
                    failures.append("empty page")
            except Exception as exc:  # noqa: BLE001 - any failure is the finding
                failures.append(repr(exc))

    threads = [threading.Thread(target=search_constantly) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        before = backend.status().index
        backend.build(retail_sample.products, sample_vectors)
        after = backend.status()
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert after.index != before
    assert after.documents == len(retail_sample.products)
    assert not failures, failures[:5]


def test_failed_reindex_leaves_the_old_index_serving(
    backend, retail_sample, sample_vectors
):
    from indexer.search.base import IndexBuildError

    before = backend.status()
    with pytest.raises(IndexBuildError):
        # One vector short: the build must refuse rather than serve a partial index.
        backend.build(retail_sample.products, sample_vectors[:-1])
    after = backend.status()
    assert after.index == before.index
    assert after.documents == before.documents
    assert backend.search(keyword("lantern")).hits


def test_keyword_hits_carry_their_products(backend, products):
    response = backend.search(keyword("lantern", per_page=5))
    for hit in response.hits:
        assert hit.product is not None
        assert hit.product.item_id == hit.item_id
        assert hit.product.title == products[hit.item_id].title


def test_semantic_pages_end_with_the_close_neighbours(backend, embedder):
    from indexer.search.base import KNN_CANDIDATES, KNN_MIN_SIMILARITY

    vector = embedder.encode_query("christmas decoration")
    close = [
        h for h in backend.knn(vector, KNN_CANDIDATES) if h.score >= KNN_MIN_SIMILARITY
    ]
    assert len(close) > 40  # the sample has many Christmas decorations
    last = SearchRequest("christmas decoration", mode="semantic", per_page=20, page=3)
    response = backend.search(last, vector)
    assert response.total == len(close)
    assert len(response.hits) == len(close) - 40


def test_nonsense_finds_nothing_semantically(backend, embedder):
    query = "xyzzy qwerty"
    response = backend.search(
        SearchRequest(query, mode="semantic"), embedder.encode_query(query)
    )
    assert response.total == 0 and response.hits == []


def test_neighbours_carry_their_products(backend):
    for hit in backend.similar("71053", 5):
        assert hit.product is not None and hit.product.item_id == hit.item_id


def test_vectors_in_one_call_match_one_by_one(backend):
    ids = ["71053", "85123A", "NO-SUCH-ITEM"]
    found = backend.vectors(ids)
    assert set(found) == {"71053", "85123A"}
    for item_id, vector in found.items():
        assert np.allclose(vector, backend.vector(item_id), atol=1e-6)


def test_an_index_of_another_layout_is_a_clear_error(tmp_path):
    """What an upgrade finds: an index written with a different schema."""
    import tantivy

    from indexer.search.base import SearchError
    from indexer.search.embedded import EmbeddedBackend
    from indexer.versions import make_current

    old = tmp_path / "products-old"
    (old / "tantivy").mkdir(parents=True)
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("item_id", stored=True)
    tantivy.Index(builder.build(), path=str(old / "tantivy"))
    (old / "products.jsonl").write_text("")
    np.save(old / "vectors.npy", np.zeros((0, 384), dtype=np.float32))
    make_current(str(tmp_path), "products-old")
    with pytest.raises(SearchError, match="python -m indexer reindex"):
        EmbeddedBackend(str(tmp_path)).search(keyword("lantern"))


# Hostile query strings: query syntax of Lucene, Elasticsearch and tantivy,
# very long strings, control characters, mixed scripts and emoji. Every one is
# searched as plain words in every mode, and none reaches a query parser.
HOSTILE_QUERIES = [
    "*:*",
    "item_id:71053",
    "title:lantern AND price:[0 TO 1]",
    "available:false OR available:true",
    "_exists_:price",
    'lantern~2^10 OR /la.*n/ "unclosed',
    "((((lantern",
    "NOT lantern -heart +christmas || && !",
    "\\",
    '{"match_all": {}}',
    '{"script": {"source": "Math.random()"}}',
    "IN [71053 22086]",
    "' OR 1=1 --",
    '"; DROP TABLE products; --',
    "lantern\x00\x01\x1b[31m\x7f",
    "lantern\r\nX-Injected: 1",
    "\u202elantern\u200b\ufeff",
    "ランタン фонарь 灯笼 🏮 lantern فانوس",
    "👨‍👩‍👧‍👦" * 20,
    "lantern " * 62,
    "a" * 500,
    " ".join(f"word{n:03d}x" for n in range(55)),
    "🏮" * 500,
]
MATCH_ALL_SYNTAX = ["*:*", "_exists_:price", "available:false OR available:true"]


@pytest.mark.parametrize("mode", ["keyword", "semantic", "hybrid"])
def test_hostile_queries_are_searched_as_words(backend, embedder, mode):
    every = backend.search(
        SearchRequest("lantern", mode="keyword", filters=Filters(available_only=False))
    )
    assert every.total > 0
    for query in HOSTILE_QUERIES:
        vector = embedder.encode_query(query) if mode != "keyword" else None
        response = backend.search(SearchRequest(query, mode=mode), vector)
        assert response.total >= len(response.hits), query
        if mode == "keyword" and query in MATCH_ALL_SYNTAX:
            # Run as syntax, these would match most of the catalog.
            assert response.total < len(backend.all_ids(100_000)) // 2, query


def test_field_syntax_does_not_pick_a_product(backend):
    response = backend.search(SearchRequest("item_id:71053", mode="keyword"))
    assert [hit.item_id for hit in response.hits] != ["71053"]
