"""For-you, similar, trending and also-bought lists, fused from every signal."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from indexer.catalog import Product
from indexer.search.base import Filters, SearchBackend, SearchError
from recs.content import profile_vector
from recs.fusion import reciprocal_rank_fusion
from recs.hybrid import HybridConfig, buy_again, fuse, maximal_marginal_relevance
from recs.model_store import TrainedModels

log = logging.getLogger(__name__)

CANDIDATES = 100
# How long the trending rail's products are taken as they were fetched.
AVAILABILITY_TTL = 10.0
# Weights of the two lists fused beside a product a shopper liked; the
# for-you list takes its weights from the recipe stored with the model.
COLLABORATIVE_WEIGHT = 1.0
CONTENT_WEIGHT = 0.8
# Fused candidates that maximal marginal relevance chooses among.
MMR_POOL = 50
# Names of the recipe's sources as the shop explains them.
SOURCE_NAMES = {"als": "collaborative", "trending": "popularity"}


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
        purchases: Sequence[tuple[str, float, float]] = (),
        session_only: bool = False,
    ) -> list[Recommendation]:
        """Items for a shopper whose history is ``history`` (item id to strength).

        The recipe evaluated offline and stored with the model: buy-again
        (when ``purchases`` are given), ALS (the shopper's factors solved
        from ``history`` on the spot), item-to-item co-occurrence, content
        (kNN around the shopper's taste vector), trending and popularity are
        fused by weighted reciprocal rank, then maximal marginal relevance
        over the embeddings keeps the list from being one product's variants.
        A shopper with no history gets trending items.

        Parameters
        ----------
        history : mapping of item_id to strength
            The shopper's ratings, likes and views; these items are left out
            when ``filter_already_liked_items``.
        top_k : int
        filter_already_liked_items : bool
        purchases : sequence of (item_id, timestamp, strength), optional
            What the shopper bought; left in the list unless the recipe's
            ``filter_already_bought`` says otherwise.
        session_only : bool
            The history is only what a new shopper looked at (no purchase,
            rating or like): the recipe's new-shopper blend is used instead,
            trending with the co-occurrence and content neighbours of those
            items at ``session_weight``, as evaluated on new shoppers.

        Returns
        -------
        list of Recommendation
            ``sources`` names the lists each item came from.
        """
        recipe = self.models.recipe if self.models is not None else HybridConfig()
        seen = (
            {i for i, s in history.items() if s != 0}
            if filter_already_liked_items
            else set()
        )
        positive = {i: s for i, s in history.items() if s > 0}
        for item_id, _, strength in purchases:
            if strength > 0:
                positive[item_id] = positive.get(item_id, 0.0) + strength
        if recipe.filter_already_bought:
            seen |= {item_id for item_id, _, _ in purchases}
        rankings = self._source_rankings(positive, purchases, seen, recipe)

        if session_only and not purchases:
            rankings.pop("als", None)
            recipe = replace(
                recipe,
                weights={
                    **dict.fromkeys(recipe.weights, 0.0),
                    "trending": 1.0,
                    "co-occurrence": recipe.session_weight,
                    "content": recipe.session_weight,
                },
                mmr_lambda=1.0,
            )
        fused = fuse(rankings, recipe) if positive else []
        if not fused:
            # Nothing personal to go on (or every signal the recipe weighs is
            # silent): the trending list as it is.
            return [
                Recommendation(r.item_id, r.score, ["popularity"], r.product)
                for r in self._trending_recommendations(rankings["trending"], top_k)
            ]
        pool = fused[: max(MMR_POOL, top_k * 2)]
        products = self.backend.fetch([item_id for item_id, _ in pool])
        pool = [(i, s) for i, s in pool if i in products and products[i].available]
        scores = dict(pool)
        try:
            vectors = (
                self.backend.vectors([i for i, _ in pool])
                if recipe.mmr_lambda < 1
                else {}
            )
        except SearchError as exc:
            # Without vectors the fused order stands, undiversified.
            log.debug("for-you without diversification: %s", exc)
            vectors = {}
        picked = maximal_marginal_relevance(pool, vectors, top_k, recipe.mmr_lambda)
        return [
            Recommendation(
                item_id,
                scores[item_id],
                [
                    SOURCE_NAMES.get(name, name)
                    for name, ranking in rankings.items()
                    if item_id in ranking and recipe.weights.get(name, 0) > 0
                ],
                products[item_id],
            )
            for item_id in picked
        ]

    def _trending_recommendations(
        self, ranked: list[str], top_k: int
    ) -> list[Recommendation]:
        products = self.backend.fetch(ranked[:top_k])
        return [
            Recommendation(item_id, 1.0 / (rank + 1), ["popularity"], products[item_id])
            for rank, item_id in enumerate(ranked[:top_k])
            if item_id in products
        ]

    def _source_rankings(
        self,
        positive: Mapping[str, float],
        purchases: Sequence[tuple[str, float, float]],
        seen: set[str],
        recipe: HybridConfig,
    ) -> dict[str, list[str]]:
        """Each single model's candidates, ``CANDIDATES`` deep, best first."""
        rankings: dict[str, list[str]] = {}
        if purchases:
            rankings["buy-again"] = [
                item_id
                for item_id, _ in buy_again(
                    purchases, time.time(), recipe.buy_again_half_life_days
                )
                if item_id not in seen
            ][:CANDIDATES]
        if positive and self.models is not None:
            collaborative = self.models.collaborative
            rankings["als"] = [
                item_id
                for item_id, _ in collaborative.recommend(
                    positive, CANDIDATES, recipe.filter_already_bought, exclude=seen
                )
            ]
            if self.models.cooccurrence is not None:
                rankings["co-occurrence"] = self._cooccurrence(positive, seen, recipe)
        try:
            content = self._content(positive, seen)
        except SearchError as exc:
            # The other signals still answer while the search backend is down.
            log.debug("for-you without content similarity: %s", exc)
            content = None
        if content is not None:
            rankings["content"] = content
        rankings["trending"] = self.trending(CANDIDATES, exclude=seen)
        if self.models is not None and recipe.weights.get("popularity", 0) > 0:
            bestsellers = sorted(
                self.models.popularity.items(), key=lambda pair: (-pair[1], pair[0])
            )
            rankings["popularity"] = [i for i, _ in bestsellers if i not in seen][
                :CANDIDATES
            ]
        return rankings

    def _cooccurrence(
        self, positive: Mapping[str, float], seen: set[str], recipe: HybridConfig
    ) -> list[str]:
        """Items most like the shopper's by who else bought them (implicit's
        cosine neighbours), over the collaborative model's items."""
        collaborative = self.models.collaborative
        row = collaborative.user_items_row(positive)
        if row.nnz == 0:
            return []
        ids, scores = self.models.cooccurrence.recommend(
            0,
            row,
            N=CANDIDATES + len(seen),
            filter_already_liked_items=recipe.filter_already_bought,
        )
        names = collaborative.item_ids
        return [
            names[i]
            for i, s in zip(ids, scores, strict=True)
            if s > 0 and names[i] not in seen
        ][:CANDIDATES]

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
