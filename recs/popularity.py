"""Popularity signals: what many shoppers buy, and what is rising now."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable

from indexer.catalog import Interaction
from recs.collaborative import event_strength

DAY = 86400.0
TRENDING_HALF_LIFE_DAYS = 14.0


def popularity(interactions: Iterable[Interaction]) -> dict[str, int]:
    """Distinct shoppers with a positive interaction, per item."""
    shoppers: dict[str, set[str]] = defaultdict(set)
    for interaction in interactions:
        if event_strength(interaction) > 0:
            shoppers[interaction.item_id].add(interaction.user_id)
    return {item_id: len(users) for item_id, users in shoppers.items()}


def trending(
    interactions: Iterable[Interaction],
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
        Best first.
    """
    events = [i for i in interactions if event_strength(i) > 0]
    if not events:
        return []
    if now is None:
        now = max(i.timestamp for i in events)
    decay = math.log(2) / (half_life_days * DAY)
    scores: dict[str, float] = defaultdict(float)
    for event in events:
        age = max(0.0, now - event.timestamp)
        scores[event.item_id] += event_strength(event) * math.exp(-decay * age)
    return sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))
