"""The offline embedding model and the embedding cache."""

from __future__ import annotations

import numpy as np

from indexer.catalog import Product
from indexer.store import CatalogStore


def test_model_loads_offline_and_gives_unit_vectors(embedder):
    vectors = embedder.encode(["white metal lantern", "ceramic tea cup"])
    assert vectors.shape == (2, 384)
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)


def test_meaning_is_closer_than_unrelated_text(embedder):
    lantern, candle_light, mug = embedder.encode(
        ["hanging lantern", "light for a candle", "coffee mug"]
    )
    assert lantern @ candle_light > lantern @ mug


def test_embedding_text_uses_every_useful_field():
    product = Product(
        "X1",
        "Lantern",
        description="Zinc, with glass panes",
        brand="Acme",
        category="Home > Lighting",
        attributes={"colour": "white"},
    )
    text = product.embedding_text()
    for part in (
        "Lantern",
        "Zinc, with glass panes",
        "Acme",
        "Home > Lighting",
        "white",
    ):
        assert part in text


def test_cache_skips_unchanged_text(embedder, tmp_path, retail_sample):
    store = CatalogStore(str(tmp_path / "catalog.sqlite"))
    products = retail_sample.products[:40]
    first, encoded = embedder.embed_products(products, store)
    assert encoded == len({p.embedding_text() for p in products})
    again, encoded = embedder.embed_products(products, store)
    assert encoded == 0
    assert np.array_equal(first, again)
    products[0].title += " Large"
    _, encoded = embedder.embed_products(products, store)
    assert encoded == 1
    store.close()


def test_query_path_gives_the_batch_path_vector(embedder):
    texts = ["white metal lantern", "Café crème", "", "tea " * 600]
    batch = embedder.encode(texts)
    for text, expected in zip(texts, batch, strict=True):
        assert np.allclose(embedder.encode_query(text), expected, atol=1e-5)
