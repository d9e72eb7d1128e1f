"""Offline evaluation: train on the past, score what shoppers did next."""

from __future__ import annotations

import logging
import math
import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tqdm import tqdm

from indexer.catalog import Interaction
from recs.collaborative import CollaborativeModel, TrainingParams, user_strengths
from recs.model_store import TrainedModels
from recs.popularity import popularity, trending
from recs.recommender import Recommender

log = logging.getLogger(__name__)


def recall_at_k(recommended: Sequence[str], relevant: set[str], k: int) -> float:
    """Share of ``relevant`` found in the first ``k`` recommendations,
    capped so a perfect list scores 1 even when more than ``k`` are relevant."""
    if not relevant:
        return 0.0
    hits = sum(1 for item in recommended[:k] if item in relevant)
    return hits / min(k, len(relevant))


def ndcg_at_k(recommended: Sequence[str], relevant: set[str], k: int) -> float:
    """Normalised discounted cumulative gain with binary relevance."""
    dcg = sum(
        1.0 / math.log2(rank + 2)
        for rank, item in enumerate(recommended[:k])
        if item in relevant
    )
    ideal = sum(1.0 / math.log2(rank + 2) for rank in range(min(k, len(relevant))))
    return dcg / ideal if ideal else 0.0


def time_split(
    interactions: Sequence[Interaction], test_share: float = 0.2, min_items: int = 5
) -> tuple[list[Interaction], dict[str, set[str]]]:
    """Per shopper, hold out the items first met in the last ``test_share`` of
    their history; returns the training events and the held-out items."""
    first_seen: dict[str, dict[str, float]] = defaultdict(dict)
    for event in sorted(interactions, key=lambda e: e.timestamp):
        first_seen[event.user_id].setdefault(event.item_id, event.timestamp)
    held_out: dict[str, set[str]] = {}
    for user_id, items in first_seen.items():
        if len(items) < min_items:
            continue
        ordered = sorted(items, key=items.get)
        cut = max(1, int(len(ordered) * test_share))
        held_out[user_id] = set(ordered[-cut:])
    train = [e for e in interactions if e.item_id not in held_out.get(e.user_id, ())]
    return train, held_out


@dataclass
class EvaluationReport:
    top_k: int
    users: int
    scores: dict[str, dict[str, float]] = field(default_factory=dict)

    def table(self) -> str:
        k = self.top_k
        few = " - too few for reliable figures" if self.users < 50 else ""
        lines = [
            f"Evaluated on {self.users} shoppers (time split, last 20% held out)" + few,
            f"{'recommender':<16}{f'recall@{k}':>12}{f'ndcg@{k}':>12}",
        ]
        for name, values in self.scores.items():
            lines.append(
                f"{name:<16}{values['recall_at_k']:>12.4f}{values['ndcg_at_k']:>12.4f}"
            )
        return "\n".join(lines)


def evaluate(
    interactions: Sequence[Interaction],
    item_ids: Sequence[str],
    backend,
    top_k: int = 10,
    max_users: int = 500,
    seed: int = 7,
) -> EvaluationReport:
    """Compare popularity, ALS alone and the fused for-you list.

    Parameters
    ----------
    interactions : sequence of Interaction
    item_ids : sequence of str
        The catalog.
    backend : SearchBackend
        Gives the content signal its embeddings.
    top_k : int
    max_users : int
        Shoppers sampled for scoring, to bound the run time.
    """
    train, held_out = time_split(interactions)
    model = CollaborativeModel.train(
        train, item_ids, TrainingParams(), show_progress=False
    )
    ranked = [item for item, _ in trending(train)]
    models = TrainedModels(model, ranked, popularity(train), 0.0, "evaluation")
    recommender = Recommender(backend, models)
    histories = user_strengths(train)

    users = sorted(u for u in held_out if u in histories)
    if not users:
        raise ValueError(
            "not enough history to evaluate: no shopper has 5 or more distinct "
            "items to split into past and future"
        )
    random.Random(seed).shuffle(users)
    users = users[:max_users]

    systems: dict[str, Callable[[dict[str, float]], list[str]]] = {
        "popularity": lambda history: [i for i in ranked if i not in history][:top_k],
        "als": lambda history: [i for i, _ in model.recommend(history, top_k)],
        "fused (for-you)": lambda history: [
            r.item_id for r in recommender.for_you(history, top_k)
        ],
    }
    totals = {name: {"recall_at_k": 0.0, "ndcg_at_k": 0.0} for name in systems}
    for user_id in tqdm(users, desc="evaluating", unit="shopper"):
        history, relevant = histories[user_id], held_out[user_id]
        for name, recommend in systems.items():
            recommended = recommend(history)
            totals[name]["recall_at_k"] += recall_at_k(recommended, relevant, top_k)
            totals[name]["ndcg_at_k"] += ndcg_at_k(recommended, relevant, top_k)
    report = EvaluationReport(top_k, len(users))
    for name, sums in totals.items():
        report.scores[name] = {m: v / max(1, len(users)) for m, v in sums.items()}
    log.info("evaluation over %d shoppers done", len(users))
    return report


def evaluate_store(settings, top_k: int = 10) -> EvaluationReport:
    """Evaluate on the loaded catalog of ``settings``."""
    from indexer.config import make_backend
    from indexer.store import CatalogStore

    store = CatalogStore(settings.catalog_path)
    try:
        interactions = store.interactions()
        items = [p.item_id for p in store.products()]
    finally:
        store.close()
    return evaluate(interactions, items, make_backend(settings), top_k)
