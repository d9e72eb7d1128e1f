"""Popularity signals: what many shoppers buy, and what is rising now."""

from __future__ import annotations

DAY = 86400.0
TRENDING_HALF_LIFE_DAYS = 14.0


def _columns(interactions):
    from recs.interactions import InteractionColumns

    if isinstance(interactions, InteractionColumns):
        return interactions
    return InteractionColumns.from_interactions(interactions)


def popularity(interactions) -> dict[str, int]:
    """Distinct shoppers with a positive interaction, per item.

    ``interactions`` is an ``InteractionColumns`` or an iterable of
    ``Interaction``.
    """
    from recs.interactions import popularity_counts

    return popularity_counts(_columns(interactions))


def trending(
    interactions,
    now: float | None = None,
    half_life_days: float = TRENDING_HALF_LIFE_DAYS,
) -> list[tuple[str, float]]:
    """Items ranked by interest that decays with age.

    Each positive event adds its strength times ``0.5 ** (age / half_life)``.
    ``now`` defaults to the newest event, so a historical export still has a
    sensible "now".

    Returns
    -------
    list of (item_id, score)
        Best first; the score is the natural logarithm of the decayed sum.
    """
    from recs.interactions import trending_scores

    return trending_scores(_columns(interactions), now, half_life_days)
