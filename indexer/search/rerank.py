"""Hybrid ranking: a linear model over keyword, semantic and title features.

Both backends gather the same candidates for a hybrid search (the best
``KEYWORD_CANDIDATES`` keyword matches and the ``KNN_CANDIDATES`` nearest
neighbours), each with its BM25 score, its cosine similarity to the query and
its title, and order them here by a weighted sum of the features below. The
weights were chosen by coordinate ascent on NDCG@10 over the tuning half of
the Home Depot judgments (``python -m indexer eval-search --tune``); the
held-out half checks them.

Features of a candidate, each about 0 to 1:

``keyword``
    BM25 score divided by the query's best one (0 when only the kNN found it).
``cosine``
    Cosine similarity of the query's and the product's embeddings.
``coverage``
    Share of the query's distinct words in the title.
``pairs``
    Share of the query's adjacent word pairs found adjacent in the title.
``numbers``
    Share of the query's numbers (sizes, model numbers) in the title.
``length``
    ``log(1 + words in the title)``: BM25's length normalisation favours
    short titles (accessories and spare parts); this gives some of it back.
``neighbour``
    1 for a product only the nearest-neighbour search found.

Title words are compared after ``normalize`` and a light plural folding
(``fans`` and ``fan`` match), not the engines' stemmers: the features must
come out the same whichever engine found the candidate.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from indexer.search.analysis import normalize

FEATURES = (
    "keyword",
    "cosine",
    "coverage",
    "pairs",
    "numbers",
    "length",
    "neighbour",
)

# Chosen by coordinate ascent on the tuning half of the Home Depot judgments
# (2,983 queries, keyword weight held at 1). Held-out NDCG@10 (2,868 queries):
# 0.4479 embedded, 0.4483 Elasticsearch, against 0.4232 / 0.4235 for keyword
# search alone. Re-tuning from keyword-only weights lands elsewhere (cosine
# 1.6, coverage 1.45) at the same held-out score: the optimum is flat.
DEFAULT_WEIGHTS = {
    "keyword": 1.0,
    "cosine": 0.95,
    "coverage": 0.85,
    "pairs": 0.35,
    "numbers": 0.32,
    "length": 0.07,
    "neighbour": 0.12,
}


# Features are about 0 to 1; a weight beyond this would drown the others and,
# as float32, overflow.
MAX_WEIGHT = 1000.0


@dataclass(frozen=True)
class RankerWeights:
    """One weight per feature of ``FEATURES``; a negative weight makes a
    feature count against a product."""

    values: tuple[float, ...] = tuple(DEFAULT_WEIGHTS[f] for f in FEATURES)

    def __post_init__(self):
        if len(self.values) != len(FEATURES):
            raise ValueError(
                f"the ranker needs {len(FEATURES)} weights ({', '.join(FEATURES)}), "
                f"got {len(self.values)}"
            )
        bad = [
            f"{name}={value!r}"
            for name, value in zip(FEATURES, self.values, strict=True)
            if not (math.isfinite(value) and abs(value) <= MAX_WEIGHT)
        ]
        if bad:
            raise ValueError(
                f"ranker weights must be numbers from -{MAX_WEIGHT:g} to "
                f"{MAX_WEIGHT:g}, got {', '.join(bad)}"
            )

    @classmethod
    def from_mapping(cls, weights: Mapping[str, object]) -> RankerWeights:
        """Weights by feature name; every feature must be named, nothing else,
        each with a JSON number."""
        unknown = set(weights) - set(FEATURES)
        missing = set(FEATURES) - set(weights)
        if unknown or missing:
            raise ValueError(
                "ranker weights must name exactly the features "
                f"{', '.join(FEATURES)}"
                + (f"; unknown: {', '.join(sorted(unknown))}" if unknown else "")
                + (f"; missing: {', '.join(sorted(missing))}" if missing else "")
            )
        values = []
        for name in FEATURES:
            value = weights[name]
            # bool is an int to Python, "1" a number to float(): neither is
            # a weight.
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(
                    f"ranker weight {name} must be a number, got {value!r}"
                )
            if not abs(value) <= MAX_WEIGHT:  # also NaN
                shown = repr(value)
                if len(shown) > 24:
                    shown = shown[:20] + "..."
                raise ValueError(
                    f"ranker weight {name} must be from -{MAX_WEIGHT:g} to "
                    f"{MAX_WEIGHT:g}, got {shown}"
                )
            values.append(float(value))
        return cls(tuple(values))

    @classmethod
    def load(cls, path: str) -> RankerWeights:
        """Weights from a JSON file holding ``{"weights": {feature: weight}}``
        (what ``eval-search --tune`` writes)."""
        try:
            # utf-8-sig: a byte-order mark, as some editors write, is fine.
            with open(path, encoding="utf-8-sig") as handle:
                document = json.load(handle)
        except OSError as exc:
            raise ValueError(f"cannot read ranker weights {path}: {exc}") from None
        except UnicodeDecodeError as exc:
            raise ValueError(f"ranker weights {path} are not UTF-8: {exc}") from None
        except json.JSONDecodeError as exc:
            raise ValueError(f"ranker weights {path} are not JSON: {exc}") from None
        except RecursionError:
            raise ValueError(
                f"ranker weights {path} nest too deeply to be a weights file"
            ) from None
        except ValueError as exc:  # e.g. a number of thousands of digits
            raise ValueError(
                f"ranker weights {path} are not a weights file: {exc}"
            ) from None
        if not isinstance(document, dict) or not isinstance(
            document.get("weights"), dict
        ):
            raise ValueError(f'ranker weights {path} need a "weights" object')
        try:
            return cls.from_mapping(document["weights"])
        except ValueError as exc:
            raise ValueError(f"ranker weights {path}: {exc}") from None

    def as_dict(self) -> dict[str, float]:
        return dict(zip(FEATURES, self.values, strict=True))

    @property
    def vector(self) -> np.ndarray:
        return np.asarray(self.values, dtype=np.float32)


@dataclass
class Candidate:
    """A product a hybrid search may show, with what the engines said of it.

    ``keyword_score`` is the raw BM25 score, None when only the nearest-
    neighbour search found the product.
    """

    item_id: str
    title: str
    cosine: float
    keyword_score: float | None = None


def _fold(word: str) -> str:
    """``fans`` -> ``fan``, ``batteries`` -> ``battery``, ``boxes`` -> ``box``,
    ``pipes`` -> ``pipe``; ``gas``, ``glass`` and short words kept."""
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("sses", "xes", "zes", "ches", "shes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


@lru_cache(maxsize=200_000)
def title_words(title: str) -> tuple[frozenset[str], frozenset[tuple[str, str]], int]:
    """A title's folded words, its adjacent word pairs and its length."""
    words = [_fold(word) for word in normalize(title).split()]
    return frozenset(words), frozenset(zip(words, words[1:], strict=False)), len(words)


def features(query: str, candidates: Sequence[Candidate]) -> np.ndarray:
    """The ``len(candidates) x len(FEATURES)`` feature matrix."""
    words = [_fold(word) for word in normalize(query).split()]
    distinct = set(words)
    pairs = set(zip(words, words[1:], strict=False))
    numbers = {word for word in distinct if not word.isalpha()}
    best = max(
        (c.keyword_score for c in candidates if c.keyword_score is not None),
        default=0.0,
    )
    matrix = np.zeros((len(candidates), len(FEATURES)), dtype=np.float32)
    for row, candidate in enumerate(candidates):
        title, title_pairs, length = title_words(candidate.title)
        if candidate.keyword_score is not None and best > 0:
            matrix[row, 0] = candidate.keyword_score / best
        matrix[row, 1] = candidate.cosine
        if distinct:
            matrix[row, 2] = len(distinct & title) / len(distinct)
        if pairs:
            matrix[row, 3] = len(pairs & title_pairs) / len(pairs)
        if numbers:
            matrix[row, 4] = len(numbers & title) / len(numbers)
        matrix[row, 5] = math.log1p(length)
        matrix[row, 6] = float(candidate.keyword_score is None)
    return matrix


def rank(
    query: str, candidates: Sequence[Candidate], weights: RankerWeights
) -> list[tuple[str, float]]:
    """``(item_id, score)`` of every candidate, best first; ties keep the
    candidates' order (keyword matches first, by BM25)."""
    if not candidates:
        return []
    scores, order = scored(features(query, candidates), weights.vector)
    return [(candidates[i].item_id, float(scores[i])) for i in order]


def scored(matrix: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's weighted sum, and the rows best first; ties keep the rows'
    order. The one ordering rule of the shop's ranker and of its tuning."""
    scores = matrix @ weights
    return scores, np.argsort(-scores, kind="stable")
