"""The hybrid ranker: its features worked by hand, its weights, its tuning,
and both backends ranking real Home Depot queries with it."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from indexer.relevance import (
    RecordedHybrid,
    ndcg_at_k,
    query_split,
    ranker_order,
    read_judgments,
    tune_ranker,
)
from indexer.search import rerank
from indexer.search.base import HybridParams, SearchRequest, hybrid_order
from indexer.search.rerank import FEATURES, Candidate, RankerWeights
from recs.fusion import reciprocal_rank_fusion
from tests.conftest import JUDGMENTS


def column(name: str) -> int:
    return FEATURES.index(name)


def test_features_worked_by_hand():
    query = '3/4" Copper Pipes 10 ft'  # 3f4 inch copper pipe 10 ft
    candidates = [
        # BM25 8 of the best 8, every word, both numbers, 7 words.
        Candidate("a", "3/4 in. x 10 ft. Copper Pipe", 0.5, 8.0),
        # BM25 4: "copper" of the 6 words, no pair, no number.
        Candidate("b", "Copper Wire Brush", 0.25, 4.0),
        # Only the neighbours found it.
        Candidate("c", "Brass Fitting", 0.7),
    ]
    matrix = rerank.features(query, candidates)
    assert matrix.shape == (3, len(FEATURES))
    a, b, c = matrix
    assert a[column("keyword")] == 1.0
    assert b[column("keyword")] == 0.5
    assert c[column("keyword")] == 0.0
    assert [a[column("cosine")], c[column("cosine")]] == pytest.approx([0.5, 0.7])
    # Query words: 3f4 inch copper pipe 10 ft; title a: 3f4 inch x 10 ft
    # copper pipe.
    assert a[column("coverage")] == 1.0
    assert b[column("coverage")] == pytest.approx(1 / 6)
    # Query pairs: (3f4 inch) (inch copper) (copper pipe) (pipe 10) (10 ft);
    # title a holds (3f4 inch), (10 ft) and (copper pipe).
    assert a[column("pairs")] == pytest.approx(3 / 5)
    assert b[column("pairs")] == 0.0
    assert a[column("numbers")] == 1.0
    assert b[column("numbers")] == 0.0
    assert a[column("length")] == pytest.approx(math.log(1 + 7))
    assert b[column("length")] == pytest.approx(math.log(1 + 3))
    assert [a[column("neighbour")], c[column("neighbour")]] == [0.0, 1.0]


def test_plurals_fold_but_short_words_stay():
    matrix = rerank.features(
        "ceiling fans batteries", [Candidate("a", "Ceiling Fan Battery", 0.0, 1.0)]
    )
    assert matrix[0, column("coverage")] == 1.0
    # "gas" is not the plural of "ga".
    assert rerank.title_words("Gas Grill")[0] == frozenset({"gas", "grill"})


def test_rank_orders_by_weighted_features_and_keeps_ties_in_order():
    candidates = [
        Candidate("keyword", "Copper Pipe", 0.1, 10.0),
        Candidate("neighbour", "Copper Pipe", 0.9),
    ]
    keyword_only = RankerWeights.from_mapping(
        {name: (1.0 if name == "keyword" else 0.0) for name in FEATURES}
    )
    assert [i for i, _ in rerank.rank("copper pipe", candidates, keyword_only)] == [
        "keyword",
        "neighbour",
    ]
    cosine_only = RankerWeights.from_mapping(
        {name: (1.0 if name == "cosine" else 0.0) for name in FEATURES}
    )
    ranked = rerank.rank("copper pipe", candidates, cosine_only)
    assert [i for i, _ in ranked] == ["neighbour", "keyword"]
    assert [s for _, s in ranked] == pytest.approx([0.9, 0.1])
    nothing = RankerWeights(tuple(0.0 for _ in FEATURES))
    assert [i for i, _ in rerank.rank("copper pipe", candidates[::-1], nothing)] == [
        "neighbour",
        "keyword",
    ]


def test_hybrid_order_puts_the_other_keyword_matches_after_the_candidates():
    candidates = [
        Candidate("k1", "Copper Pipe", 0.2, 5.0),
        Candidate("k2", "Copper Pipe Cutter", 0.9, 4.0),
        Candidate("n1", "Pipe Wrench", 0.95),
    ]
    ordered = hybrid_order(
        "copper pipe",
        ["k1", "k2", "k3", "k4"],
        ["n1", "k2"],
        candidates,
        HybridParams(),
    )
    ids = [i for i, _ in ordered]
    assert sorted(ids[:3]) == ["k1", "k2", "n1"]
    assert ids[3:] == ["k3", "k4"]
    scores = [s for _, s in ordered]
    assert scores == sorted(scores, reverse=True)
    assert len(set(scores[2:])) == 3


def test_hybrid_order_by_rrf_is_the_plain_fusion():
    params = HybridParams(rrf_k=5, semantic_weight=0.2, method="rrf")
    assert hybrid_order("q", ["a", "b"], ["b", "c"], [], params) == (
        reciprocal_rank_fusion([["a", "b"], ["b", "c"]], k=5, weights=[1.0, 0.2])
    )
    with pytest.raises(ValueError, match="unknown hybrid method 'best'"):
        HybridParams(method="best")


def test_weights_name_every_feature_and_load_from_the_tuning_file(tmp_path):
    weights = RankerWeights.from_mapping(dict.fromkeys(FEATURES, 0.5))
    assert weights.as_dict() == dict.fromkeys(FEATURES, 0.5)
    with pytest.raises(ValueError, match="missing: cosine"):
        RankerWeights.from_mapping({name: 1.0 for name in FEATURES if name != "cosine"})
    with pytest.raises(ValueError, match="unknown: colour"):
        RankerWeights.from_mapping({**dict.fromkeys(FEATURES, 1.0), "colour": 1.0})
    with pytest.raises(ValueError, match=r"from -1000 to 1000, got keyword=nan"):
        RankerWeights((math.nan,) * len(FEATURES))
    # As float32 these would be infinite, and every score NaN.
    for huge in (1e39, 1e308, 10**400, math.inf):
        with pytest.raises(ValueError, match="ranker weight cosine must be from"):
            RankerWeights.from_mapping({**dict.fromkeys(FEATURES, 1.0), "cosine": huge})
    for not_a_number in (True, "1e5", None, [1.0]):
        with pytest.raises(ValueError, match="ranker weight pairs must be a number"):
            RankerWeights.from_mapping(
                {**dict.fromkeys(FEATURES, 1.0), "pairs": not_a_number}
            )
    negative = RankerWeights.from_mapping(
        {**dict.fromkeys(FEATURES, 1.0), "length": -2}
    )
    assert negative.as_dict()["length"] == -2.0

    path = tmp_path / "ranker.json"
    path.write_text(json.dumps({"weights": dict.fromkeys(FEATURES, 2.0)}))
    assert RankerWeights.load(str(path)).values == (2.0,) * len(FEATURES)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="ranker.json are not JSON"):
        RankerWeights.load(str(path))
    path.write_text(json.dumps({"weights": {"keyword": "high"}}))
    with pytest.raises(ValueError, match="ranker.json: .*missing"):
        RankerWeights.load(str(path))
    with pytest.raises(ValueError, match="cannot read ranker weights"):
        RankerWeights.load(str(tmp_path / "absent.json"))
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(ValueError, match="ranker.json are not UTF-8"):
        RankerWeights.load(str(path))
    path.write_text("[" * 100_000)
    with pytest.raises(ValueError, match="ranker.json nest too deeply"):
        RankerWeights.load(str(path))
    path.write_text('{"weights": {"keyword": 1' + "0" * 5000 + "}}")
    with pytest.raises(ValueError, match="ranker.json are not a weights file"):
        RankerWeights.load(str(path))
    path.write_bytes(
        b"\xef\xbb\xbf" + json.dumps({"weights": dict.fromkeys(FEATURES, 3)}).encode()
    )
    assert RankerWeights.load(str(path)).values == (3.0,) * len(FEATURES)


def test_settings_name_the_variable_of_a_bad_hybrid_setting(tmp_path, monkeypatch):
    from indexer.config import Settings

    monkeypatch.setenv("HYBRID_METHOD", "Ranker")
    with pytest.raises(ValueError, match="HYBRID_METHOD='Ranker' is not known"):
        Settings()
    monkeypatch.setenv("HYBRID_METHOD", "rrf")
    monkeypatch.setenv("HYBRID_RANKER", str(tmp_path / "absent.json"))
    with pytest.raises(ValueError, match="HYBRID_RANKER: cannot read"):
        Settings()
    path = tmp_path / "weights.json"
    path.write_text(json.dumps({"weights": dict.fromkeys(FEATURES, 0.5)}))
    monkeypatch.setenv("HYBRID_RANKER", str(path))
    settings = Settings()
    assert settings.hybrid.method == "rrf"
    assert settings.hybrid.ranker.values == (0.5,) * len(FEATURES)
    for name, value, message in (
        ("HYBRID_RRF_K", "-3", "must be from 0 to"),
        ("HYBRID_RRF_K", "1.5", "is not a whole number"),
        ("HYBRID_KEYWORD_WEIGHT", "nan", "must be from 0 to 1000"),
        ("HYBRID_SEMANTIC_WEIGHT", "1e308", "must be from 0 to 1000"),
        ("HYBRID_SEMANTIC_WEIGHT", "high", "is not a number"),
        ("PORT", "abc", "is not a whole number"),
    ):
        with monkeypatch.context() as patch:
            patch.setenv(name, value)
            with pytest.raises(ValueError, match=f"{name}='{value}' {message}"):
                Settings()
    with pytest.raises(ValueError, match="finite and not negative, got rrf_k=5, "):
        HybridParams(semantic_weight=math.inf)


def _queries_in(split: str, count: int) -> list[str]:
    found = []
    for n in range(1000):
        query = f"query {n}"
        if query_split(query) == split:
            found.append(query)
            if len(found) == count:
                return found
    raise AssertionError("the split hash never chose this side")


def test_tuning_finds_the_weight_that_ranks_the_judged_product_first():
    # In every query the keyword's best match is unjudged and the judged
    # product is the one closest in meaning: only a cosine weight large
    # enough to overtake the keyword score ranks it first.
    tuning = _queries_in("tuning", 3)
    held_out = _queries_in("held-out", 2)
    recorded, judgments = {}, {}
    for query in tuning + held_out:
        candidates = [
            Candidate("bm25", "Copper Pipe", 0.30, 10.0),
            Candidate("meant", "Copper Pipe", 0.90, 8.0),
        ]
        recorded[query] = RecordedHybrid(
            ["bm25", "meant", "other"],
            [c.item_id for c in candidates],
            rerank.features("copper pipe", candidates),
        )
        judgments[query] = {"meant": 3.0, "bm25": 1.0}
    start = RankerWeights.from_mapping(
        {name: (1.0 if name == "keyword" else 0.0) for name in FEATURES}
    )
    assert ranker_order(recorded[tuning[0]], start.vector) == [
        "bm25",
        "meant",
        "other",
    ]
    result = tune_ranker(recorded, judgments, start)
    # Keyword: 1 vs 0.8; cosine must weigh more than 0.2 / 0.6 = 1/3.
    assert result.weights.as_dict()["cosine"] > 1 / 3
    assert result.weights.as_dict()["keyword"] == 1.0
    assert result.start_ndcg == pytest.approx(1 / math.log2(3))
    assert result.tuning_ndcg == 1.0
    assert result.held_out_ndcg == 1.0
    assert result.trail and result.trail[-1][2] == 1.0


# Both backends on real judgments


@pytest.fixture(scope="module")
def judged_slice(homedepot_slice):
    """The Home Depot queries with a judged product in the slice, judged on
    the slice's products only."""
    ids = {product.item_id for product in homedepot_slice[0]}
    judgments = {}
    for query, judged in read_judgments(JUDGMENTS).items():
        kept = {item_id: r for item_id, r in judged.items() if item_id in ids}
        if any(r > 1.0 for r in kept.values()):
            judgments[query] = kept
    return judgments


def test_the_ranker_beats_keyword_search_on_real_judgments(
    homedepot_backend, judged_slice, embedder
):
    backend = homedepot_backend
    queries = sorted(judged_slice)
    assert len(queries) > 300
    vectors = embedder.encode(queries)
    means = {}
    for mode in ("keyword", "hybrid"):
        values = []
        for query, vector in zip(queries, vectors, strict=True):
            response = backend.search(
                SearchRequest(query, mode=mode, per_page=10), vector
            )
            ranked = [hit.item_id for hit in response.hits]
            values.append(ndcg_at_k(ranked, judged_slice[query]))
        counted = [v for v in values if v is not None]
        means[mode] = sum(counted) / len(counted)
    assert means["hybrid"] > means["keyword"] * 1.02, means


def test_elasticsearch_cosines_are_the_exact_ones(
    tmp_path_factory, homedepot_slice, embedder
):
    from tests.test_search_contract import _elasticsearch_backend

    products, vectors = homedepot_slice
    backend = _elasticsearch_backend(tmp_path_factory)
    backend.alias = f"cosines-{id(backend)}"
    try:
        backend.build(products[:300], vectors[:300])
        query = embedder.encode_query("cordless drill")
        ids = [product.item_id for product in products[:200]]
        cosines = backend._cosines(query, ids)
        assert set(cosines) == set(ids)
        expected = vectors[:200] @ np.asarray(query, dtype=np.float32)
        got = np.array([cosines[item_id] for item_id in ids])
        assert np.abs(got - expected).max() < 1e-3
    finally:
        backend.drop_all()
        backend.close()
