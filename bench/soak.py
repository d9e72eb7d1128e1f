"""Many shoppers at once against the production server, and nothing lost.

Starts the shop as production runs it (``python -m indexer serve``, gunicorn)
on a loopback port, lets ``clients`` shoppers search, open similar products
and product pages and rate products for ``seconds``, then counts: requests
served, 5xx answers, connection errors, p50/p95/p99 latency, and every rating
the server acknowledged found again in the database. Last, one more rating is
acknowledged and the server is killed with SIGKILL at once; it must be on disk.

    python -m bench.soak --data-dir var --clients 50 --seconds 60

The run is bounded: each client stops at the deadline and each request times
out after ``REQUEST_TIMEOUT_S``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import random
import signal
import sqlite3
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import quote

from bench.common import ShopServer
from bench.loadgen import percentile

log = logging.getLogger("bench.soak")

REQUEST_TIMEOUT_S = 30.0
# The mix of one shopper's requests, by weight.
MIX = (("search", 35), ("similar", 20), ("product page", 25), ("feedback", 20))


@dataclass
class ClientLog:
    """What one client saw."""

    latencies: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    by_kind: Counter = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    connection_errors: int = 0
    # (user id, item id) -> stars, for every rating the server acknowledged.
    acknowledged: dict[tuple[int, str], int] = field(default_factory=dict)


def make_shoppers(db_path: str, count: int) -> list[tuple[int, str]]:
    """``count`` accounts with an API token each, written before the server
    starts: (user id, token)."""
    from web.db import ShopDatabase

    db = ShopDatabase(db_path)
    try:
        shoppers = []
        stamp = time.time_ns()
        for n in range(count):
            user = db.create_user(f"soak{stamp}-{n}@example.com", f"Soak {n}", "!")
            shoppers.append((user.id, db.create_token(user.id, "soak")))
        return shoppers
    finally:
        db.close()


def catalog_sample(catalog_path: str, count: int = 400) -> tuple[list, list]:
    """Product ids and title words to ask about."""
    from indexer.store import CatalogStore

    store = CatalogStore(catalog_path)
    try:
        products = [p for p in store.products() if p.available]
    finally:
        store.close()
    rng = random.Random(7)
    picked = rng.sample(products, min(count, len(products)))
    queries = []
    for product in picked:
        words = product.title.lower().split()
        start = rng.randrange(max(1, len(words) - 1))
        queries.append(" ".join(words[start : start + rng.randint(1, 2)]))
    return [p.item_id for p in picked], queries


def run_client(
    base: str,
    slot: int,
    shopper: tuple[int, str],
    item_ids: list[str],
    queries: list[str],
    deadline: float,
    out: ClientLog,
) -> None:
    host, port = base.removeprefix("http://").split(":")
    rng = random.Random(slot)
    kinds = [kind for kind, weight in MIX for _ in range(weight)]
    user_id, token = shopper
    rated = 0
    connection = http.client.HTTPConnection(host, int(port), timeout=REQUEST_TIMEOUT_S)
    while time.monotonic() < deadline:
        kind = rng.choice(kinds)
        item_id = rng.choice(item_ids)
        body, headers, method = None, {}, "GET"
        if kind == "search":
            mode = rng.choice(("hybrid", "keyword", "semantic"))
            path = f"/api/search?q={quote(rng.choice(queries))}&mode={mode}"
        elif kind == "similar":
            path = f"/api/products/{quote(item_id)}/similar?k=10"
        elif kind == "product page":
            path = f"/product/{quote(item_id)}"
        else:
            # Each rating goes to a product this client has not rated yet, so
            # every acknowledgement is one row to find afterwards.
            item_id = item_ids[(slot * 7 + rated) % len(item_ids)]
            stars = rng.randint(1, 5)
            rated += 1
            method, path = "POST", "/api/users/me/feedback"
            body = json.dumps({"item_id": item_id, "kind": "rating", "stars": stars})
            headers = {
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
            }
        started = time.perf_counter()
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException):
            out.connection_errors += 1
            connection.close()
            connection = http.client.HTTPConnection(
                host, int(port), timeout=REQUEST_TIMEOUT_S
            )
            continue
        out.latencies.append((time.perf_counter() - started) * 1000)
        out.statuses[response.status] += 1
        out.by_kind[kind] += 1
        if response.status >= 500:
            out.server_errors.append(f"{response.status} {method} {path}")
        elif kind == "feedback" and response.status == 200:
            if json.loads(payload)["rating"] == stars:
                out.acknowledged[(user_id, item_id)] = stars
    connection.close()


def kill_tree(pid: int) -> None:
    """SIGKILL ``pid`` and every process below it, children first."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            children = [int(p) for p in handle.read().split()]
    except FileNotFoundError:
        children = []
    for child in children:
        kill_tree(child)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def rate_then_kill(server: ShopServer, shopper: tuple[int, str], item_id: str) -> int:
    """Rate ``item_id``, and SIGKILL the server the moment it acknowledges."""
    host, port = server.base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=REQUEST_TIMEOUT_S)
    connection.request(
        "POST",
        "/api/users/me/feedback",
        body=json.dumps({"item_id": item_id, "kind": "rating", "stars": 3}),
        headers={
            "Authorization": f"Bearer {shopper[1]}",
            "Content-Type": "application/json",
        },
    )
    response = connection.getresponse()
    response.read()
    kill_tree(server.process.pid)
    server.process.wait(timeout=30)
    connection.close()
    return response.status


def count_found(db_path: str, acknowledged: dict[tuple[int, str], int]) -> int:
    """How many acknowledged ratings the database holds, stars and all."""
    with sqlite3.connect(db_path) as db:
        stored = {
            (user_id, item_id): stars
            for user_id, item_id, stars in db.execute(
                "SELECT user_id, item_id, stars FROM ratings"
            )
        }
    return sum(stored.get(key) == stars for key, stars in acknowledged.items())


def soak(
    data_dir: str,
    backend: str = "embedded",
    clients: int = 50,
    seconds: float = 60.0,
    workers: int = 2,
    threads: int = 8,
) -> dict:
    """Run the soak against the shop in ``data_dir``; returns the figures."""
    db_path = os.path.join(data_dir, "shop.sqlite")
    shoppers = make_shoppers(db_path, clients + 1)
    item_ids, queries = catalog_sample(os.path.join(data_dir, "catalog.sqlite"))
    server = ShopServer(data_dir, backend, workers=workers, threads=threads)
    try:
        server.wait_ready(timeout=600)
        log.info("%d clients for %.0fs against %s", clients, seconds, server.base)
        deadline = time.monotonic() + seconds
        logs = [ClientLog() for _ in range(clients)]
        pool = [
            threading.Thread(
                target=run_client,
                args=(server.base, n, shoppers[n], item_ids, queries, deadline, out),
                daemon=True,
            )
            for n, out in enumerate(logs)
        ]
        started = time.monotonic()
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join(timeout=seconds + REQUEST_TIMEOUT_S + 10)
        elapsed = time.monotonic() - started
        still_running = sum(thread.is_alive() for thread in pool)

        # One more rating, and the server killed as soon as it says yes.
        last_item = item_ids[-1]
        last_status = rate_then_kill(server, shoppers[-1], last_item)
    finally:
        if server.process.poll() is None:
            server.stop()
        else:
            server.log.close()

    latencies = sorted(v for out in logs for v in out.latencies)
    statuses: Counter = Counter()
    kinds: Counter = Counter()
    acknowledged: dict[tuple[int, str], int] = {}
    for out in logs:
        statuses.update(out.statuses)
        kinds.update(out.by_kind)
        acknowledged.update(out.acknowledged)
    found = count_found(db_path, acknowledged)
    last_found = count_found(db_path, {(shoppers[-1][0], last_item): 3})
    return {
        "clients": clients,
        "seconds": round(elapsed, 1),
        "requests": len(latencies),
        "requests_per_second": round(len(latencies) / elapsed, 1),
        "by_kind": dict(kinds),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "server_errors": sum(v for k, v in statuses.items() if k >= 500),
        "server_error_samples": [e for out in logs for e in out.server_errors][:10],
        "connection_errors": sum(out.connection_errors for out in logs),
        "clients_still_running": still_running,
        "p50_ms": round(percentile(latencies, 0.50), 1),
        "p95_ms": round(percentile(latencies, 0.95), 1),
        "p99_ms": round(percentile(latencies, 0.99), 1),
        "feedback_acknowledged": len(acknowledged),
        "feedback_found": found,
        "killed_after_ack": {"status": last_status, "found": bool(last_found)},
    }


def summary(figures: dict) -> str:
    return (
        f"soak: {figures['clients']} clients, {figures['seconds']}s: "
        f"{figures['requests']} requests ({figures['requests_per_second']}/s), "
        f"{figures['server_errors']} 5xx, {figures['connection_errors']} connection "
        f"errors, p50 {figures['p50_ms']} ms, p95 {figures['p95_ms']} ms, p99 "
        f"{figures['p99_ms']} ms; feedback acknowledged "
        f"{figures['feedback_acknowledged']}, found {figures['feedback_found']}; "
        f"rating acknowledged then SIGKILL: "
        f"{'found' if figures['killed_after_ack']['found'] else 'LOST'}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--data-dir", required=True, help="a loaded shop (make load)")
    parser.add_argument("--backend", default="embedded")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    figures = soak(args.data_dir, args.backend, args.clients, args.seconds)
    print(json.dumps(figures, indent=2))
    print(summary(figures))
    lost = figures["feedback_acknowledged"] - figures["feedback_found"]
    ok = (
        figures["server_errors"] == 0
        and lost == 0
        and figures["killed_after_ack"]["found"]
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
