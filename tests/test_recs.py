"""Recommendations: fusion, ALS, popularity, cold starts."""

from __future__ import annotations

import os

import numpy as np
import pytest

from indexer.catalog import Interaction
from recs.collaborative import CollaborativeModel, TrainingParams, event_strength
from recs.fusion import reciprocal_rank_fusion
from recs.model_store import ModelStore
from recs.popularity import popularity, trending
from recs.recommender import Recommender


def test_rrf_scores_follow_the_formula():
    fused = dict(reciprocal_rank_fusion([["a", "b", "c"], ["c", "a"]], k=60))
    assert fused["a"] == pytest.approx(1 / 61 + 1 / 62)
    assert fused["c"] == pytest.approx(1 / 63 + 1 / 61)
    assert fused["b"] == pytest.approx(1 / 62)
    assert list(fused)[:2] == ["a", "c"]


def test_rrf_weights_and_validation():
    fused = reciprocal_rank_fusion([["a"], ["b"]], weights=[1.0, 2.0])
    assert [item for item, _ in fused] == ["b", "a"]
    with pytest.raises(ValueError, match="one weight per ranking"):
        reciprocal_rank_fusion([["a"]], weights=[1.0, 2.0])


def test_event_strengths():
    def event(kind, weight):
        return Interaction("u", "i", kind, weight, 0.0)

    assert event_strength(event("rating", 5)) > event_strength(event("rating", 4)) > 0
    assert event_strength(event("rating", 2)) < 0
    assert event_strength(event("like", 1)) > event_strength(event("view", 1)) > 0
    with pytest.raises(ValueError, match="unknown interaction kind"):
        event_strength(event("teleport", 1))


@pytest.fixture(scope="module")
def model(retail_sample):
    items = [p.item_id for p in retail_sample.products]
    return CollaborativeModel.train(
        retail_sample.interactions,
        items,
        TrainingParams(iterations=8),
        show_progress=False,
    )


def test_als_learns_from_purchases(model, retail_sample):
    # A customer's held-out purchases rank higher than random items.
    by_user: dict[str, dict[str, float]] = {}
    for i in retail_sample.interactions:
        by_user.setdefault(i.user_id, {})[i.item_id] = 1.0
    heavy = [u for u, items in by_user.items() if len(items) >= 30][:50]
    hits = 0
    for user in heavy:
        items = sorted(by_user[user])
        held_out, history = items[::5], {i: 1.0 for i in items if i not in items[::5]}
        recommended = {i for i, _ in model.recommend(history, 50)}
        hits += len(recommended & set(held_out))
    random_rate = 50 / len(model.item_ids)
    expected_random = random_rate * sum(len(sorted(by_user[u])[::5]) for u in heavy)
    assert hits > 3 * expected_random


def test_recommend_filters_history(model):
    history = {"71053": 3.0, "85123A": 2.0}
    ids = [i for i, _ in model.recommend(history, 20)]
    assert ids and not set(ids) & set(history)


def test_model_round_trips_through_disk(model, tmp_path):
    store = ModelStore(str(tmp_path))
    version = store.save(model, ["71053"], {"71053": 3})
    loaded = store.load()
    assert loaded.version == version
    history = {"71053": 3.0, "22086": 1.0}
    assert loaded.collaborative.recommend(history, 10) == model.recommend(history, 10)
    assert np.array_equal(
        loaded.collaborative.model.item_factors, model.model.item_factors
    )


def test_trending_weights_recent_interest():
    day = 86400.0
    events = [Interaction(f"u{n}", "old", "purchase", 1, 0.0) for n in range(5)]
    events += [Interaction(f"v{n}", "new", "purchase", 1, 60 * day) for n in range(3)]
    ranked = [item for item, _ in trending(events)]
    assert ranked == ["new", "old"]
    assert popularity(events) == {"old": 5, "new": 3}


def test_trending_keeps_its_order_for_history_years_old():
    """A 2011 export beside a like given today: the old purchases decay
    below the smallest float, and must still rank by their own recency."""
    day, year = 86400.0, 365 * 86400.0
    events = [Interaction(f"u{n}", "older", "purchase", 1, 0.0) for n in range(5)]
    events += [Interaction(f"v{n}", "old", "purchase", 1, 9 * day) for n in range(2)]
    events += [Interaction(f"w{n}", "busy", "purchase", 1, 9 * day) for n in range(4)]
    events.append(Interaction("shopper", "liked", "like", 1, 15 * year))

    ranked = trending(events, half_life_days=3.0)

    assert [item for item, _ in ranked] == ["liked", "busy", "old", "older"]
    assert all(np.isfinite(score) for _, score in ranked)


@pytest.fixture(scope="module")
def recommender(shop_settings):
    from indexer.config import make_backend

    return Recommender(
        make_backend(shop_settings), ModelStore(shop_settings.models_dir).load()
    )


def test_new_shopper_gets_trending(recommender):
    recommendations = recommender.for_you({}, 10)
    assert [r.item_id for r in recommendations] == recommender.trending(10)
    assert all(r.sources == ["popularity"] for r in recommendations)


def test_one_rating_personalises(recommender):
    cold = [r.item_id for r in recommender.for_you({}, 10)]
    warm = recommender.for_you({"71053": 3.0}, 10)
    warm_ids = [r.item_id for r in warm]
    assert warm_ids != cold
    assert "71053" not in warm_ids
    assert any("content" in r.sources or "collaborative" in r.sources for r in warm)


def test_product_nobody_bought_still_has_similar_products(recommender, shop_settings):
    from indexer.store import CatalogStore

    store = CatalogStore(shop_settings.catalog_path)
    bought = {i.item_id for i in store.interactions()}
    never = [p.item_id for p in store.products() if p.item_id not in bought]
    store.close()
    assert never, "the sample has products nobody bought"
    similar = recommender.similar(never[0], 5)
    assert len(similar) == 5
    assert recommender.also_bought(never[0], 5) == []


def test_ranking_metrics():
    from recs.evaluation import ndcg_at_k, recall_at_k

    assert recall_at_k(["a", "b", "c"], {"a", "c"}, 3) == 1.0
    assert recall_at_k(["x", "b"], {"a", "c"}, 2) == 0.0
    assert ndcg_at_k(["a", "x"], {"a"}, 2) == 1.0
    assert ndcg_at_k(["x", "a"], {"a"}, 2) == pytest.approx(1 / np.log2(3))


def test_evaluation_beats_popularity_with_als(shop_settings):
    from recs.evaluation import evaluate_store

    report = evaluate_store(shop_settings, top_k=10)
    assert report.users > 100
    assert report.scores["als"]["ndcg_at_k"] > report.scores["popularity"]["ndcg_at_k"]
    assert "recall@10" in report.table()


def test_columnar_weights_match_the_per_event_ones(retail_sample):
    from recs.collaborative import user_strengths
    from recs.interactions import InteractionColumns, confidence_matrix

    events = retail_sample.interactions[:5000] + [
        Interaction("shop:1", "71053", "rating", 5, 1.0),
        Interaction("shop:1", "85123A", "rating", 2, 2.0),
        Interaction("shop:1", "85123A", "view", 1, 3.0),
        Interaction("shop:1", "22086", "like", 1, 4.0),
        Interaction("shop:1", "21212", "review", 1, 5.0),
    ]
    columns = InteractionColumns.from_interactions(events)
    expected = [event_strength(e) for e in events]
    assert np.allclose(columns.strengths(), expected)

    items = sorted({e.item_id for e in events})
    matrix, users = confidence_matrix(columns, items)
    per_event = user_strengths(events)
    assert users == sorted(per_event)
    assert "85123A" not in per_event["shop:1"]  # the dislike removed it
    for row, user in enumerate(users):
        for item, strength in per_event[user].items():
            assert matrix[row, items.index(item)] == pytest.approx(np.log1p(strength))
    assert matrix.nnz == sum(len(v) for v in per_event.values())


def test_unknown_kind_in_columns_is_refused():
    from recs.interactions import InteractionColumns

    with pytest.raises(ValueError, match="teleport"):
        InteractionColumns.from_rows([("u", "i", "teleport", 1.0, 0.0)])


def test_columns_round_trip_and_merge(tmp_path, retail_sample):
    from recs.interactions import InteractionColumns, confidence_matrix

    events = retail_sample.interactions[:3000]
    extra = [
        Interaction("shop:7", events[0].item_id, "like", 1, 9.0),
        Interaction("shop:7", "NEW-ITEM", "rating", 5, 9.0),
    ]
    columns = InteractionColumns.from_interactions(events)
    path = str(tmp_path / "interactions.npz")
    columns.save(path, "stamp-1")
    assert InteractionColumns.load(path, "stamp-2") is None
    loaded = InteractionColumns.load(path, "stamp-1")
    merged = loaded.concat(InteractionColumns.from_interactions(extra))
    direct = InteractionColumns.from_interactions(events + extra)
    items = sorted({e.item_id for e in events + extra})
    a, users_a = confidence_matrix(merged, items)
    b, users_b = confidence_matrix(direct, items)
    assert users_a == users_b
    assert (a != b).nnz == 0


def test_training_uses_the_snapshot_and_the_shop_feedback(shop_settings, tmp_path):
    import shutil

    from indexer.pipeline import interactions_snapshot, train_models
    from recs.model_store import ModelStore

    copy = shop_settings.with_overrides(data_dir=str(tmp_path / "shop"))
    shutil.copytree(shop_settings.data_dir, copy.data_dir, symlinks=True)
    assert os.path.exists(interactions_snapshot(copy))
    feedback = [Interaction("shop:99", "71053", "rating", 5, 1e9)]
    train_models(copy, TrainingParams(iterations=2), feedback)
    model = ModelStore(copy.models_dir).load().collaborative
    assert "shop:99" in model.user_index


def test_a_catalog_nobody_bought_from_trains_and_recommends(tmp_path, retail_sample):
    items = [p.item_id for p in retail_sample.products[:30]]
    model = CollaborativeModel.train([], items, TrainingParams(iterations=2))
    assert model.user_ids == [] and model.loss is None
    assert model.recommend({items[0]: 3.0}, 5) == []
    assert model.similar_items(items[0], 5) == []
    store = ModelStore(str(tmp_path))
    store.save(model, [], {})
    assert store.load().collaborative.recommend({items[0]: 3.0}, 5) == []


def test_evaluation_needs_some_history():
    from recs.evaluation import EvaluationData, evaluate
    from recs.interactions import InteractionColumns

    empty = EvaluationData("empty", InteractionColumns.from_rows([]), ["71053"])
    with pytest.raises(ValueError, match="not enough history"):
        evaluate(empty, tune_config=False, progress=False)
    # History, but every shopper's purchases fall on one side of the cut
    one_each = InteractionColumns.from_interactions(
        [Interaction(f"u{n}", "71053", "purchase", 1, float(n)) for n in range(50)]
    )
    with pytest.raises(ValueError, match="not enough history"):
        evaluate(
            EvaluationData("one-each", one_each, ["71053"]),
            tune_config=False,
            progress=False,
        )


def test_the_model_carries_its_recipe_and_cooccurrence(shop_settings):
    from recs.hybrid import HybridConfig

    models = ModelStore(shop_settings.models_dir).load()
    assert models.recipe == HybridConfig()
    assert models.cooccurrence is not None
    assert models.cooccurrence.similarity.shape[0] == len(models.collaborative.item_ids)


def test_for_you_buys_again_for_a_shopper_with_purchases(recommender):
    now = 1.3e9
    purchases = [("85123A", now, 2.0), ("85123A", now, 2.0), ("22086", now, 1.0)]
    picks = recommender.for_you({"71053": 3.0}, 10, purchases=purchases)
    by_id = {r.item_id: r for r in picks}
    # The recipe tuned on retail keeps re-orders in, and weighs them most.
    assert "buy-again" in by_id["85123A"].sources
    assert "71053" not in by_id


def test_mmr_makes_the_for_you_list_less_alike(recommender):
    import dataclasses

    from recs.metrics import intra_list_similarity

    history = {"71053": 3.0, "85123A": 2.0, "22086": 1.0}

    def similarity(trade_off: float) -> float:
        models = dataclasses.replace(
            recommender.models,
            recipe=dataclasses.replace(recommender.models.recipe, mmr_lambda=trade_off),
        )
        picks = Recommender(recommender.backend, models).for_you(history, 10)
        assert len(picks) == 10
        vectors = recommender.backend.vectors([r.item_id for r in picks])
        return intra_list_similarity([[r.item_id for r in picks]], vectors.get)

    assert similarity(0.5) < similarity(1.0)


def test_a_shopper_known_only_by_views_gets_the_new_shopper_blend(recommender):
    viewed = {"22086": 0.2, "71053": 0.2}
    picks = recommender.for_you(viewed, 10, session_only=True)
    assert len(picks) == 10
    sources = {s for r in picks for s in r.sources}
    assert "collaborative" not in sources
    assert sources & {"co-occurrence", "content"}
    assert not set(viewed) & {r.item_id for r in picks}
    assert [r.item_id for r in picks] != recommender.trending(10)
