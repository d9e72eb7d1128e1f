"""Shared fixtures: the real retail sample, the embedding model and a loaded shop,
each built once per session."""

from __future__ import annotations

import os
import re

import pytest

from indexer.config import Settings
from indexer.embeddings import Embedder
from indexer.online_retail import load_online_retail
from indexer.pipeline import load_catalog, train_models

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(ROOT, "data", "online_retail_sample.csv.gz")
SHARED_RETAIL = os.path.join(
    ROOT, "..", "shared", "datasets", "online-retail", "online_retail.csv.gz"
)

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
