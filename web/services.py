"""What the views need, built once per process: search, embeddings, recommender."""

from __future__ import annotations

import logging
import threading

from indexer.catalog import Product
from indexer.config import Settings, make_backend
from indexer.embeddings import Embedder
from indexer.search.base import SearchRequest, SearchResponse
from recs.model_store import ModelStore
from recs.recommender import Recommender
from web.db import ShopDatabase

log = logging.getLogger(__name__)


class ShopServices:
    """The search backend, the query embedder, the trained models and the
    shop database, shared by every request of one process.

    A model trained after the process started is picked up on the next
    request: the model directory's ``current`` link is checked each time.
    """

    def __init__(self, settings: Settings, embedder: Embedder | None = None):
        self.settings = settings
        self.backend = make_backend(settings)
        self.embedder = embedder or Embedder()
        self.db = ShopDatabase(settings.shop_db_path)
        self.models = ModelStore(settings.models_dir)
        self._lock = threading.Lock()
        self._model_version: str | None = None
        self._recommender = Recommender(self.backend, None)

    def warm_up(self) -> None:
        """Load the embedding model and trained models before the first request."""
        self.embedder.encode_query("warm up")
        self.recommender  # noqa: B018 - loads the models

    @property
    def recommender(self) -> Recommender:
        version = self.models.current_version()
        if version != self._model_version:
            with self._lock:
                if version != self._model_version:
                    loaded = self.models.load()
                    self._recommender = Recommender(self.backend, loaded)
                    self._model_version = version
                    log.info("recommender uses model %s", version)
        return self._recommender

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

    def product(self, item_id: str) -> Product | None:
        return self.backend.fetch([item_id]).get(item_id)
