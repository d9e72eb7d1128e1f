"""Benchmarks: ingest, training, serving and scale, each beside its reference.

Run with ``make bench`` (or ``python -m bench --areas ingest,training``).
Every figure is a median over repeated runs, measured in the same run as the
reference it is compared with. Tables go to stdout and to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import re
import shutil
import sys
import time

import numpy as np

from bench.common import (
    RETAIL_FULL,
    ROOT,
    SHARED,
    ShopServer,
    load,
    machine,
    median_time,
    rss_mib,
    table,
)

log = logging.getLogger("bench")

OUT = os.path.join(ROOT, "bench", "out")
QUERY_COUNT = 600


def make_queries(
    titles: list[str], count: int = QUERY_COUNT, seed: int = 5
) -> list[str]:
    """Distinct shopper-like queries: one to three consecutive words of real
    product titles. Distinct, so that no cache flatters the figures."""
    rng = np.random.default_rng(seed)
    queries: list[str] = []
    seen: set[str] = set()
    while len(queries) < count:
        words = titles[rng.integers(len(titles))].lower().split()
        length = int(rng.integers(1, 4))
        start = int(rng.integers(max(1, len(words) - length + 1)))
        query = " ".join(words[start : start + length])
        if len(query) >= 3 and query not in seen:
            seen.add(query)
            queries.append(query)
    return queries


VARIANTS = [
    "Blue",
    "Large",
    "Small",
    "Set Of 2",
    "Deluxe",
    "Mini",
    "Red",
    "Green",
    "Pastel",
    "Gift Boxed",
    "Assorted",
    "Vintage",
    "Pink",
    "Gold",
    "Silver",
]


def settings_for(data_dir: str, backend: str = "embedded", alias: str = "bench"):
    from indexer.config import Settings

    return Settings(
        data_dir=data_dir, search_backend=backend, elasticsearch_alias=alias
    )


def es_url() -> str | None:
    return os.environ.get("ELASTICSEARCH_URL")


# Ingest


def bench_ingest(repeats: int) -> tuple[str, dict]:
    from indexer.config import make_backend
    from indexer.embeddings import Embedder
    from indexer.online_retail import load_online_retail
    from indexer.pipeline import load_catalog
    from indexer.store import CatalogStore

    embedder = Embedder()
    embedder.encode(["warm up"])
    retail = load_online_retail(RETAIL_FULL)
    texts = sorted({p.embedding_text() for p in retail.products})
    n_products = len(retail.products)

    # The reference: the model alone on the same texts.
    model_time, _ = median_time(lambda: embedder.encode(texts), repeats)
    model_rate = len(texts) / model_time

    # The indexing path: embed (no cache), index, store, from products.
    def index_path():
        data_dir = os.path.join(OUT, "ingest-path")
        shutil.rmtree(data_dir, ignore_errors=True)
        os.makedirs(data_dir)
        settings = settings_for(data_dir)
        store = CatalogStore(settings.catalog_path)
        vectors, _ = embedder.embed_products(retail.products, store)
        make_backend(settings).build(retail.products, vectors)
        store.apply_catalog(retail.products, retail.interactions, meta={})
        store.close()

    path_time, _ = median_time(index_path, repeats)
    pipeline_rate = n_products / path_time

    # The whole load from the raw export: parsing 541,909 invoice lines too.
    read_time, _ = median_time(lambda: load_online_retail(RETAIL_FULL), repeats)

    def first_load():
        data_dir = os.path.join(OUT, "ingest")
        shutil.rmtree(data_dir, ignore_errors=True)
        return load_catalog(settings_for(data_dir), RETAIL_FULL, embedder)

    load_time, _ = median_time(first_load, repeats)

    # Unchanged products again: reindex from the store, vectors from the cache.
    data_dir = os.path.join(OUT, "ingest")
    settings = settings_for(data_dir)

    def reindex():
        store = CatalogStore(settings.catalog_path)
        products = store.products()
        vectors, encoded = embedder.embed_products(products, store)
        store.close()
        assert encoded == 0
        return make_backend(settings).build(products, vectors)

    reindex_time, _ = median_time(reindex, repeats)
    reload_time, _ = median_time(
        lambda: load_catalog(settings, RETAIL_FULL, embedder), repeats
    )

    rows = [
        ["model encode alone (reference)", len(texts), model_time, model_rate, 1.0],
        [
            "indexing path: embed, index, store",
            n_products,
            path_time,
            pipeline_rate,
            pipeline_rate / model_rate,
        ],
        [
            "parse the raw export alone (541,909 lines)",
            n_products,
            read_time,
            n_products / read_time,
            n_products / read_time / model_rate,
        ],
        [
            "whole load from the raw export",
            n_products,
            load_time,
            n_products / load_time,
            n_products / load_time / model_rate,
        ],
    ]
    text = table(
        "Ingest, full retail catalog: the indexing path against the model's own "
        "rate (target 0.8 or better)",
        ["step", "products", "median s", "products/s", "ratio to model"],
        rows,
    )
    text += "\n" + table(
        "Unchanged products again, against the first load (target 20x or better)",
        ["step", "median s", "speed-up over first load"],
        [
            ["first load (reference)", load_time, 1.0],
            ["reindex of unchanged products", reindex_time, load_time / reindex_time],
            ["load of the same file again", reload_time, load_time / reload_time],
        ],
    )

    results = {
        "pipeline_to_model": pipeline_rate / model_rate,
        "reindex_speedup": load_time / reindex_time,
    }
    if es_url():
        from indexer.search.elastic import ElasticsearchBackend

        store = CatalogStore(settings.catalog_path)
        products = store.products()
        vectors, _ = embedder.embed_products(products, store)
        store.close()
        backend = ElasticsearchBackend(es_url(), "bench-bulk")
        bulk_time, _ = median_time(lambda: backend.build(products, vectors), repeats)
        backend.drop_all()
        text += "\n" + table(
            "Bulk indexing into Elasticsearch, vectors precomputed",
            ["documents", "median s", "documents/s"],
            [[len(products), bulk_time, len(products) / bulk_time]],
        )
        results["es_bulk_docs_per_s"] = len(products) / bulk_time
    return text, results


# Training


def bench_training(repeats: int) -> tuple[str, dict]:
    from threadpoolctl import threadpool_limits

    from indexer.pipeline import train_models
    from indexer.store import CatalogStore
    from recs.collaborative import TrainingParams
    from recs.interactions import InteractionColumns, confidence_matrix

    settings = settings_for(os.path.join(OUT, "ingest"))
    params = TrainingParams()
    train_time, _ = median_time(lambda: train_models(settings, params), repeats)

    # The reference: implicit's fit alone, on the very matrix train builds.
    store = CatalogStore(settings.catalog_path)
    items = store.item_ids()
    columns = InteractionColumns.from_rows(store.interaction_rows(ordered=False))
    store.close()
    matrix, _ = confidence_matrix(columns, items)

    def bare_fit():
        with threadpool_limits(1, "blas"):
            params.new_model().fit(matrix, show_progress=False)

    fit_time, _ = median_time(bare_fit, repeats)
    text = table(
        "Training on the full retail history: the train command against "
        "implicit's bare fit (target 1.3x or less)",
        ["step", "users", "items", "non-zero", "median s", "ratio to bare fit"],
        [
            [
                "implicit ALS fit (reference)",
                matrix.shape[0],
                matrix.shape[1],
                matrix.nnz,
                fit_time,
                1.0,
            ],
            [
                "train command (read, weigh, fit, trending, save)",
                matrix.shape[0],
                matrix.shape[1],
                matrix.nnz,
                train_time,
                train_time / fit_time,
            ],
        ],
    )
    return text, {"train_to_fit": train_time / fit_time}


# Serving


def copy_without_index(data_dir: str, name: str) -> str:
    """A fresh copy of ``data_dir`` under ``OUT/name``, its embedded index left
    out, for the same shop served from Elasticsearch."""
    copy = os.path.join(OUT, name)
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(
        data_dir, copy, symlinks=True, ignore=shutil.ignore_patterns("index")
    )
    return copy


def register_and_rate(base: str, item_ids: list[str]) -> str:
    """A shopper's session cookie, after rating a few products."""
    import http.client

    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    cookie = ""

    def request(method, path, body=None):
        nonlocal cookie
        headers = {"Cookie": cookie} if cookie else {}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
        for header, value in response.getheaders():
            if header.lower() == "set-cookie" and value.startswith("session="):
                cookie = value.split(";", 1)[0]
        return data

    def token(path):
        return (
            re.search(rb'name="csrf_token" value="([^"]+)"', request("GET", path))
            .group(1)
            .decode()
        )

    from urllib.parse import urlencode

    email = f"bench{time.time_ns()}@example.com"
    request(
        "POST",
        "/register",
        urlencode(
            {
                "csrf_token": token("/register"),
                "email": email,
                "name": "Bench",
                "password": "bench password",
            }
        ),
    )
    for item_id in item_ids:
        request(
            "POST",
            f"/product/{item_id}/rate",
            urlencode({"csrf_token": token(f"/product/{item_id}"), "stars": "5"}),
        )
    connection.close()
    return cookie


def latency_row(backend: str, request: str, clients: int, result: dict) -> list:
    """One row of a serving table from a load generator result."""
    return [
        backend,
        request,
        clients,
        *(result[key] for key in ("p50", "p95", "p99", "rps", "errors")),
    ]


def serve_and_measure(
    data_dir: str,
    backend: str,
    item_ids: list[str],
    queries: list[str],
    seconds: float,
    for_you: bool = True,
    env: dict | None = None,
) -> tuple[list[list], float]:
    from urllib.parse import quote

    server = ShopServer(data_dir, backend, env=env)
    try:
        server.wait_ready()
        requests = {
            "hybrid search": [
                ["GET", f"/api/search?q={quote(q)}", None, None] for q in queries
            ],
            "keyword search": [
                ["GET", f"/api/search?q={quote(q)}&mode=keyword", None, None]
                for q in queries
            ],
            "/similar": [
                ["GET", f"/similar/{i}?k=10", None, None] for i in item_ids[:200]
            ],
        }
        if for_you:
            cookie = register_and_rate(server.base, item_ids[:3])
            requests["for-you"] = [
                ["GET", "/api/users/me/recommendations?k=10", None, {"Cookie": cookie}]
            ]
        rows = []
        for name, batch in requests.items():
            for concurrency in (1, 16):
                result = load(server.base, batch, concurrency, seconds)
                rows.append(latency_row(backend, name, concurrency, result))
        memory = rss_mib(server.process.pid)
    finally:
        server.stop()
    return rows, memory


def raw_es_rows(alias: str, queries: list[str], seconds: float) -> list[list]:
    """What the app sends Elasticsearch for each search, sent to it directly:
    the msearch body, and for hybrid searches the cosine search and the mget
    of the page."""
    from indexer.embeddings import Embedder
    from indexer.search.base import SearchRequest
    from indexer.search.elastic import SOURCE_EXCLUDES, ElasticsearchBackend

    backend = ElasticsearchBackend(es_url(), alias)
    embedder = Embedder()
    rows = []
    ndjson = {"Content-Type": "application/x-ndjson"}
    for name, mode in (("hybrid search", "hybrid"), ("keyword search", "keyword")):
        batch = []
        for q in queries:
            vector = embedder.encode_query(q) if mode == "hybrid" else None
            request = SearchRequest(q, mode=mode)
            body = backend.search_body(request, vector)
            steps = [
                [
                    "POST",
                    "/_msearch",
                    "".join(json.dumps(x) + "\n" for x in body),
                    ndjson,
                ]
            ]
            if len(body) > 2:
                # Two rankings combined: the app then asks the cosines of the
                # best keyword matches, and fetches the page.
                first = backend.reads.msearch(searches=body)["responses"][1]
                top = [h["_id"] for h in first["hits"]["hits"]]
                steps.append(
                    [
                        "POST",
                        f"/{alias}/_search",
                        json.dumps(backend.cosines_body(vector, top)),
                        {"Content-Type": "application/json"},
                    ]
                )
                ids = [h.item_id for h in backend.search(request, vector).hits]
                path = f"/{alias}/_mget?_source_excludes={','.join(SOURCE_EXCLUDES)}"
                steps.append(
                    [
                        "POST",
                        path,
                        json.dumps({"ids": ids}),
                        {"Content-Type": "application/json"},
                    ]
                )
            batch.append(steps)
        for concurrency in (1, 16):
            result = load(es_url(), batch, concurrency, seconds)
            rows.append(latency_row("raw Elasticsearch", name, concurrency, result))
    backend.close()
    return rows


def bench_serving(seconds: float) -> tuple[str, dict]:
    from indexer.config import make_backend
    from indexer.embeddings import Embedder
    from indexer.pipeline import load_catalog, train_models
    from indexer.store import CatalogStore

    source_dir = os.path.join(OUT, "ingest")
    if not os.path.exists(os.path.join(source_dir, "catalog.sqlite")):
        load_catalog(settings_for(source_dir), RETAIL_FULL, Embedder())
    if not os.path.exists(os.path.join(source_dir, "models", "current")):
        train_models(settings_for(source_dir))
    store = CatalogStore(os.path.join(source_dir, "catalog.sqlite"))
    products = store.products()
    store.close()
    item_ids = [p.item_id for p in products]
    queries = make_queries([p.title for p in products])

    rows, memory = serve_and_measure(source_dir, "embedded", item_ids, queries, seconds)
    memories = [["embedded", len(item_ids), memory]]
    results: dict = {}
    if es_url():
        es_dir = copy_without_index(source_dir, "serving-es")
        settings = settings_for(es_dir, "elasticsearch", "bench-serving")
        store = CatalogStore(settings.catalog_path)
        products = store.products()
        vectors, _ = Embedder().embed_products(products, store)
        store.close()
        make_backend(settings).build(products, vectors)
        es_rows, es_memory = serve_and_measure(
            es_dir,
            "elasticsearch",
            item_ids,
            queries,
            seconds,
            env={"ELASTICSEARCH_ALIAS": "bench-serving"},
        )
        rows += es_rows
        memories.append(["elasticsearch (app only)", len(item_ids), es_memory])
        raw = raw_es_rows("bench-serving", queries, seconds)
        rows += raw
        for name in ("hybrid search", "keyword search"):
            app = next(r for r in es_rows if r[1] == name and r[2] == 1)
            direct = next(r for r in raw if r[1] == name and r[2] == 1)
            results[f"es_overhead_{name.split()[0]}"] = app[3] / direct[3]
        make_backend(settings).drop_all()
    text = table(
        "Serving through HTTP (gunicorn, 2 workers x 8 threads) on the full retail "
        "catalog; latency in ms",
        ["backend", "request", "clients", "p50", "p95", "p99", "req/s", "errors"],
        rows,
    )
    for name, value in results.items():
        text += f"\nApp over raw Elasticsearch, p50 at 1 client, {name}: {value:.2f}x\n"
    text += "\n" + table(
        "Serving memory (resident, server and workers)",
        ["backend", "products", "MiB"],
        memories,
    )
    results["rows"] = rows
    return text, results


# Scale


def scaled_catalog(products, vectors, factor: int, seed: int = 11):
    """``factor`` copies of every product with varied titles and fresh ids;
    vectors are the originals with a little noise, renormalised."""
    if factor == 1:
        return list(products), vectors
    rng = np.random.default_rng(seed)
    out_products, out_vectors = [], []
    for copy_number in range(factor):
        noise = rng.normal(0, 0.03, size=vectors.shape).astype(np.float32)
        varied = vectors + (noise if copy_number else 0)
        varied /= np.linalg.norm(varied, axis=1, keepdims=True)
        out_vectors.append(varied)
        for n, product in enumerate(products):
            if copy_number == 0:
                out_products.append(product)
                continue
            twin = copy.copy(product)
            twin.item_id = f"{product.item_id}-{copy_number}"
            twin.title = (
                f"{product.title} {VARIANTS[(n + copy_number) % len(VARIANTS)]}"
            )
            out_products.append(twin)
    return out_products, np.vstack(out_vectors)


def bench_scale(
    seconds: float, factors: list[int], es_factors: list[int]
) -> tuple[str, dict]:
    from indexer.config import make_backend
    from indexer.embeddings import Embedder
    from indexer.store import CatalogStore

    source_dir = os.path.join(OUT, "ingest")
    store = CatalogStore(os.path.join(source_dir, "catalog.sqlite"))
    base_products = store.products()
    base_vectors, _ = Embedder().embed_products(base_products, store)
    store.close()
    queries = make_queries([p.title for p in base_products])

    rows, memories = [], []
    for factor in factors:
        products, vectors = scaled_catalog(base_products, base_vectors, factor)
        backends = ["embedded"] + (
            ["elasticsearch"] if es_url() and factor in es_factors else []
        )
        for backend in backends:
            data_dir = os.path.join(OUT, f"scale-{factor}-{backend}")
            shutil.rmtree(data_dir, ignore_errors=True)
            os.makedirs(data_dir)
            alias = f"bench-scale-{factor}"
            settings = settings_for(data_dir, backend, alias)
            started = time.perf_counter()
            make_backend(settings).build(products, vectors)
            build_time = time.perf_counter() - started
            ids = [p.item_id for p in products[:: max(1, len(products) // 200)]]
            measured, memory = serve_and_measure(
                data_dir,
                backend,
                ids,
                queries,
                seconds,
                for_you=False,
                env={"ELASTICSEARCH_ALIAS": alias},
            )
            for row in measured:
                rows.append([f"x{factor} ({len(products):,})", *row])
            memories.append([f"x{factor}", backend, len(products), build_time, memory])
            if backend == "elasticsearch":
                make_backend(settings).drop_all()
            shutil.rmtree(data_dir, ignore_errors=True)
    text = table(
        "Scale: the retail catalog repeated with varied titles and fresh ids; "
        "latency in ms",
        [
            "catalog",
            "backend",
            "request",
            "clients",
            "p50",
            "p95",
            "p99",
            "req/s",
            "errors",
        ],
        rows,
    )
    text += "\n" + table(
        "Scale: build time and serving memory (app process tree; Elasticsearch's own "
        "heap is fixed at its ES_HEAP)",
        ["catalog", "backend", "products", "build s", "app MiB"],
        memories,
    )
    return text, {"rows": rows}


def bench_icecat(seconds: float) -> tuple[str, dict]:
    """Serving figures on the Icecat catalog (19k real products, brands,
    attributes, no shoppers): loaded once, its embeddings cached between runs."""
    from indexer.config import make_backend
    from indexer.embeddings import Embedder
    from indexer.pipeline import load_catalog
    from indexer.store import CatalogStore

    icecat_dir = os.path.join(SHARED, "icecat-products")
    files = sorted(
        os.path.join(icecat_dir, name)
        for name in os.listdir(icecat_dir)
        if name.endswith(".json.zip")
    )
    mapping = os.path.join(ROOT, "data", "mappings", "icecat.json")
    data_dir = os.path.join(OUT, "icecat")
    embedder = Embedder()
    started = time.perf_counter()
    report = load_catalog(settings_for(data_dir), files, embedder, mapping=mapping)
    load_time = time.perf_counter() - started
    store = CatalogStore(os.path.join(data_dir, "catalog.sqlite"))
    products = store.products()
    vectors, _ = embedder.embed_products(products, store)
    store.close()
    queries = make_queries([p.title for p in products])
    ids = [p.item_id for p in products[:: max(1, len(products) // 200)]]

    rows, memories = [], []
    measured, memory = serve_and_measure(
        data_dir, "embedded", ids, queries, seconds, for_you=False
    )
    rows += measured
    memories.append(["embedded", len(products), memory])
    if es_url():
        es_dir = copy_without_index(data_dir, "icecat-es")
        settings = settings_for(es_dir, "elasticsearch", "bench-icecat")
        make_backend(settings).build(products, vectors)
        measured, memory = serve_and_measure(
            es_dir,
            "elasticsearch",
            ids,
            queries,
            seconds,
            for_you=False,
            env={"ELASTICSEARCH_ALIAS": "bench-icecat"},
        )
        rows += measured
        memories.append(["elasticsearch (app only)", len(products), memory])
        make_backend(settings).drop_all()
    text = table(
        f"Serving on the Icecat catalog ({len(products):,} products; loaded in "
        f"{load_time:.0f} s, {report.encoded} embedded anew); latency in ms",
        ["backend", "request", "clients", "p50", "p95", "p99", "req/s", "errors"],
        rows,
    )
    text += "\n" + table(
        "Icecat serving memory (resident, server and workers)",
        ["backend", "products", "MiB"],
        memories,
    )
    return text, {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--areas", default="ingest,training,serving,icecat,scale")
    parser.add_argument(
        "--append",
        action="store_true",
        help="add these areas' tables to an existing results file",
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--seconds", type=float, default=5.0, help="load per serving measurement"
    )
    parser.add_argument("--factors", default="1,10,100")
    parser.add_argument("--es-factors", default="1,10")
    parser.add_argument("--output", default=os.path.join(ROOT, "bench", "RESULTS.md"))
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("elastic_transport").setLevel(logging.WARNING)
    os.makedirs(OUT, exist_ok=True)

    areas = args.areas.split(",")
    sections, summary = [], {}
    started = time.time()
    for area in areas:
        log.info("benchmark area %s", area)
        if area == "ingest":
            text, results = bench_ingest(args.repeats)
        elif area == "training":
            text, results = bench_training(args.repeats)
        elif area == "serving":
            text, results = bench_serving(args.seconds)
        elif area == "icecat":
            text, results = bench_icecat(args.seconds)
        elif area == "scale":
            text, results = bench_scale(
                args.seconds,
                [int(f) for f in args.factors.split(",")],
                [int(f) for f in args.es_factors.split(",")],
            )
        else:
            parser.error(
                f"unknown area {area!r}; choose from ingest, training, serving, "
                "icecat, scale"
            )
        print(text, flush=True)
        sections.append(text)
        summary[area] = {k: v for k, v in results.items() if k != "rows"}

    facts = machine()
    header = [
        "# Benchmark results",
        "",
        f"Produced by `{' '.join(['python -m bench', *(argv or sys.argv[1:])])}` "
        f"(`make bench`) on {time.strftime('%Y-%m-%d %H:%M')} in "
        f"{(time.time() - started) / 60:.1f} minutes.",
        f"Elasticsearch: {es_url() or 'not measured (ELASTICSEARCH_URL unset)'}.",
        "",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in facts.items()),
        "",
        "Each figure is a median over repeated runs; each ratio is measured beside "
        "its reference in the same run. The load generator (bench/loadgen.py) runs "
        "in its own process on the same two cores as the server, so latency "
        "includes contention with the client.",
        "",
        "Summary: " + json.dumps(summary),
        "",
    ]
    if args.append and os.path.exists(args.output):
        with open(args.output, "a", encoding="utf-8") as out:
            out.write(
                f"\n## Added by `python -m bench {' '.join(argv or sys.argv[1:])}` "
                f"on {time.strftime('%Y-%m-%d %H:%M')}\n\nSummary: "
                f"{json.dumps(summary)}\n\n" + "\n".join(sections)
            )
    else:
        with open(args.output, "w", encoding="utf-8") as out:
            out.write("\n".join(header) + "\n" + "\n".join(sections))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
