"""Ranking metrics at k, with the definitions of ``implicit.evaluation``.

``implicit.evaluation.ranking_metrics_at_k`` scores implicit's own models;
the buy-again, trending, content and hybrid lists are plain id lists, so
they are scored here with the same arithmetic (a test pins both to values
worked out by hand, and another checks that both agree on an ALS model).

Every per-user figure is averaged over the users with relevant items:

- ``recall_at_k``: hits in the top ``k`` over ``min(k, relevant)``, so a
  perfect list scores 1 even when more than ``k`` items are relevant
  (implicit calls the pooled form of this "precision");
- ``ndcg_at_k``: binary gains discounted by ``log2(rank + 1)``, over the
  gain of the ideal list of ``min(k, relevant)`` hits;
- ``map_at_k``: the precision at each hit, summed, over ``min(k, relevant)``;
- ``mrr_at_k``: one over the rank of the first hit, 0 without one;
- ``hit_rate_at_k``: share of users with at least one hit;
- ``coverage``: distinct items recommended to anyone, over the catalog.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np

METRICS = (
    "recall_at_k",
    "ndcg_at_k",
    "map_at_k",
    "mrr_at_k",
    "hit_rate_at_k",
    "coverage",
)


def recall_at_k(recommended: Sequence[str], relevant: set[str], k: int) -> float:
    """Hits in the first ``k`` over ``min(k, len(relevant))``.

    Parameters
    ----------
    recommended : sequence of str
        Best first.
    relevant : set of str
    k : int

    Returns
    -------
    float
        0 when nothing is relevant.
    """
    if not relevant:
        return 0.0
    hits = sum(1 for item in recommended[:k] if item in relevant)
    return hits / min(k, len(relevant))


def dcg(gains: Sequence[float]) -> float:
    """Discounted cumulative gain of gains in rank order (rank 1 undiscounted)."""
    return sum(gain / math.log2(rank + 2) for rank, gain in enumerate(gains))


def ndcg_at_k(recommended: Sequence[str], relevant: set[str], k: int) -> float:
    """Normalised discounted cumulative gain with binary relevance.

    Parameters
    ----------
    recommended : sequence of str
    relevant : set of str
    k : int

    Returns
    -------
    float
    """
    gained = dcg([1.0 if item in relevant else 0.0 for item in recommended[:k]])
    ideal = dcg([1.0] * min(k, len(relevant)))
    return gained / ideal if ideal else 0.0


def average_precision_at_k(
    recommended: Sequence[str], relevant: set[str], k: int
) -> float:
    """Precision at each hit in the first ``k``, summed, over
    ``min(k, len(relevant))``.

    Parameters
    ----------
    recommended : sequence of str
    relevant : set of str
    k : int

    Returns
    -------
    float
    """
    if not relevant:
        return 0.0
    hits, total = 0, 0.0
    for rank, item in enumerate(recommended[:k], start=1):
        if item in relevant:
            hits += 1
            total += hits / rank
    return total / min(k, len(relevant))


def reciprocal_rank_at_k(
    recommended: Sequence[str], relevant: set[str], k: int
) -> float:
    """One over the rank of the first hit in the first ``k``; 0 without one.

    Parameters
    ----------
    recommended : sequence of str
    relevant : set of str
    k : int

    Returns
    -------
    float
    """
    for rank, item in enumerate(recommended[:k], start=1):
        if item in relevant:
            return 1.0 / rank
    return 0.0


def ranking_metrics(
    recommended: Mapping[str, Sequence[str]],
    relevant: Mapping[str, set[str]],
    top_k: int,
    catalog_size: int,
) -> dict[str, float]:
    """Every metric of ``METRICS``, averaged over the users of ``relevant``.

    Parameters
    ----------
    recommended : mapping of user_id to list of item_id
        A user missing here was recommended nothing (scores 0).
    relevant : mapping of user_id to set of item_id
        What each test user did after the cut-off; users with an empty set
        are not counted.
    top_k : int
    catalog_size : int
        Items that could have been recommended, for ``coverage``.

    Returns
    -------
    dict
        The metrics, plus ``users``: how many users were scored.
    """
    users = [user for user, items in relevant.items() if items]
    sums = dict.fromkeys(METRICS, 0.0)
    shown: set[str] = set()
    for user in users:
        ranked = list(recommended.get(user, ()))[:top_k]
        wanted = relevant[user]
        shown.update(ranked)
        sums["recall_at_k"] += recall_at_k(ranked, wanted, top_k)
        sums["ndcg_at_k"] += ndcg_at_k(ranked, wanted, top_k)
        sums["map_at_k"] += average_precision_at_k(ranked, wanted, top_k)
        sums["mrr_at_k"] += reciprocal_rank_at_k(ranked, wanted, top_k)
        sums["hit_rate_at_k"] += float(any(item in wanted for item in ranked))
    scores = {
        name: value / len(users) if users else 0.0 for name, value in sums.items()
    }
    scores["coverage"] = len(shown) / catalog_size if catalog_size else 0.0
    scores["users"] = float(len(users))
    return scores


def intra_list_similarity(
    lists: Sequence[Sequence[str]],
    vector_of: Callable[[str], np.ndarray | None],
) -> float:
    """Mean cosine similarity between the items of one list, over all lists.

    A list of ten variants of one product scores near 1; items without a
    vector are left out of their list's pairs.

    Parameters
    ----------
    lists : sequence of sequences of str
    vector_of : callable
        An item's unit-length embedding, or None.

    Returns
    -------
    float
        Averaged over lists with at least two embedded items; 0 when none.
    """
    total, counted = 0.0, 0
    for items in lists:
        vectors = [v for v in (vector_of(item) for item in items) if v is not None]
        if len(vectors) < 2:
            continue
        matrix = np.vstack(vectors).astype(np.float64)
        similarity = matrix @ matrix.T
        n = len(vectors)
        total += (similarity.sum() - np.trace(similarity)) / (n * (n - 1))
        counted += 1
    return total / counted if counted else 0.0
