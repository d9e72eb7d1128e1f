"""The search relevance arithmetic, worked by hand, and the judgments reader."""

from __future__ import annotations

import math
import os

import pytest

from indexer.relevance import (
    fuse,
    ndcg_at_k,
    query_split,
    read_judgments,
    recall_at_k,
    reciprocal_rank,
    score_rankings,
    summarize,
    tune_fusion,
)
from indexer.search.base import HybridParams

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOMEDEPOT = os.path.join(ROOT, "..", "shared", "datasets", "homedepot-relevance")

# Four judged products; "x" was never judged.
JUDGED = {"a": 3.0, "b": 2.0, "c": 1.0, "d": 2.5}
RANKED = ["c", "a", "x", "b"]


def test_ndcg_worked_by_hand():
    # Gains are relevance - 1: a 2, b 1, c 0, d 1.5, x (unjudged) 0.
    # Ranked c a x b: 0/log2(2) + 2/log2(3) + 0/log2(4) + 1/log2(5).
    # Ideal a d b c: 2/log2(2) + 1.5/log2(3) + 1/log2(4) + 0.
    dcg = 2 / math.log2(3) + 1 / math.log2(5)
    ideal = 2 + 1.5 / math.log2(3) + 1 / 2
    assert ndcg_at_k(RANKED, JUDGED) == pytest.approx(dcg / ideal)
    assert ndcg_at_k(RANKED, JUDGED) == pytest.approx(0.49110, abs=1e-5)
    # Cut at 2: only c and a count; the ideal keeps its two best.
    assert ndcg_at_k(RANKED, JUDGED, k=2) == pytest.approx(
        (2 / math.log2(3)) / (2 + 1.5 / math.log2(3))
    )
    assert ndcg_at_k(["a", "d", "b", "c"], JUDGED) == pytest.approx(1.0)
    assert ndcg_at_k([], JUDGED) == 0.0


def test_mrr_and_recall_count_relevant_from_two():
    # a (3), b (2) and d (2.5) are relevant; c (1) is not.
    assert reciprocal_rank(RANKED, JUDGED) == 0.5
    assert reciprocal_rank(["c", "x"], JUDGED) == 0.0
    assert recall_at_k(RANKED, JUDGED) == pytest.approx(2 / 3)
    assert recall_at_k(RANKED, JUDGED, k=2) == pytest.approx(1 / 3)


def test_a_query_with_nothing_relevant_is_left_out_of_the_means():
    useless = {"c": 1.0, "e": 1.0}
    assert ndcg_at_k(["c"], useless) is None
    assert reciprocal_rank(["c"], useless) is None
    assert recall_at_k(["c"], useless) is None
    scores = score_rankings(
        {"good": RANKED, "bad": ["c"]}, {"good": JUDGED, "bad": useless}, "keyword"
    )
    overall = next(s for s in summarize(scores) if s.split == "all")
    assert overall.queries == 2
    assert overall.ndcg == pytest.approx(ndcg_at_k(RANKED, JUDGED))
    assert overall.mrr == 0.5


def test_fusion_weights_and_constant():
    keyword, semantic = ["a", "b", "c"], ["c", "d"]
    # Equal weights, k=1: c scores 1/4 + 1/2, a 1/2, b 1/3, d 1/3.
    equal = HybridParams(rrf_k=1, keyword_weight=1.0, semantic_weight=1.0)
    assert fuse(keyword, semantic, equal) == ["c", "a", "b", "d"]
    # A semantic weight of 0 keeps the keyword order, neighbours after it.
    assert fuse(keyword, semantic, HybridParams(semantic_weight=0.0))[:3] == keyword


def test_tuning_keeps_keyword_order_when_neighbours_only_hurt():
    judgments, keyword, semantic = {}, {}, {}
    for n in range(40):
        query = f"query {n}"
        judgments[query] = {f"good{n}": 3.0, f"bad{n}": 1.0}
        keyword[query] = [f"good{n}", f"bad{n}"]
        semantic[query] = [f"bad{n}", f"other{n}"]
    result = tune_fusion(keyword, semantic, judgments)
    assert result.params.semantic_weight == 0.0
    assert result.tuning_ndcg == result.keyword_ndcg == 1.0


def test_tuning_takes_neighbours_that_help():
    judgments, keyword, semantic = {}, {}, {}
    for n in range(40):
        query = f"query {n}"
        judgments[query] = {f"good{n}": 3.0}
        keyword[query] = [f"miss{n}", f"good{n}"]
        semantic[query] = [f"good{n}"]
    result = tune_fusion(keyword, semantic, judgments)
    assert result.params.semantic_weight > 0
    assert result.tuning_ndcg == 1.0 > result.keyword_ndcg


@pytest.mark.skipif(not os.path.isdir(HOMEDEPOT), reason="shared datasets absent")
def test_judgments_read_and_split_in_two_stable_halves():
    judgments = read_judgments(os.path.join(HOMEDEPOT, "judgments-dev.csv.gz"))
    assert len(judgments) > 5000
    # A real row of the file: "angle bracket" rated product 100001 as 3.
    assert judgments["angle bracket"]["100001"] == 3.0
    assert all(1.0 <= r <= 3.0 for j in judgments.values() for r in j.values())
    splits = [query_split(query) for query in judgments]
    tuning = splits.count("tuning") / len(splits)
    assert 0.45 < tuning < 0.55
    # Case and surrounding spaces do not move a query to the other half.
    assert query_split(" Angle Bracket") == query_split("angle bracket")


def test_judgments_file_without_the_columns_is_refused(tmp_path):
    path = tmp_path / "wrong.csv"
    path.write_text("query,item,score\nx,1,3\n")
    with pytest.raises(ValueError, match="search_term"):
        read_judgments(str(path))


def test_per_query_results_put_the_worst_first(tmp_path):
    import json

    from indexer.relevance import write_per_query

    judgments = {"good": JUDGED, "bad": JUDGED, "unscorable": {"c": 1.0}}
    rankings = {"good": ["a", "d", "b"], "bad": ["x"], "unscorable": ["c"]}
    path = tmp_path / "out" / "embedded.jsonl"
    write_per_query(str(path), score_rankings(rankings, judgments, "keyword"))
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["query"] for line in lines] == ["bad", "good", "unscorable"]
    assert lines[0]["ndcg"] == 0.0 and lines[0]["top"] == ["x"]
