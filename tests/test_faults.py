"""Faults on disk: a damaged or missing model, and a reindex killed half way."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from indexer.store import CatalogStore
from recs.model_store import ModelStore

from .conftest import ROOT, Shopper

ITEM = "71053"


@pytest.fixture()
def shop_copy(shop_settings, tmp_path):
    """A copy of the loaded and trained sample shop that a test may damage."""
    data_dir = tmp_path / "shop"
    shutil.copytree(shop_settings.data_dir, data_dir, symlinks=True)
    return shop_settings.with_overrides(data_dir=str(data_dir))


def damage_model(settings, how: str) -> None:
    store = ModelStore(settings.models_dir)
    version_dir = os.path.join(settings.models_dir, store.current_version())
    if how == "corrupt":
        with open(os.path.join(version_dir, "als.npz"), "r+b") as model:
            model.truncate(100)
    elif how == "file missing":
        os.remove(os.path.join(version_dir, "signals.json"))
    else:
        shutil.rmtree(settings.models_dir)


def cli(*args: str, settings) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "indexer", "--data-dir", settings.data_dir, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": ROOT, "SEARCH_BACKEND": "embedded"},
        timeout=600,
        check=False,
    )


@pytest.mark.parametrize("how", ["corrupt", "file missing", "never trained"])
def test_a_bad_model_leaves_content_and_popularity(shop_copy, embedder, caplog, how):
    from web import create_app

    damage_model(shop_copy, how)
    caplog.set_level(logging.WARNING, logger="web.services")
    app = create_app(shop_copy, embedder=embedder, test_config={"TESTING": True})
    client = app.test_client()

    shopper = Shopper(client, f"model-{how.replace(' ', '-')}@example.com")
    assert shopper.register().status_code == 302
    assert shopper.rate(ITEM, 5).status_code == 303
    for path in ("/", f"/product/{ITEM}", "/search?q=lantern", "/"):
        assert client.get(path).status_code == 200, path
    response = client.get("/api/users/me/recommendations?k=10")
    assert response.status_code == 200
    results = response.get_json()["results"]
    assert len(results) == 10
    sources = {source for r in results for source in r["sources"]}
    assert sources <= {"content", "popularity"} and "content" in sources

    # Trending is the catalog's most popular products.
    store = CatalogStore(shop_copy.catalog_path)
    try:
        products = [p for p in store.products() if p.available]
    finally:
        store.close()
    products.sort(key=lambda p: (-p.popularity, p.title.lower()))
    shop = app.extensions["shop"]
    assert shop.recommender.trending(5) == [p.item_id for p in products[:5]]

    warnings = [r for r in caplog.records if "recommendations only" in r.message]
    assert len(warnings) == 1, [r.message for r in warnings]

    health = client.get("/healthz")
    assert health.status_code == 200
    body = health.get_json()
    assert body["status"] == "degraded"
    assert body["checks"]["model"]["ok"] is False
    assert "python -m indexer train" in body["checks"]["model"]["problem"]

    status = cli("status", settings=shop_copy)
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    expected = "cannot be read" if how != "never trained" else "no trained model"
    assert expected in report["model_problem"]
    assert "content and popularity" in status.stderr


def test_a_healthy_shop_reports_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "search", "model", "embedder"}
    assert all(check["ok"] for check in body["checks"].values())
    assert body["checks"]["search"]["documents"] > 0


def test_a_reindex_killed_half_way_is_cleaned_up_by_the_next(shop_copy):
    from indexer.search.embedded import EmbeddedBackend

    index_dir = shop_copy.index_dir
    serving = os.readlink(os.path.join(index_dir, "current"))
    before = set(os.listdir(index_dir))
    process = subprocess.Popen(
        [sys.executable, "-m", "indexer", "--data-dir", shop_copy.data_dir, "reindex"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": ROOT, "SEARCH_BACKEND": "embedded"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    partial: list[str] = []
    while not partial:
        assert process.poll() is None, "the reindex ended before it could be killed"
        assert time.monotonic() < deadline
        partial = sorted(
            e for e in set(os.listdir(index_dir)) - before if e.startswith("products-")
        )
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)

    assert os.readlink(os.path.join(index_dir, "current")) == serving
    assert os.path.isdir(os.path.join(index_dir, partial[0]))
    backend = EmbeddedBackend(index_dir)
    assert backend.status().index == serving
    assert backend.status().documents > 0

    done = cli("reindex", settings=shop_copy)
    assert done.returncode == 0, done.stderr
    assert "left unfinished by an earlier build" in done.stderr
    versions = sorted(e for e in os.listdir(index_dir) if e.startswith("products-"))
    current = os.readlink(os.path.join(index_dir, "current"))
    assert partial[0] not in versions
    assert versions == sorted([serving, current]) and current != serving
    assert EmbeddedBackend(index_dir).status().documents == backend.status().documents


def test_trending_fills_up_from_the_catalog_while_search_is_down(shop_copy, embedder):
    """A trending list shorter than the rail is topped up from the catalog
    store when the search backend cannot list products."""
    import socket

    from web import create_app

    version_dir = os.path.join(
        shop_copy.models_dir, ModelStore(shop_copy.models_dir).current_version()
    )
    with open(os.path.join(version_dir, "signals.json"), encoding="utf-8") as f:
        signals = json.load(f)
    signals["trending"] = signals["trending"][:2]
    with open(os.path.join(version_dir, "signals.json"), "w", encoding="utf-8") as f:
        json.dump(signals, f)
    with socket.socket() as sock:  # a loopback port nothing listens on
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    settings = shop_copy.with_overrides(
        search_backend="elasticsearch",
        elasticsearch_url=f"http://127.0.0.1:{closed_port}",
    )
    app = create_app(settings, embedder=embedder, test_config={"TESTING": True})

    home = app.test_client().get("/")

    assert home.status_code == 200
    assert home.data.count(b'class="card') >= 8
    shop = app.extensions["shop"]
    assert shop.recommender.trending(8)[:2] == signals["trending"]
