"""Frequently bought together: how often two products share a basket."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

import numpy as np
from scipy.sparse import csr_matrix

from indexer.catalog import Interaction

log = logging.getLogger(__name__)

# A pair seen in a single basket is as likely chance as habit.
MIN_SHARED_BASKETS = 2


def baskets(interactions: Iterable[Interaction]) -> list[set[str]]:
    """Purchases grouped into baskets.

    The interaction history carries no invoice number, but every line of one
    retail invoice has the same customer and the same timestamp, so
    ``(user_id, timestamp)`` identifies a basket.

    Parameters
    ----------
    interactions : iterable of Interaction
        Only ``purchase`` events are used.

    Returns
    -------
    list of set of str
        The item ids of each basket with two or more distinct products.
    """
    grouped: dict[tuple[str, float], set[str]] = {}
    for interaction in interactions:
        if interaction.kind == "purchase":
            key = (interaction.user_id, interaction.timestamp)
            grouped.setdefault(key, set()).add(interaction.item_id)
    return [items for items in grouped.values() if len(items) > 1]


class BasketIndex:
    """Co-occurrence counts of products over every basket.

    Parameters
    ----------
    item_ids : sequence of str
        Row and column order of ``counts``.
    counts : scipy.sparse.csr_matrix
        ``counts[i, j]`` is the number of baskets holding both item ``i`` and
        item ``j``; the diagonal holds each item's basket count.

    Examples
    --------
    >>> index = BasketIndex.from_interactions(store.interactions())
    >>> index.bought_together("71053", top_k=4)
    [('21733', 12), ...]
    """

    def __init__(self, item_ids: list[str], counts: csr_matrix):
        self.item_ids = item_ids
        self.item_index = {item_id: i for i, item_id in enumerate(item_ids)}
        self.counts = counts

    @classmethod
    def from_interactions(cls, interactions: Iterable[Interaction]) -> BasketIndex:
        """Count every pair of products bought in the same basket.

        Parameters
        ----------
        interactions : iterable of Interaction

        Returns
        -------
        BasketIndex
        """
        started = time.perf_counter()
        grouped = baskets(interactions)
        item_ids = sorted({item_id for basket in grouped for item_id in basket})
        item_index = {item_id: i for i, item_id in enumerate(item_ids)}

        # One row per basket, one column per item; the product of its
        # transpose with itself counts the baskets each pair shares.
        rows, cols = [], []
        for row, basket in enumerate(grouped):
            for item_id in basket:
                rows.append(row)
                cols.append(item_index[item_id])
        incidence = csr_matrix(
            (np.ones(len(rows), dtype=np.int32), (rows, cols)),
            shape=(len(grouped), len(item_ids)),
        )
        counts = (incidence.T @ incidence).tocsr()
        log.debug(
            "counted pairs of %d items over %d baskets in %.2fs",
            len(item_ids),
            len(grouped),
            time.perf_counter() - started,
        )
        return cls(item_ids, counts)

    def bought_together(
        self,
        item_id: str,
        top_k: int,
        min_shared: int = MIN_SHARED_BASKETS,
    ) -> list[tuple[str, int]]:
        """Products most often in the same basket as ``item_id``.

        Parameters
        ----------
        item_id : str
        top_k : int
            At most this many products.
        min_shared : int, default 2
            Pairs sharing fewer baskets are left out as chance.

        Returns
        -------
        list of (item_id, shared_baskets)
            Most shared first; ties go to the rarer product, which says more
            about this one than a bestseller that is in every basket.
        """
        row = self.item_index.get(item_id)
        if row is None:
            return []
        start, stop = self.counts.indptr[row], self.counts.indptr[row + 1]
        columns = self.counts.indices[start:stop]
        shared = self.counts.data[start:stop]
        diagonal = self.counts.diagonal()
        keep = (columns != row) & (shared >= min_shared)
        columns, shared = columns[keep], shared[keep]
        order = np.lexsort((diagonal[columns], -shared))[:top_k]
        return [(self.item_ids[columns[i]], int(shared[i])) for i in order]
