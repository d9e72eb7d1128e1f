"""The ops steps as functions: load a catalog, train the models, report status."""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

from indexer.config import Settings, make_backend
from indexer.embeddings import Embedder
from indexer.formats import read_sources
from indexer.search.base import SearchBackend
from indexer.sources import IngestError, require_file
from indexer.store import CatalogStore
from recs.collaborative import CollaborativeModel, TrainingParams, fit_cooccurrence
from recs.hybrid import HybridConfig
from recs.interactions import InteractionColumns, confidence_matrix
from recs.model_store import ModelStore
from recs.popularity import popularity, trending

log = logging.getLogger(__name__)

# A load may remove at most this share of a catalog of SHRINK_GUARD_MIN or
# more products unless it says it means to.
MAX_REMOVED_SHARE = 0.5
SHRINK_GUARD_MIN = 10


@dataclass
class LoadReport:
    """What one load read, changed and refused."""

    source: str
    products: int
    interactions: int
    encoded: int
    refused: int
    seconds: float
    index: str | None
    rows_read: int = 0
    files: int = 1
    added: int = 0
    updated: int = 0
    removed: int = 0
    unavailable: int = 0
    skipped: int = 0
    repaired: int = 0

    @property
    def changed(self) -> int:
        return self.added + self.updated + self.removed

    def summary(self) -> str:
        gone = f"{self.removed} removed"
        if self.unavailable:
            gone += f", {self.unavailable} kept as unavailable"
        return (
            f"read {self.rows_read} rows from {self.files} file(s): loaded "
            f"{self.products} products and {self.interactions} interactions; "
            f"changed {self.changed} ({self.added} new, {self.updated} updated, "
            f"{gone}), skipped {self.skipped}, repaired {self.repaired}, refused "
            f"{self.refused}; {self.encoded} embedded anew; {self.seconds:.1f}s; "
            f"serving index {self.index}"
        )


def loaded_sources(settings: Settings) -> list[str] | None:
    """The files the served catalog was loaded from; None when there is none."""
    if not os.path.exists(settings.catalog_path):
        return None
    store = CatalogStore(settings.catalog_path)
    try:
        source = store.get_meta("source")
    finally:
        store.close()
    return source.split(os.pathsep) if source else None


def file_fingerprint(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sources_fingerprint(
    paths: Sequence[str], mapping: str | None = None, keep_missing: bool = False
) -> str:
    """One digest of every input of a load: the files, the mapping, the options.

    A single file loaded without options keeps its plain file digest, so a
    catalog loaded before several files were accepted still counts as loaded.
    """
    if len(paths) == 1 and mapping is None and not keep_missing:
        return file_fingerprint(paths[0])
    digest = hashlib.sha256()
    for path in [*paths, *([mapping] if mapping else [])]:
        digest.update(file_fingerprint(path).encode())
    digest.update(b"keep-missing" if keep_missing else b"")
    return digest.hexdigest()


def _as_paths(sources: str | Sequence[str]) -> list[str]:
    paths = [sources] if isinstance(sources, str) else list(sources)
    if not paths:
        raise IngestError("no file to load; name at least one")
    for path in paths:
        require_file(path)
    return paths


def load_catalog(
    settings: Settings,
    sources: str | Sequence[str],
    embedder: Embedder,
    backend: SearchBackend | None = None,
    mapping: str | None = None,
    keep_missing: bool = False,
    allow_shrink: bool = False,
) -> LoadReport:
    """Read ``sources``, embed their products and make them the serving catalog.

    The new index is built beside the old one and swapped in only when
    complete, and the catalog store is updated in one transaction after
    that: a load that fails at any step leaves what was served untouched.
    Only products whose embedded text changed are embedded again.

    Parameters
    ----------
    settings : Settings
        Where the catalog lives and which search backend serves it.
    sources : str or sequence of str
        The files of the shop: a catalog and its interactions, in any format
        :func:`indexer.formats.read_sources` reads.
    embedder : Embedder
        Encodes the product texts.
    backend : SearchBackend, optional
        Defaults to the one ``settings`` names.
    mapping : str, optional
        JSON mapping for generic catalog and interactions files.
    keep_missing : bool
        Keep products that are no longer in the files, marked unavailable,
        instead of removing them.
    allow_shrink : bool
        Allow a load that removes more than half of the products served.

    Returns
    -------
    LoadReport
        Counts of what was read, changed, skipped and refused.

    Raises
    ------
    IngestError
        When a file is unusable or nothing usable could be read.
    """
    paths = _as_paths(sources)
    started = time.perf_counter()
    os.makedirs(settings.data_dir, exist_ok=True)
    store = CatalogStore(settings.catalog_path)
    backend = backend or make_backend(settings)
    try:
        # Read, clean and merge every file
        read = read_sources(paths, mapping)
        products = read.products
        columns = InteractionColumns.from_interactions(read.interactions)
        counts = popularity(columns)
        for product in products:
            product.popularity = float(counts.get(product.item_id, 0))

        # A load that would delete most of a live catalog is more likely the
        # wrong file than a real clear-out: refuse it unless told otherwise.
        existing = set(store.item_ids())
        present = {product.item_id for product in products}
        removing = len(existing - present)
        if (
            not keep_missing
            and not allow_shrink
            and len(existing) >= SHRINK_GUARD_MIN
            and removing > MAX_REMOVED_SHARE * len(existing)
        ):
            raise IngestError(
                f"this load would remove {removing} of the {len(existing)} products "
                f"now served ({removing / len(existing):.0%}); nothing was changed. "
                "Check the files, or pass --allow-shrink to replace the catalog, or "
                "--keep-missing to keep the others as unavailable"
            )

        # Products gone from the files stay, unavailable, when asked to
        unavailable = 0
        if keep_missing:
            present = {product.item_id for product in products}
            for old in store.products():
                if old.item_id not in present:
                    old.available = False
                    old.popularity = 0.0
                    products.append(old)
                    unavailable += 1

        # Embed, reusing vectors of unchanged text
        vectors, encoded = embedder.embed_products(products, store)

        # Index, then commit the catalog
        info = backend.build(products, vectors)
        loaded_at = str(time.time())
        changes = store.apply_catalog(
            products,
            read.interactions,
            meta={
                "source": os.pathsep.join(os.path.abspath(p) for p in paths),
                "source_sha256": sources_fingerprint(paths, mapping, keep_missing),
                "loaded_at": loaded_at,
            },
        )
        # A columnar copy of the history, so training need not decode it again.
        columns.save(interactions_snapshot(settings), loaded_at)
    finally:
        store.close()
    report = LoadReport(
        source=", ".join(paths),
        products=len(products),
        interactions=len(read.interactions),
        encoded=encoded,
        refused=len(read.problems),
        seconds=time.perf_counter() - started,
        index=info.index,
        rows_read=read.rows_read,
        files=len(paths),
        added=changes.added,
        updated=changes.updated,
        removed=changes.removed,
        unavailable=unavailable,
        skipped=read.counts["skipped"],
        repaired=read.counts["repaired"],
    )
    log.info("%s", report.summary())
    return report


def is_loaded(
    settings: Settings,
    sources: str | Sequence[str],
    mapping: str | None = None,
    keep_missing: bool = False,
) -> bool:
    """Whether ``sources``, byte for byte, are what the serving catalog came from."""
    if not os.path.exists(settings.catalog_path):
        return False
    paths = _as_paths(sources)
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
        stored = store.get_meta("source_sha256")
    finally:
        store.close()
    return stored == sources_fingerprint(paths, mapping, keep_missing)


def interactions_snapshot(settings: Settings) -> str:
    """Where the columnar copy of the interaction history is kept."""
    return os.path.join(settings.data_dir, "interactions.npz")


def train_models(
    settings: Settings,
    params: TrainingParams | None = None,
    extra_interactions=(),
    recipe: HybridConfig | None = None,
) -> str:
    """Train ALS, item-to-item co-occurrence and the popularity signals on
    every stored interaction, and store them with the hybrid recipe.

    Parameters
    ----------
    settings : Settings
    params : TrainingParams, optional
        ALS settings; default those of ``recipe``.
    extra_interactions : iterable of Interaction
        Events kept elsewhere (the shop's own ratings and likes).
    recipe : HybridConfig, optional
        The for-you recipe to serve with this model, as ``evaluate`` tuned
        it; the defaults otherwise.

    Returns
    -------
    str
        The new model version.
    """
    recipe = recipe or HybridConfig()
    params = params or recipe.training_params()
    store = CatalogStore(settings.catalog_path)
    try:
        items = store.item_ids()
        # Columns, not objects: per-event Python costs more than the ALS fit.
        stamp = store.get_meta("loaded_at") or ""
        interactions = InteractionColumns.load(interactions_snapshot(settings), stamp)
        if interactions is None:
            interactions = InteractionColumns.from_rows(
                store.interaction_rows(ordered=False)
            )
    finally:
        store.close()
    if not items:
        raise IngestError(
            "the catalog is empty; load one first (python -m indexer load FILE)"
        )
    extra = [
        (i.user_id, i.item_id, i.kind, i.weight, i.timestamp)
        for i in extra_interactions
    ]
    interactions = interactions.concat(InteractionColumns.from_rows(extra))
    model = CollaborativeModel.train(interactions, items, params)
    cooccurrence = None
    user_items, _ = confidence_matrix(interactions, items)
    if user_items.nnz:
        cooccurrence = fit_cooccurrence(user_items, recipe.neighbours)
    ranked = [
        item_id
        for item_id, _ in trending(
            interactions, half_life_days=recipe.trending_half_life_days
        )
    ]
    version = ModelStore(settings.models_dir).save(
        model, ranked, popularity(interactions), recipe, cooccurrence
    )
    log.info("saved model %s", version)
    return version


def tune_recipe(settings: Settings) -> HybridConfig:
    """Tune the hybrid recipe on the loaded catalog: train on all but the
    newest tenth of the events, score that tenth (see ``recs.evaluation``).

    Returns
    -------
    HybridConfig
    """
    import numpy as np

    from recs.evaluation import load_store, make_split, time_cutoffs, tune

    data = load_store(settings)
    if not len(data.columns):
        raise IngestError("no interactions to tune on; load a shop's history first")
    _, cut = time_cutoffs(data.columns.timestamps)
    split = make_split(data, cut, np.inf)
    if not split.relevant:
        raise IngestError(
            "too little history to tune on: no shopper bought both before and "
            "after the newest tenth of the events"
        )
    config, _, validation = tune(data, split, HybridConfig(), top_k=10)
    log.info(
        "tuned recipe: hybrid ndcg@10 %.4f on %d shoppers",
        validation["hybrid"]["ndcg_at_k"],
        len(split.relevant),
    )
    return config


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
