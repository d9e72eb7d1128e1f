"""Shared fixtures: the real retail sample, the embedding model and a loaded shop,
each built once per session."""

from __future__ import annotations

import csv
import gzip
import itertools
import os
import re

import pytest

from indexer.catalog import Product
from indexer.config import Settings
from indexer.embeddings import Embedder
from indexer.online_retail import load_online_retail
from indexer.pipeline import load_catalog, train_models

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(ROOT, "data", "online_retail_sample.csv.gz")
SHARED_RETAIL = os.path.join(
    ROOT, "..", "shared", "datasets", "online-retail", "online_retail.csv.gz"
)

HOMEDEPOT = os.path.join(ROOT, "..", "shared", "datasets", "homedepot-relevance")
PRODUCTS = os.path.join(HOMEDEPOT, "products.csv.gz")
JUDGMENTS = os.path.join(HOMEDEPOT, "judgments-dev.csv.gz")
# The first products of the Home Depot catalog, for tests on real titles.
SLICE = 600

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return Embedder()


@pytest.fixture(scope="session")
def retail_sample():
    """The shipped sample, read and cleaned."""
    return load_online_retail(SAMPLE)


@pytest.fixture(scope="session")
def sample_vectors(retail_sample, embedder):
    vectors, _ = embedder.embed_products(retail_sample.products)
    return vectors


@pytest.fixture(scope="session")
def shop_settings(tmp_path_factory, embedder) -> Settings:
    """A data directory with the sample loaded into the embedded backend and a
    model trained on it."""
    data_dir = tmp_path_factory.mktemp("shop")
    settings = Settings(data_dir=str(data_dir), search_backend="embedded")
    load_catalog(settings, SAMPLE, embedder)
    train_models(settings)
    return settings


@pytest.fixture(scope="session")
def app(shop_settings, embedder):
    from web import create_app

    return create_app(shop_settings, embedder=embedder, test_config={"TESTING": True})


@pytest.fixture()
def client(app):
    return app.test_client()


CSRF = re.compile(rb'name="csrf_token" value="([^"]+)"')


def csrf_token(client, path: str) -> str:
    """The CSRF token a page's form carries."""
    page = client.get(path)
    match = CSRF.search(page.data)
    assert match, f"no CSRF token on {path}"
    return match.group(1).decode()


class Shopper:
    """Drives the shop front as a person would, forms and CSRF tokens included."""

    def __init__(self, client, email: str, password: str = "correct horse 1"):
        self.client = client
        self.email = email
        self.password = password

    def register(self, name: str = "Test Shopper"):
        token = csrf_token(self.client, "/register")
        return self.client.post(
            "/register",
            data={
                "csrf_token": token,
                "email": self.email,
                "name": name,
                "password": self.password,
            },
        )

    def login(self, password: str | None = None, next_url: str | None = None):
        token = csrf_token(self.client, "/login")
        path = "/login" + (f"?next={next_url}" if next_url else "")
        return self.client.post(
            path,
            data={
                "csrf_token": token,
                "email": self.email,
                "password": password or self.password,
            },
        )

    def logout(self):
        token = csrf_token(self.client, "/")
        return self.client.post("/logout", data={"csrf_token": token})

    def rate(self, item_id: str, stars: int):
        token = csrf_token(self.client, f"/product/{item_id}")
        return self.client.post(
            f"/product/{item_id}/rate", data={"csrf_token": token, "stars": str(stars)}
        )

    def like(self, item_id: str, liked: bool = True):
        token = csrf_token(self.client, f"/product/{item_id}")
        return self.client.post(
            f"/product/{item_id}/like",
            data={"csrf_token": token, "liked": "1" if liked else "0"},
        )

    def for_you(self, k: int = 10) -> list[str]:
        response = self.client.get(f"/api/users/me/recommendations?k={k}")
        assert response.status_code == 200, response.data
        return [r["item_id"] for r in response.get_json()["results"]]


@pytest.fixture(scope="session")
def live_server(app):
    """The session's shop served over HTTP on a free loopback port."""
    import threading

    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


CATEGORY_PRODUCTS = [
    # (item_id, title, category, brand, price, rating_avg, rating_count)
    ("M1", "Blue Enamel Mug", "Home > Kitchen > Mugs", "Acme", 6.5, 4.6, 31),
    ("M2", "Owl Tea Mug", "Home > Kitchen > Mugs", "Hootware", 4.0, 3.9, 12),
    ("T1", "Floral China Teapot", "Home > Kitchen > Teapots", "Acme", 18.0, 4.2, 8),
    ("L1", "White Metal Lantern", "Home > Lighting", "Glow", 3.75, 4.8, 50),
    ("L2", "Star Fairy Lights", "Home > Lighting", "Glow", 9.95, None, 0),
    ("G1", "Wooden Bird Feeder", "Garden", "GreenCo", 12.0, 4.1, 5),
    ("G2", "Zinc Watering Can", "Garden > Tools", "GreenCo", 22.0, 3.5, 2),
    ("X1", "Mystery Gift Box", "", "", 10.0, None, 0),
]


@pytest.fixture(scope="session")
def category_settings(tmp_path_factory, embedder) -> Settings:
    """A tiny catalog with category paths and brands, indexed and trained."""
    from indexer.catalog import Interaction, Product
    from indexer.config import make_backend
    from indexer.store import CatalogStore

    data_dir = tmp_path_factory.mktemp("categories")
    settings = Settings(data_dir=str(data_dir), search_backend="embedded")
    products = [
        Product(
            item_id,
            title,
            category=category,
            brand=brand,
            price=price,
            rating_avg=rating,
            rating_count=count,
        )
        for item_id, title, category, brand, price, rating, count in CATEGORY_PRODUCTS
    ]
    # Three baskets: mugs with the teapot twice, the lantern with fairy lights
    # twice, and one of everything garden.
    baskets = [("a", ["M1", "T1", "L1"]), ("b", ["M1", "T1"]), ("c", ["L1", "L2"])]
    baskets += [("d", ["L1", "L2", "G1"]), ("e", ["G1", "G2"])]
    interactions = [
        Interaction(user, item_id, "purchase", 1.0, 1_700_000_000.0 + n)
        for n, (user, items) in enumerate(baskets)
        for item_id in items
    ]
    vectors, _ = embedder.embed_products(products)
    backend = make_backend(settings)
    backend.build(products, vectors)
    store = CatalogStore(settings.catalog_path)
    try:
        store.replace_catalog(products, interactions)
        store.set_meta("loaded_at", "1")
    finally:
        store.close()
    train_models(settings)
    return settings


@pytest.fixture(scope="session")
def category_app(category_settings, embedder):
    from web import create_app

    return create_app(
        category_settings, embedder=embedder, test_config={"TESTING": True}
    )


@pytest.fixture(scope="session")
def homedepot_slice(embedder):
    """The first products of the shared Home Depot catalog, with vectors."""
    if not os.path.exists(PRODUCTS):
        pytest.skip("the shared Home Depot catalog is absent")
    with gzip.open(PRODUCTS, "rt", encoding="utf-8", newline="") as handle:
        rows = list(itertools.islice(csv.DictReader(handle), SLICE))
    products = [Product(r["product_uid"], r["product_title"]) for r in rows]
    vectors, _ = embedder.embed_products(products)
    return products, vectors


@pytest.fixture(scope="module", params=["embedded", "elasticsearch"])
def homedepot_backend(request, tmp_path_factory, homedepot_slice):
    """Each backend holding the Home Depot slice."""
    from tests.test_search_contract import _elasticsearch_backend

    if request.param == "embedded":
        from indexer.search.embedded import EmbeddedBackend

        built = EmbeddedBackend(str(tmp_path_factory.mktemp("analysis-index")))
    else:
        built = _elasticsearch_backend(tmp_path_factory)
        built.alias = f"analysis-{os.getpid()}"
    built.build(*homedepot_slice)
    yield built
    if request.param == "elasticsearch":
        built.drop_all()
    built.close()
