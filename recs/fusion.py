"""Reciprocal rank fusion: one ranking out of several."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

DEFAULT_K = 60


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[str]],
    k: int = DEFAULT_K,
    weights: Sequence[float] | None = None,
) -> list[tuple[str, float]]:
    """Fuse ranked lists of ids by reciprocal rank.

    Each id scores ``sum(weight / (k + rank))`` over the lists it appears in,
    ranks counted from 1 (Cormack, Clarke and Buettcher, SIGIR 2009).

    Parameters
    ----------
    rankings : sequence of sequences of str
        Ranked ids, best first. An id repeated within one list counts once,
        at its best rank.
    k : int
        Damping constant; larger values flatten the contribution of top ranks.
    weights : sequence of float, optional
        One weight per ranking; all 1 by default.

    Returns
    -------
    list of (id, score)
        Best first; ties keep the order in which ids were first seen.

    Examples
    --------
    >>> reciprocal_rank_fusion([["a", "b"], ["b", "c"]])[0][0]
    'b'
    """
    if weights is None:
        weights = [1.0] * len(rankings)
    if len(weights) != len(rankings):
        raise ValueError(
            f"got {len(weights)} weights for {len(rankings)} rankings; "
            "give one weight per ranking"
        )
    if k < 0:
        raise ValueError(f"k must be non-negative, got {k}")

    scores: dict[str, float] = defaultdict(float)
    first_seen: dict[str, int] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        seen: set[str] = set()
        for rank, item_id in enumerate(ranking, start=1):
            if item_id in seen:
                continue
            seen.add(item_id)
            scores[item_id] += weight / (k + rank)
            first_seen.setdefault(item_id, len(first_seen))
    return sorted(scores.items(), key=lambda pair: (-pair[1], first_seen[pair[0]]))
