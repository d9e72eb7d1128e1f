"""The ops steps as functions: load a catalog, train the models, report status."""

from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass

from indexer.config import Settings, make_backend
from indexer.embeddings import Embedder
from indexer.online_retail import load_online_retail
from indexer.search.base import SearchBackend
from indexer.sources import IngestError
from indexer.store import CatalogStore
from recs.collaborative import CollaborativeModel, TrainingParams
from recs.model_store import ModelStore
from recs.popularity import popularity, trending

log = logging.getLogger(__name__)


@dataclass
class LoadReport:
    source: str
    products: int
    interactions: int
    encoded: int
    refused: int
    seconds: float
    index: str | None

    def summary(self) -> str:
        return (
            f"loaded {self.products} products and {self.interactions} interactions "
            f"from {self.source} in {self.seconds:.1f}s; {self.encoded} embedded anew, "
            f"{self.refused} rows refused; serving index {self.index}"
        )


def file_fingerprint(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_catalog(
    settings: Settings,
    source: str,
    embedder: Embedder,
    backend: SearchBackend | None = None,
) -> LoadReport:
    """Read ``source``, embed its products and make them the serving catalog.

    The new index is built beside the old one and swapped in only when
    complete, and the catalog store is replaced in one transaction after
    that: a load that fails at any step leaves what was served untouched.

    Raises
    ------
    IngestError
        When nothing usable could be read from ``source``.
    """
    if not os.path.exists(source):
        raise IngestError(f"{source}: no such file")
    started = time.perf_counter()
    os.makedirs(settings.data_dir, exist_ok=True)
    store = CatalogStore(settings.catalog_path)
    backend = backend or make_backend(settings)
    try:
        # Read and clean
        loaded = load_online_retail(source)
        counts = popularity(loaded.interactions)
        for product in loaded.products:
            product.popularity = float(counts.get(product.item_id, 0))

        # Embed, reusing vectors of unchanged text
        vectors, encoded = embedder.embed_products(loaded.products, store)

        # Index, then commit the catalog
        info = backend.build(loaded.products, vectors)
        store.replace_catalog(loaded.products, loaded.interactions)
        store.set_meta("source", os.path.abspath(source))
        store.set_meta("source_sha256", file_fingerprint(source))
        store.set_meta("loaded_at", str(time.time()))
    finally:
        store.close()
    report = LoadReport(
        source=source,
        products=len(loaded.products),
        interactions=len(loaded.interactions),
        encoded=encoded,
        refused=len(loaded.problems),
        seconds=time.perf_counter() - started,
        index=info.index,
    )
    log.info("%s", report.summary())
    return report


def is_loaded(settings: Settings, source: str) -> bool:
    """Whether ``source``, byte for byte, is what the serving catalog came from."""
    if not os.path.exists(settings.catalog_path):
        return False
    backend = make_backend(settings)
    try:
        if backend.status().documents == 0:
            return False
    except Exception:  # an unreachable engine means: load again
        return False
    finally:
        backend.close()
    store = CatalogStore(settings.catalog_path)
    try:
        return store.get_meta("source_sha256") == file_fingerprint(source)
    finally:
        store.close()


def train_models(
    settings: Settings,
    params: TrainingParams | None = None,
    extra_interactions=(),
) -> str:
    """Train ALS and the popularity signals on every stored interaction.

    ``extra_interactions`` adds events kept elsewhere (the shop's own ratings
    and likes). Returns the new model version.
    """
    store = CatalogStore(settings.catalog_path)
    try:
        items = [p.item_id for p in store.products()]
        interactions = store.interactions() + list(extra_interactions)
    finally:
        store.close()
    if not items:
        raise IngestError(
            "the catalog is empty; load one first (python -m indexer load FILE)"
        )
    model = CollaborativeModel.train(interactions, items, params)
    ranked = [item_id for item_id, _ in trending(interactions)]
    version = ModelStore(settings.models_dir).save(
        model, ranked, popularity(interactions)
    )
    log.info("saved model %s", version)
    return version


def is_trained(settings: Settings) -> bool:
    """Whether a model newer than the catalog exists."""
    models = ModelStore(settings.models_dir)
    version = models.current_version()
    if version is None or not os.path.exists(settings.catalog_path):
        return False
    store = CatalogStore(settings.catalog_path)
    try:
        loaded_at = float(store.get_meta("loaded_at") or 0)
    finally:
        store.close()
    return os.path.getmtime(os.path.join(settings.models_dir, version)) >= loaded_at
