"""The interaction history as columns, for training at the speed of numpy.

Per-event Python loops cost more than the ALS fit itself on a few hundred
thousand purchases; these columnar forms of the event weights, the
confidence matrix and the popularity signals give the same numbers as the
per-event functions in ``recs.collaborative`` and ``recs.popularity``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix, csr_matrix

from indexer.catalog import Interaction
from recs.collaborative import (
    LIKE_STRENGTH,
    RATING_STRENGTH,
    REVIEW_STRENGTH,
    VIEW_STRENGTH,
)

KINDS = ("purchase", "like", "rating", "view", "review")


@dataclass
class InteractionColumns:
    """Events as parallel arrays: ``user_codes`` index ``users`` and
    ``item_codes`` index ``items``."""

    users: np.ndarray
    items: np.ndarray
    user_codes: np.ndarray
    item_codes: np.ndarray
    kinds: np.ndarray  # codes into KINDS
    weights: np.ndarray
    timestamps: np.ndarray

    @classmethod
    def from_rows(
        cls, rows: Sequence[tuple[str, str, str, float, float]]
    ) -> InteractionColumns:
        """From ``(user_id, item_id, kind, weight, timestamp)`` tuples.

        Raises
        ------
        ValueError
            When a row's kind is not one of ``KINDS``.
        """
        if not rows:
            empty = np.zeros(0)
            return cls(
                np.array([], dtype=object),
                np.array([], dtype=object),
                empty.astype(np.int64),
                empty.astype(np.int64),
                empty.astype(np.int8),
                empty,
                empty,
            )
        user_ids, item_ids, kinds, weights, timestamps = zip(*rows, strict=True)
        users, user_codes = np.unique(
            np.array(user_ids, dtype=object), return_inverse=True
        )
        items, item_codes = np.unique(
            np.array(item_ids, dtype=object), return_inverse=True
        )
        kind_names, kind_codes = np.unique(
            np.array(kinds, dtype=object), return_inverse=True
        )
        unknown = sorted(set(kind_names) - set(KINDS))
        if unknown:
            raise ValueError(
                f"unknown interaction kind(s) {unknown}; expected one of {KINDS}"
            )
        lookup = np.array([KINDS.index(k) for k in kind_names], dtype=np.int8)
        return cls(
            users,
            items,
            user_codes.astype(np.int64),
            item_codes.astype(np.int64),
            lookup[kind_codes],
            np.asarray(weights, dtype=np.float64),
            np.asarray(timestamps, dtype=np.float64),
        )

    @classmethod
    def from_interactions(
        cls, interactions: Iterable[Interaction]
    ) -> InteractionColumns:
        return cls.from_rows(
            [
                (i.user_id, i.item_id, i.kind, i.weight, i.timestamp)
                for i in interactions
            ]
        )

    def __len__(self) -> int:
        return len(self.weights)

    def strengths(self) -> np.ndarray:
        """``event_strength`` of every event at once; negative is a dislike."""
        out = np.empty(len(self), dtype=np.float64)
        kinds, weights = self.kinds, self.weights
        purchase = kinds == KINDS.index("purchase")
        out[purchase] = 1.0 + 0.25 * np.log1p(np.maximum(weights[purchase], 0.0))
        like = kinds == KINDS.index("like")
        out[like] = np.where(weights[like] > 0, LIKE_STRENGTH, -1.0)
        rating = kinds == KINDS.index("rating")
        stars = np.rint(weights[rating]).astype(np.int64)
        by_stars = np.full(7, -1.0)
        for star, strength in RATING_STRENGTH.items():
            by_stars[star] = strength
        out[rating] = by_stars[np.clip(stars, 0, 6)]
        out[kinds == KINDS.index("view")] = VIEW_STRENGTH
        out[kinds == KINDS.index("review")] = REVIEW_STRENGTH
        return out

    def pair_strengths(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Summed strength per (user code, item code) pair, disliked pairs
        dropped; as ``user_item_strengths`` does per event."""
        strengths = self.strengths()
        n_items = max(1, len(self.items))
        pairs = self.user_codes * n_items + self.item_codes
        unique_pairs, inverse = np.unique(pairs, return_inverse=True)
        positive = np.where(strengths > 0, strengths, 0.0)
        totals = np.bincount(inverse, weights=positive, minlength=len(unique_pairs))
        disliked = np.zeros(len(unique_pairs), dtype=bool)
        disliked[inverse[strengths < 0]] = True
        keep = ~disliked & (totals > 0)
        kept = unique_pairs[keep]
        return kept // n_items, kept % n_items, totals[keep]


def confidence_matrix(
    columns: InteractionColumns, item_ids: Sequence[str]
) -> tuple[csr_matrix, list[str]]:
    """Users by catalog items, ``log1p`` of the summed strength per pair.

    Items not in ``item_ids`` are dropped; users left with nothing are too.

    Returns
    -------
    (matrix, user_ids)
    """
    rows, items, totals = columns.pair_strengths()
    position = {item_id: i for i, item_id in enumerate(item_ids)}
    catalog_column = np.array(
        [position.get(item_id, -1) for item_id in columns.items], dtype=np.int64
    )
    cols = catalog_column[items] if len(items) else items
    known = cols >= 0
    rows, cols, totals = rows[known], cols[known], totals[known]
    active, user_rows = np.unique(rows, return_inverse=True)
    matrix = coo_matrix(
        (np.log1p(totals).astype(np.float32), (user_rows, cols)),
        shape=(len(active), len(item_ids)),
    ).tocsr()
    return matrix, [str(u) for u in columns.users[active]]


def trending_scores(
    columns: InteractionColumns, now: float | None, half_life_days: float
) -> list[tuple[str, float]]:
    """Vectorised ``recs.popularity.trending``."""
    strengths = columns.strengths()
    positive = strengths > 0
    if not positive.any():
        return []
    timestamps = columns.timestamps[positive]
    if now is None:
        now = float(timestamps.max())
    decay = math.log(2) / (half_life_days * 86400.0)
    ages = np.maximum(0.0, now - timestamps)
    scores = np.bincount(
        columns.item_codes[positive],
        weights=strengths[positive] * np.exp(-decay * ages),
        minlength=len(columns.items),
    )
    order = sorted(
        (i for i in range(len(scores)) if scores[i] > 0),
        key=lambda i: (-scores[i], columns.items[i]),
    )
    return [(str(columns.items[i]), float(scores[i])) for i in order]


def popularity_counts(columns: InteractionColumns) -> dict[str, int]:
    """Vectorised ``recs.popularity.popularity``: distinct positive shoppers."""
    strengths = columns.strengths()
    positive = strengths > 0
    n_items = max(1, len(columns.items))
    pairs = np.unique(
        columns.user_codes[positive] * n_items + columns.item_codes[positive]
    )
    counts = np.bincount(pairs % n_items, minlength=len(columns.items))
    return {str(columns.items[i]): int(c) for i, c in enumerate(counts) if c}
