"""The hybrid recipe: which lists are fused, how, and how the result is diversified.

One ``HybridConfig`` drives both the offline evaluation and the shop's
for-you list, so what is measured is what is served. ``evaluate`` tunes it
on a validation split and writes it beside its report; ``train`` stores it
with the model it trains.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields

import numpy as np

from recs.collaborative import TrainingParams
from recs.fusion import reciprocal_rank_fusion

log = logging.getLogger(__name__)

DAY = 86400.0
# The single-model lists the hybrid can fuse, by their names in reports.
SOURCES = ("buy-again", "als", "co-occurrence", "content", "trending", "popularity")


def default_weights() -> dict[str, float]:
    """The weights tuned on the UCI Online Retail history (see reports/)."""
    return {
        "buy-again": 2.0,
        "als": 0.5,
        "co-occurrence": 0.25,
        "content": 0.25,
        "trending": 1.0,
        "popularity": 0.0,
    }


@dataclass
class HybridConfig:
    """Every setting of the recommenders, tuned together.

    Parameters
    ----------
    factors, regularization, alpha, iterations : ALS settings
        ``alpha`` scales the confidence ``log1p(strength)``.
    neighbours : int
        Item-to-item co-occurrence keeps this many neighbours per item.
    trending_half_life_days : float
        Age at which a purchase counts half for trending.
    buy_again_half_life_days : float
        Age at which a shopper's own purchase counts half for buy-again.
    rrf_k : int
        Reciprocal rank fusion's damping constant.
    weights : dict of str to float
        Per source of ``SOURCES``; 0 leaves a source out.
    mmr_lambda : float
        Maximal marginal relevance trade-off: 1 keeps the fused order, lower
        values give more weight to being unlike the items already picked.
    filter_already_bought : bool
        Whether items the shopper already has are left out of every list.
        Retail shoppers re-order, so for such data they stay in.
    candidates : int
        How deep each source list is before fusion.
    session_weight : float
        For a new shopper: the weight of the co-occurrence and content
        neighbours of their first session's items, against trending's 1.
    """

    # Defaults: as tuned on the UCI Online Retail history (see reports/).
    factors: int = 128
    regularization: float = 0.1
    alpha: float = 1.0
    iterations: int = 10
    neighbours: int = 5
    trending_half_life_days: float = 3.0
    buy_again_half_life_days: float = 365.0
    rrf_k: int = 60
    weights: dict[str, float] = field(default_factory=default_weights)
    mmr_lambda: float = 0.8
    filter_already_bought: bool = False
    candidates: int = 100
    session_weight: float = 0.5

    def __post_init__(self):
        unknown = sorted(set(self.weights) - set(SOURCES))
        if unknown:
            raise ValueError(
                f"unknown hybrid source(s) {unknown}; expected some of {SOURCES}"
            )
        if not 0.0 <= self.mmr_lambda <= 1.0:
            raise ValueError(
                f"mmr_lambda must be within 0 and 1, got {self.mmr_lambda}"
            )

    def training_params(self) -> TrainingParams:
        """The ALS settings as ``TrainingParams``."""
        return TrainingParams(
            factors=self.factors,
            regularization=self.regularization,
            alpha=self.alpha,
            iterations=self.iterations,
        )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping) -> HybridConfig:
        """A config from ``values``; keys it does not know are ignored, so an
        evaluation's ``config.json`` (which holds more) can be passed whole."""
        known = {f.name for f in fields(cls)}
        picked = {k: v for k, v in values.items() if k in known}
        if "weights" in picked:
            picked["weights"] = {**default_weights(), **picked["weights"]}
        return cls(**picked)

    def save(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as out:
            json.dump(self.to_dict(), out, indent=2, sort_keys=True)

    @classmethod
    def load(cls, path: str) -> HybridConfig:
        """Read a config written by ``save``, or the ``hybrid`` part of an
        evaluation's ``config.json``."""
        with open(path, encoding="utf-8") as handle:
            values = json.load(handle)
        return cls.from_dict(values.get("hybrid", values))


def buy_again(
    purchases: Iterable[tuple[str, float, float]],
    now: float,
    half_life_days: float,
) -> list[tuple[str, float]]:
    """A shopper's own purchases ranked by frequency and recency.

    Each purchase adds its strength times ``0.5 ** (age / half_life)``, so an
    item bought often and lately comes first.

    Parameters
    ----------
    purchases : iterable of (item_id, timestamp, strength)
    now : float
        Unix time the ages are counted from.
    half_life_days : float

    Returns
    -------
    list of (item_id, score)
        Best first; ties by item id.
    """
    decay = math.log(2) / (half_life_days * DAY)
    scores: dict[str, float] = {}
    for item_id, timestamp, strength in purchases:
        if strength <= 0:
            continue
        age = max(0.0, now - timestamp)
        scores[item_id] = scores.get(item_id, 0.0) + strength * math.exp(-decay * age)
    return sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))


def fuse(
    rankings: Mapping[str, Sequence[str]],
    config: HybridConfig,
) -> list[tuple[str, float]]:
    """Weighted reciprocal rank fusion of the named ``rankings``.

    Parameters
    ----------
    rankings : mapping of source name to ranked item ids
        Sources with weight 0 in ``config`` are left out.
    config : HybridConfig

    Returns
    -------
    list of (item_id, score)
        Best first.
    """
    names = [n for n in rankings if config.weights.get(n, 0.0) > 0 and rankings[n]]
    return reciprocal_rank_fusion(
        [rankings[n] for n in names],
        k=config.rrf_k,
        weights=[config.weights[n] for n in names],
    )


def maximal_marginal_relevance(
    ranked: Sequence[tuple[str, float]],
    vectors: Mapping[str, np.ndarray],
    top_k: int,
    trade_off: float,
) -> list[str]:
    """Pick ``top_k`` of ``ranked``, each time the item best balancing its
    relevance against its likeness to those already picked (Carbonell and
    Goldstein, 1998).

    Relevance is the fused score scaled to 0..1 over the candidates; likeness
    the largest cosine similarity to a picked item. ``trade_off`` 1 keeps the
    order of ``ranked``. Items without a vector count as unlike everything.

    Parameters
    ----------
    ranked : sequence of (item_id, score)
        Best first.
    vectors : mapping of item_id to unit-length numpy.ndarray
    top_k : int
    trade_off : float
        Within 0 and 1.

    Returns
    -------
    list of str
    """
    if trade_off >= 1.0 or len(ranked) <= 1:
        return [item_id for item_id, _ in ranked[:top_k]]
    ids = [item_id for item_id, _ in ranked]
    scores = np.array([score for _, score in ranked], dtype=np.float64)
    spread = scores.max() - scores.min()
    relevance = (scores - scores.min()) / spread if spread > 0 else np.ones(len(ids))
    dimensions = next((len(v) for v in vectors.values()), 0)
    matrix = np.zeros((len(ids), max(dimensions, 1)), dtype=np.float32)
    for row, item_id in enumerate(ids):
        vector = vectors.get(item_id)
        if vector is not None:
            matrix[row] = vector
    similarity = matrix @ matrix.T

    picked: list[int] = []
    closest = np.zeros(len(ids))  # largest similarity to anything picked
    available = np.ones(len(ids), dtype=bool)
    while len(picked) < min(top_k, len(ids)):
        value = trade_off * relevance - (1.0 - trade_off) * closest
        value[~available] = -np.inf
        best = int(np.argmax(value))
        picked.append(best)
        available[best] = False
        closest = np.maximum(closest, similarity[best])
    return [ids[i] for i in picked]
