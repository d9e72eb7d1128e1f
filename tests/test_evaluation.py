"""The offline evaluation: metric arithmetic worked by hand, the split, the report."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

from indexer.catalog import Interaction
from recs.evaluation import (
    EvaluationData,
    FittedModels,
    evaluate,
    make_split,
    single_lists,
    time_cutoffs,
)
from recs.hybrid import HybridConfig, buy_again, maximal_marginal_relevance
from recs.interactions import InteractionColumns
from recs.metrics import intra_list_similarity, ranking_metrics

DAY = 86400.0


def test_ranking_metrics_on_a_case_worked_by_hand():
    recommended = {
        "u1": ["a", "b", "c"],
        "u2": ["b", "e", "f"],
        "u3": ["x", "b", "y"],
    }
    relevant = {"u1": {"a", "c"}, "u2": {"d"}, "u3": {"b", "e", "f", "g"}}
    scores = ranking_metrics(recommended, relevant, top_k=3, catalog_size=10)

    # u1: hits at ranks 1 and 3 of 2 relevant; u2: no hit; u3: a hit at
    # rank 2 of 4 relevant, of which at most 3 fit in the list.
    log2_3 = math.log(3, 2)
    ndcg_u1 = (1 + 1 / 2) / (1 + 1 / log2_3)
    ndcg_u3 = (1 / log2_3) / (1 + 1 / log2_3 + 1 / 2)
    assert scores["recall_at_k"] == pytest.approx((2 / 2 + 0 + 1 / 3) / 3)
    assert scores["ndcg_at_k"] == pytest.approx((ndcg_u1 + 0 + ndcg_u3) / 3)
    assert scores["map_at_k"] == pytest.approx(((1 + 2 / 3) / 2 + 0 + (1 / 2) / 3) / 3)
    assert scores["mrr_at_k"] == pytest.approx((1 + 0 + 1 / 2) / 3)
    assert scores["hit_rate_at_k"] == pytest.approx(2 / 3)
    # a, b, c, e, f, x, y of ten products were shown to someone
    assert scores["coverage"] == pytest.approx(7 / 10)
    assert scores["users"] == 3


def test_a_user_with_nothing_recommended_scores_zero_and_counts():
    scores = ranking_metrics({}, {"u1": {"a"}, "u2": set()}, top_k=10, catalog_size=5)
    assert scores["users"] == 1
    assert scores["ndcg_at_k"] == 0.0 and scores["coverage"] == 0.0


def test_intra_list_similarity_by_hand():
    vectors = {"a": np.array([1.0, 0.0]), "b": np.array([0.0, 1.0])}
    vectors["c"] = vectors["a"]
    # [a, b, c]: pairs a-b 0, a-c 1, b-c 0; [a, c]: 1; [b] has no pair.
    assert intra_list_similarity(
        [["a", "b", "c"], ["a", "c"], ["b"]], vectors.get
    ) == pytest.approx((1 / 3 + 1) / 2)


def test_mmr_puts_a_different_item_before_a_near_copy():
    ranked = [("a", 1.0), ("a2", 0.9), ("b", 0.5)]
    vectors = {
        "a": np.array([1.0, 0.0]),
        "a2": np.array([1.0, 0.0]),
        "b": np.array([0.0, 1.0]),
    }
    assert maximal_marginal_relevance(ranked, vectors, 3, 1.0) == ["a", "a2", "b"]
    # Relevance scaled to 1, 0.8, 0: after a, a2 is worth 0.5*0.8 - 0.5*1 < 0,
    # b is worth 0.5*0 - 0.5*0 = 0.
    assert maximal_marginal_relevance(ranked, vectors, 3, 0.5) == ["a", "b", "a2"]


def test_buy_again_ranks_by_frequency_and_recency():
    now = 100 * DAY
    purchases = [
        ("x", now, 1.0),
        ("y", now - 30 * DAY, 1.0),
        ("y", now - 30 * DAY, 1.0),
        ("y", now - 30 * DAY, 1.0),
        ("z", now - 60 * DAY, 1.0),
        ("gone", now, -1.0),
    ]
    ranked = buy_again(purchases, now, half_life_days=30)
    # y: three halves = 1.5; x: 1; z: a quarter.
    assert [item for item, _ in ranked] == ["y", "x", "z"]
    assert ranked[0][1] == pytest.approx(1.5)
    assert ranked[2][1] == pytest.approx(0.25)


def test_hybrid_config_round_trips_and_refuses_unknown_sources(tmp_path):
    config = HybridConfig(factors=32, weights={"als": 2.0}, mmr_lambda=0.8)
    path = str(tmp_path / "config.json")
    with open(path, "w", encoding="utf-8") as out:
        json.dump({"dataset": "x", "hybrid": config.to_dict()}, out)
    loaded = HybridConfig.load(path)
    assert loaded.factors == 32 and loaded.weights["als"] == 2.0
    assert loaded.mmr_lambda == 0.8
    with pytest.raises(ValueError, match="unknown hybrid source"):
        HybridConfig(weights={"telepathy": 1.0})


def _columns(rows):
    return InteractionColumns.from_interactions(
        [Interaction(u, i, "purchase", 1, t * DAY) for u, i, t in rows]
    )


def test_split_keeps_the_future_out_of_training():
    rows = [
        ("u1", "a", 1),
        ("u1", "b", 2),
        ("u1", "c", 10),  # after the cut: to be predicted
        ("u1", "a", 11),  # a re-order counts too
        ("u2", "a", 1),
        ("u3", "b", 10),  # new shopper: first visit
        ("u3", "c", 12),  # and what they took later
        ("u2", "zzz", 12),  # not in the catalog: ignored
    ]
    data = EvaluationData("tiny", _columns(rows), ["a", "b", "c"])
    split = make_split(data, cut=5 * DAY, end=np.inf)
    assert split.train.timestamps.max() < 5 * DAY
    assert split.relevant == {"u1": {"a", "c"}}
    assert split.new_users == {"u3": ({"b"}, {"c"})}
    assert split.new_items == {"c"}
    assert [(i, t) for i, t, _ in split.purchases["u1"]] == [
        ("a", 1 * DAY),
        ("b", 2 * DAY),
    ]


def test_time_cutoffs_leave_a_tenth_for_test():
    timestamps = np.arange(1000, dtype=float)
    validation, test = time_cutoffs(timestamps)
    assert (timestamps >= test).sum() == pytest.approx(100, abs=1)
    assert ((timestamps >= validation) & (timestamps < test)).sum() == pytest.approx(
        100, abs=1
    )


@pytest.fixture(scope="module")
def sample_data(retail_sample, sample_vectors):
    return EvaluationData(
        "sample",
        InteractionColumns.from_interactions(retail_sample.interactions),
        [p.item_id for p in retail_sample.products],
        sample_vectors,
    )


def test_our_metrics_agree_with_implicit_evaluation(sample_data):
    from implicit.evaluation import ranking_metrics_at_k
    from scipy.sparse import csr_matrix

    _, cut = time_cutoffs(sample_data.columns.timestamps)
    split = make_split(sample_data, cut, np.inf)
    models = FittedModels(sample_data, split, HybridConfig(iterations=5))
    users = sorted(split.relevant)
    lists = single_lists(models, users, filtered=True, names=["als"])["als"]
    ours = ranking_metrics(lists, split.relevant, 10, len(sample_data.item_ids))

    rows = [split.user_row[u] for u in users for _ in split.relevant[u]]
    cols = [sample_data.item_index[i] for u in users for i in split.relevant[u]]
    test = csr_matrix((np.ones(len(rows)), (rows, cols)), shape=split.user_items.shape)
    theirs = ranking_metrics_at_k(
        models.als, split.user_items, test, K=10, show_progress=False
    )
    assert ours["users"] > 50
    assert ours["ndcg_at_k"] == pytest.approx(theirs["ndcg"], rel=1e-6)
    assert ours["map_at_k"] == pytest.approx(theirs["map"], rel=1e-6)


def test_evaluation_of_the_sample_writes_a_report(sample_data, tmp_path):
    from recs.report import write_report

    result = evaluate(sample_data, top_k=10, tune_config=False, progress=False)
    assert set(result.scores) >= {
        "popularity",
        "trending",
        "buy-again",
        "content",
        "co-occurrence",
        "als",
        "hybrid",
    }
    assert result.users > 100
    # Shoppers of the sample re-order: their own past beats the bestsellers.
    assert (
        result.scores["buy-again"]["ndcg_at_k"]
        > (result.scores["popularity"]["ndcg_at_k"])
    )
    assert (
        result.scores["hybrid"]["ndcg_at_k"]
        > (result.scores["popularity"]["ndcg_at_k"])
    )
    folder = write_report(result, str(tmp_path), ["online_retail_sample.csv.gz"])
    assert os.path.basename(folder).endswith("-sample")
    report = open(os.path.join(folder, "report.md"), encoding="utf-8").read()
    assert "| hybrid |" in report and "NDCG@10" in report
    with open(os.path.join(folder, "chart.png"), "rb") as chart:
        assert chart.read(8) == b"\x89PNG\r\n\x1a\n"
    config = json.load(open(os.path.join(folder, "config.json"), encoding="utf-8"))
    assert HybridConfig.from_dict(config["hybrid"]) == result.config
