"""Settings, typed and read from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from functools import cached_property

from indexer.search.base import HYBRID_METHODS, HybridParams
from indexer.search.rerank import MAX_WEIGHT, RankerWeights

# An RRF constant beyond this ranks every list alike.
MAX_RRF_K = 100_000
DEFAULT_SECRET_KEY = "dev-only-secret-key-change-me"
BACKENDS = ("embedded", "elasticsearch")


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def _number_env(name: str, default: int | float, low: float, high: float):
    """A number from the environment of ``default``'s type, within
    ``low``..``high``, refused naming ``name``."""
    text = _env(name, str(default))
    whole = isinstance(default, int)
    kind, what = (int, "a whole number") if whole else (float, "a number")
    try:
        value = kind(text.strip())
    except ValueError:
        raise ValueError(f"{name}={text!r} is not {what}") from None
    if not low <= value <= high:  # also NaN
        raise ValueError(f"{name}={text!r} must be from {low:g} to {high:g}")
    return value


@dataclass(frozen=True)
class Settings:
    """Where the shop keeps its state and which engines it talks to.

    Every field has an environment variable of the same name in upper case.
    """

    data_dir: str = field(default_factory=lambda: _env("DATA_DIR", "var"))
    search_backend: str = field(
        default_factory=lambda: _env("SEARCH_BACKEND", "embedded")
    )
    elasticsearch_url: str = field(
        default_factory=lambda: _env("ELASTICSEARCH_URL", "http://127.0.0.1:9200")
    )
    elasticsearch_alias: str = field(
        default_factory=lambda: _env("ELASTICSEARCH_ALIAS", "products")
    )
    secret_key: str = field(
        default_factory=lambda: _env("SECRET_KEY", DEFAULT_SECRET_KEY)
    )
    environment: str = field(default_factory=lambda: _env("SHOP_ENV", "development"))
    port: int = field(default_factory=lambda: _number_env("PORT", 8000, 1, 65535))
    # Hybrid search fusion; see HybridParams.
    hybrid_rrf_k: int = field(
        default_factory=lambda: _number_env(
            "HYBRID_RRF_K", HybridParams.rrf_k, 0, MAX_RRF_K
        )
    )
    hybrid_keyword_weight: float = field(
        default_factory=lambda: _number_env(
            "HYBRID_KEYWORD_WEIGHT", HybridParams.keyword_weight, 0.0, MAX_WEIGHT
        )
    )
    hybrid_semantic_weight: float = field(
        default_factory=lambda: _number_env(
            "HYBRID_SEMANTIC_WEIGHT", HybridParams.semantic_weight, 0.0, MAX_WEIGHT
        )
    )
    hybrid_method: str = field(
        default_factory=lambda: _env("HYBRID_METHOD", HybridParams.method)
    )
    # A JSON file of ranker weights (``eval-search --tune --ranker-out``);
    # empty for the built-in ones.
    hybrid_ranker: str = field(default_factory=lambda: _env("HYBRID_RANKER", ""))

    def __post_init__(self):
        if self.search_backend not in BACKENDS:
            raise ValueError(
                f"SEARCH_BACKEND={self.search_backend!r} is not known; "
                f"choose one of {', '.join(BACKENDS)}"
            )
        if self.hybrid_method not in HYBRID_METHODS:
            raise ValueError(
                f"HYBRID_METHOD={self.hybrid_method!r} is not known; "
                f"choose one of {', '.join(HYBRID_METHODS)}"
            )
        # Read once (HYBRID_RANKER is a file) and refused here, before a
        # server binds its port, not in a worker.
        self.hybrid  # noqa: B018 - reads HYBRID_RANKER and checks the RRF values

    @cached_property
    def hybrid(self) -> HybridParams:
        """The fusion parameters of hybrid search."""
        return HybridParams(
            self.hybrid_rrf_k,
            self.hybrid_keyword_weight,
            self.hybrid_semantic_weight,
            self.hybrid_method,
            self._ranker_weights(),
        )

    def _ranker_weights(self) -> RankerWeights:
        if not self.hybrid_ranker:
            return RankerWeights()
        try:
            return RankerWeights.load(self.hybrid_ranker)
        except ValueError as exc:
            raise ValueError(f"HYBRID_RANKER: {exc}") from None

    @property
    def catalog_path(self) -> str:
        return os.path.join(self.data_dir, "catalog.sqlite")

    @property
    def index_dir(self) -> str:
        return os.path.join(self.data_dir, "index")

    @property
    def models_dir(self) -> str:
        return os.path.join(self.data_dir, "models")

    @property
    def shop_db_path(self) -> str:
        return os.path.join(self.data_dir, "shop.sqlite")

    def with_overrides(self, **overrides) -> Settings:
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise ValueError(
                f"unknown settings {sorted(unknown)}; known: {sorted(known)}"
            )
        return replace(self, **overrides)


def make_backend(settings: Settings):
    """The search backend the settings name."""
    if settings.search_backend == "elasticsearch":
        from indexer.search.elastic import ElasticsearchBackend

        return ElasticsearchBackend(
            settings.elasticsearch_url,
            settings.elasticsearch_alias,
            hybrid=settings.hybrid,
        )
    from indexer.search.embedded import EmbeddedBackend

    return EmbeddedBackend(settings.index_dir, hybrid=settings.hybrid)
