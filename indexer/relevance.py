"""Search relevance against human judgments: NDCG@10, MRR and recall@100.

Judgments are graded: ``relevance`` is the mean of several raters from 1
(irrelevant) to 3 (exactly what was asked for). A ranked product gains
``relevance - 1``; a product nobody judged counts as irrelevant. MRR and
recall count a product as relevant from ``RELEVANT_FROM`` up.

The judged queries are split by a hash of their text into a tuning part and a
held-out part, so that what is tuned on one is checked on the other and the
split never changes between runs.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import logging
import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
from tqdm import tqdm

from indexer.search import rerank
from indexer.search.base import SEARCH_MODES, HybridParams, SearchRequest
from recs.fusion import reciprocal_rank_fusion
from recs.metrics import dcg

log = logging.getLogger(__name__)

NDCG_K = 10
RECALL_K = 100
# A mean rating of 2 is "partly relevant" to the average rater.
RELEVANT_FROM = 2.0
TUNING_SHARE = 0.5
SPLITS = ("tuning", "held-out")

# The fusion settings tried when tuning: the RRF constant, and the weight of
# the semantic ranking relative to the keyword one (which weighs 1).
RRF_K_GRID = (1, 2, 5, 10, 20, 30, 45, 60, 100)
SEMANTIC_WEIGHT_GRID = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0, 1.2, 1.5)


# The arithmetic


def gain(relevance: float) -> float:
    """The gain of a judged product: 0 for irrelevant, 2 for exactly relevant."""
    return max(0.0, relevance - 1.0)


def ndcg_at_k(
    ranked: Sequence[str], judged: Mapping[str, float], k: int = NDCG_K
) -> float | None:
    """NDCG of the first ``k`` of ``ranked`` against graded judgments.

    Parameters
    ----------
    ranked : sequence of str
        Product ids, best first.
    judged : mapping of str to float
        Relevance per judged product id, 1 to 3; others count as irrelevant.
    k : int
        Cut-off.

    Returns
    -------
    float or None
        From 0 to 1; None when no judged product has any gain, so the ideal
        ranking is worth nothing and the query says nothing about the ranker.
    """
    ideal = dcg(sorted((gain(r) for r in judged.values()), reverse=True)[:k])
    if ideal == 0:
        return None
    return dcg([gain(judged.get(item_id, 1.0)) for item_id in ranked[:k]]) / ideal


def relevant_ids(judged: Mapping[str, float]) -> set[str]:
    """The judged products rated at least ``RELEVANT_FROM``."""
    return {item_id for item_id, r in judged.items() if r >= RELEVANT_FROM}


def reciprocal_rank(ranked: Sequence[str], judged: Mapping[str, float]) -> float | None:
    """One over the rank of the first relevant product, 0 when none is ranked;
    None when the query has no relevant product at all."""
    relevant = relevant_ids(judged)
    if not relevant:
        return None
    for rank, item_id in enumerate(ranked, start=1):
        if item_id in relevant:
            return 1.0 / rank
    return 0.0


def recall_at_k(
    ranked: Sequence[str], judged: Mapping[str, float], k: int = RECALL_K
) -> float | None:
    """Share of the relevant products found in the first ``k``; None when the
    query has none."""
    relevant = relevant_ids(judged)
    if not relevant:
        return None
    return len(relevant.intersection(ranked[:k])) / len(relevant)


def query_split(query: str) -> str:
    """``tuning`` or ``held-out``, fixed by a hash of the query's text."""
    digest = hashlib.sha256(query.strip().lower().encode("utf-8")).digest()
    share = int.from_bytes(digest[:8], "big") / 2**64
    return SPLITS[0] if share < TUNING_SHARE else SPLITS[1]


# Judgments


def read_judgments(path: str) -> dict[str, dict[str, float]]:
    """``search_term,product_uid,relevance`` rows as relevance per product per
    query; a pair judged twice keeps the mean.

    Raises
    ------
    ValueError
        When the file lacks one of the three columns.
    """
    opener = gzip.open if path.endswith(".gz") else open
    sums: dict[tuple[str, str], list[float]] = defaultdict(list)
    with opener(path, "rt", encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        wanted = {"search_term", "product_uid", "relevance"}
        if not wanted <= set(reader.fieldnames or ()):
            raise ValueError(
                f"{path} has columns {reader.fieldnames}; judgments need "
                f"{sorted(wanted)}"
            )
        for row in reader:
            query = row["search_term"].strip()
            if query:
                key = (query, row["product_uid"].strip())
                sums[key].append(float(row["relevance"]))
    judgments: dict[str, dict[str, float]] = defaultdict(dict)
    for (query, item_id), values in sums.items():
        judgments[query][item_id] = sum(values) / len(values)
    return dict(judgments)


# Scoring rankings


@dataclass
class QueryScore:
    """How one ranking of one query scored."""

    query: str
    split: str
    mode: str
    ndcg: float | None
    rr: float | None
    recall: float | None
    top: list[str] = field(default_factory=list)


def score_rankings(
    rankings: Mapping[str, Sequence[str]],
    judgments: Mapping[str, Mapping[str, float]],
    mode: str,
) -> list[QueryScore]:
    """Score each query's ranking against its judgments."""
    return [
        QueryScore(
            query,
            query_split(query),
            mode,
            ndcg_at_k(ranked, judgments[query]),
            reciprocal_rank(ranked, judgments[query]),
            recall_at_k(ranked, judgments[query]),
            list(ranked[:NDCG_K]),
        )
        for query, ranked in rankings.items()
    ]


def _mean(values: Iterable[float | None]) -> float:
    counted = [v for v in values if v is not None]
    return sum(counted) / len(counted) if counted else float("nan")


@dataclass
class Summary:
    """Mean metrics of one mode over one split."""

    mode: str
    split: str
    queries: int
    ndcg: float
    mrr: float
    recall: float


def summarize(scores: Sequence[QueryScore]) -> list[Summary]:
    """Means per mode and split, in the order modes first appear."""
    groups: dict[tuple[str, str], list[QueryScore]] = defaultdict(list)
    for score in scores:
        groups[(score.mode, score.split)].append(score)
        groups[(score.mode, "all")].append(score)
    return [
        Summary(
            mode,
            split,
            len(group),
            _mean(s.ndcg for s in group),
            _mean(s.rr for s in group),
            _mean(s.recall for s in group),
        )
        for (mode, split), group in groups.items()
    ]


def ndcg_of(scores: Sequence[QueryScore], split: str) -> float:
    return _mean(s.ndcg for s in scores if s.split == split)


# Tuning the fusion


def fuse(
    keyword: Sequence[str], semantic: Sequence[str], params: HybridParams
) -> list[str]:
    """The hybrid ranking the backends make of two rankings with ``params``."""
    fused = reciprocal_rank_fusion(
        [keyword, semantic],
        k=params.rrf_k,
        weights=[params.keyword_weight, params.semantic_weight],
    )
    return [item_id for item_id, _ in fused]


@dataclass
class TuningResult:
    """The fusion settings chosen on the tuning split, and what each scored."""

    params: HybridParams
    tuning_ndcg: float
    keyword_ndcg: float
    tried: list[tuple[int, float, float]]


def tune_fusion(
    keyword: Mapping[str, Sequence[str]],
    semantic: Mapping[str, Sequence[str]],
    judgments: Mapping[str, Mapping[str, float]],
    k_grid: Sequence[int] = RRF_K_GRID,
    weight_grid: Sequence[float] = SEMANTIC_WEIGHT_GRID,
) -> TuningResult:
    """Choose the RRF constant and semantic weight on the tuning split only.

    Fuses the keyword and semantic rankings each mode returned for every
    tuning query, exactly as the backends fuse them, and keeps the setting
    with the best mean NDCG@10 that is not below keyword search alone.

    Parameters
    ----------
    keyword, semantic : mapping of query to ranked ids
        What the keyword and the semantic search returned.
    judgments : mapping of query to relevance per id
        The human judgments.
    k_grid, weight_grid : sequences
        RRF constants and semantic weights to try.

    Returns
    -------
    TuningResult
        The best setting; a semantic weight of 0 (keyword order, neighbours
        only after it) when nothing beats keyword search.
    """
    queries = [q for q in keyword if query_split(q) == SPLITS[0] and q in semantic]
    keyword_ndcg = _mean(ndcg_at_k(keyword[q], judgments[q]) for q in queries)
    best = (keyword_ndcg, HybridParams(rrf_k=60, semantic_weight=0.0, method="rrf"))
    tried = []
    for k in k_grid:
        for weight in weight_grid:
            params = HybridParams(
                rrf_k=k, keyword_weight=1.0, semantic_weight=weight, method="rrf"
            )
            value = _mean(
                ndcg_at_k(fuse(keyword[q], semantic[q], params), judgments[q])
                for q in queries
            )
            tried.append((k, weight, value))
            if value > best[0] + 1e-12:
                best = (value, params)
    log.info(
        "tuned RRF on %d queries: k=%d, semantic weight %g scores NDCG@10 %.4f "
        "(keyword alone %.4f)",
        len(queries),
        best[1].rrf_k,
        best[1].semantic_weight,
        best[0],
        keyword_ndcg,
    )
    return TuningResult(best[1], best[0], keyword_ndcg, tried)


# Tuning the hybrid ranker

# Steps coordinate ascent tries on each weight, largest first.
RANKER_STEPS = (1.0, 0.5, 0.25, 0.1, 0.05, 0.02)
RANKER_ROUNDS = 3


@dataclass
class RecordedHybrid:
    """What the hybrid ranker saw for one query: the keyword matches and the
    candidates with their features."""

    keyword_ids: list[str]
    candidate_ids: list[str]
    features: np.ndarray


def record_hybrid(backend, into: dict[str, RecordedHybrid]) -> None:
    """Make ``backend`` keep what its hybrid ranker sees, by query, in ``into``."""

    def recorder(query, keyword_ids, candidates):
        into[query] = RecordedHybrid(
            list(keyword_ids),
            [c.item_id for c in candidates],
            rerank.features(query, candidates),
        )

    backend.recorder = recorder


def ranker_order(recorded: RecordedHybrid, weights: np.ndarray) -> list[str]:
    """The top ``NDCG_K`` of the hybrid ranking ``hybrid_order`` makes with
    ``weights``: candidates by score (ties in candidate order), then the
    other keyword matches."""
    ids = recorded.candidate_ids
    if ids:
        _scores, order = rerank.scored(recorded.features, weights)
        ordered = [ids[i] for i in order[:NDCG_K]]
    else:
        ordered = []
    if len(ordered) < NDCG_K:
        chosen = set(ids)
        ordered += [i for i in recorded.keyword_ids if i not in chosen][
            : NDCG_K - len(ordered)
        ]
    return ordered


def ranker_ndcg(
    recorded: Mapping[str, RecordedHybrid],
    judgments: Mapping[str, Mapping[str, float]],
    weights: np.ndarray,
    split: str,
) -> float:
    """Mean NDCG@10 of the ranker with ``weights`` over ``split``'s queries."""
    return _mean(
        ndcg_at_k(ranker_order(r, weights), judgments[q])
        for q, r in recorded.items()
        if query_split(q) == split
    )


@dataclass
class RankerTuning:
    """The ranker weights chosen on the tuning split, and the way there."""

    weights: rerank.RankerWeights
    start_ndcg: float
    tuning_ndcg: float
    held_out_ndcg: float
    # (feature, weight, tuning NDCG@10) for every step that was kept.
    trail: list[tuple[str, float, float]]


def tune_ranker(
    recorded: Mapping[str, RecordedHybrid],
    judgments: Mapping[str, Mapping[str, float]],
    start: rerank.RankerWeights,
    steps: Sequence[float] = RANKER_STEPS,
    rounds: int = RANKER_ROUNDS,
) -> RankerTuning:
    """Choose the ranker's weights by coordinate ascent on NDCG@10 over the
    tuning split only.

    The keyword weight stays as it is (only the ratios of the weights matter);
    each other weight in turn moves by each step up and down, and a move is
    kept when it raises the tuning split's NDCG. The held-out NDCG of the
    result is reported, never used.
    """
    weights = start.vector.copy()
    best = start_ndcg = ranker_ndcg(recorded, judgments, weights, SPLITS[0])
    trail = []
    for _ in range(rounds):
        improved = False
        for feature in range(1, len(rerank.FEATURES)):
            for step in steps:
                for sign in (1.0, -1.0):
                    trial = weights.copy()
                    trial[feature] = round(float(trial[feature]) + sign * step, 4)
                    value = ranker_ndcg(recorded, judgments, trial, SPLITS[0])
                    if value > best + 1e-6:
                        best, weights, improved = value, trial, True
                        trail.append(
                            (rerank.FEATURES[feature], float(trial[feature]), value)
                        )
        if not improved:
            break
    chosen = rerank.RankerWeights(tuple(round(float(w), 4) for w in weights))
    held_out = ranker_ndcg(recorded, judgments, chosen.vector, SPLITS[1])
    log.info(
        "tuned ranker on the tuning split: NDCG@10 %.4f -> %.4f (held-out %.4f)",
        start_ndcg,
        best,
        held_out,
    )
    return RankerTuning(chosen, start_ndcg, best, held_out, trail)


def write_ranker(path: str, tuning: RankerTuning) -> None:
    """The tuned weights as a file ``HYBRID_RANKER`` can point at."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", encoding="utf-8") as out:
        json.dump(
            {
                "weights": tuning.weights.as_dict(),
                "tuning_ndcg_at_10": round(tuning.tuning_ndcg, 4),
                "held_out_ndcg_at_10": round(tuning.held_out_ndcg, 4),
                "start_ndcg_at_10": round(tuning.start_ndcg, 4),
            },
            out,
            indent=2,
        )
        out.write("\n")


# Running the queries


def run_queries(
    search: Callable[[SearchRequest], object],
    queries: Sequence[str],
    mode: str,
    depth: int = RECALL_K,
    label: str = "",
) -> tuple[dict[str, list[str]], float]:
    """Each query's top ``depth`` product ids from ``search`` in ``mode``, and
    the seconds it took."""
    if mode not in SEARCH_MODES:
        raise ValueError(f"unknown search mode {mode!r}; choose one of {SEARCH_MODES}")
    rankings = {}
    started = time.perf_counter()
    for query in tqdm(queries, desc=f"{label}{mode}", unit="query"):
        response = search(SearchRequest(query, mode=mode, per_page=depth))
        rankings[query] = [hit.item_id for hit in response.hits]
    return rankings, time.perf_counter() - started


def write_per_query(path: str, scores: Sequence[QueryScore]) -> None:
    """One JSON line per query and mode, worst NDCG first, to read the misses;
    queries whose judged products all lack gain (NDCG undefined) go last."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    ordered = sorted(scores, key=lambda s: (s.mode, 2.0 if s.ndcg is None else s.ndcg))
    with open(path, "w", encoding="utf-8") as out:
        for score in ordered:
            out.write(json.dumps(asdict(score)) + "\n")


def format_table(rows: Sequence[tuple[str, Summary]]) -> str:
    """A Markdown table of ``(label, summary)`` rows."""
    lines = [
        "| backend | mode | split | queries | NDCG@10 | MRR | recall@100 |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for label, s in rows:
        lines.append(
            f"| {label} | {s.mode} | {s.split} | {s.queries} | {s.ndcg:.4f} | "
            f"{s.mrr:.4f} | {s.recall:.4f} |"
        )
    return "\n".join(lines)


# The whole evaluation


class _QueryVectors:
    """An embedder whose query vectors are encoded once, in batches, up front.

    ``encode_query`` is documented as equal to ``encode([text])[0]``; encoding
    every judged query in one call spares thousands of single passes.
    """

    def __init__(self, embedder, queries: Sequence[str], cache_dir: str):
        self._embedder = embedder
        # Kept between runs: the judged queries do not change, and encoding
        # them all takes minutes on a small machine.
        digest = hashlib.sha256(
            "\n".join([embedder.name, *queries]).encode("utf-8")
        ).hexdigest()[:16]
        path = os.path.join(cache_dir, f"query-vectors-{digest}.npy")
        if os.path.exists(path):
            vectors = np.load(path)
        else:
            started = time.perf_counter()
            vectors = embedder.encode(list(queries), progress=True)
            os.makedirs(cache_dir, exist_ok=True)
            np.save(path, vectors)
            log.info(
                "encoded %d queries in %.1fs",
                len(queries),
                time.perf_counter() - started,
            )
        self._vectors = dict(zip(queries, vectors, strict=True))

    def encode_query(self, text: str):
        vector = self._vectors.get(text)
        return self._embedder.encode_query(text) if vector is None else vector

    def __getattr__(self, name: str):
        return getattr(self._embedder, name)


@dataclass
class BackendRun:
    """One backend's results: per-query scores, seconds per mode, tuning."""

    backend: str
    load_seconds: float | None
    seconds: dict[str, float]
    scores: list[QueryScore]
    tuning: TuningResult | None = None
    ranker_tuning: RankerTuning | None = None


def evaluate_backend(
    settings,
    queries: Sequence[str],
    judgments: Mapping[str, Mapping[str, float]],
    embedder,
    modes: Sequence[str] = SEARCH_MODES,
    tune: bool = False,
) -> BackendRun:
    """Run every query in every mode through the shop's own search service.

    The service is the one ``/api/search`` calls (query encoding, the mode
    fallback, the backend's fusion with the settings' hybrid parameters).
    """
    from web.services import ShopServices

    services = ShopServices(settings, embedder=embedder)
    seconds: dict[str, float] = {}
    rankings: dict[str, dict[str, list[str]]] = {}
    scores: list[QueryScore] = []
    recorded: dict[str, RecordedHybrid] = {}
    if tune and settings.hybrid.method == "ranker":
        record_hybrid(services.search_backend, recorded)
    try:
        for mode in modes:
            rankings[mode], seconds[mode] = run_queries(
                services.search, queries, mode, label=f"{settings.search_backend} "
            )
            scores.extend(score_rankings(rankings[mode], judgments, mode))
            log.info(
                "%s %s: %d queries in %.1fs (%.1f ms each)",
                settings.search_backend,
                mode,
                len(queries),
                seconds[mode],
                1000 * seconds[mode] / max(1, len(queries)),
            )
    finally:
        services.backend.close()
    tuning = None
    if tune and {"keyword", "semantic"} <= set(rankings):
        tuning = tune_fusion(rankings["keyword"], rankings["semantic"], judgments)
    ranker_tuning = (
        tune_ranker(recorded, judgments, settings.hybrid.ranker) if recorded else None
    )
    if tune and tuning is None and ranker_tuning is None:
        log.warning(
            "nothing tuned: the ranker's weights need the hybrid mode "
            "(HYBRID_METHOD=ranker), the RRF settings the keyword and semantic "
            "modes; this run had %s",
            ", ".join(modes),
        )
    return BackendRun(
        settings.search_backend, None, seconds, scores, tuning, ranker_tuning
    )


def evaluate_search(
    settings,
    catalog: str,
    judgments_path: str,
    mapping: str,
    backends: Sequence[str],
    modes: Sequence[str] = SEARCH_MODES,
    load: bool = True,
    tune: bool = False,
    out_dir: str | None = None,
    limit: int | None = None,
) -> list[BackendRun]:
    """Load ``catalog`` into each backend and score its search on the judgments.

    Parameters
    ----------
    settings : Settings
        The data directory (its catalog store keeps the embeddings between
        runs) and the hybrid parameters under test.
    catalog, judgments_path, mapping : str
        The product file, the judgments file and the mapping naming the
        catalog's columns.
    backends : sequence of str
        ``embedded`` and/or ``elasticsearch``.
    modes : sequence of str
        Search modes to score.
    load : bool
        Load the catalog into each backend first (a new index version, built
        with the analysis of this code); off to re-query the serving index.
    tune : bool
        Also choose, on the tuning split, the RRF constant and weights (from
        the keyword and semantic rankings) and the hybrid ranker's weights
        (from what the ranker saw in the hybrid run; written to
        ``<out_dir>/<backend>-ranker.json`` for ``HYBRID_RANKER``).
    out_dir : str, optional
        Where the per-query results go; defaults to ``<data_dir>/search-eval``.
    limit : int, optional
        Score only the first ``limit`` queries (quick checks).

    Returns
    -------
    list of BackendRun
        One per backend, in the order given.
    """
    from indexer.embeddings import Embedder
    from indexer.pipeline import load_catalog

    judgments = read_judgments(judgments_path)
    queries = sorted(judgments)[:limit] if limit else sorted(judgments)
    embedder = Embedder()
    out_dir = out_dir or os.path.join(settings.data_dir, "search-eval")
    query_vectors = (
        _QueryVectors(embedder, queries, os.path.join(settings.data_dir, "cache"))
        if set(modes) - {"keyword"}
        else embedder
    )
    runs = []
    for backend in backends:
        chosen = settings.with_overrides(search_backend=backend)
        load_seconds = None
        if load:
            started = time.perf_counter()
            load_catalog(chosen, catalog, embedder, mapping=mapping, allow_shrink=True)
            load_seconds = time.perf_counter() - started
        run = evaluate_backend(chosen, queries, judgments, query_vectors, modes, tune)
        run.load_seconds = load_seconds
        write_per_query(os.path.join(out_dir, f"{backend}.jsonl"), run.scores)
        if run.ranker_tuning is not None:
            write_ranker(
                os.path.join(out_dir, f"{backend}-ranker.json"), run.ranker_tuning
            )
        runs.append(run)
    return runs


def report(runs: Sequence[BackendRun]) -> str:
    """The summary table, timings and tuning outcome of ``runs``, in Markdown."""
    rows = [(run.backend, s) for run in runs for s in summarize(run.scores)]
    lines = [format_table(rows), ""]
    for run in runs:
        timing = ", ".join(
            f"{mode} {seconds:.0f}s" for mode, seconds in run.seconds.items()
        )
        load = f"load {run.load_seconds:.0f}s, " if run.load_seconds else ""
        lines.append(f"- {run.backend}: {load}{timing}")
        if run.tuning is not None:
            t = run.tuning
            lines.append(
                f"- {run.backend} RRF (HYBRID_METHOD=rrf) tuned on the tuning "
                f"split: rrf_k={t.params.rrf_k}, "
                f"keyword_weight={t.params.keyword_weight}, "
                f"semantic_weight={t.params.semantic_weight}: NDCG@10 "
                f"{t.tuning_ndcg:.4f} (keyword alone {t.keyword_ndcg:.4f})"
            )
        if run.ranker_tuning is not None:
            r = run.ranker_tuning
            weights = ", ".join(f"{k}={v:g}" for k, v in r.weights.as_dict().items())
            lines.append(
                f"- {run.backend} ranker tuned on the tuning split: {weights}: "
                f"NDCG@10 {r.start_ndcg:.4f} -> {r.tuning_ndcg:.4f} on the tuning "
                f"split, {r.held_out_ndcg:.4f} held-out "
                f"(written to {run.backend}-ranker.json)"
            )
    return "\n".join(lines)
