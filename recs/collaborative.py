"""Collaborative filtering: implicit-feedback ALS over the interaction history."""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from implicit.cpu.als import AlternatingLeastSquares
from scipy.sparse import csr_matrix
from threadpoolctl import threadpool_limits

from indexer.catalog import Interaction

log = logging.getLogger(__name__)

# How much one event says about a shopper's taste, in purchase units.
LIKE_STRENGTH = 2.0
VIEW_STRENGTH = 0.2
REVIEW_STRENGTH = 0.5
# A rating of 3 is lukewarm; 1 and 2 are a dislike and remove the item.
RATING_STRENGTH = {5: 3.0, 4: 2.0, 3: 0.5}


def event_strength(interaction: Interaction) -> float:
    """Evidence of interest carried by one event; negative means a dislike.

    A purchase counts 1 plus a little for the quantity bought (wholesale
    buyers order dozens, which says more about their shop than their taste).
    """
    kind = interaction.kind
    if kind == "purchase":
        return 1.0 + 0.25 * math.log1p(max(interaction.weight, 0.0))
    if kind == "like":
        return LIKE_STRENGTH if interaction.weight > 0 else -1.0
    if kind == "rating":
        stars = int(round(interaction.weight))
        return RATING_STRENGTH.get(stars, -1.0)
    if kind == "view":
        return VIEW_STRENGTH
    if kind == "review":
        return REVIEW_STRENGTH
    raise ValueError(
        f"unknown interaction kind {kind!r}; "
        "expected purchase, like, rating, view or review"
    )


def user_strengths(interactions: Iterable[Interaction]) -> dict[str, dict[str, float]]:
    """Per user, per item: summed strength; disliked items are dropped."""
    totals: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    disliked: set[tuple[str, str]] = set()
    for interaction in interactions:
        strength = event_strength(interaction)
        if strength < 0:
            disliked.add((interaction.user_id, interaction.item_id))
        else:
            totals[interaction.user_id][interaction.item_id] += strength
    for user_id, item_id in disliked:
        totals[user_id].pop(item_id, None)
    return {user: dict(items) for user, items in totals.items() if items}


def confidence(strength: float) -> float:
    """Hu, Koren and Volinsky's log scaling; ALS multiplies it by ``alpha``."""
    return math.log1p(strength)


@dataclass
class TrainingParams:
    factors: int = 64
    regularization: float = 0.05
    alpha: float = 10.0
    iterations: int = 15
    random_state: int = 42

    def new_model(self) -> AlternatingLeastSquares:
        """An unfitted ALS model with these parameters."""
        return AlternatingLeastSquares(
            factors=self.factors,
            regularization=self.regularization,
            alpha=self.alpha,
            iterations=self.iterations,
            random_state=self.random_state,
        )


class CollaborativeModel:
    """A trained ALS model with the id maps that give its rows meaning.

    Parameters
    ----------
    model : AlternatingLeastSquares
        Fitted model; rows of ``user_factors`` follow ``user_ids`` and rows of
        ``item_factors`` follow ``item_ids``.
    """

    def __init__(
        self,
        model: AlternatingLeastSquares,
        user_ids: Sequence[str],
        item_ids: Sequence[str],
        loss: float | None = None,
    ):
        self.model = model
        self.user_ids = list(user_ids)
        self.item_ids = list(item_ids)
        self.user_index = {user_id: i for i, user_id in enumerate(self.user_ids)}
        self.item_index = {item_id: i for i, item_id in enumerate(self.item_ids)}
        self.loss = loss

    @classmethod
    def train(
        cls,
        interactions,
        item_ids: Sequence[str],
        params: TrainingParams | None = None,
        show_progress: bool = True,
    ) -> CollaborativeModel:
        """Fit ALS on ``interactions`` over the catalog ``item_ids``.

        Parameters
        ----------
        interactions : InteractionColumns or iterable of Interaction
            Purchases, ratings, likes and views; unknown items are ignored.
        item_ids : sequence of str
            Every product in the catalog, so that items nobody bought yet still
            have a (zero) factor row.
        params : TrainingParams, optional

        Returns
        -------
        CollaborativeModel
        """
        from implicit.cpu import _als

        from recs.interactions import InteractionColumns, confidence_matrix

        params = params or TrainingParams()
        if not isinstance(interactions, InteractionColumns):
            interactions = InteractionColumns.from_interactions(interactions)
        user_items, user_ids = confidence_matrix(interactions, item_ids)
        if user_items.nnz == 0:
            # A catalog with no shopper history yet: nothing to factorise.
            # Recommendations then come from content and popularity alone.
            log.warning(
                "no interactions with catalog products: the collaborative model "
                "is empty until shoppers buy, rate or like something"
            )
            model = params.new_model()
            model.item_factors = np.zeros((len(item_ids), params.factors), np.float32)
            model.user_factors = np.zeros((0, params.factors), np.float32)
            return cls(model, [], item_ids, None)

        # Fit. ALS runs its own threads; BLAS threads on top only contend.
        started = time.perf_counter()
        with threadpool_limits(1, "blas"):
            model = params.new_model()
            model.fit(user_items, show_progress=show_progress)
            # The loss once at the end, not after every iteration as
            # calculate_training_loss would: it costs a third of an iteration.
            loss = float(
                _als.calculate_loss(
                    (user_items * params.alpha).astype(np.float32),
                    model.user_factors,
                    model.item_factors,
                    params.regularization,
                )
            )
        elapsed = time.perf_counter() - started
        log.info(
            "trained ALS on %d users x %d items (%d non-zero) in %.1fs, loss %.5f",
            len(user_ids),
            len(item_ids),
            user_items.nnz,
            elapsed,
            loss,
        )
        return cls(model, user_ids, item_ids, loss)

    # Persistence

    def save(self, directory: str) -> None:
        os.makedirs(directory, exist_ok=True)
        self.model.save(os.path.join(directory, "als.npz"))
        with open(os.path.join(directory, "ids.json"), "w", encoding="utf-8") as out:
            json.dump(
                {
                    "user_ids": self.user_ids,
                    "item_ids": self.item_ids,
                    "loss": self.loss,
                },
                out,
            )

    @classmethod
    def load(cls, directory: str) -> CollaborativeModel:
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares.load(os.path.join(directory, "als.npz"))
        with open(os.path.join(directory, "ids.json"), encoding="utf-8") as handle:
            ids = json.load(handle)
        return cls(model, ids["user_ids"], ids["item_ids"], ids.get("loss"))

    # Recommending

    def user_items_row(self, history: Mapping[str, float]) -> csr_matrix:
        """One shopper's history as a confidence row over the model's items."""
        cols, data = [], []
        for item_id, strength in history.items():
            col = self.item_index.get(item_id)
            if col is not None and strength > 0:
                cols.append(col)
                data.append(confidence(strength))
        return csr_matrix(
            (np.array(data, dtype=np.float32), (np.zeros(len(cols), dtype=int), cols)),
            shape=(1, len(self.item_ids)),
        )

    def recommend(
        self,
        history: Mapping[str, float],
        top_k: int,
        filter_already_liked_items: bool = True,
        exclude: Iterable[str] = (),
    ) -> list[tuple[str, float]]:
        """Items for a shopper with ``history`` (item id to strength).

        The shopper's factors are solved from ``history`` on the spot, so
        feedback given a second ago counts without retraining the model.
        """
        user_items = self.user_items_row(history)
        if user_items.nnz == 0 or not self.user_ids:
            return []
        excluded = [self.item_index[i] for i in exclude if i in self.item_index]
        ids, scores = self.model.recommend(
            0,
            user_items,
            N=top_k,
            filter_already_liked_items=filter_already_liked_items,
            filter_items=np.array(excluded, dtype=np.int32) if excluded else None,
            recalculate_user=True,
        )
        return [
            (self.item_ids[i], float(s))
            for i, s in zip(ids, scores, strict=True)
            if np.isfinite(s)
        ]

    def similar_items(self, item_id: str, top_k: int) -> list[tuple[str, float]]:
        """Items bought by the same shoppers as ``item_id`` ("customers also
        bought"); empty when nobody has bought it yet."""
        col = self.item_index.get(item_id)
        if col is None or not np.any(self.model.item_factors[col]):
            return []
        ids, scores = self.model.similar_items(col, N=top_k + 1)
        return [
            (self.item_ids[i], float(s))
            for i, s in zip(ids, scores, strict=True)
            if i != col and s > 0
        ][:top_k]


def fit_cooccurrence(user_items: csr_matrix, neighbours: int):
    """implicit's item-to-item cosine model over ``user_items``.

    Parameters
    ----------
    user_items : scipy.sparse.csr_matrix
        Users by items, confidence values.
    neighbours : int
        Most similar items kept per item.

    Returns
    -------
    implicit.nearest_neighbours.CosineRecommender
    """
    import warnings

    from implicit.nearest_neighbours import CosineRecommender
    from implicit.utils import ParameterWarning

    model = CosineRecommender(K=neighbours)
    with warnings.catch_warnings():
        # CosineRecommender.fit normalises into a COO matrix and hands that to
        # its own base class, which then warns that it wanted CSR.
        warnings.simplefilter("ignore", ParameterWarning)
        model.fit(user_items.tocsr(), show_progress=False)
    return model
