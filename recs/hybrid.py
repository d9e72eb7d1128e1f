"""The hybrid recipe: which lists are fused, how, and how the result is diversified.

One ``HybridConfig`` drives both the offline evaluation and the shop's
for-you list, so what is measured is what is served. ``evaluate`` tunes it
on a validation split and writes it beside its report; ``train`` stores it
with the model it trains.
"""

from __future__ import annotations

import json
import logging
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields

import numpy as np

from recs.collaborative import TrainingParams
from recs.fusion import reciprocal_rank_fusion

log = logging.getLogger(__name__)

DAY = 86400.0
# The single-model lists the hybrid can fuse, by their names in reports.
SOURCES = ("buy-again", "als", "co-occurrence", "content", "trending", "popularity")


# What each integer setting may be: (lowest, highest). The upper bounds keep a
# typing slip from asking ALS for hundreds of GiB or the tuner for hours.
INT_RANGES = {
    "factors": (1, 4096),
    "iterations": (1, 1000),
    "neighbours": (1, 1000),
    "rrf_k": (1, 100_000),  # 1 / (k + rank) with ranks from 1; k 0 is refused too
    "candidates": (1, 10_000),
}
# Real settings: (lowest, highest, whether the lowest itself is allowed).
REAL_RANGES = {
    "regularization": (0.0, math.inf, True),
    "alpha": (0.0, math.inf, False),
    "trending_half_life_days": (0.0, math.inf, False),
    "buy_again_half_life_days": (0.0, math.inf, False),
    "mmr_lambda": (0.0, 1.0, True),
    "session_weight": (0.0, math.inf, True),
}


def _describe(low: float, high: float, closed: bool) -> str:
    start = f">= {low:g}" if closed else f"> {low:g}"
    return start if math.isinf(high) else f"{start} and <= {high:g}"


def _check_int(name: str, value) -> None:
    low, high = INT_RANGES[name]
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(
            f"{name} must be a whole number from {low} to {high}, got {value!r}"
        )
    if not low <= value <= high:
        raise ValueError(f"{name} must be from {low} to {high}, got {value!r}")


def _check_real(name: str, value, low: float, high: float, closed: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(
            f"{name} must be a number {_describe(low, high, closed)}, got {value!r}"
        )
    above = value >= low if closed else value > low
    if not (math.isfinite(value) and above and value <= high):
        raise ValueError(
            f"{name} must be a finite number {_describe(low, high, closed)}, "
            f"got {value!r}"
        )


def default_weights() -> dict[str, float]:
    """The weights tuned on the UCI Online Retail history (see reports/)."""
    return {
        "buy-again": 2.0,
        "als": 0.5,
        "co-occurrence": 0.25,
        "content": 0.25,
        "trending": 1.0,
        "popularity": 0.0,
    }


@dataclass
class HybridConfig:
    """Every setting of the recommenders, tuned together.

    Parameters
    ----------
    factors, regularization, alpha, iterations : ALS settings
        ``alpha`` scales the confidence ``log1p(strength)``.
    neighbours : int
        Item-to-item co-occurrence keeps this many neighbours per item.
    trending_half_life_days : float
        Age at which a purchase counts half for trending.
    buy_again_half_life_days : float
        Age at which a shopper's own purchase counts half for buy-again.
    rrf_k : int
        Reciprocal rank fusion's damping constant.
    weights : dict of str to float
        Per source of ``SOURCES``; 0 leaves a source out.
    mmr_lambda : float
        Maximal marginal relevance trade-off: 1 keeps the fused order, lower
        values give more weight to being unlike the items already picked.
    filter_already_bought : bool
        Whether items the shopper already has are left out of every list.
        Retail shoppers re-order, so for such data they stay in.
    candidates : int
        How deep each source list is before fusion.
    session_weight : float
        For a new shopper: the weight of the co-occurrence and content
        neighbours of their first session's items, against trending's 1.
    """

    # Defaults: as tuned on the UCI Online Retail history (see reports/).
    factors: int = 128
    regularization: float = 0.1
    alpha: float = 1.0
    iterations: int = 10
    neighbours: int = 5
    trending_half_life_days: float = 3.0
    buy_again_half_life_days: float = 365.0
    rrf_k: int = 60
    weights: dict[str, float] = field(default_factory=default_weights)
    mmr_lambda: float = 0.8
    filter_already_bought: bool = False
    candidates: int = 100
    session_weight: float = 0.5

    def __post_init__(self):
        """Refuse any setting the recommenders could not serve.

        Raises
        ------
        ValueError
            Naming the setting, its value and what it may be.
        """
        for name in INT_RANGES:
            _check_int(name, getattr(self, name))
        for name, (low, high, closed) in REAL_RANGES.items():
            _check_real(name, getattr(self, name), low, high, closed)
        if not isinstance(self.filter_already_bought, bool):
            raise ValueError(
                "filter_already_bought must be true or false, got "
                f"{self.filter_already_bought!r}"
            )
        if not isinstance(self.weights, Mapping):
            raise ValueError(
                f"weights must map sources {list(SOURCES)} to numbers >= 0, "
                f"got {self.weights!r}"
            )
        unknown = sorted(str(name) for name in set(self.weights) - set(SOURCES))
        if unknown:
            raise ValueError(
                f"unknown hybrid source(s) {unknown} in weights; expected some "
                f"of {list(SOURCES)}"
            )
        for source, weight in self.weights.items():
            _check_real(f"weights[{source!r}]", weight, 0.0, math.inf, True)

    def training_params(self) -> TrainingParams:
        """The ALS settings as ``TrainingParams``."""
        return TrainingParams(
            factors=self.factors,
            regularization=self.regularization,
            alpha=self.alpha,
            iterations=self.iterations,
        )

    def to_dict(self) -> dict:
        """The settings as plain JSON-ready values."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping) -> HybridConfig:
        """A config from the settings in ``values``; settings left out keep
        their defaults, and so do sources left out of ``weights``.

        Raises
        ------
        ValueError
            When ``values`` is not a mapping, holds a key that is no setting, or
            a setting is of the wrong type or out of range.
        """
        if not isinstance(values, Mapping):
            raise ValueError(
                "a recipe must be a JSON object of settings, got "
                f"{type(values).__name__}"
            )
        known = [f.name for f in fields(cls)]
        unknown = sorted(str(key) for key in values if key not in known)
        if unknown:
            raise ValueError(
                f"unknown recipe setting(s) {unknown}; valid settings are {known}"
            )
        picked = dict(values)
        if isinstance(picked.get("weights"), Mapping):
            picked["weights"] = {**default_weights(), **picked["weights"]}
        return cls(**picked)

    def save(self, path: str) -> None:
        """Write the settings to ``path`` as JSON."""
        with open(path, "w", encoding="utf-8") as out:
            json.dump(self.to_dict(), out, indent=2, sort_keys=True)

    @classmethod
    def load(cls, path: str) -> HybridConfig:
        """Read a config written by ``save``, or the ``hybrid`` part of an
        evaluation's ``config.json`` (its other keys are the report's).

        Raises
        ------
        ValueError
            Naming ``path`` and what is wrong: missing, a folder, unreadable,
            not JSON, or not a valid recipe (see ``from_dict``).
        """
        try:
            with open(path, encoding="utf-8") as handle:
                values = json.load(handle)
        except FileNotFoundError:
            raise ValueError(f"{path}: no such file") from None
        except IsADirectoryError:
            raise ValueError(f"{path}: is a folder, not a recipe file") from None
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path}: cannot be read ({exc})") from None
        if isinstance(values, Mapping) and "hybrid" in values:
            values = values["hybrid"]
        try:
            return cls.from_dict(values)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{path}: {exc}") from None


def buy_again(
    purchases: Iterable[tuple[str, float, float]],
    now: float,
    half_life_days: float,
) -> list[tuple[str, float]]:
    """A shopper's own purchases ranked by frequency and recency.

    Each purchase adds its strength times ``0.5 ** (age / half_life)``, so an
    item bought often and lately comes first.

    Parameters
    ----------
    purchases : iterable of (item_id, timestamp, strength)
    now : float
        Unix time the ages are counted from.
    half_life_days : float

    Returns
    -------
    list of (item_id, score)
        Best first; ties by item id.
    """
    decay = math.log(2) / (half_life_days * DAY)
    scores: dict[str, float] = {}
    for item_id, timestamp, strength in purchases:
        if strength <= 0:
            continue
        age = max(0.0, now - timestamp)
        scores[item_id] = scores.get(item_id, 0.0) + strength * math.exp(-decay * age)
    return sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))


def fuse(
    rankings: Mapping[str, Sequence[str]],
    config: HybridConfig,
) -> list[tuple[str, float]]:
    """Weighted reciprocal rank fusion of the named ``rankings``.

    Parameters
    ----------
    rankings : mapping of source name to ranked item ids
        Sources with weight 0 in ``config`` are left out.
    config : HybridConfig

    Returns
    -------
    list of (item_id, score)
        Best first.
    """
    names = [n for n in rankings if config.weights.get(n, 0.0) > 0 and rankings[n]]
    return reciprocal_rank_fusion(
        [rankings[n] for n in names],
        k=config.rrf_k,
        weights=[config.weights[n] for n in names],
    )


def maximal_marginal_relevance(
    ranked: Sequence[tuple[str, float]],
    vectors: Mapping[str, np.ndarray],
    top_k: int,
    trade_off: float,
) -> list[str]:
    """Pick ``top_k`` of ``ranked``, each time the item best balancing its
    relevance against its likeness to those already picked (Carbonell and
    Goldstein, 1998).

    Relevance is the fused score scaled to 0..1 over the candidates; likeness
    the largest cosine similarity to a picked item. ``trade_off`` 1 keeps the
    order of ``ranked``. Items without a vector count as unlike everything.

    Parameters
    ----------
    ranked : sequence of (item_id, score)
        Best first.
    vectors : mapping of item_id to unit-length numpy.ndarray
    top_k : int
    trade_off : float
        Within 0 and 1.

    Returns
    -------
    list of str
    """
    if trade_off >= 1.0 or len(ranked) <= 1:
        return [item_id for item_id, _ in ranked[:top_k]]
    ids = [item_id for item_id, _ in ranked]
    scores = np.array([score for _, score in ranked], dtype=np.float64)
    spread = scores.max() - scores.min()
    relevance = (scores - scores.min()) / spread if spread > 0 else np.ones(len(ids))
    dimensions = next((len(v) for v in vectors.values()), 0)
    matrix = np.zeros((len(ids), max(dimensions, 1)), dtype=np.float32)
    for row, item_id in enumerate(ids):
        vector = vectors.get(item_id)
        if vector is not None:
            matrix[row] = vector
    similarity = matrix @ matrix.T

    picked: list[int] = []
    closest = np.zeros(len(ids))  # largest similarity to anything picked
    available = np.ones(len(ids), dtype=bool)
    while len(picked) < min(top_k, len(ids)):
        value = trade_off * relevance - (1.0 - trade_off) * closest
        value[~available] = -np.inf
        best = int(np.argmax(value))
        picked.append(best)
        available[best] = False
        closest = np.maximum(closest, similarity[best])
    return [ids[i] for i in picked]
