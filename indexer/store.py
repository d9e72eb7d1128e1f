"""The catalog store: products, interactions and the embedding cache in SQLite."""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from indexer.catalog import Interaction, Product

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS products (
    item_id TEXT PRIMARY KEY,
    doc TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS interactions (
    user_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    weight REAL NOT NULL,
    ts REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS interactions_user ON interactions(user_id);
CREATE TABLE IF NOT EXISTS embedding_cache (
    key TEXT PRIMARY KEY,
    vector BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class CatalogChanges:
    """How a new catalog differs from the stored one, by product."""

    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0

    @property
    def changed(self) -> int:
        return self.added + self.updated + self.removed


def _canonical(doc: dict) -> str:
    return json.dumps(doc, sort_keys=True, ensure_ascii=False)


class CatalogStore:
    """Products, interactions and cached embeddings of one shop.

    Writes happen in one transaction per call, so a load that fails half way
    leaves the previous catalog as it was.
    """

    def __init__(self, path: str):
        self.path = path
        self.db = sqlite3.connect(path, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    # Products and interactions

    def replace_catalog(
        self, products: Sequence[Product], interactions: Sequence[Interaction]
    ) -> None:
        """Make ``products`` and ``interactions`` the whole catalog, atomically."""
        now = time.time()
        with self.db:
            self.db.execute("DELETE FROM products")
            self.db.executemany(
                "INSERT INTO products VALUES (?, ?, ?)",
                ((p.item_id, json.dumps(p.to_doc()), now) for p in products),
            )
            self.db.execute("DELETE FROM interactions")
            self.db.executemany(
                "INSERT INTO interactions VALUES (?, ?, ?, ?, ?)",
                (
                    (i.user_id, i.item_id, i.kind, i.weight, i.timestamp)
                    for i in interactions
                ),
            )

    def diff_catalog(self, products: Sequence[Product]) -> CatalogChanges:
        """What :meth:`apply_catalog` with ``products`` would change."""
        stored = self._stored_docs()
        fresh = {p.item_id: _canonical(p.to_doc()) for p in products}
        updated = sum(
            1 for key, doc in fresh.items() if key in stored and stored[key] != doc
        )
        added = sum(1 for key in fresh if key not in stored)
        return CatalogChanges(
            added=added,
            updated=updated,
            removed=sum(1 for key in stored if key not in fresh),
            unchanged=len(fresh) - added - updated,
        )

    def apply_catalog(
        self,
        products: Sequence[Product],
        interactions: Sequence[Interaction],
        meta: Mapping[str, str] | None = None,
    ) -> CatalogChanges:
        """Make ``products`` the catalog by changing only what changed.

        New and changed products are written (their ``updated_at`` moves),
        unchanged ones are left as they are, products not in ``products`` are
        deleted; interactions are replaced and ``meta`` set. All of it in one
        transaction.
        """
        now = time.time()
        stored = self._stored_docs()
        fresh = {p.item_id: _canonical(p.to_doc()) for p in products}
        writes = [(k, doc, now) for k, doc in fresh.items() if stored.get(k) != doc]
        gone = [(key,) for key in stored if key not in fresh]
        with self.db:
            self.db.executemany("DELETE FROM products WHERE item_id = ?", gone)
            self.db.executemany(
                "INSERT OR REPLACE INTO products VALUES (?, ?, ?)", writes
            )
            self.db.execute("DELETE FROM interactions")
            self.db.executemany(
                "INSERT INTO interactions VALUES (?, ?, ?, ?, ?)",
                (
                    (i.user_id, i.item_id, i.kind, i.weight, i.timestamp)
                    for i in interactions
                ),
            )
            self.db.executemany(
                "INSERT OR REPLACE INTO meta VALUES (?, ?)", (meta or {}).items()
            )
        added = sum(1 for key in fresh if key not in stored)
        return CatalogChanges(
            added=added,
            updated=len(writes) - added,
            removed=len(gone),
            unchanged=len(fresh) - len(writes),
        )

    def _stored_docs(self) -> dict[str, str]:
        rows = self.db.execute("SELECT item_id, doc FROM products")
        return {item_id: _canonical(json.loads(doc)) for item_id, doc in rows}

    def item_ids(self) -> list[str]:
        """Every product id, in catalog order, without decoding the products."""
        rows = self.db.execute("SELECT item_id FROM products ORDER BY item_id")
        return [item_id for (item_id,) in rows]

    def products(self) -> list[Product]:
        rows = self.db.execute("SELECT doc FROM products ORDER BY item_id")
        return [Product.from_doc(json.loads(doc)) for (doc,) in rows]

    def interactions(self) -> list[Interaction]:
        return [Interaction(*row) for row in self.interaction_rows()]

    def interaction_rows(
        self, ordered: bool = True
    ) -> list[tuple[str, str, str, float, float]]:
        """``(user_id, item_id, kind, weight, ts)`` tuples, oldest first unless
        ``ordered`` is false: the cheap form for columnar training."""
        order = " ORDER BY ts" if ordered else ""
        return self.db.execute(
            "SELECT user_id, item_id, kind, weight, ts FROM interactions" + order
        ).fetchall()

    def count(self, table: str) -> int:
        if table not in ("products", "interactions", "embedding_cache"):
            raise ValueError(f"unknown table {table!r}")
        return self.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]

    # Embedding cache

    def cached_vectors(self, keys: Iterable[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        keys = list(keys)
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(
                f"SELECT key, vector FROM embedding_cache WHERE key IN ({marks})",
                chunk,
            )
            for key, blob in rows:
                found[key] = np.frombuffer(blob, dtype=np.float32)
        return found

    def cache_vectors(self, items: Iterable[tuple[str, np.ndarray]]) -> None:
        with self.db:
            self.db.executemany(
                "INSERT OR REPLACE INTO embedding_cache VALUES (?, ?)",
                ((key, vector.astype(np.float32).tobytes()) for key, vector in items),
            )

    # Bookkeeping

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))
