"""Content-based signals: a shopper's taste as a point in embedding space."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np


def profile_vector(
    history: Mapping[str, float],
    vector_of: Callable[[str], np.ndarray | None],
) -> np.ndarray | None:
    """The strength-weighted mean of the embeddings of items in ``history``.

    Parameters
    ----------
    history : mapping of item id to strength
        Positive evidence only; zero and negative strengths are ignored.
    vector_of : callable
        Looks up an item's embedding, None when the item is unknown.

    Returns
    -------
    numpy.ndarray or None
        A unit vector, or None when no item in ``history`` has an embedding.
    """
    total = None
    for item_id, strength in history.items():
        if strength <= 0:
            continue
        vector = vector_of(item_id)
        if vector is None:
            continue
        weighted = strength * np.asarray(vector, dtype=np.float32)
        total = weighted if total is None else total + weighted
    if total is None:
        return None
    norm = float(np.linalg.norm(total))
    return total / norm if norm > 0 else None
