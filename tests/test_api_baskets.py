"""Frequently bought together: basket counts, and the lists built on them."""

from __future__ import annotations

from indexer.catalog import Interaction
from recs.baskets import BasketIndex, baskets


def purchase(user: str, item: str, ts: float, kind: str = "purchase") -> Interaction:
    return Interaction(user, item, kind, 1.0, ts)


def test_a_basket_is_one_customer_at_one_moment():
    found = baskets(
        [
            purchase("u1", "a", 1.0),
            purchase("u1", "b", 1.0),
            purchase("u1", "c", 2.0),  # a later invoice of the same customer
            purchase("u2", "a", 1.0),  # another customer at the same second
            purchase("u2", "d", 1.0),
            purchase("u3", "e", 5.0),  # a one-product basket says nothing
            purchase("u1", "z", 1.0, kind="view"),  # not a purchase
        ]
    )
    assert sorted(sorted(b) for b in found) == [["a", "b"], ["a", "d"]]


def test_pairs_are_counted_and_ranked():
    history = []
    for n in range(3):
        history += [purchase(f"u{n}", "mug", n), purchase(f"u{n}", "teapot", n)]
    for n in range(2):
        history += [purchase(f"v{n}", "mug", n), purchase(f"v{n}", "spoon", n)]
    history += [purchase("w", "mug", 9.0), purchase("w", "towel", 9.0)]
    index = BasketIndex.from_interactions(history)
    assert index.bought_together("mug", 5) == [("teapot", 3), ("spoon", 2)]
    assert index.bought_together("mug", 5, min_shared=1)[-1] == ("towel", 1)
    assert index.bought_together("mug", 1) == [("teapot", 3)]
    assert index.bought_together("teapot", 5) == [("mug", 3)]
    assert index.bought_together("unknown", 5) == []


def test_ties_go_to_the_rarer_product():
    history = []
    # "bag" is in every basket; "card" only where the mug is.
    for n in range(4):
        history += [purchase(f"u{n}", "mug", n), purchase(f"u{n}", "bag", n)]
        history += [purchase(f"u{n}", "card", n)] if n < 2 else []
    for n in range(6):
        history += [
            purchase(f"x{n}", "bag", 100 + n),
            purchase(f"x{n}", "pen", 100 + n),
        ]
    index = BasketIndex.from_interactions(history)
    assert index.bought_together("card", 2) == [("mug", 2), ("bag", 2)]


def test_an_empty_history_has_no_pairs():
    index = BasketIndex.from_interactions([])
    assert index.bought_together("mug", 5) == []


def test_the_sample_has_baskets(app):
    shop = app.extensions["shop"]
    pairs = shop.bought_together("71053", 5)
    assert pairs and all(n >= 2 for _, n in pairs)


def test_bought_together_in_a_category_catalog(category_app):
    client = category_app.test_client()
    body = client.get("/api/products/M1/bought-together").get_json()
    assert [(r["item_id"], r["shared_baskets"]) for r in body["results"]] == [("T1", 2)]
    page = client.get("/product/L1").data.decode()
    assert "Frequently bought together" in page and "Star Fairy Lights" in page


def test_because_you_liked_leaves_out_what_is_known(app):
    recommender = app.extensions["shop"].recommender
    picks = recommender.because_you_liked("71053", 6, exclude={"22086"})
    ids = [p.item_id for p in picks]
    assert 0 < len(ids) <= 6
    assert "71053" not in ids and "22086" not in ids
    assert all(p.sources for p in picks)
    assert {s for p in picks for s in p.sources} <= {"collaborative", "content"}
