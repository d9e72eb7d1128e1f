"""For-you, similar, trending and also-bought lists, fused from every signal."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from indexer.catalog import Product
from indexer.search.base import Filters, SearchBackend, SearchError
from recs.content import profile_vector
from recs.fusion import reciprocal_rank_fusion
from recs.model_store import TrainedModels

log = logging.getLogger(__name__)

CANDIDATES = 100
# How long the trending rail's products are taken as they were fetched.
AVAILABILITY_TTL = 10.0
# Weights of each signal in the for-you fusion.
COLLABORATIVE_WEIGHT = 1.0
CONTENT_WEIGHT = 0.8
POPULARITY_WEIGHT = 0.3


@dataclass
class Recommendation:
    item_id: str
    score: float
    sources: list[str] = field(default_factory=list)
    product: Product | None = None


class Recommender:
    """Answers every recommendation question from the trained models and the
    search backend's embeddings.

    Parameters
    ----------
    backend : SearchBackend
        Supplies item embeddings and kNN.
    models : TrainedModels or None
        None before the first ``train`` or when the model cannot be read:
        lists then come from content and ``popular`` alone.
    popular : sequence of str, optional
        Item ids, most popular first, for trending when there is no model;
        catalog order when empty.
    """

    def __init__(
        self,
        backend: SearchBackend,
        models: TrainedModels | None,
        popular: Sequence[str] = (),
    ):
        self.backend = backend
        self.models = models
        self.popular = list(popular)
        self._available_cache: tuple[float, tuple[str, ...], dict] | None = None

    def _available(self, item_ids: tuple[str, ...]) -> dict[str, Product]:
        """The products of ``item_ids``, remembered for a few seconds: every
        page with a trending rail asks for the same ones."""
        cached = self._available_cache
        now = time.monotonic()
        if cached and cached[1] == item_ids and now - cached[0] < AVAILABILITY_TTL:
            return cached[2]
        found = self.backend.fetch(list(item_ids))
        self._available_cache = (now, item_ids, found)
        return found

    def trending(
        self, top_k: int, exclude: set[str] | frozenset = frozenset()
    ) -> list[str]:
        """Items with the most recent interest; the most popular when untrained."""
        ranked = self.models.trending if self.models else self.popular
        if len(ranked) < top_k + len(exclude):
            known = set(ranked)
            extra = self.backend.all_ids(top_k + len(exclude) + len(ranked))
            ranked = ranked + [i for i in extra if i not in known]
        available = self._available(tuple(ranked[: top_k + len(exclude) + 50]))
        return [
            item_id
            for item_id in ranked
            if item_id not in exclude
            and item_id in available
            and available[item_id].available
        ][:top_k]

    def for_you(
        self,
        history: Mapping[str, float],
        top_k: int,
        filter_already_liked_items: bool = True,
    ) -> list[Recommendation]:
        """Items for a shopper whose history is ``history`` (item id to strength).

        Collaborative (ALS, with the shopper's factors solved from ``history``
        on the spot), content (kNN around the shopper's taste vector) and
        popularity rankings are fused by reciprocal rank. A shopper with no
        history gets trending items.
        """
        seen = (
            {i for i, s in history.items() if s != 0}
            if filter_already_liked_items
            else set()
        )
        rankings: list[list[str]] = []
        weights: list[float] = []
        names: list[str] = []

        positive = {i: s for i, s in history.items() if s > 0}
        if positive and self.models is not None:
            collaborative = self.models.collaborative.recommend(
                positive, CANDIDATES, filter_already_liked_items, exclude=seen
            )
            rankings.append([item_id for item_id, _ in collaborative])
            weights.append(COLLABORATIVE_WEIGHT)
            names.append("collaborative")
        try:
            content = self._content(positive, seen)
        except SearchError as exc:
            # The other signals still answer while the search backend is down.
            log.debug("for-you without content similarity: %s", exc)
            content = None
        if content is not None:
            rankings.append(content)
            weights.append(CONTENT_WEIGHT)
            names.append("content")
        rankings.append(self.trending(CANDIDATES, exclude=seen))
        weights.append(POPULARITY_WEIGHT)
        names.append("popularity")

        fused = reciprocal_rank_fusion(rankings, weights=weights)
        sources = {
            item_id: [
                name
                for name, ranking in zip(names, rankings, strict=True)
                if item_id in ranking
            ]
            for item_id, _ in fused[: top_k * 2]
        }
        products = self.backend.fetch([item_id for item_id, _ in fused[: top_k * 2]])
        result = [
            Recommendation(item_id, score, sources[item_id], products[item_id])
            for item_id, score in fused[: top_k * 2]
            if item_id in products and products[item_id].available
        ]
        return result[:top_k]

    def _content(self, positive: Mapping[str, float], seen: set[str]) -> list | None:
        """Products nearest the shopper's taste vector; None without one."""
        vectors = self.backend.vectors(list(positive))
        profile = profile_vector(positive, vectors.get)
        if profile is None:
            return None
        hits = self.backend.knn(
            profile, CANDIDATES, Filters(exclude_ids=tuple(sorted(seen)))
        )
        return [hit.item_id for hit in hits]

    def similar(self, item_id: str, top_k: int) -> list[tuple[str, float]]:
        """Products nearest ``item_id`` by content; works for a product nobody
        has bought yet.

        Raises
        ------
        KeyError
            When ``item_id`` is not in the catalog.
        """
        return [
            (hit.item_id, hit.score) for hit in self.backend.similar(item_id, top_k)
        ]

    def also_bought(self, item_id: str, top_k: int) -> list[tuple[str, float]]:
        """Products bought by the shoppers who bought ``item_id``."""
        if self.models is None:
            return []
        candidates = self.models.collaborative.similar_items(item_id, top_k * 2)
        products = self.backend.fetch([i for i, _ in candidates])
        return [
            (i, s) for i, s in candidates if i in products and products[i].available
        ][:top_k]

    def because_you_liked(
        self,
        item_id: str,
        top_k: int,
        exclude: set[str] | frozenset = frozenset(),
    ) -> list[Recommendation]:
        """Products to show beside one the shopper liked, with their reasons.

        What buyers of ``item_id`` also bought (collaborative) and products
        like it (content) are fused by reciprocal rank.

        Parameters
        ----------
        item_id : str
            The product the shopper liked or rated well.
        top_k : int
        exclude : set of str, optional
            Products the shopper already knows; ``item_id`` is always left out.

        Returns
        -------
        list of Recommendation
            Best first; ``sources`` names the lists each came from.
        """
        exclude = set(exclude) | {item_id}
        rankings = [
            [i for i, _ in self.also_bought(item_id, CANDIDATES // 2)],
            [i for i, _ in self.similar(item_id, CANDIDATES // 2)]
            if self.backend.vector(item_id) is not None
            else [],
        ]
        names = ["collaborative", "content"]
        fused = reciprocal_rank_fusion(
            [[i for i in ranking if i not in exclude] for ranking in rankings],
            weights=[COLLABORATIVE_WEIGHT, CONTENT_WEIGHT],
        )
        return [
            Recommendation(
                candidate,
                score,
                [n for n, r in zip(names, rankings, strict=True) if candidate in r],
            )
            for candidate, score in fused[:top_k]
        ]
