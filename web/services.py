"""What the views need, built once per process: search, embeddings, recommender."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time

from flask import current_app

from indexer.catalog import Product
from indexer.config import Settings, make_backend
from indexer.embeddings import Embedder
from indexer.search.base import (
    Hit,
    SearchBackend,
    SearchError,
    SearchRequest,
    SearchResponse,
)
from indexer.store import CatalogStore
from recs.baskets import BasketIndex
from recs.model_store import ModelStore, ModelUnusable
from recs.recommender import Recommender
from web.catalog import CatalogView, Suggestion
from web.db import ShopDatabase

# How often the catalog store is asked whether a new catalog was loaded.
CATALOG_CHECK_SECONDS = 10.0

log = logging.getLogger(__name__)


# A backend outage is logged at most this often per kind of call.
OUTAGE_LOG_SECONDS = 60.0


class CatalogFallback:
    """The search backend as the shop's pages use it: product lookups fall
    back to the catalog of record (the catalog store, held in memory) while
    the backend cannot answer; everything else goes to the backend as is."""

    def __init__(self, backend: SearchBackend, catalog):
        self._backend = backend
        self._catalog = catalog
        self._logged_at = -OUTAGE_LOG_SECONDS

    def __getattr__(self, name: str):
        return getattr(self._backend, name)

    def _outage(self, exc: SearchError) -> None:
        now = time.monotonic()
        if now - self._logged_at >= OUTAGE_LOG_SECONDS:
            self._logged_at = now
            log.warning("product lookups use the catalog store: %s", exc)

    def fetch(self, item_ids: list[str]) -> dict[str, Product]:
        try:
            return self._backend.fetch(item_ids)
        except SearchError as exc:
            self._outage(exc)
            known = self._catalog().by_id
            return {i: known[i] for i in item_ids if i in known}

    def all_ids(self, limit: int) -> list[str]:
        try:
            return self._backend.all_ids(limit)
        except SearchError as exc:
            self._outage(exc)
            return [product.item_id for product in self._catalog().popular[:limit]]


def services() -> ShopServices:
    """The current app's shared services (inside a request or app context)."""
    return current_app.extensions["shop"]


class ShopServices:
    """The search backend, the query embedder, the trained models and the
    shop database, shared by every request of one process.

    A model trained after the process started is picked up on the next
    request: the model directory's ``current`` link is checked each time.
    """

    def __init__(self, settings: Settings, embedder: Embedder | None = None):
        self.settings = settings
        self.search_backend = make_backend(settings)
        # Pages and recommendations look products up here, so that they
        # still show while the search backend is down.
        self.backend = CatalogFallback(self.search_backend, lambda: self.catalog)
        self.embedder = embedder or Embedder()
        self.db = ShopDatabase(settings.shop_db_path)
        self.models = ModelStore(settings.models_dir)
        self._lock = threading.Lock()
        # "" until the first look, so that a missing model is reported too.
        self._model_version: str | None = ""
        self._recommender = Recommender(self.backend, None)
        self.model_problem: str | None = None
        self._catalog_lock = threading.Lock()
        self._catalog_loaded_at: str | None = None
        self._catalog_checked = 0.0
        self._catalog_view: CatalogView | None = None
        self._baskets: BasketIndex | None = None

    def warm_up(self) -> None:
        """Load the embedding model, the serving index and the trained models
        before the first request."""
        try:
            self.search_backend.status()  # the embedded backend opens its version
        except SearchError as exc:
            log.warning("search index not ready: %s", exc)
        self.embedder.encode_query("warm up")
        self.recommender  # noqa: B018 - loads the models
        self.baskets  # noqa: B018 - counts the baskets

    @property
    def recommender(self) -> Recommender:
        """Recommendations from the current model; from content and
        popularity alone, with one warning per version, when the model is
        missing or cannot be read."""
        version = self.models.current_version()
        if version != self._model_version:
            with self._lock:
                if version != self._model_version:
                    self._recommender = self._load_recommender(version)
                    self._model_version = version
        return self._recommender

    def _load_recommender(self, version: str | None) -> Recommender:
        try:
            loaded = self.models.load()
        except ModelUnusable as exc:
            loaded, self.model_problem = None, str(exc)
        else:
            self.model_problem = (
                None
                if loaded is not None
                else f"no trained model in {self.settings.models_dir}; train one "
                "with: python -m indexer train"
            )
        if loaded is None:
            log.warning(
                "%s; serving content and popularity recommendations only",
                self.model_problem,
            )
            popular = [product.item_id for product in self.catalog.popular]
            return Recommender(self.backend, None, popular)
        log.info("recommender uses model %s", version)
        return Recommender(self.backend, loaded)

    def health(self) -> tuple[bool, dict]:
        """Whether the shop can serve, and the state of each dependency.

        The database, the search backend and the query embedder are needed;
        without a model the shop still serves, from content and popularity.
        """
        checks: dict[str, dict] = {}
        try:
            users = self.db.connection.execute("SELECT count(*) FROM users")
            checks["database"] = {"ok": True, "users": users.fetchone()[0]}
        except sqlite3.Error as exc:
            checks["database"] = {"ok": False, "error": str(exc)}
        try:
            info = self.search_backend.health()
            checks["search"] = {
                "ok": info.index is not None and info.documents > 0,
                "backend": info.backend,
                "index": info.index,
                "documents": info.documents,
                "health": info.health,
            }
        except SearchError as exc:
            log.warning("health check: %s", exc)
            checks["search"] = {
                "ok": False,
                "backend": self.search_backend.name,
                "error": "the search backend does not answer",
            }
        self.recommender  # noqa: B018 - notices a new or damaged model
        checks["model"] = {
            "ok": self.model_problem is None,
            "version": self._model_version,
            **({"problem": self.model_problem} if self.model_problem else {}),
        }
        checks["embedder"] = {
            "ok": self.embedder.loaded,
            "model": self.embedder.name,
        }
        needed = ("database", "search", "embedder")
        return all(checks[name]["ok"] for name in needed), checks

    def search(self, request: SearchRequest) -> SearchResponse:
        vector = None
        if request.mode != "keyword" and request.query.strip():
            vector = self.embedder.encode_query(request.query)
        elif request.mode != "keyword":
            request = SearchRequest(
                request.query,
                "keyword",
                request.filters,
                request.sort,
                request.page,
                request.per_page,
            )
        return self.backend.search(request, vector)

    def products(self, item_ids: list[str]) -> list[Product]:
        """Products in the order of ``item_ids``, unknown ones left out."""
        found = self.backend.fetch(item_ids)
        return [found[i] for i in item_ids if i in found]

    def hit_products(self, hits: list[Hit]) -> list[tuple[Hit, Product]]:
        """Each hit with its product, fetching only those the backend did not
        return with the hit; unknown ones left out."""
        missing = [hit.item_id for hit in hits if hit.product is None]
        found = self.backend.fetch(missing) if missing else {}
        paired = []
        for hit in hits:
            product = hit.product or found.get(hit.item_id)
            if product is not None:
                paired.append((hit, product))
        return paired

    def product(self, item_id: str) -> Product | None:
        return self.backend.fetch([item_id]).get(item_id)

    # The catalog of record, for browsing and baskets

    def _refresh_catalog(self) -> None:
        """Rebuild the catalog view and basket counts after a new load."""
        now = time.monotonic()
        if self._catalog_view is not None and (
            now - self._catalog_checked < CATALOG_CHECK_SECONDS
        ):
            return
        with self._catalog_lock:
            if self._catalog_view is not None and (
                now - self._catalog_checked < CATALOG_CHECK_SECONDS
            ):
                return
            self._catalog_checked = now
            # Baskets first: a reader that finds the view finds its baskets.
            if not os.path.exists(self.settings.catalog_path):
                self._baskets = BasketIndex.from_interactions([])
                self._catalog_view = CatalogView([])
                return
            store = CatalogStore(self.settings.catalog_path)
            try:
                loaded_at = store.get_meta("loaded_at")
                if loaded_at == self._catalog_loaded_at and self._catalog_view:
                    return
                started = time.perf_counter()
                view = CatalogView(store.products())
                self._baskets = BasketIndex.from_interactions(store.interactions())
                self._catalog_view = view
                self._catalog_loaded_at = loaded_at
            finally:
                store.close()
            log.info(
                "catalog view and basket counts built in %.1fs",
                time.perf_counter() - started,
            )

    @property
    def catalog(self) -> CatalogView:
        self._refresh_catalog()
        return self._catalog_view

    @property
    def baskets(self) -> BasketIndex:
        self._refresh_catalog()
        return self._baskets

    def bought_together(self, item_id: str, top_k: int) -> list[tuple[str, int]]:
        """Available products most often in the same basket as ``item_id``."""
        pairs = self.baskets.bought_together(item_id, top_k * 2)
        products = self.backend.fetch([i for i, _ in pairs])
        return [(i, n) for i, n in pairs if i in products and products[i].available][
            :top_k
        ]

    def suggest(self, prefix: str, limit: int) -> list[Suggestion]:
        """Categories and titles for a half-typed query; a keyword search fills
        up the list when few titles start with what was typed."""
        suggestions = self.catalog.suggest(prefix, limit)
        if len(suggestions) < limit and len(prefix.strip()) >= 3:
            response = self.backend.search(
                SearchRequest(prefix, mode="keyword", per_page=limit)
            )
            known = {s.item_id for s in suggestions}
            products = self.products([hit.item_id for hit in response.hits])
            for product in products:
                if len(suggestions) >= limit:
                    break
                if product.item_id not in known:
                    suggestions.append(
                        Suggestion(product.title, "product", product.item_id)
                    )
        return suggestions
