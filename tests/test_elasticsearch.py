"""What only the Elasticsearch backend has: versions behind an alias, bulk
rejections, cluster status, and the CLI pointed at a live node."""

from __future__ import annotations

import copy
import json
import os

import pytest

from indexer.search.base import IndexBuildError, SearchRequest

pytestmark = pytest.mark.elasticsearch


@pytest.fixture(scope="module")
def es_url():
    from tests.es_node import elasticsearch_url

    url = elasticsearch_url()
    if url is None:
        if os.environ.get("CI_REQUIRE_ELASTICSEARCH"):
            pytest.fail("CI requires Elasticsearch but no node answered")
        pytest.skip("no Elasticsearch node: set ELASTICSEARCH_URL or run make es-up")
    return url


@pytest.fixture(scope="module")
def small_catalog(retail_sample, sample_vectors):
    return retail_sample.products[:200], sample_vectors[:200]


@pytest.fixture()
def backend(es_url, request):
    from indexer.search.elastic import ElasticsearchBackend

    built = ElasticsearchBackend(
        es_url, f"es-test-{os.getpid()}-{request.node.name}"[:60].lower()
    )
    yield built
    built.drop_all()
    built.close()


def test_mappings_load_and_match_the_embedding_size(embedder):
    from indexer.search.elastic import load_mappings

    body = load_mappings(shards=3, replicas=1)
    assert body["settings"]["number_of_shards"] == 3
    assert body["settings"]["number_of_replicas"] == 1
    vector = body["mappings"]["properties"]["embedding"]
    assert vector["dims"] == embedder.dimensions
    assert vector["similarity"] == "cosine"


def test_stemming_analyzer_runs_on_the_node(backend, small_catalog):
    backend.build(*small_catalog)
    analyzed = backend.client.indices.analyze(
        index=backend.alias, analyzer="product_text", text="Hanging Lanterns Café"
    )
    assert [t["token"] for t in analyzed["tokens"]] == ["hang", "lantern", "cafe"]


def test_alias_moves_and_only_the_previous_version_stays(backend, small_catalog):
    first = backend.build(*small_catalog).index
    second = backend.build(*small_catalog).index
    third = backend.build(*small_catalog)
    versions = backend._versions()
    assert third.index not in (first, second)
    assert versions == sorted([second, third.index])
    aliases = backend.client.indices.get_alias(name=backend.alias)
    assert list(aliases.body) == [third.index]
    assert third.documents == len(small_catalog[0])
    assert third.health in ("green", "yellow")
    assert third.details["version"].startswith("9.")


def test_rejected_documents_are_reported_and_nothing_moves(backend, small_catalog):
    products, vectors = small_catalog
    serving = backend.build(products, vectors).index
    broken = [copy.copy(p) for p in products]
    broken[3].price = "three pounds"
    with pytest.raises(IndexBuildError) as caught:
        backend.build(broken, vectors)
    assert caught.value.rejected[0][0] == broken[3].item_id
    assert "price" in caught.value.rejected[0][1]
    assert backend.status().index == serving
    assert backend._versions() == [serving]
    assert backend.search(SearchRequest("heart", mode="keyword")).total > 0


def test_unreachable_cluster_is_a_clear_error():
    from indexer.search.base import SearchError
    from indexer.search.elastic import ElasticsearchBackend

    dead = ElasticsearchBackend("http://127.0.0.1:9", "products", request_timeout=2)
    with pytest.raises(SearchError, match="127.0.0.1:9"):
        dead.search(SearchRequest("lantern", mode="keyword"))
    for call in (dead.status, lambda: dead.similar("71053", 5)):
        with pytest.raises(SearchError, match="127.0.0.1:9"):
            call()


def test_searching_an_alias_nothing_was_loaded_into_says_so(backend, embedder):
    from indexer.search.base import SearchError

    vector = embedder.encode_query("lantern")
    for mode in ("keyword", "semantic", "hybrid"):
        with pytest.raises(SearchError, match=f"no index named '{backend.alias}'"):
            backend.search(SearchRequest("lantern", mode=mode), vector)


def test_cli_loads_and_reports_status_on_elasticsearch(es_url, tmp_path):
    from tests.test_cli import run_cli

    from .conftest import SAMPLE

    env_alias = f"cli-{os.getpid()}"
    os.environ["ELASTICSEARCH_ALIAS"] = env_alias
    try:
        loaded = run_cli(
            "--backend",
            "elasticsearch",
            "load",
            SAMPLE,
            data_dir=tmp_path,
            es_url=es_url,
        )
        assert loaded.returncode == 0, loaded.stderr
        status = run_cli(
            "--backend", "elasticsearch", "status", data_dir=tmp_path, es_url=es_url
        )
        assert status.returncode == 0, status.stderr
        index = json.loads(status.stdout)["index"]
        assert index["alias"] == env_alias
        assert index["index"].startswith(env_alias + "-")
        assert index["documents"] == json.loads(status.stdout)["catalog"]["products"]
        assert index["health"] in ("green", "yellow")
    finally:
        from indexer.search.elastic import ElasticsearchBackend

        ElasticsearchBackend(es_url, env_alias).drop_all()
        del os.environ["ELASTICSEARCH_ALIAS"]


def test_query_text_reaches_elasticsearch_only_as_match_text(backend, embedder):
    """No query string parser ever sees what a shopper typed: the words reach
    the node only as the text of match queries."""
    from tests.test_search_contract import HOSTILE_QUERIES

    text_places = (".multi_match.query", ".match_phrase.search_title.query")
    forbidden = {"query_string", "simple_query_string", "script", "regexp"}

    def leaves(node, path=""):
        if isinstance(node, dict):
            for key, value in node.items():
                assert key not in forbidden, (path, key)
                yield from leaves(value, f"{path}.{key}")
        elif isinstance(node, list):
            for value in node:
                yield from leaves(value, path)
        elif isinstance(node, str):
            yield path, node

    searched = 0
    for query in HOSTILE_QUERIES:
        for mode in ("keyword", "hybrid"):
            vector = embedder.encode_query(query) if mode != "keyword" else None
            body = backend.search_body(SearchRequest(query, mode=mode), vector)
            if body is None:
                # Nothing searchable was left of the text: nothing is sent.
                assert mode == "keyword", query
                continue
            texts = [
                (path, value)
                for search in body
                for path, value in leaves(search)
                if path.endswith(".query")
            ]
            assert all(path.endswith(text_places) for path, _ in texts), texts
            searched += bool(texts)
    # Most of the hostile strings still hold words worth searching for.
    assert searched > len(HOSTILE_QUERIES)
