"""Offline evaluation on a temporal split: train on the past, score what came next.

The history is cut twice by time. Everything before the *test cut* trains
the models that are reported; what each shopper did after it is what they
are scored on. Tuning never sees that period: it trains on what came before
the *validation cut* and scores the weeks between the two cuts, and only the
configuration it chose is then trained on everything before the test cut.

Seven recommenders are compared in one run: popularity, trending (decayed
popularity), buy-again (the shopper's own purchases), content (a profile of
the embeddings of what they bought), item-to-item co-occurrence (implicit's
cosine neighbours), ALS and the hybrid (weighted reciprocal rank fusion of
the others, then maximal marginal relevance over the embeddings). New
shoppers and new products are scored on their own, on the shoppers and
products that first appear after the test cut.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from implicit.evaluation import ranking_metrics_at_k
from scipy.sparse import csr_matrix
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from recs.baskets import baskets
from recs.collaborative import fit_cooccurrence
from recs.hybrid import (
    HybridConfig,
    buy_again,
    fuse,
    maximal_marginal_relevance,
)
from recs.interactions import (
    KINDS,
    InteractionColumns,
    confidence_matrix,
    popularity_counts,
    trending_scores,
)
from recs.metrics import (
    intra_list_similarity,
    ndcg_at_k,
    ranking_metrics,
    recall_at_k,
)

log = logging.getLogger(__name__)

__all__ = ["ndcg_at_k", "recall_at_k", "evaluate", "EvaluationResult"]

SINGLE_MODELS = (
    "popularity",
    "trending",
    "buy-again",
    "content",
    "co-occurrence",
    "als",
)
# Share of the events, by time, in the test period; the validation period
# just before it has as many.
TEST_SHARE = 0.1
# Fused candidates that maximal marginal relevance chooses among.
MMR_POOL = 50
# The most diverse MMR setting whose validation NDCG is within this share of
# the undiversified list is kept.
MMR_TOLERANCE = 0.02

# Existing products whose buyers stand in for a new product's.
COLD_ITEM_NEIGHBOURS = 20

# Tuning grids, searched one setting at a time (coordinate ascent).
ALS_GRID = {
    "factors": [32, 64, 128, 256],
    "regularization": [0.01, 0.1, 1.0],
    "alpha": [0.25, 1.0, 5.0, 20.0, 40.0],
    "iterations": [10, 20],
}
NEIGHBOURS_GRID = [5, 10, 20, 50, 200]
TRENDING_GRID = [3.0, 7.0, 14.0, 30.0, 90.0]
BUY_AGAIN_GRID = [30.0, 90.0, 365.0, 3650.0]
RRF_GRID = [5, 20, 60, 120]
WEIGHT_GRID = [0.0, 0.25, 0.5, 1.0, 2.0, 4.0]
MMR_GRID = [1.0, 0.9, 0.8, 0.7, 0.5]
SESSION_GRID = [0.0, 0.1, 0.25, 0.5, 1.0]


@dataclass
class EvaluationData:
    """What an evaluation runs on.

    Parameters
    ----------
    name : str
        Names the report folder (``online-retail``).
    columns : InteractionColumns
        Every event, any order.
    item_ids : list of str
        The catalog.
    vectors : numpy.ndarray or None
        Unit-length embeddings, one row per ``item_ids`` entry; without them
        the content model and diversity are left out.
    """

    name: str
    columns: InteractionColumns
    item_ids: list[str]
    vectors: np.ndarray | None = None

    def __post_init__(self):
        self.item_index = {item_id: i for i, item_id in enumerate(self.item_ids)}

    def vector_of(self, item_id: str) -> np.ndarray | None:
        if self.vectors is None:
            return None
        row = self.item_index.get(item_id)
        return None if row is None else self.vectors[row]


def _subset(columns: InteractionColumns, mask: np.ndarray) -> InteractionColumns:
    return InteractionColumns(
        columns.users,
        columns.items,
        columns.user_codes[mask],
        columns.item_codes[mask],
        columns.kinds[mask],
        columns.weights[mask],
        columns.timestamps[mask],
    )


def time_cutoffs(
    timestamps: np.ndarray, test_share: float = TEST_SHARE
) -> tuple[float, float]:
    """The validation and test cuts: the test period holds the last
    ``test_share`` of the events, the validation period as many before it.

    Returns
    -------
    (validation_cut, test_cut)
        Unix times.
    """
    if not 0 < test_share < 0.5:
        raise ValueError(f"test_share must be between 0 and 0.5, got {test_share}")
    return (
        float(np.quantile(timestamps, 1 - 2 * test_share)),
        float(np.quantile(timestamps, 1 - test_share)),
    )


@dataclass
class Split:
    """Training history before ``cut`` and what followed it until ``end``.

    ``user_items`` has one row per training shopper (``user_ids``) and one
    column per catalog item; ``relevant`` holds, per shopper with a training
    history, the catalog items they bought (or rated 3 or more, liked) in
    the period; ``new_users`` the same for shoppers first seen in it, as
    ``(session, later)`` item sets.
    """

    cut: float
    end: float
    train: InteractionColumns
    user_items: csr_matrix
    user_ids: list[str]
    relevant: dict[str, set[str]]
    purchases: dict[str, list[tuple[str, float, float]]]
    new_users: dict[str, tuple[set[str], set[str]]] = field(default_factory=dict)
    new_items: set[str] = field(default_factory=set)

    def __post_init__(self):
        self.user_row = {user_id: i for i, user_id in enumerate(self.user_ids)}


def make_split(data: EvaluationData, cut: float, end: float) -> Split:
    """Cut ``data`` at ``cut``; the period scored runs to ``end`` (exclusive,
    but the newest event is always inside when ``end`` is infinite).

    Parameters
    ----------
    data : EvaluationData
    cut, end : float
        Unix times.

    Returns
    -------
    Split
    """
    columns = data.columns
    timestamps = columns.timestamps
    train = _subset(columns, timestamps < cut)
    future = _subset(columns, (timestamps >= cut) & (timestamps < end))
    user_items, user_ids = confidence_matrix(train, data.item_ids)
    user_row = {user_id: i for i, user_id in enumerate(user_ids)}

    # What each shopper did after the cut (dislikes and unknown items dropped)
    relevant: dict[str, set[str]] = defaultdict(set)
    arriving: dict[str, set[str]] = defaultdict(set)
    users, items, _ = future.pair_strengths()
    for user_code, item_code in zip(users, items, strict=True):
        user_id, item_id = str(columns.users[user_code]), str(columns.items[item_code])
        if item_id not in data.item_index:
            continue
        (relevant if user_id in user_row else arriving)[user_id].add(item_id)

    # Their own purchases before the cut, for buy-again
    strengths = train.strengths()
    wanted_codes = np.array(
        sorted(i for i, u in enumerate(columns.users) if str(u) in relevant),
        dtype=np.int64,
    )
    mine = np.isin(train.user_codes, wanted_codes) & (strengths > 0)
    purchases: dict[str, list[tuple[str, float, float]]] = defaultdict(list)
    for user_code, item_code, timestamp, strength in zip(
        train.user_codes[mine],
        train.item_codes[mine],
        train.timestamps[mine],
        strengths[mine],
        strict=True,
    ):
        purchases[str(columns.users[user_code])].append(
            (str(columns.items[item_code]), float(timestamp), float(strength))
        )

    # New shoppers: their first basket (or visit) is the session they arrive
    # with; what they took later is what a recommender could have offered.
    new_users: dict[str, tuple[set[str], set[str]]] = {}
    if arriving:
        future_strengths = future.strengths()
        by_user: dict[str, dict[float, set[str]]] = defaultdict(
            lambda: defaultdict(set)
        )
        for user_code, item_code, timestamp, strength in zip(
            future.user_codes,
            future.item_codes,
            future.timestamps,
            future_strengths,
            strict=True,
        ):
            user_id = str(columns.users[user_code])
            item_id = str(columns.items[item_code])
            if strength > 0 and user_id in arriving and item_id in data.item_index:
                by_user[user_id][float(timestamp)].add(item_id)
        for user_id, visits in by_user.items():
            if len(visits) < 2:
                continue
            first = min(visits)
            session = visits[first]
            later = set().union(*(v for t, v in visits.items() if t != first))
            later -= session
            if later:
                new_users[user_id] = (session, later)

    # New products: bought after the cut, never before it
    seen_before = set(np.asarray(columns.items)[np.unique(train.item_codes)].tolist())
    new_items = {
        item_id
        for wanted in relevant.values()
        for item_id in wanted
        if item_id not in seen_before
    }
    return Split(
        cut,
        end,
        train,
        user_items,
        user_ids,
        dict(relevant),
        dict(purchases),
        new_users,
        new_items,
    )


class FittedModels:
    """The single models of ``config``, trained on one split's history."""

    def __init__(self, data: EvaluationData, split: Split, config: HybridConfig):
        self.data = data
        self.split = split
        self.config = config
        self.popularity = [
            item
            for item, _ in sorted(
                popularity_counts(split.train).items(), key=lambda p: (-p[1], p[0])
            )
            if item in data.item_index
        ]
        self.trending = [
            item
            for item, _ in trending_scores(
                split.train, split.cut, config.trending_half_life_days
            )
            if item in data.item_index
        ]
        with threadpool_limits(1, "blas"):
            self.als = config.training_params().new_model()
            self.als.fit(split.user_items, show_progress=False)
        self.cooccurrence = fit_cooccurrence(split.user_items, config.neighbours)

    def refit_als(self, config: HybridConfig) -> None:
        self.config = replace(self.config, **_als_fields(config))
        with threadpool_limits(1, "blas"):
            self.als = self.config.training_params().new_model()
            self.als.fit(self.split.user_items, show_progress=False)

    def refit_cooccurrence(self, neighbours: int) -> None:
        self.config = replace(self.config, neighbours=neighbours)
        self.cooccurrence = fit_cooccurrence(self.split.user_items, neighbours)

    def retrend(self, half_life_days: float) -> None:
        self.config = replace(self.config, trending_half_life_days=half_life_days)
        self.trending = [
            item
            for item, _ in trending_scores(
                self.split.train, self.split.cut, half_life_days
            )
            if item in self.data.item_index
        ]


def _als_fields(config: HybridConfig) -> dict:
    return {name: getattr(config, name) for name in ALS_GRID}


def _implicit_lists(model, split: Split, rows: np.ndarray, depth: int, filtered: bool):
    ids, scores = model.recommend(
        rows,
        split.user_items[rows],
        N=depth,
        filter_already_liked_items=filtered,
    )
    return ids, scores


def single_lists(
    models: FittedModels,
    users: Sequence[str],
    filtered: bool,
    names: Sequence[str] = SINGLE_MODELS,
) -> dict[str, dict[str, list[str]]]:
    """Each single model's candidates for ``users``, ``config.candidates`` deep.

    Parameters
    ----------
    models : FittedModels
    users : sequence of str
        Shoppers with a training history.
    filtered : bool
        Leave out what each shopper already bought.
    names : sequence of str
        The models wanted.

    Returns
    -------
    dict of model name to (user_id to ranked item ids)
    """
    split, data, depth = models.split, models.data, models.config.candidates
    rows = np.array([split.user_row[u] for u in users], dtype=np.int64)
    item_ids = data.item_ids
    bought = {
        user: {
            item_ids[c]
            for c in split.user_items.indices[
                split.user_items.indptr[r] : split.user_items.indptr[r + 1]
            ]
        }
        for user, r in zip(users, rows, strict=True)
    }
    lists: dict[str, dict[str, list[str]]] = {}
    for name in names:
        if name in ("popularity", "trending"):
            ranked = models.popularity if name == "popularity" else models.trending
            lists[name] = {
                user: [
                    i
                    for i in ranked[: depth + len(bought[user])]
                    if not filtered or i not in bought[user]
                ][:depth]
                for user in users
            }
        elif name == "buy-again":
            # Only what the shopper already has: nothing left once filtered.
            lists[name] = {
                user: []
                if filtered
                else [
                    item
                    for item, _ in buy_again(
                        split.purchases.get(user, ()),
                        split.cut,
                        models.config.buy_again_half_life_days,
                    )
                ][:depth]
                for user in users
            }
        elif name in ("als", "co-occurrence"):
            model = models.als if name == "als" else models.cooccurrence
            with threadpool_limits(1, "blas"):
                ids, scores = _implicit_lists(model, split, rows, depth, filtered)
            lists[name] = {
                user: [
                    item_ids[i]
                    for i, s in zip(ids[n], scores[n], strict=True)
                    if np.isfinite(s) and s > -1e30
                ]
                for n, user in enumerate(users)
            }
        elif name == "content":
            lists[name] = _content_lists(
                data, split, users, rows, bought, depth, filtered
            )
        else:
            raise ValueError(f"unknown model {name!r}; expected one of {SINGLE_MODELS}")
    return lists


def _content_lists(data, split, users, rows, bought, depth, filtered):
    if data.vectors is None or not len(users):
        return {user: [] for user in users}
    # A shopper's profile: the confidence-weighted mean of what they bought.
    profiles = np.asarray(split.user_items[rows] @ data.vectors, dtype=np.float32)
    norms = np.linalg.norm(profiles, axis=1, keepdims=True)
    profiles = profiles / np.where(norms > 0, norms, 1.0)
    scores = profiles @ data.vectors.T
    if filtered:
        sub = split.user_items[rows]
        scores[sub.nonzero()] = -np.inf
    take = min(depth, scores.shape[1])
    top = np.argpartition(-scores, take - 1, axis=1)[:, :take]
    lists = {}
    for n, user in enumerate(users):
        order = top[n][np.argsort(-scores[n, top[n]], kind="stable")]
        lists[user] = [
            data.item_ids[i]
            for i in order
            if np.isfinite(scores[n, i]) and norms[n, 0] > 0
        ]
    return lists


def hybrid_lists(
    lists: Mapping[str, Mapping[str, Sequence[str]]],
    users: Sequence[str],
    config: HybridConfig,
    data: EvaluationData,
    top_k: int,
    diversify: bool = True,
) -> dict[str, list[str]]:
    """The fused, diversified list of each of ``users``.

    Parameters
    ----------
    lists : model name to (user_id to ranked item ids)
        From ``single_lists``.
    users : sequence of str
    config : HybridConfig
    data : EvaluationData
        Gives maximal marginal relevance its embeddings.
    top_k : int
    diversify : bool
        False skips maximal marginal relevance.

    Returns
    -------
    dict of user_id to ranked item ids
    """
    result = {}
    mmr = diversify and config.mmr_lambda < 1.0 and data.vectors is not None
    for user in users:
        fused = fuse(
            {name: ranked.get(user, []) for name, ranked in lists.items()}, config
        )
        if mmr:
            pool = fused[:MMR_POOL]
            vectors = {item: data.vector_of(item) for item, _ in pool}
            result[user] = maximal_marginal_relevance(
                pool,
                {k: v for k, v in vectors.items() if v is not None},
                top_k,
                config.mmr_lambda,
            )
        else:
            result[user] = [item for item, _ in fused[:top_k]]
    return result


def score(
    recommended: Mapping[str, Sequence[str]],
    relevant: Mapping[str, set[str]],
    data: EvaluationData,
    top_k: int,
) -> dict[str, float]:
    """``ranking_metrics`` plus the intra-list similarity of the lists."""
    scores = ranking_metrics(recommended, relevant, top_k, len(data.item_ids))
    if data.vectors is not None:
        scores["intra_list_similarity"] = intra_list_similarity(
            [list(recommended.get(u, ()))[:top_k] for u in relevant], data.vector_of
        )
    return scores


# Tuning


@dataclass
class TuningStep:
    """One setting tried on the validation split and the NDCG it scored."""

    target: str
    setting: str
    value: object
    ndcg_at_k: float
    kept: bool = False


def _best(tried: list[tuple[object, float]], current: object) -> tuple[object, float]:
    """The value with the best score; the current value wins ties."""
    best_value, best_score = current, dict(tried).get(current, -1.0)
    for value, value_score in tried:
        if value_score > best_score + 1e-9:
            best_value, best_score = value, value_score
    return best_value, best_score


def tune(
    data: EvaluationData,
    split: Split,
    config: HybridConfig,
    top_k: int,
    progress: bool = True,
) -> tuple[HybridConfig, list[TuningStep], dict[str, dict[str, float]]]:
    """Choose every setting of ``config`` on the validation ``split``.

    In order: whether already-bought items are filtered (the hybrid's NDCG
    with either choice decides), ALS one setting at a time (two rounds), the
    number of co-occurrence neighbours, the two half-lives, the fusion
    constant and per-source weights (two rounds), then the strongest maximal
    marginal relevance that costs at most ``MMR_TOLERANCE`` of the hybrid's
    NDCG, and the weight of a new shopper's first session against trending.
    Each single model is tuned for its own NDCG, the fusion for the
    hybrid's, the session weight for the new shoppers'.

    Returns
    -------
    (config, steps, validation_scores)
        The chosen config, every setting tried, and each model's validation
        scores under it.
    """
    users = sorted(split.relevant)
    relevant = split.relevant
    steps: list[TuningStep] = []
    started = time.perf_counter()
    models = FittedModels(data, split, config)
    bar = tqdm(desc="tuning", unit="setting", disable=not progress)

    def ndcg(recommended) -> float:
        bar.update(1)
        return ranking_metrics(recommended, relevant, top_k, len(data.item_ids))[
            "ndcg_at_k"
        ]

    def hybrid_ndcg(lists, cfg, diversify=False) -> float:
        return ndcg(hybrid_lists(lists, users, cfg, data, top_k, diversify))

    def record(target, setting, tried, chosen):
        for value, value_score in tried:
            steps.append(
                TuningStep(target, setting, value, value_score, value == chosen)
            )

    # Filter what the shopper already has, or not
    tried = []
    for filtered in (True, False):
        cfg = replace(models.config, filter_already_bought=filtered)
        tried.append(
            (filtered, hybrid_ndcg(single_lists(models, users, filtered), cfg))
        )
    filtered, _ = _best(tried, config.filter_already_bought)
    record("hybrid", "filter_already_bought", tried, filtered)
    models.config = replace(models.config, filter_already_bought=filtered)

    def tune_source(source, setting, grid, current, apply) -> None:
        """Try each value of one setting for ``source``'s own NDCG, record
        them, and leave the best applied."""
        tried = []
        for value in grid:
            apply(value)
            lists = single_lists(models, users, filtered, [source])
            tried.append((value, ndcg(lists[source])))
        chosen, _ = _best(tried, current)
        record(source, setting, tried, chosen)
        apply(chosen)

    def refit_als(setting):
        return lambda value: models.refit_als(
            replace(models.config, **{setting: value})
        )

    def set_buy_again_half_life(value) -> None:
        models.config = replace(models.config, buy_again_half_life_days=value)

    # ALS, one setting at a time, twice round: the best number of factors
    # depends on the confidence scaling chosen after it
    for als_round in (1, 2):
        for setting, grid in ALS_GRID.items():
            current = getattr(models.config, setting)
            label = f"{setting}, round {als_round}"
            tune_source("als", label, grid, current, refit_als(setting))

    # Co-occurrence neighbours and the half-lives
    tune_source(
        "co-occurrence",
        "neighbours",
        NEIGHBOURS_GRID,
        config.neighbours,
        models.refit_cooccurrence,
    )
    tune_source(
        "trending",
        "trending_half_life_days",
        TRENDING_GRID,
        config.trending_half_life_days,
        models.retrend,
    )
    if not filtered:
        tune_source(
            "buy-again",
            "buy_again_half_life_days",
            BUY_AGAIN_GRID,
            config.buy_again_half_life_days,
            set_buy_again_half_life,
        )

    # Fusion: the constant, then each source's weight, twice round
    lists = single_lists(models, users, filtered)
    cfg = models.config
    tried = [
        (value, hybrid_ndcg(lists, replace(cfg, rrf_k=value))) for value in RRF_GRID
    ]
    chosen, _ = _best(tried, cfg.rrf_k)
    record("hybrid", "rrf_k", tried, chosen)
    cfg = replace(cfg, rrf_k=chosen)
    for fusion_round in (1, 2):
        for source in SINGLE_MODELS:
            if filtered and source == "buy-again":
                continue
            tried = []
            for value in WEIGHT_GRID:
                weights = {**cfg.weights, source: value}
                if not any(weights.values()):
                    continue
                tried.append((value, hybrid_ndcg(lists, replace(cfg, weights=weights))))
            chosen, _ = _best(tried, cfg.weights.get(source, 0.0))
            record("hybrid", f"weight[{source}], round {fusion_round}", tried, chosen)
            cfg = replace(cfg, weights={**cfg.weights, source: chosen})

    # Diversity: the most diverse setting within the tolerance
    if data.vectors is not None:
        tried = [
            (value, hybrid_ndcg(lists, replace(cfg, mmr_lambda=value), diversify=True))
            for value in MMR_GRID
        ]
        undiversified = dict(tried)[1.0]
        chosen = min(
            value
            for value, value_score in tried
            if value_score >= (1 - MMR_TOLERANCE) * undiversified
        )
        record("hybrid", "mmr_lambda", tried, chosen)
        cfg = replace(cfg, mmr_lambda=chosen)
    # New shoppers: how much their first session counts against trending
    if split.new_users:
        arrived = {user: later for user, (_, later) in split.new_users.items()}
        models.config = cfg
        tried = []
        for value in SESSION_GRID:
            _, blended = _cold_user_lists(models, split, top_k, value)
            bar.update(1)
            tried.append(
                (
                    value,
                    ranking_metrics(blended, arrived, top_k, len(data.item_ids))[
                        "ndcg_at_k"
                    ],
                )
            )
        chosen, _ = _best(tried, cfg.session_weight)
        record("new shoppers", "session_weight", tried, chosen)
        cfg = replace(cfg, session_weight=chosen)
    bar.close()

    validation = {name: score(lists[name], relevant, data, top_k) for name in lists}
    validation["hybrid"] = score(
        hybrid_lists(lists, users, cfg, data, top_k), relevant, data, top_k
    )
    log.info(
        "tuned on %d validation shoppers in %.0fs: hybrid ndcg@%d %.4f",
        len(users),
        time.perf_counter() - started,
        top_k,
        validation["hybrid"]["ndcg_at_k"],
    )
    return cfg, steps, validation


# The whole run


@dataclass
class EvaluationResult:
    """Everything one evaluation measured, ready for the report."""

    dataset: str
    top_k: int
    catalog_size: int
    events: int
    validation_cut: float
    test_cut: float
    train_events: int
    config: HybridConfig
    scores: dict[str, dict[str, float]]
    other_mode: dict[str, dict[str, float]]
    implicit_check: dict[str, dict[str, float]]
    cold_users: dict[str, dict[str, float]]
    cold_items: dict[str, dict[str, float]]
    bought_together: dict[str, dict[str, float]]
    tuning: list[TuningStep]
    validation: dict[str, dict[str, float]]
    tuned: bool
    seconds: float = 0.0

    @property
    def users(self) -> int:
        return int(self.scores["hybrid"]["users"]) if self.scores else 0

    def best_single(self) -> tuple[str, float]:
        """The single model with the best NDCG@k and that NDCG."""
        name = max(
            (n for n in SINGLE_MODELS if n in self.scores),
            key=lambda n: self.scores[n]["ndcg_at_k"],
        )
        return name, self.scores[name]["ndcg_at_k"]

    def table(self) -> str:
        """The main results as a Markdown table."""
        from recs.report import scores_table

        return scores_table(self.scores, self.top_k)


def evaluate(
    data: EvaluationData,
    top_k: int = 10,
    config: HybridConfig | None = None,
    tune_config: bool = True,
    test_share: float = TEST_SHARE,
    progress: bool = True,
) -> EvaluationResult:
    """Tune on the validation period, then score every model on the test period.

    Parameters
    ----------
    data : EvaluationData
    top_k : int
    config : HybridConfig, optional
        The starting point of tuning, or the config used as is when
        ``tune_config`` is False.
    tune_config : bool
    test_share : float
        Share of the events, by time, in the test period.

    Returns
    -------
    EvaluationResult

    Raises
    ------
    ValueError
        When no shopper has history on both sides of the test cut.
    """
    started = time.perf_counter()
    config = config or HybridConfig()
    if not len(data.columns):
        raise ValueError(
            "not enough history to evaluate: there are no interactions to split "
            "into past and future"
        )
    validation_cut, test_cut = time_cutoffs(data.columns.timestamps, test_share)

    # Tune on the validation period only
    steps: list[TuningStep] = []
    validation: dict[str, dict[str, float]] = {}
    if tune_config:
        validation_split = make_split(data, validation_cut, test_cut)
        if validation_split.relevant:
            config, steps, validation = tune(
                data, validation_split, config, top_k, progress
            )
        else:
            log.warning("no shopper to tune on before the test cut; defaults kept")

    # Retrain on everything before the test cut, score the test period
    split = make_split(data, test_cut, np.inf)
    users = sorted(split.relevant)
    if not users:
        raise ValueError(
            "not enough history to evaluate: no shopper has interactions both "
            f"before and after the test cut (the last {test_share:.0%} of events)"
        )
    models = FittedModels(data, split, config)
    filtered = config.filter_already_bought
    lists = single_lists(models, users, filtered)
    other = single_lists(models, users, not filtered)
    scores = {name: score(lists[name], split.relevant, data, top_k) for name in lists}
    scores["hybrid"] = score(
        hybrid_lists(lists, users, config, data, top_k), split.relevant, data, top_k
    )
    scores["hybrid, no MMR"] = score(
        hybrid_lists(lists, users, config, data, top_k, diversify=False),
        split.relevant,
        data,
        top_k,
    )
    other_config = replace(config, filter_already_bought=not filtered)
    other_mode = {
        name: score(other[name], split.relevant, data, top_k) for name in other
    }
    other_mode["hybrid"] = score(
        hybrid_lists(other, users, other_config, data, top_k),
        split.relevant,
        data,
        top_k,
    )
    implicit_check = _implicit_check(models, split, users, top_k)
    cold_users = _cold_users(models, split, data, top_k)
    cold_items = _cold_items(split, data, top_k)
    bought_together = _bought_together(data, split, models.popularity, top_k)
    result = EvaluationResult(
        dataset=data.name,
        top_k=top_k,
        catalog_size=len(data.item_ids),
        events=len(data.columns),
        validation_cut=validation_cut,
        test_cut=test_cut,
        train_events=len(split.train),
        config=config,
        scores=scores,
        other_mode=other_mode,
        implicit_check=implicit_check,
        cold_users=cold_users,
        cold_items=cold_items,
        bought_together=bought_together,
        tuning=steps,
        validation=validation,
        tuned=tune_config,
        seconds=time.perf_counter() - started,
    )
    best, best_ndcg = result.best_single()
    log.info(
        "evaluated %s on %d shoppers in %.0fs: hybrid ndcg@%d %.4f, best single "
        "(%s) %.4f, popularity %.4f",
        data.name,
        len(users),
        result.seconds,
        top_k,
        scores["hybrid"]["ndcg_at_k"],
        best,
        best_ndcg,
        scores["popularity"]["ndcg_at_k"],
    )
    return result


def _implicit_check(
    models: FittedModels, split: Split, users: Sequence[str], top_k: int
) -> dict[str, dict[str, float]]:
    """implicit's own ``ranking_metrics_at_k`` for its two models, with
    already-bought items filtered as it always does."""
    rows, cols = [], []
    for user in users:
        for item in split.relevant[user]:
            rows.append(split.user_row[user])
            cols.append(models.data.item_index[item])
    test = csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, cols)),
        shape=split.user_items.shape,
    )
    checked = {}
    for name, model in (("als", models.als), ("co-occurrence", models.cooccurrence)):
        with threadpool_limits(1, "blas"):
            values = ranking_metrics_at_k(
                model, split.user_items, test, K=top_k, show_progress=False
            )
        checked[name] = {key: float(value) for key, value in values.items()}
    return checked


def _cold_user_lists(
    models: FittedModels, split: Split, top_k: int, session_weight: float
) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Trending alone, and trending fused with the co-occurrence and content
    neighbours of the first session's items (each at ``session_weight``
    against trending's 1), for every new shopper of ``split``."""
    data, config = models.data, models.config
    depth = config.candidates
    weights = {
        "trending": 1.0,
        "co-occurrence": session_weight,
        "content": session_weight,
    }
    blend = replace(config, weights={**dict.fromkeys(config.weights, 0.0), **weights})
    trending_only, with_session = {}, {}
    for user, (session, _) in split.new_users.items():
        trending = [i for i in models.trending if i not in session][:depth]
        trending_only[user] = trending[:top_k]
        if session_weight <= 0:
            with_session[user] = trending[:top_k]
            continue
        row = csr_matrix(
            (
                np.ones(len(session), dtype=np.float32),
                ([0] * len(session), [data.item_index[i] for i in session]),
            ),
            shape=(1, len(data.item_ids)),
        )
        ids, scores = models.cooccurrence.recommend(
            0, row, N=depth, filter_already_liked_items=True
        )
        neighbours = [
            data.item_ids[i] for i, s in zip(ids, scores, strict=True) if s > 0
        ]
        content = []
        if data.vectors is not None:
            profile = np.asarray(row @ data.vectors).ravel()
            profile /= max(float(np.linalg.norm(profile)), 1e-9)
            order = np.argsort(-(data.vectors @ profile))
            content = [
                data.item_ids[i]
                for i in order[: depth + len(session)]
                if data.item_ids[i] not in session
            ][:depth]
        fused = fuse(
            {"trending": trending, "co-occurrence": neighbours, "content": content},
            blend,
        )
        with_session[user] = [item for item, _ in fused[:top_k]]
    return trending_only, with_session


def _cold_users(
    models: FittedModels, split: Split, data: EvaluationData, top_k: int
) -> dict[str, dict[str, float]]:
    """New shoppers: trending alone, against trending fused with the content
    and co-occurrence neighbours of their first session's items."""
    if not split.new_users:
        return {}
    relevant = {user: later for user, (_, later) in split.new_users.items()}
    trending_only, with_session = _cold_user_lists(
        models, split, top_k, models.config.session_weight
    )
    return {
        "trending": score(trending_only, relevant, data, top_k),
        "trending + session": score(with_session, relevant, data, top_k),
    }


def _bought_together(
    data: EvaluationData, split: Split, popular: Sequence[str], top_k: int
) -> dict[str, dict[str, float]]:
    """Frequently bought together, on the baskets of the test period: for
    each product of a basket, the other products of that basket are the ones
    to find among its ``top_k`` companions counted on the training baskets;
    the bestsellers are the baseline."""
    from indexer.catalog import Interaction
    from recs.baskets import BasketIndex

    columns = data.columns
    purchase = KINDS.index("purchase")

    def basket_events(part: InteractionColumns):
        keep = part.kinds == purchase
        return [
            Interaction(str(columns.users[u]), str(columns.items[i]), "purchase", 1, t)
            for u, i, t in zip(
                part.user_codes[keep],
                part.item_codes[keep],
                part.timestamps[keep],
                strict=True,
            )
        ]

    future = _subset(columns, columns.timestamps >= split.cut)
    test_baskets = [b & data.item_index.keys() for b in baskets(basket_events(future))]
    test_baskets = [b for b in test_baskets if len(b) > 1]
    if not test_baskets:
        return {}
    index = BasketIndex.from_interactions(basket_events(split.train))
    companions: dict[str, list[str]] = {}
    together, bestsellers, relevant = {}, {}, {}
    for n, basket in enumerate(test_baskets):
        for anchor in sorted(basket):
            if anchor not in companions:
                companions[anchor] = [
                    i for i, _ in index.bought_together(anchor, top_k)
                ]
            query = f"{n}:{anchor}"
            relevant[query] = basket - {anchor}
            together[query] = companions[anchor]
            bestsellers[query] = [i for i in popular[: top_k + 1] if i != anchor]
    result = {
        "bought together": ranking_metrics(
            together, relevant, top_k, len(data.item_ids)
        ),
        "bestsellers": ranking_metrics(
            bestsellers, relevant, top_k, len(data.item_ids)
        ),
    }
    for values in result.values():
        values["baskets"] = float(len(test_baskets))
    return result


def _cold_items(
    split: Split, data: EvaluationData, top_k: int
) -> dict[str, dict[str, float]]:
    """New products, held out of training by time: for each product first
    bought after the cut, the test shoppers ranked by how much of its content
    neighbourhood they bought before, against the busiest shoppers first.

    A new product has no purchases to learn from, so its neighbours by
    embedding stand in: a shopper scores the similarity-weighted sum of
    their confidence in the product's ``COLD_ITEM_NEIGHBOURS`` nearest
    products that were bought before the cut.
    """
    new = sorted(i for i in split.new_items if data.vector_of(i) is not None)
    if not new or data.vectors is None:
        return {}
    users = sorted(split.relevant)
    rows = np.array([split.user_row[u] for u in users], dtype=np.int64)
    user_items = split.user_items[rows].tocsc()
    known = np.flatnonzero(np.asarray(split.user_items.sum(axis=0)).ravel() > 0)
    buyers = {item: set() for item in new}
    for user in users:
        for item in split.relevant[user]:
            if item in buyers:
                buyers[item].add(user)
    activity = np.asarray(user_items.sum(axis=1)).ravel()
    busiest = [users[i] for i in np.argsort(-activity, kind="stable")[:top_k]]
    by_content, by_activity = {}, {}
    for item in new:
        similarity = data.vectors[known] @ data.vector_of(item)
        nearest = np.argsort(-similarity)[:COLD_ITEM_NEIGHBOURS]
        weights = np.zeros(len(data.item_ids), dtype=np.float32)
        weights[known[nearest]] = np.maximum(similarity[nearest], 0.0)
        scores = user_items @ weights
        by_content[item] = [
            users[i] for i in np.argsort(-scores, kind="stable")[:top_k]
        ]
        by_activity[item] = busiest
    result = {
        "content neighbours": ranking_metrics(by_content, buyers, top_k, len(users)),
        "busiest shoppers": ranking_metrics(by_activity, buyers, top_k, len(users)),
    }
    for values in result.values():
        values["shoppers"] = float(len(users))
        values.pop("coverage")
    return result


# Loading


def load_files(
    paths: Sequence[str],
    cache_path: str,
    name: str | None = None,
    mapping: str | None = None,
) -> EvaluationData:
    """Read shop files as ``load`` does, embed their products (reusing the
    embeddings cached at ``cache_path``) without indexing anything.

    Parameters
    ----------
    paths : sequence of str
    cache_path : str
        A catalog store file used only for its embedding cache.
    name : str, optional
        Defaults to the first file's name, lower-cased, without extensions.
    mapping : str, optional
        JSON mapping of generic files.

    Returns
    -------
    EvaluationData
    """
    from indexer.embeddings import Embedder
    from indexer.formats import read_sources
    from indexer.store import CatalogStore

    read = read_sources(list(paths), mapping)
    store = CatalogStore(cache_path)
    try:
        vectors, _ = Embedder().embed_products(read.products, store)
    finally:
        store.close()
    return EvaluationData(
        name or dataset_name(paths[0]),
        InteractionColumns.from_interactions(read.interactions),
        [p.item_id for p in read.products],
        vectors,
    )


def load_store(settings, name: str | None = None) -> EvaluationData:
    """The catalog loaded in ``settings.data_dir``, with its cached embeddings."""
    import os

    from indexer.embeddings import Embedder
    from indexer.store import CatalogStore

    if not os.path.exists(settings.catalog_path):
        raise ValueError(
            f"no catalog loaded in {settings.data_dir}; give the files to "
            "evaluate (python -m indexer evaluate FILE ...) or load them first"
        )
    store = CatalogStore(settings.catalog_path)
    try:
        products = store.products()
        columns = InteractionColumns.from_rows(store.interaction_rows(ordered=False))
        vectors, _ = Embedder().embed_products(products, store)
        source = store.get_meta("source") or "catalog"
    finally:
        store.close()
    return EvaluationData(
        name or dataset_name(source.split(":")[0]),
        columns,
        [p.item_id for p in products],
        vectors,
    )


def dataset_name(path: str) -> str:
    """``../x/online_retail.csv.gz`` -> ``online-retail``."""
    import os
    import re

    base = os.path.basename(path).lower()
    for prefix in ("meta_",):
        base = base.removeprefix(prefix)
    stem = base.split(".")[0]
    return re.sub(r"[^a-z0-9]+", "-", stem).strip("-") or "dataset"


def evaluate_store(
    settings, top_k: int = 10, tune_config: bool = False
) -> EvaluationResult:
    """Evaluate on the catalog loaded in ``settings.data_dir``."""
    return evaluate(
        load_store(settings), top_k, tune_config=tune_config, progress=False
    )
