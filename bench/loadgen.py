"""A closed-loop HTTP load generator, run in its own process.

Reads a JSON job on stdin: ``{"base": url, "requests": [[method, path, body,
headers], ...], "concurrency": n, "seconds": s, "warmup": s}``; an entry may
also be a list of such requests, sent one after the other and timed as one
(what an application sends for one answer). Each client
thread keeps one connection open and walks the request list from its own
offset. Prints one JSON line: latencies in milliseconds (p50, p95, p99),
requests per second, and the error count.
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time
from urllib.parse import urlsplit


def percentile(sorted_values: list[float], share: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, int(round(share * (len(sorted_values) - 1))))
    return sorted_values[index]


def run(job: dict) -> dict:
    base = urlsplit(job["base"])
    requests = job["requests"]
    deadline_warm = time.perf_counter() + job.get("warmup", 1.0)
    deadline = deadline_warm + job["seconds"]
    latencies: list[list[float]] = [[] for _ in range(job["concurrency"])]
    errors = [0] * job["concurrency"]

    def client(slot: int) -> None:
        connection = http.client.HTTPConnection(base.hostname, base.port, timeout=30)
        position = slot * 7919
        while True:
            now = time.perf_counter()
            if now >= deadline:
                break
            entry = requests[position % len(requests)]
            steps = entry if isinstance(entry[0], list) else [entry]
            position += 1
            started = time.perf_counter()
            try:
                ok = True
                for method, path, body, headers in steps:
                    connection.request(method, path, body=body, headers=headers or {})
                    response = connection.getresponse()
                    response.read()
                    ok = ok and response.status < 400
            except (OSError, http.client.HTTPException):
                ok = False
                connection.close()
                connection = http.client.HTTPConnection(
                    base.hostname, base.port, timeout=30
                )
            elapsed = (time.perf_counter() - started) * 1000
            if started >= deadline_warm:
                if ok:
                    latencies[slot].append(elapsed)
                else:
                    errors[slot] += 1
        connection.close()

    threads = [
        threading.Thread(target=client, args=(n,)) for n in range(job["concurrency"])
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    merged = sorted(v for slot in latencies for v in slot)
    return {
        "p50": percentile(merged, 0.50),
        "p95": percentile(merged, 0.95),
        "p99": percentile(merged, 0.99),
        "rps": len(merged) / job["seconds"],
        "count": len(merged),
        "errors": sum(errors),
    }


if __name__ == "__main__":
    print(json.dumps(run(json.load(sys.stdin))))
