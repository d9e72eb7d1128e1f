"""The interaction history as columns, for training at the speed of numpy.

Per-event Python loops cost more than the ALS fit itself on a few hundred
thousand purchases; these columnar forms of the event weights, the
confidence matrix and the popularity signals give the same numbers as the
per-event functions in ``recs.collaborative`` and ``recs.popularity``.
"""

from __future__ import annotations

import math
import os
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


def _factorize(values: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values and each value's index among them; a dict does
    in 40 ms what ``np.unique`` on strings does in a second."""
    first_codes: dict[str, int] = {}
    codes = np.fromiter(
        (first_codes.setdefault(v, len(first_codes)) for v in values),
        dtype=np.int64,
        count=len(values),
    )
    labels = np.array(list(first_codes), dtype=object)
    order = np.argsort(labels)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return labels[order], rank[codes]


def _merge_labels(
    labels_a: np.ndarray, codes_a: np.ndarray, labels_b: np.ndarray, codes_b: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    labels, inverse = np.unique(
        np.concatenate([labels_a.astype(str), labels_b.astype(str)]),
        return_inverse=True,
    )
    codes = np.concatenate([inverse[codes_a], inverse[len(labels_a) + codes_b]])
    return labels.astype(object), codes.astype(np.int64)


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
        users, user_codes = _factorize(user_ids)
        items, item_codes = _factorize(item_ids)
        kind_names, kind_codes = _factorize(kinds)
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

    def save(self, path: str, stamp: str) -> None:
        """Write the columns to ``path`` (``.npz``), tagged with ``stamp`` so a
        reader can tell whether they still match their source."""
        temporary = path + ".tmp.npz"
        np.savez(
            temporary,
            users=self.users.astype(str),
            items=self.items.astype(str),
            user_codes=self.user_codes,
            item_codes=self.item_codes,
            kinds=self.kinds,
            weights=self.weights,
            timestamps=self.timestamps,
            stamp=np.array(stamp),
        )
        os.replace(temporary, path)

    @classmethod
    def load(cls, path: str, stamp: str) -> InteractionColumns | None:
        """The columns saved at ``path`` with ``stamp``; None when the file is
        missing or was written for another stamp."""
        try:
            with np.load(path, allow_pickle=False) as data:
                if str(data["stamp"]) != stamp:
                    return None
                return cls(
                    data["users"].astype(object),
                    data["items"].astype(object),
                    data["user_codes"],
                    data["item_codes"],
                    data["kinds"],
                    data["weights"],
                    data["timestamps"],
                )
        except (FileNotFoundError, KeyError, ValueError, OSError):
            return None

    def concat(self, other: InteractionColumns) -> InteractionColumns:
        """These events and ``other``'s, with their id labels merged."""
        if not len(other):
            return self
        if not len(self):
            return other
        users, user_codes = _merge_labels(
            self.users, self.user_codes, other.users, other.user_codes
        )
        items, item_codes = _merge_labels(
            self.items, self.item_codes, other.items, other.item_codes
        )
        return InteractionColumns(
            users,
            items,
            user_codes,
            item_codes,
            np.concatenate([self.kinds, other.kinds]),
            np.concatenate([self.weights, other.weights]),
            np.concatenate([self.timestamps, other.timestamps]),
        )

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
    """Vectorised ``recs.popularity.trending``.

    Scores are natural logarithms of the decayed sums, summed in log space:
    events years older than ``now`` (a historical export beside today's
    feedback) decay below the smallest float, and would otherwise all score
    0 and lose their order.
    """
    strengths = columns.strengths()
    positive = strengths > 0
    if not positive.any():
        return []
    timestamps = columns.timestamps[positive]
    if now is None:
        now = float(timestamps.max())
    decay = math.log(2) / (half_life_days * 86400.0)
    ages = np.maximum(0.0, now - timestamps)
    log_weights = np.log(strengths[positive]) - decay * ages
    codes = columns.item_codes[positive]

    # log(sum(exp(w))) per item, shifted by the item's largest w.
    peak = np.full(len(columns.items), -np.inf)
    np.maximum.at(peak, codes, log_weights)
    sums = np.bincount(
        codes,
        weights=np.exp(log_weights - peak[codes]),
        minlength=len(columns.items),
    )
    seen = np.flatnonzero(sums > 0)
    scores = peak[seen] + np.log(sums[seen])
    order = sorted(range(len(seen)), key=lambda n: (-scores[n], columns.items[seen[n]]))
    return [(str(columns.items[seen[n]]), float(scores[n])) for n in order]


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
